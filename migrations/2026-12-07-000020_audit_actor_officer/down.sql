DROP INDEX IF EXISTS audit_log_officer_event;
DROP INDEX IF EXISTS audit_log_officer_listing;
ALTER TABLE audit_log DROP COLUMN IF EXISTS actor_officer_id;

DROP INDEX IF EXISTS challenges_outstanding;
DROP INDEX IF EXISTS audit_log_actor;
DROP INDEX IF EXISTS certificates_dept_listing;
DROP INDEX IF EXISTS certificates_org_listing;
DROP INDEX IF EXISTS certificates_listing;

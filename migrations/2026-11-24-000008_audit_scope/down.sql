DROP INDEX audit_log_dept_event, audit_log_org_event, audit_log_dept_listing, audit_log_org_listing;
ALTER TABLE audit_log DROP COLUMN department_id, DROP COLUMN organization_id;

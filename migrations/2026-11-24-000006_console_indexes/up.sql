-- Console listings: keyset pages newest first, overall and per scope
-- (organization for an RAO, department for a DRAO), so a page is an index
-- range scan however many certificates exist.
CREATE INDEX certificates_listing ON certificates (created_at DESC, id DESC);
CREATE INDEX certificates_org_listing ON certificates (organization_id, created_at DESC, id DESC);
CREATE INDEX certificates_dept_listing ON certificates (department_id, created_at DESC, id DESC)
    WHERE department_id IS NOT NULL;
-- The audit page filters by actor.
CREATE INDEX audit_log_actor ON audit_log (actor, at DESC);
-- Outstanding challenges on the challenges page.
CREATE INDEX challenges_outstanding ON challenges (organization_id, created_at DESC)
    WHERE used_at IS NULL AND revoked_at IS NULL;

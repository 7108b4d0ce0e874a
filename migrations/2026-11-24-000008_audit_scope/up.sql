-- Issue 4: audit entries carry the organization and department they concern,
-- so an RAO sees its organizations' entries and a DRAO its departments'.
-- NULL: the entry concerns no organization (logins, officer preferences,
-- refusals before the client was authenticated); only an MRAO and the
-- entry's own actor see those.
ALTER TABLE audit_log
    ADD COLUMN organization_id BIGINT REFERENCES organizations(id),
    ADD COLUMN department_id   BIGINT REFERENCES departments(id);

-- Backfill what existing rows let us derive exactly: the row their target
-- names (request, certificate, challenge, access code, organization), or
-- the ids a mint/revocation recorded in its details (a purged challenge is
-- gone, its mint entry still says where it belonged). Anything else stays
-- NULL rather than guessed.
UPDATE audit_log a SET organization_id = r.organization_id, department_id = r.department_id
FROM enrollment_requests r
WHERE a.target ~ '^request:[0-9]{1,18}$'
  AND r.id = CASE WHEN a.target ~ '^request:[0-9]{1,18}$' THEN substr(a.target, 9)::bigint END;

UPDATE audit_log a SET organization_id = c.organization_id, department_id = c.department_id
FROM certificates c
WHERE a.target LIKE 'certificate:%' AND c.serial = substr(a.target, 13);

UPDATE audit_log a SET organization_id = c.organization_id, department_id = c.department_id
FROM challenges c
WHERE a.target ~ '^challenge:[0-9]{1,18}$'
  AND c.id = CASE WHEN a.target ~ '^challenge:[0-9]{1,18}$' THEN substr(a.target, 11)::bigint END;

UPDATE audit_log a SET organization_id = c.organization_id, department_id = c.department_id
FROM access_codes c
WHERE a.target ~ '^access_code:[0-9]{1,18}$'
  AND c.id = CASE WHEN a.target ~ '^access_code:[0-9]{1,18}$' THEN substr(a.target, 13)::bigint END;

UPDATE audit_log a SET organization_id = o.id
FROM organizations o
WHERE a.target ~ '^organization:[0-9]{1,18}$'
  AND o.id = CASE WHEN a.target ~ '^organization:[0-9]{1,18}$' THEN substr(a.target, 14)::bigint END;

-- An API key names one organization only when it was created for exactly one.
UPDATE audit_log a SET organization_id = s.organization_id
FROM (SELECT api_key_id, min(organization_id) AS organization_id
      FROM api_key_scopes GROUP BY api_key_id HAVING count(*) = 1) s
WHERE a.target ~ '^api_key:[0-9]{1,18}$'
  AND s.api_key_id = CASE WHEN a.target ~ '^api_key:[0-9]{1,18}$' THEN substr(a.target, 9)::bigint END;

-- A profile's changes are filed under its organization when it is enabled
-- for exactly one (as `manage::profiles` files them).
UPDATE audit_log a SET organization_id = s.organization_id
FROM (SELECT p.profile_id AS name, min(s.organization_id) AS organization_id
      FROM device_profiles p JOIN profile_scopes s ON s.profile_id = p.id
      GROUP BY p.profile_id HAVING count(DISTINCT s.organization_id) = 1) s
WHERE a.target LIKE 'profile:%' AND s.name = substr(a.target, 9);

UPDATE audit_log a SET organization_id = o.id
FROM organizations o
WHERE a.organization_id IS NULL
  AND jsonb_typeof(a.details -> 'organization_id') = 'number'
  AND o.id = CASE WHEN jsonb_typeof(a.details -> 'organization_id') = 'number'
                  THEN (a.details ->> 'organization_id')::bigint END;

UPDATE audit_log a SET department_id = d.id
FROM departments d
WHERE a.department_id IS NULL AND a.organization_id = d.organization_id
  AND jsonb_typeof(a.details -> 'department_id') = 'number'
  AND d.id = CASE WHEN jsonb_typeof(a.details -> 'department_id') = 'number'
                  THEN (a.details ->> 'department_id')::bigint END;

-- The scoped audit page: one keyset range scan per organization or
-- department in the officer's scope, and the same filtered by event kind
-- (the dashboard's refusals, the page's event filter): an event rare in a
-- busy organization must not mean walking all of its entries.
CREATE INDEX audit_log_org_listing ON audit_log (organization_id, at DESC, id DESC)
    WHERE organization_id IS NOT NULL;
CREATE INDEX audit_log_dept_listing ON audit_log (department_id, at DESC, id DESC)
    WHERE department_id IS NOT NULL;
CREATE INDEX audit_log_org_event ON audit_log (organization_id, event, at DESC, id DESC)
    WHERE organization_id IS NOT NULL;
CREATE INDEX audit_log_dept_event ON audit_log (department_id, event, at DESC, id DESC)
    WHERE department_id IS NOT NULL;

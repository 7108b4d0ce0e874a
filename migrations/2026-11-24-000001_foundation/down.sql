DROP TABLE audit_log, admin_scopes, admins, revocations;
DROP SEQUENCE crl_number_seq;
ALTER TABLE enrollment_requests DROP CONSTRAINT enrollment_requests_renewal_of_fkey, DROP CONSTRAINT enrollment_requests_certificate_fkey;
DROP TABLE certificates, request_events, enrollment_requests, challenges, profile_scopes, device_profiles, departments, organizations;

DROP INDEX enrollment_requests_renewal_of;
ALTER TABLE device_profiles
    DROP COLUMN renewal_allows_identity_change,
    DROP COLUMN auto_renew;

ALTER TABLE device_profiles
    DROP COLUMN honor_requested_validity;

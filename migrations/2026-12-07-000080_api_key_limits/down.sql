DROP TABLE api_key_usage;
DROP TABLE api_key_profiles;
ALTER TABLE api_keys
    DROP COLUMN requests_per_minute,
    DROP COLUMN last_used_at,
    DROP COLUMN expires_at;

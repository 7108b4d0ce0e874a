-- An API key may expire, be limited to some profiles of its organizations,
-- and be limited in requests per minute (counted here, so every scepd
-- process shares the count). last_used_at is shown in the console.
ALTER TABLE api_keys
    ADD COLUMN expires_at TIMESTAMPTZ,
    ADD COLUMN last_used_at TIMESTAMPTZ,
    ADD COLUMN requests_per_minute INTEGER NOT NULL DEFAULT 0
        CHECK (requests_per_minute >= 0);

CREATE TABLE api_key_profiles (
    api_key_id BIGINT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    profile_id BIGINT NOT NULL REFERENCES device_profiles (id) ON DELETE CASCADE,
    PRIMARY KEY (api_key_id, profile_id)
);

CREATE TABLE api_key_usage (
    api_key_id BIGINT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    window_start TIMESTAMPTZ NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, window_start)
);

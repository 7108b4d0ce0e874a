-- Issue 3: access codes, failed-challenge rate limiting, API keys.

-- Organization/department access codes: an admin-chosen static secret
-- (Sectigo's "access code"). Stored as an argon2id PHC string; `updated_at`
-- changes with the hash or `enabled`, which invalidates every cached
-- verification of the old code in every scepd process.
CREATE TABLE access_codes (
    id              BIGSERIAL PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    department_id   BIGINT REFERENCES departments(id) ON DELETE CASCADE,
    -- NULL: valid for every profile enabled for the organization/department.
    profile_id      BIGINT REFERENCES device_profiles(id) ON DELETE CASCADE,
    label           TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT true,
    created_by      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX access_codes_enabled ON access_codes (profile_id) WHERE enabled;

-- Failed challenge attempts per client address and fixed time window. One
-- counter row, bumped with INSERT .. ON CONFLICT, so that every scepd
-- process sees the same count.
CREATE TABLE challenge_failures (
    client_ip    TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (client_ip, window_start)
);
CREATE INDEX challenge_failures_window ON challenge_failures (window_start);

-- API keys for MDMs: a random token shown once; only its SHA-256 is kept
-- (the token has 256 bits of entropy, so a fast hash is enough).
CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    created_by   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ
);

-- The organizations a key may act for.
CREATE TABLE api_key_scopes (
    api_key_id      BIGINT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    organization_id BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    PRIMARY KEY (api_key_id, organization_id)
);

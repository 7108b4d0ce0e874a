-- Microsoft Intune as the issuer of a profile's challenges (docs/intune.md).
-- One row per profile that uses it. The client secret is sealed with
-- AES-256-GCM under a key derived from the key passphrase (nonce ||
-- ciphertext || tag, the profile's id authenticated with it), so the
-- database alone yields no secret. Intune's enrollments are filed under
-- organization_id / department_id, a place the profile is enabled for.
CREATE TABLE intune_settings (
    profile_id BIGINT PRIMARY KEY REFERENCES device_profiles (id) ON DELETE CASCADE,
    tenant TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret_sealed BYTEA NOT NULL,
    organization_id BIGINT NOT NULL REFERENCES organizations (id),
    department_id BIGINT REFERENCES departments (id),
    authority_url TEXT NOT NULL,
    graph_url TEXT NOT NULL,
    intune_resource_url TEXT NOT NULL,
    intune_app_id TEXT NOT NULL,
    -- Set: used instead of the URI that Graph's service discovery returns.
    validation_url TEXT,
    pki_connector_url TEXT,
    revocation_enabled BOOLEAN NOT NULL DEFAULT true,
    last_error TEXT,
    last_error_at TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    last_revocation_sync_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

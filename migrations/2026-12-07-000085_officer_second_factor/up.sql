-- Officers' TOTP second factor (RFC 6238). The secret is sealed with
-- AES-256-GCM under a key derived from the installation's key passphrase
-- (nonce || ciphertext || tag); NULL totp_enabled_at with a secret is an
-- enrollment not yet confirmed with a code. totp_last_step: a code is
-- accepted once (RFC 6238 §5.2).
ALTER TABLE admins
    ADD COLUMN totp_secret BYTEA,
    ADD COLUMN totp_enabled_at TIMESTAMPTZ,
    ADD COLUMN totp_last_step BIGINT;

-- Recovery codes, shown once at enrollment; SHA-256 stored (80 random bits
-- each), spent at use.
CREATE TABLE admin_recovery_codes (
    id BIGSERIAL PRIMARY KEY,
    admin_id BIGINT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX admin_recovery_codes_admin ON admin_recovery_codes (admin_id);

-- A session waits for its second factor; authenticated_at is when the
-- officer last proved who it is (login or re-authentication).
ALTER TABLE console_sessions
    ADD COLUMN second_factor_pending BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN second_factor_failures INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN authenticated_at TIMESTAMPTZ NOT NULL DEFAULT now();

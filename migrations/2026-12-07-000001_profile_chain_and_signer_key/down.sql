ALTER TABLE device_profiles
    DROP COLUMN signer_key_must_match,
    DROP COLUMN certrep_includes_chain;

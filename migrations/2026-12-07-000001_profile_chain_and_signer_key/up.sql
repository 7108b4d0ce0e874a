-- Two per-profile switches for clients in the field.
--
-- certrep_includes_chain: a SUCCESS CertRep's certificates (RFC 8894
-- §3.3.2) carry the CA and its issuers after the issued certificate. Some
-- VPN clients need the chain there, others refuse a reply that has it, so
-- it is off unless a profile asks.
--
-- signer_key_must_match: a first enrollment must be signed with the key
-- being certified (RFC 8894 §2.3, enforced strictly).
--
-- The revision trigger fires on every UPDATE of the row, so changing
-- either column raises the revision like any other setting.
ALTER TABLE device_profiles
    ADD COLUMN certrep_includes_chain BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN signer_key_must_match  BOOLEAN NOT NULL DEFAULT FALSE;

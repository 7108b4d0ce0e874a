-- The CA identity of the installation: what every scepd serving this
-- database must hold in its `<data>/ca/`. Recorded by the first node that
-- bootstraps (or, on a database from before this table, by the first node
-- whose CA issued every certificate already stored); a node whose
-- certificates differ refuses to start. One row: the installation has one
-- current CA, and at most one rollover CA waiting (RFC 8894 §3.5.2
-- GetNextCACert). `scepd ca rollover` sets the next_* columns in the
-- transaction that checks them.
--
-- Certificates are DER; the fingerprints are computed here, so they can
-- never disagree with the certificates.
CREATE TABLE ca_identity (
    id                 SMALLINT PRIMARY KEY DEFAULT 1
        CONSTRAINT ca_identity_one_row CHECK (id = 1),
    ca_cert            BYTEA NOT NULL,
    ca_sha256          BYTEA NOT NULL GENERATED ALWAYS AS (sha256(ca_cert)) STORED,
    -- An imported intermediate's issuers, nearest first, as PEM (the
    -- content of `<data>/ca/ca-chain.crt`); empty for a root CA.
    ca_chain_pem       TEXT NOT NULL DEFAULT '',
    ra_cert            BYTEA NOT NULL,
    ra_sha256          BYTEA NOT NULL GENERATED ALWAYS AS (sha256(ra_cert)) STORED,
    ra_enc_cert        BYTEA NOT NULL,
    ra_enc_sha256      BYTEA NOT NULL GENERATED ALWAYS AS (sha256(ra_enc_cert)) STORED,
    next_ca_cert       BYTEA,
    next_ca_sha256     BYTEA GENERATED ALWAYS AS (sha256(next_ca_cert)) STORED,
    next_ra_cert       BYTEA,
    next_ra_sha256     BYTEA GENERATED ALWAYS AS (sha256(next_ra_cert)) STORED,
    next_ra_enc_cert   BYTEA,
    next_ra_enc_sha256 BYTEA GENERATED ALWAYS AS (sha256(next_ra_enc_cert)) STORED,
    recorded_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A rollover CA comes with both of its RA certificates, or not at all.
    CONSTRAINT ca_identity_next_whole CHECK (
        (next_ca_cert IS NULL) = (next_ra_cert IS NULL)
        AND (next_ca_cert IS NULL) = (next_ra_enc_cert IS NULL)
    )
);

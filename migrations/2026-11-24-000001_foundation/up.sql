-- scepd foundation schema: organizations, profiles, challenges, enrollment
-- requests with their history, certificates, revocations, officers, audit.
-- Status columns are TEXT with CHECK constraints so that every process (and
-- psql) reads the same words the code uses.

CREATE TABLE organizations (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE departments (
    id              BIGSERIAL PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);

-- A device certificate profile; `profile_id` is the stable name in the SCEP
-- URL (/scep/<profile_id>).
CREATE TABLE device_profiles (
    id                    BIGSERIAL PRIMARY KEY,
    profile_id            TEXT NOT NULL UNIQUE CHECK (profile_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name                  TEXT NOT NULL,
    cert_type             TEXT NOT NULL DEFAULT 'device' CHECK (cert_type IN ('device', 'user')),
    validity_days         INTEGER NOT NULL DEFAULT 365 CHECK (validity_days BETWEEN 1 AND 3650),
    key_usage             TEXT[] NOT NULL DEFAULT '{digitalSignature,keyEncipherment}',
    extended_key_usage    TEXT[] NOT NULL DEFAULT '{clientAuth}',
    subject_template      TEXT NOT NULL DEFAULT 'CN={{CommonName}}',
    san_types             TEXT[] NOT NULL DEFAULT '{dns,email,uri,upn,ip}',
    san_pattern           TEXT,
    min_rsa_bits          INTEGER NOT NULL DEFAULT 2048 CHECK (min_rsa_bits >= 1024),
    allowed_ec_curves     TEXT[] NOT NULL DEFAULT '{}',
    hash_alg              TEXT NOT NULL DEFAULT 'sha256' CHECK (hash_alg IN ('sha256', 'sha384', 'sha512')),
    approval_mode         TEXT NOT NULL DEFAULT 'auto' CHECK (approval_mode IN ('auto', 'manual')),
    renewal_window_days   INTEGER NOT NULL DEFAULT 30 CHECK (renewal_window_days >= 0),
    max_active_per_device INTEGER NOT NULL DEFAULT 0 CHECK (max_active_per_device >= 0),
    revoke_on_replace     BOOLEAN NOT NULL DEFAULT FALSE,
    allow_post            BOOLEAN NOT NULL DEFAULT TRUE,
    enabled               BOOLEAN NOT NULL DEFAULT TRUE,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Where a profile may be used: a whole organization (department_id NULL) or
-- one department.
CREATE TABLE profile_scopes (
    id              BIGSERIAL PRIMARY KEY,
    profile_id      BIGINT NOT NULL REFERENCES device_profiles(id),
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    department_id   BIGINT REFERENCES departments(id),
    UNIQUE NULLS NOT DISTINCT (profile_id, organization_id, department_id)
);

-- One-time challenge passwords. Only a SHA-256 of the secret is kept: the
-- secret has >= 128 bits of entropy, so a slow hash adds nothing.
CREATE TABLE challenges (
    id              BIGSERIAL PRIMARY KEY,
    secret_hash     BYTEA NOT NULL UNIQUE,
    profile_id      BIGINT NOT NULL REFERENCES device_profiles(id),
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    department_id   BIGINT REFERENCES departments(id),
    device_identity TEXT,
    expires_at      TIMESTAMPTZ NOT NULL,
    used_at         TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ,
    created_by      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX challenges_unused ON challenges (profile_id, organization_id) WHERE used_at IS NULL;
CREATE INDEX challenges_expiry ON challenges (expires_at) WHERE used_at IS NULL;

CREATE TABLE enrollment_requests (
    id                BIGSERIAL PRIMARY KEY,
    transaction_id    TEXT NOT NULL,
    public_key_sha256 BYTEA NOT NULL,
    message_type      TEXT NOT NULL CHECK (message_type IN ('PKCSReq', 'RenewalReq')),
    profile_id        BIGINT NOT NULL REFERENCES device_profiles(id),
    organization_id   BIGINT NOT NULL REFERENCES organizations(id),
    department_id     BIGINT REFERENCES departments(id),
    status            TEXT NOT NULL CHECK (status IN ('requested', 'applied', 'issued', 'declined')),
    subject           TEXT NOT NULL,
    common_name       TEXT,
    sans              TEXT[] NOT NULL DEFAULT '{}',
    key_desc          TEXT NOT NULL,
    csr_der           BYTEA NOT NULL,
    challenge_id      BIGINT REFERENCES challenges(id),
    renewal_of        BIGINT,
    certificate_id    BIGINT,
    decline_reason    TEXT,
    client_ip         TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- RFC 8894 §3.3.1: a retransmission carries the same transactionID and
    -- key; this constraint makes it impossible to enroll it twice.
    UNIQUE (transaction_id, public_key_sha256)
);
CREATE INDEX enrollment_requests_queue ON enrollment_requests (status, created_at DESC, id DESC);

CREATE TABLE request_events (
    id          BIGSERIAL PRIMARY KEY,
    request_id  BIGINT NOT NULL REFERENCES enrollment_requests(id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    note        TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX request_events_request ON request_events (request_id, id);

CREATE TABLE certificates (
    id                 BIGSERIAL PRIMARY KEY,
    -- Uppercase hex of the serial number; serials are >= 128 random bits.
    serial             TEXT NOT NULL UNIQUE,
    request_id         BIGINT REFERENCES enrollment_requests(id),
    profile_id         BIGINT NOT NULL REFERENCES device_profiles(id),
    organization_id    BIGINT NOT NULL REFERENCES organizations(id),
    department_id      BIGINT REFERENCES departments(id),
    subject            TEXT NOT NULL,
    common_name        TEXT,
    sans               TEXT[] NOT NULL DEFAULT '{}',
    not_before         TIMESTAMPTZ NOT NULL,
    not_after          TIMESTAMPTZ NOT NULL,
    status             TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
    fingerprint_sha256 BYTEA NOT NULL UNIQUE,
    public_key_sha256  BYTEA NOT NULL,
    issuer_sha256      BYTEA NOT NULL,
    der                BYTEA NOT NULL,
    replaces_id        BIGINT REFERENCES certificates(id),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX certificates_expiry ON certificates (not_after) WHERE status = 'valid';
CREATE INDEX certificates_cn ON certificates (common_name);

ALTER TABLE enrollment_requests
    ADD CONSTRAINT enrollment_requests_renewal_of_fkey FOREIGN KEY (renewal_of) REFERENCES certificates(id),
    ADD CONSTRAINT enrollment_requests_certificate_fkey FOREIGN KEY (certificate_id) REFERENCES certificates(id);

CREATE TABLE revocations (
    certificate_id BIGINT PRIMARY KEY REFERENCES certificates(id),
    reason         TEXT NOT NULL,
    revoked_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_by     TEXT NOT NULL
);

-- RFC 5280 §5.2.3: CRL numbers increase monotonically; a sequence does that
-- for any number of scepd processes.
CREATE SEQUENCE crl_number_seq;

CREATE TABLE admins (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 100),
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('mrao', 'rao', 'drao')),
    email         TEXT,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE admin_scopes (
    id              BIGSERIAL PRIMARY KEY,
    admin_id        BIGINT NOT NULL REFERENCES admins(id),
    organization_id BIGINT NOT NULL REFERENCES organizations(id),
    department_id   BIGINT REFERENCES departments(id),
    UNIQUE NULLS NOT DISTINCT (admin_id, organization_id, department_id)
);

CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor      TEXT NOT NULL,
    event      TEXT NOT NULL,
    target     TEXT,
    details    JSONB NOT NULL DEFAULT '{}',
    client_ip  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_event ON audit_log (event, at DESC);

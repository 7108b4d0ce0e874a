-- RA console: server-side sessions and failed-login bookkeeping. Both live
-- in PostgreSQL so that any scepd process can serve any officer.

-- The cookie carries a random 256-bit session id; only its SHA-256 is kept,
-- so a database leak does not hand out live sessions.
CREATE TABLE console_sessions (
    id_hash    BYTEA PRIMARY KEY,
    admin_id   BIGINT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Idle deadline: pushed forward on each use.
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_admin ON console_sessions (admin_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- One row per failed login; throttling counts rows in a sliding window per
-- account and per client address.
CREATE TABLE login_failures (
    id        BIGSERIAL PRIMARY KEY,
    username  TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username ON login_failures (username, at);
CREATE INDEX login_failures_ip ON login_failures (client_ip, at);

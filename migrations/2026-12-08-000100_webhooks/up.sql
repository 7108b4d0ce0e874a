-- Per-profile HTTP integrations (docs/webhooks.md). `challenge`: asked
-- whether an unknown challengePassword may enroll. `notify`: told of
-- issued, declined, revoked and failed enrollments through
-- webhook_outbox. The shared secret is sealed with AES-256-GCM under a key
-- derived from the key passphrase; the database never holds it in the clear.
CREATE TABLE profile_webhooks (
    id               BIGSERIAL PRIMARY KEY,
    profile_id       BIGINT NOT NULL REFERENCES device_profiles (id) ON DELETE CASCADE,
    purpose          TEXT NOT NULL CHECK (purpose IN ('challenge', 'notify')),
    url              TEXT NOT NULL CHECK (url ~ '^https?://'),
    secret_sealed    BYTEA NOT NULL,
    timeout_ms       INTEGER NOT NULL DEFAULT 3000 CHECK (timeout_ms BETWEEN 100 AND 10000),
    pending_on_error BOOLEAN NOT NULL DEFAULT FALSE,
    events           TEXT[] NOT NULL DEFAULT '{issued,declined,revoked,failed}',
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    last_error       TEXT,
    last_error_at    TIMESTAMPTZ,
    last_success_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (profile_id, purpose)
);

-- One row per event and notification webhook, written in the transaction
-- of the change it reports; leased by a sender under FOR UPDATE SKIP LOCKED.
CREATE TABLE webhook_outbox (
    id              BIGSERIAL PRIMARY KEY,
    webhook_id      BIGINT NOT NULL REFERENCES profile_webhooks (id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    payload         JSONB NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until    TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_outbox_webhook ON webhook_outbox (webhook_id);

-- Queue `event` for the profile's enabled notification webhook, if it
-- wants it. Triggers call it, so every path that issues, declines or
-- revokes (the one-statement enrollment included) reports in its own
-- transaction without knowing of webhooks.
CREATE FUNCTION webhook_enqueue(p_profile BIGINT, p_event TEXT, p_payload JSONB)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO webhook_outbox (webhook_id, event, payload)
    SELECT w.id, p_event, p_payload || jsonb_build_object(
               'event', p_event,
               'profile', (SELECT profile_id FROM device_profiles WHERE id = p_profile),
               'occurred_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
    FROM profile_webhooks w
    WHERE w.profile_id = p_profile AND w.purpose = 'notify' AND w.enabled
      AND p_event = ANY (w.events)
$$;

-- Whether the profile has an enabled notification webhook: the triggers ask
-- first, so an installation without webhooks pays one index probe per row.
CREATE FUNCTION webhook_wanted(p_profile BIGINT) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM profile_webhooks
                   WHERE profile_id = p_profile AND purpose = 'notify' AND enabled)
$$;

CREATE FUNCTION webhook_certificate_issued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT webhook_wanted(NEW.profile_id) THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_enqueue(NEW.profile_id, 'issued', jsonb_build_object(
        'certificate_id', NEW.id, 'serial', NEW.serial, 'subject', NEW.subject,
        'sans', to_jsonb(NEW.sans), 'request_id', NEW.request_id,
        'not_before', NEW.not_before, 'not_after', NEW.not_after,
        'organization', (SELECT name FROM organizations WHERE id = NEW.organization_id),
        'department', (SELECT name FROM departments WHERE id = NEW.department_id)));
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_certificate_issued AFTER INSERT ON certificates
    FOR EACH ROW EXECUTE FUNCTION webhook_certificate_issued();

CREATE FUNCTION webhook_certificate_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE c certificates%ROWTYPE;
BEGIN
    SELECT * INTO c FROM certificates WHERE id = NEW.certificate_id;
    IF NOT webhook_wanted(c.profile_id) THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_enqueue(c.profile_id, 'revoked', jsonb_build_object(
        'certificate_id', c.id, 'serial', c.serial, 'subject', c.subject,
        'request_id', c.request_id, 'reason', NEW.reason,
        'organization', (SELECT name FROM organizations WHERE id = c.organization_id),
        'department', (SELECT name FROM departments WHERE id = c.department_id)));
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_certificate_revoked AFTER INSERT ON revocations
    FOR EACH ROW EXECUTE FUNCTION webhook_certificate_revoked();

-- Deferred to commit: the decline reason is written after the status.
CREATE FUNCTION webhook_request_declined() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r enrollment_requests%ROWTYPE;
BEGIN
    IF NOT webhook_wanted(NEW.profile_id) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO r FROM enrollment_requests WHERE id = NEW.id;
    PERFORM webhook_enqueue(r.profile_id, 'declined', jsonb_build_object(
        'request_id', r.id, 'transaction_id', r.transaction_id,
        'subject', r.subject, 'reason', r.decline_reason,
        'organization', (SELECT name FROM organizations WHERE id = r.organization_id),
        'department', (SELECT name FROM departments WHERE id = r.department_id)));
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER webhook_request_declined AFTER UPDATE OF status ON enrollment_requests
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status = 'declined' AND OLD.status IS DISTINCT FROM 'declined')
    EXECUTE FUNCTION webhook_request_declined();

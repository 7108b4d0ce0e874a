-- Issue 6: email notifications through a transactional outbox.

-- One row per mail to one recipient. Rows are inserted in the same
-- transaction as the change they report, so a rolled-back change sends
-- nothing and a committed one is never lost. The sender claims due rows by
-- setting `locked_until` (a lease) under FOR UPDATE SKIP LOCKED, so two
-- scepd processes never deliver the same row.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    -- What the mail reports; rendered into subject and bodies when sent,
    -- so several pending-request rows can become one digest.
    payload         JSONB NOT NULL DEFAULT '{}'::jsonb,
    subject         TEXT,
    body_text       TEXT,
    body_html       TEXT,
    -- Makes periodic enqueues (expiry reminders) idempotent.
    dedupe_key      TEXT UNIQUE,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    locked_until    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_failed ON outbox (created_at DESC) WHERE status = 'failed';

-- Who hears about an organization's (or one of its profiles') certificates,
-- and about which events: issued, declined, revoked, expiring.
CREATE TABLE notification_contacts (
    id              BIGSERIAL PRIMARY KEY,
    organization_id BIGINT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- NULL: every profile of the organization.
    profile_id      BIGINT REFERENCES device_profiles(id) ON DELETE CASCADE,
    email           TEXT NOT NULL CHECK (position('@' IN email) > 1),
    events          TEXT[] NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (organization_id, profile_id, email)
);

-- Officers may turn their own pending-request mails off.
ALTER TABLE admins ADD COLUMN notify_email BOOLEAN NOT NULL DEFAULT true;

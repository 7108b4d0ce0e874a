//! The mail outbox: one row per mail to one recipient, written in the
//! transaction of the change it reports and delivered later by
//! `notify::sender`. Claiming sets a lease (`locked_until`) under
//! `FOR UPDATE SKIP LOCKED`, so concurrent scepd processes never hold the
//! same row; a process that dies mid-send loses its lease and another
//! process retries the row.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Jsonb, Text, Timestamptz};

use super::schema::outbox;
use super::StoreError;

/// Kind of the digestible "a request awaits approval" rows: they wait until
/// the oldest for a recipient is old enough, then go out as one mail.
pub const KIND_PENDING: &str = "request_pending";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub payload: serde_json::Value,
    pub subject: Option<String>,
    pub dedupe_key: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A row leased to this process for delivery.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub recipient: String,
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// Queue one mail. With a `dedupe_key` already present nothing is added
/// (returns false), which makes periodic producers idempotent.
pub fn enqueue(
    conn: &mut PgConnection,
    kind: &str,
    recipient: &str,
    payload: &serde_json::Value,
    dedupe_key: Option<&str>,
) -> Result<bool, StoreError> {
    let n = diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(kind),
            outbox::recipient.eq(recipient),
            outbox::payload.eq(payload),
            outbox::dedupe_key.eq(dedupe_key),
        ))
        .on_conflict(outbox::dedupe_key)
        .do_nothing()
        .execute(conn)?;
    Ok(n == 1)
}

/// Lease up to `limit` due rows for `lease_secs`. Pending-request rows are
/// due only once the oldest pending one for the same recipient is
/// `digest_secs` old, so a burst of requests becomes one digest.
pub fn claim(
    conn: &mut PgConnection,
    lease_secs: f64,
    digest_secs: f64,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    Ok(diesel::sql_query(
        "UPDATE outbox SET locked_until = now() + make_interval(secs => $1) \
         WHERE id IN ( \
           SELECT o.id FROM outbox o \
           WHERE o.status = 'pending' AND o.next_attempt_at <= now() \
             AND (o.locked_until IS NULL OR o.locked_until < now()) \
             AND (o.kind <> $2 OR EXISTS ( \
               SELECT 1 FROM outbox d \
               WHERE d.kind = $2 AND d.status = 'pending' AND d.recipient = o.recipient \
                 AND d.created_at <= now() - make_interval(secs => $3))) \
           ORDER BY o.id LIMIT $4 \
           FOR UPDATE SKIP LOCKED) \
         RETURNING id, kind, recipient, payload, created_at",
    )
    .bind::<Double, _>(lease_secs)
    .bind::<Text, _>(KIND_PENDING)
    .bind::<Double, _>(digest_secs)
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}

/// Record delivery of leased rows, with what was sent.
pub fn mark_sent(
    conn: &mut PgConnection,
    ids: &[i64],
    subject: &str,
    body_text: &str,
    body_html: &str,
) -> Result<(), StoreError> {
    diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
        .set((
            outbox::status.eq("sent"),
            outbox::sent_at.eq(diesel::dsl::now),
            outbox::locked_until.eq(None::<DateTime<Utc>>),
            outbox::subject.eq(subject),
            outbox::body_text.eq(body_text),
            outbox::body_html.eq(body_html),
        ))
        .execute(conn)?;
    Ok(())
}

/// Record a failed attempt: retry after `base_secs · 2^attempts` (at most
/// an hour), or give up as `failed` once `max_attempts` is reached.
pub fn mark_attempt_failed(
    conn: &mut PgConnection,
    ids: &[i64],
    error: &str,
    max_attempts: i32,
    base_secs: f64,
) -> Result<(), StoreError> {
    retry_later(conn, "outbox", ids, error, max_attempts, base_secs)
}

/// The backoff of every outbox (mail here, `webhooks`' deliveries): a
/// failed attempt of the rows `ids` of `table`.
pub(super) fn retry_later(
    conn: &mut PgConnection,
    table: &'static str,
    ids: &[i64],
    error: &str,
    max_attempts: i32,
    base_secs: f64,
) -> Result<(), StoreError> {
    diesel::sql_query(format!(
        "UPDATE {table} SET attempts = attempts + 1, last_error = $2, locked_until = NULL, \
           status = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END, \
           next_attempt_at = now() + make_interval(secs => least($4 * power(2, attempts), 3600)) \
         WHERE id = ANY($1)"
    ))
    .bind::<diesel::sql_types::Array<BigInt>, _>(ids)
    .bind::<Text, _>(error)
    .bind::<Integer, _>(max_attempts)
    .bind::<Double, _>(base_secs)
    .execute(conn)?;
    Ok(())
}

/// Rows not (yet) delivered, newest first: `pending` and `failed`.
pub fn undelivered(conn: &mut PgConnection, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(outbox::table
        .filter(outbox::status.ne("sent"))
        .select(OutboxRow::as_select())
        .order(outbox::id.desc())
        .limit(limit)
        .load(conn)?)
}

/// Enqueue one reminder per contact for every valid, unrenewed certificate
/// whose expiry falls in `(now + lower_days, now + days]`. Each threshold
/// owns its band, so a certificate first seen at 5 days left gets only
/// the 7-day reminder; the dedupe key makes repeated scans add nothing.
/// `event` is both the contacts' event name and the row's kind.
pub fn enqueue_expiring(
    conn: &mut PgConnection,
    days: i32,
    lower_days: i32,
    event: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::sql_query(
        "INSERT INTO outbox (kind, recipient, payload, dedupe_key) \
         SELECT DISTINCT ON (c.id, nc.email) $3, nc.email, \
           jsonb_build_object('certificate_id', c.id, 'serial', c.serial, 'subject', c.subject, \
             'request_id', c.request_id, 'not_after', c.not_after, 'days', $1), \
           'expiring:' || c.id || ':' || $1 || ':' || nc.email \
         FROM certificates c \
         JOIN notification_contacts nc ON nc.organization_id = c.organization_id \
           AND (nc.profile_id IS NULL OR nc.profile_id = c.profile_id) \
           AND $3 = ANY(nc.events) \
         WHERE c.status = 'valid' \
           AND c.not_after > now() + make_interval(days => $2) \
           AND c.not_after <= now() + make_interval(days => $1) \
           AND NOT EXISTS (SELECT 1 FROM certificates n \
                           WHERE n.replaces_id = c.id AND n.status = 'valid') \
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind::<Integer, _>(days)
    .bind::<Integer, _>(lower_days)
    .bind::<Text, _>(event)
    .execute(conn)?)
}

//! Profile webhooks (`profile_webhooks`) and their delivery queue
//! (`webhook_outbox`). The queue is filled by triggers (issued, declined,
//! revoked; see the migration) and by [`enqueue`] (failed enrollments), in
//! the transaction of the change; [`claim`] leases due rows under
//! `FOR UPDATE SKIP LOCKED`, so several scepd processes never hold the same
//! row, and a process that dies mid-send loses its lease to another.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Jsonb, Text};

use super::schema::{profile_webhooks, webhook_outbox};
use super::StoreError;

pub const PURPOSE_CHALLENGE: &str = "challenge";
pub const PURPOSE_NOTIFY: &str = "notify";
/// The events a notification webhook may ask for.
pub const EVENTS: &[&str] = &["issued", "declined", "revoked", "failed"];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = profile_webhooks)]
pub struct Webhook {
    pub id: i64,
    pub profile_id: i64,
    pub purpose: String,
    pub url: String,
    pub secret_sealed: Vec<u8>,
    pub timeout_ms: i32,
    pub pending_on_error: bool,
    pub events: Vec<String>,
    pub enabled: bool,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an officer sets; the sealed secret is kept when `secret_sealed`
/// is None.
#[derive(Debug, Clone)]
pub struct WebhookSettings<'a> {
    pub url: &'a str,
    pub secret_sealed: Option<Vec<u8>>,
    pub timeout_ms: i32,
    pub pending_on_error: bool,
    pub events: Vec<String>,
    pub enabled: bool,
}

/// The profile's webhook for `purpose`, if any.
pub fn of_profile(
    conn: &mut PgConnection,
    profile_id: i64,
    purpose: &str,
) -> Result<Option<Webhook>, StoreError> {
    Ok(profile_webhooks::table
        .filter(profile_webhooks::profile_id.eq(profile_id))
        .filter(profile_webhooks::purpose.eq(purpose))
        .select(Webhook::as_select())
        .first(conn)
        .optional()?)
}

/// All webhooks of a profile (challenge first).
pub fn all_of_profile(
    conn: &mut PgConnection,
    profile_id: i64,
) -> Result<Vec<Webhook>, StoreError> {
    Ok(profile_webhooks::table
        .filter(profile_webhooks::profile_id.eq(profile_id))
        .order(profile_webhooks::purpose.asc())
        .select(Webhook::as_select())
        .load(conn)?)
}

/// Insert or change the profile's webhook for `purpose`, locking the row.
/// A new one needs a sealed secret (the caller checks).
pub fn upsert(
    conn: &mut PgConnection,
    profile_id: i64,
    purpose: &str,
    s: &WebhookSettings<'_>,
) -> Result<Webhook, StoreError> {
    let existing = profile_webhooks::table
        .filter(profile_webhooks::profile_id.eq(profile_id))
        .filter(profile_webhooks::purpose.eq(purpose))
        .select(profile_webhooks::id)
        .for_update()
        .first::<i64>(conn)
        .optional()?;
    let row = match existing {
        Some(id) => {
            let q = diesel::update(profile_webhooks::table.find(id));
            let base = (
                profile_webhooks::url.eq(s.url),
                profile_webhooks::timeout_ms.eq(s.timeout_ms),
                profile_webhooks::pending_on_error.eq(s.pending_on_error),
                profile_webhooks::events.eq(&s.events),
                profile_webhooks::enabled.eq(s.enabled),
                profile_webhooks::updated_at.eq(diesel::dsl::now),
            );
            match &s.secret_sealed {
                Some(sealed) => q
                    .set((base, profile_webhooks::secret_sealed.eq(sealed)))
                    .returning(Webhook::as_returning())
                    .get_result(conn)?,
                None => q
                    .set(base)
                    .returning(Webhook::as_returning())
                    .get_result(conn)?,
            }
        }
        None => {
            let sealed = s
                .secret_sealed
                .as_ref()
                .ok_or_else(|| StoreError::Conflict("a new webhook needs a secret".into()))?;
            diesel::insert_into(profile_webhooks::table)
                .values((
                    profile_webhooks::profile_id.eq(profile_id),
                    profile_webhooks::purpose.eq(purpose),
                    profile_webhooks::url.eq(s.url),
                    profile_webhooks::secret_sealed.eq(sealed),
                    profile_webhooks::timeout_ms.eq(s.timeout_ms),
                    profile_webhooks::pending_on_error.eq(s.pending_on_error),
                    profile_webhooks::events.eq(&s.events),
                    profile_webhooks::enabled.eq(s.enabled),
                ))
                .returning(Webhook::as_returning())
                .get_result(conn)?
        }
    };
    Ok(row)
}

/// Delete the profile's webhook for `purpose` (its queued rows go with it).
pub fn remove(conn: &mut PgConnection, profile_id: i64, purpose: &str) -> Result<bool, StoreError> {
    let n = diesel::delete(
        profile_webhooks::table
            .filter(profile_webhooks::profile_id.eq(profile_id))
            .filter(profile_webhooks::purpose.eq(purpose)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Record the outcome of a call: the error and when (shown in the
/// console), or the time of the last success.
pub fn note_outcome(
    conn: &mut PgConnection,
    id: i64,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let q = diesel::update(profile_webhooks::table.find(id));
    match error {
        Some(e) => q
            .set((
                profile_webhooks::last_error.eq(e),
                profile_webhooks::last_error_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?,
        None => q
            .set(profile_webhooks::last_success_at.eq(diesel::dsl::now))
            .execute(conn)?,
    };
    Ok(())
}

/// Queue `event` for the profile's notification webhook (as the triggers
/// do, through the same SQL function).
pub fn enqueue(
    conn: &mut PgConnection,
    profile_id: i64,
    event: &str,
    payload: &serde_json::Value,
) -> Result<(), StoreError> {
    diesel::sql_query("SELECT webhook_enqueue($1, $2, $3)")
        .bind::<BigInt, _>(profile_id)
        .bind::<Text, _>(event)
        .bind::<Jsonb, _>(payload)
        .execute(conn)?;
    Ok(())
}

/// A queued event leased to this process, with where it goes.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub webhook_id: i64,
    #[diesel(sql_type = Text)]
    pub event: String,
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// Lease up to `limit` due rows for `lease_secs`.
pub fn claim(
    conn: &mut PgConnection,
    lease_secs: f64,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    Ok(diesel::sql_query(
        "UPDATE webhook_outbox SET locked_until = now() + make_interval(secs => $1) \
         WHERE id IN ( \
           SELECT id FROM webhook_outbox \
           WHERE status = 'pending' AND next_attempt_at <= now() \
             AND (locked_until IS NULL OR locked_until < now()) \
           ORDER BY id LIMIT $2 \
           FOR UPDATE SKIP LOCKED) \
         RETURNING id, webhook_id, event, payload, attempts",
    )
    .bind::<Double, _>(lease_secs)
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}

/// Record a delivery.
pub fn mark_sent(conn: &mut PgConnection, id: i64) -> Result<(), StoreError> {
    diesel::update(webhook_outbox::table.find(id))
        .set((
            webhook_outbox::status.eq("sent"),
            webhook_outbox::sent_at.eq(diesel::dsl::now),
            webhook_outbox::locked_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Record a failed attempt, with mail's backoff (`outbox::retry_later`).
pub fn mark_attempt_failed(
    conn: &mut PgConnection,
    ids: &[i64],
    error: &str,
    max_attempts: i32,
    base_secs: f64,
) -> Result<(), StoreError> {
    super::outbox::retry_later(conn, "webhook_outbox", ids, error, max_attempts, base_secs)
}

/// Webhooks by id (the sender looks up where claimed rows go).
pub fn by_ids(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<Webhook>, StoreError> {
    Ok(profile_webhooks::table
        .filter(profile_webhooks::id.eq_any(ids))
        .select(Webhook::as_select())
        .load(conn)?)
}

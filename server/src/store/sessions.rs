//! RA console sessions and failed-login bookkeeping, both in PostgreSQL so
//! that every scepd process can serve every officer (no sticky sessions).
//!
//! A session is found by the SHA-256 of the random id in the officer's
//! cookie; the raw id is never stored. A session lives while it is used at
//! least once per idle timeout, and never longer than an absolute maximum.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use super::admins::Admin;
use super::schema::{admins, console_sessions, login_failures};
use super::StoreError;

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = console_sessions)]
pub struct Session {
    pub id_hash: Vec<u8>,
    pub admin_id: i64,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The password was right; the TOTP code is still to come.
    pub second_factor_pending: bool,
    pub second_factor_failures: i32,
    /// When the officer last proved who it is (login or re-authentication).
    pub authenticated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Session {
    // The CSRF token is a per-session secret; keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("admin_id", &self.admin_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Store a new session for `admin_id`; `second_factor_pending` when the
/// officer still has to give its TOTP code.
pub fn create(
    conn: &mut PgConnection,
    id_hash: &[u8],
    admin_id: i64,
    csrf_token: &str,
    idle: Duration,
    second_factor_pending: bool,
) -> Result<Session, StoreError> {
    let now = Utc::now();
    Ok(diesel::insert_into(console_sessions::table)
        .values((
            console_sessions::id_hash.eq(id_hash),
            console_sessions::admin_id.eq(admin_id),
            console_sessions::csrf_token.eq(csrf_token),
            console_sessions::created_at.eq(now),
            console_sessions::last_seen.eq(now),
            console_sessions::expires_at.eq(now + idle),
            console_sessions::second_factor_pending.eq(second_factor_pending),
            console_sessions::authenticated_at.eq(now),
        ))
        .returning(Session::as_returning())
        .get_result(conn)?)
}

/// The live session with this id hash and its (enabled) officer, its idle
/// deadline pushed forward. `None` when unknown, idle too long, older than
/// `max_age`, or the officer was disabled meanwhile.
pub fn touch(
    conn: &mut PgConnection,
    id_hash: &[u8],
    idle: Duration,
    max_age: Duration,
) -> Result<Option<(Session, Admin)>, StoreError> {
    let now = Utc::now();
    let session = diesel::update(
        console_sessions::table
            .find(id_hash)
            .filter(console_sessions::expires_at.gt(now))
            .filter(console_sessions::created_at.gt(now - max_age)),
    )
    .set((
        console_sessions::last_seen.eq(now),
        console_sessions::expires_at.eq(now + idle),
    ))
    .returning(Session::as_returning())
    .get_result(conn)
    .optional()?;
    let Some(session) = session else {
        return Ok(None);
    };
    let admin = admins::table
        .find(session.admin_id)
        .filter(admins::enabled.eq(true))
        .select(Admin::as_select())
        .first(conn)
        .optional()?;
    Ok(admin.map(|a| (session, a)))
}

pub fn delete(conn: &mut PgConnection, id_hash: &[u8]) -> Result<(), StoreError> {
    diesel::delete(console_sessions::table.find(id_hash)).execute(conn)?;
    Ok(())
}

/// Drop sessions past their idle deadline; run now and then (at login).
pub fn purge_expired(conn: &mut PgConnection) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(console_sessions::table.filter(console_sessions::expires_at.le(Utc::now())))
            .execute(conn)?,
    )
}

/// Record one failed login for throttling.
pub fn record_failure(
    conn: &mut PgConnection,
    username: &str,
    client_ip: &str,
) -> Result<(), StoreError> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::username.eq(username),
            login_failures::client_ip.eq(client_ip),
        ))
        .execute(conn)?;
    Ok(())
}

/// Take one login attempt for `username` from `client_ip`, unless the
/// pair already has `per_account` failures since `since` or the address
/// `per_address`: the attempt is recorded as a failure *before* the
/// password is checked, and [`forgive_attempt`] removes it when the
/// password was right. Attempts from one address are serialised by a
/// transaction-scoped advisory lock on the address, so parallel guesses
/// cannot all pass the count before any is recorded. Keyed by account
/// and address together (plus a budget per address), so guesses from one
/// place lock nobody out elsewhere. `None`: throttled, nothing recorded.
pub fn claim_attempt(
    conn: &mut PgConnection,
    username: &str,
    client_ip: &str,
    since: DateTime<Utc>,
    per_account: i64,
    per_address: i64,
) -> Result<Option<i64>, StoreError> {
    conn.transaction(|conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<diesel::sql_types::Text, _>(format!("scepd-login:{client_ip}"))
            .execute(conn)?;
        let recent = login_failures::table
            .filter(login_failures::client_ip.eq(client_ip))
            .filter(login_failures::at.gt(since));
        let by_address: i64 = recent.count().get_result(conn)?;
        let by_pair: i64 = recent
            .filter(login_failures::username.eq(username))
            .count()
            .get_result(conn)?;
        if by_pair >= per_account || by_address >= per_address {
            return Ok(None);
        }
        let id = diesel::insert_into(login_failures::table)
            .values((
                login_failures::username.eq(username),
                login_failures::client_ip.eq(client_ip),
            ))
            .returning(login_failures::id)
            .get_result(conn)?;
        Ok(Some(id))
    })
}

/// The password of attempt `attempt` (from [`claim_attempt`]) was right:
/// the attempt and the earlier failures of this account from this
/// address are forgiven (not the address's others: one address guessing
/// many accounts stays throttled), and rows older than `older_than` are
/// dropped so the table stays small.
pub fn forgive_attempt(
    conn: &mut PgConnection,
    attempt: i64,
    username: &str,
    client_ip: &str,
    older_than: DateTime<Utc>,
) -> Result<(), StoreError> {
    diesel::delete(
        login_failures::table.filter(
            login_failures::id
                .eq(attempt)
                .or(login_failures::username
                    .eq(username)
                    .and(login_failures::client_ip.eq(client_ip)))
                .or(login_failures::at.lt(older_than)),
        ),
    )
    .execute(conn)?;
    Ok(())
}

/// End an officer's sessions but `keep` (the one changing its own
/// password stays; whoever else held the old password is out).
pub fn delete_for_admin_except(
    conn: &mut PgConnection,
    admin_id: i64,
    keep: &[u8],
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        console_sessions::table
            .filter(console_sessions::admin_id.eq(admin_id))
            .filter(console_sessions::id_hash.ne(keep)),
    )
    .execute(conn)?)
}

/// End every session of an officer (disabled, or its password reset).
pub fn delete_for_admin(conn: &mut PgConnection, admin_id: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(console_sessions::table.filter(console_sessions::admin_id.eq(admin_id)))
            .execute(conn)?,
    )
}

/// The second factor was given (or the officer re-authenticated): the
/// session is whole and freshly authenticated.
pub fn mark_authenticated(conn: &mut PgConnection, id_hash: &[u8]) -> Result<(), StoreError> {
    diesel::update(console_sessions::table.find(id_hash))
        .set((
            console_sessions::second_factor_pending.eq(false),
            console_sessions::second_factor_failures.eq(0),
            console_sessions::authenticated_at.eq(Utc::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Count a wrong code on the session and return the failures so far.
pub fn count_second_factor_failure(
    conn: &mut PgConnection,
    id_hash: &[u8],
) -> Result<i32, StoreError> {
    Ok(diesel::update(console_sessions::table.find(id_hash))
        .set(
            console_sessions::second_factor_failures
                .eq(console_sessions::second_factor_failures + 1),
        )
        .returning(console_sessions::second_factor_failures)
        .get_result::<i32>(conn)
        .optional()?
        .unwrap_or(i32::MAX))
}

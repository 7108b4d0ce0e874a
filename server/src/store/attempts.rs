//! Failed challenge attempts per client address, counted in fixed time
//! windows in PostgreSQL so that every scepd process enforces one limit
//! (the NDES-style lockout of a client guessing challenges).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::challenge_failures;
use super::StoreError;

/// Add one failure for `client_ip` in the window starting at
/// `window_start`; returns the window's count after the increment.
pub fn record_failure(
    conn: &mut PgConnection,
    client_ip: &str,
    window_start: DateTime<Utc>,
) -> Result<i32, StoreError> {
    Ok(diesel::insert_into(challenge_failures::table)
        .values((
            challenge_failures::client_ip.eq(client_ip),
            challenge_failures::window_start.eq(window_start),
            challenge_failures::count.eq(1),
        ))
        .on_conflict((
            challenge_failures::client_ip,
            challenge_failures::window_start,
        ))
        .do_update()
        .set(
            challenge_failures::count
                .eq(challenge_failures::count + excluded(challenge_failures::count)),
        )
        .returning(challenge_failures::count)
        .get_result(conn)?)
}

/// Failures of `client_ip` in the window starting at `window_start`.
pub fn failures(
    conn: &mut PgConnection,
    client_ip: &str,
    window_start: DateTime<Utc>,
) -> Result<i32, StoreError> {
    Ok(challenge_failures::table
        .find((client_ip, window_start))
        .select(challenge_failures::count)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Forget windows that started before `before`.
pub fn purge_before(conn: &mut PgConnection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        challenge_failures::table.filter(challenge_failures::window_start.lt(before)),
    )
    .execute(conn)?)
}

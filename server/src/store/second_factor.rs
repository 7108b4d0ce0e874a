//! Officers' TOTP secrets (sealed; `admin::second_factor` seals and opens
//! them) and recovery codes (SHA-256), on `admins` and
//! `admin_recovery_codes`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{admin_recovery_codes, admins};
use super::StoreError;

/// Store a new, unconfirmed secret (replacing any), and drop the old
/// recovery codes with it.
pub fn begin(conn: &mut PgConnection, admin_id: i64, sealed: &[u8]) -> Result<(), StoreError> {
    reset(conn, admin_id, Some(sealed))
}

/// Confirm the secret: from now on logins need a code. `step` was just
/// accepted.
pub fn enable(
    conn: &mut PgConnection,
    admin_id: i64,
    step: i64,
    recovery_hashes: &[[u8; 32]],
) -> Result<(), StoreError> {
    diesel::update(admins::table.find(admin_id))
        .set((
            admins::totp_enabled_at.eq(Some(Utc::now())),
            admins::totp_last_step.eq(Some(step)),
        ))
        .execute(conn)?;
    let rows: Vec<_> = recovery_hashes
        .iter()
        .map(|h| {
            (
                admin_recovery_codes::admin_id.eq(admin_id),
                admin_recovery_codes::code_hash.eq(h.as_slice()),
            )
        })
        .collect();
    diesel::insert_into(admin_recovery_codes::table)
        .values(&rows)
        .execute(conn)?;
    Ok(())
}

/// Remove the second factor and its recovery codes.
pub fn disable(conn: &mut PgConnection, admin_id: i64) -> Result<(), StoreError> {
    reset(conn, admin_id, None)
}

/// The officer's secret becomes `sealed` (unconfirmed) or none; every
/// recovery code goes.
fn reset(conn: &mut PgConnection, admin_id: i64, sealed: Option<&[u8]>) -> Result<(), StoreError> {
    diesel::update(admins::table.find(admin_id))
        .set((
            admins::totp_secret.eq(sealed),
            admins::totp_enabled_at.eq(None::<DateTime<Utc>>),
            admins::totp_last_step.eq(None::<i64>),
        ))
        .execute(conn)?;
    diesel::delete(admin_recovery_codes::table.filter(admin_recovery_codes::admin_id.eq(admin_id)))
        .execute(conn)?;
    Ok(())
}

/// Accept time step `step` if it is later than the last one accepted; in
/// one statement, so two processes cannot both accept the same code.
pub fn accept_step(conn: &mut PgConnection, admin_id: i64, step: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        admins::table.find(admin_id).filter(
            admins::totp_last_step
                .is_null()
                .or(admins::totp_last_step.lt(step)),
        ),
    )
    .set(admins::totp_last_step.eq(Some(step)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Spend the unused recovery code with this hash; `false` if there is none.
pub fn use_recovery_code(
    conn: &mut PgConnection,
    admin_id: i64,
    code_hash: &[u8],
) -> Result<bool, StoreError> {
    let n = diesel::update(
        admin_recovery_codes::table
            .filter(admin_recovery_codes::admin_id.eq(admin_id))
            .filter(admin_recovery_codes::code_hash.eq(code_hash))
            .filter(admin_recovery_codes::used_at.is_null()),
    )
    .set(admin_recovery_codes::used_at.eq(Some(Utc::now())))
    .execute(conn)?;
    Ok(n >= 1)
}

/// Recovery codes not yet spent.
pub fn recovery_codes_left(conn: &mut PgConnection, admin_id: i64) -> Result<i64, StoreError> {
    Ok(admin_recovery_codes::table
        .filter(admin_recovery_codes::admin_id.eq(admin_id))
        .filter(admin_recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

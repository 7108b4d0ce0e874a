//! One-time challenge passwords, stored as SHA-256 hashes. Consumption is a
//! single conditional UPDATE, so concurrent requests (on any number of scepd
//! processes) racing for one challenge see exactly one winner.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::challenges;
use super::StoreError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = challenges)]
pub struct Challenge {
    pub id: i64,
    pub secret_hash: Vec<u8>,
    pub profile_id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub device_identity: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = challenges)]
pub struct NewChallenge<'a> {
    pub secret_hash: &'a [u8],
    pub profile_id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub device_identity: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
    pub created_by: &'a str,
}

pub fn insert(conn: &mut PgConnection, c: &NewChallenge<'_>) -> Result<Challenge, StoreError> {
    Ok(diesel::insert_into(challenges::table)
        .values(c)
        .returning(Challenge::as_returning())
        .get_result(conn)?)
}

/// Why a challenge was not accepted (for the audit log; the client only
/// ever sees badRequest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Unknown,
    WrongProfile,
    AlreadyUsed,
    Expired,
    Revoked,
    IdentityMismatch,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown challenge",
            Self::WrongProfile => "challenge is for another profile",
            Self::AlreadyUsed => "challenge already used",
            Self::Expired => "challenge expired",
            Self::Revoked => "challenge revoked",
            Self::IdentityMismatch => "challenge is bound to another device",
        }
    }
}

/// Atomically mark the challenge used if it is valid for this profile and
/// device. `bound_identity` is the one identity a challenge bound to a
/// device must name to be used for this request (decided by
/// `enroll::binding`; `None`: only an unbound challenge may).
pub fn consume(
    conn: &mut PgConnection,
    secret_hash: &[u8],
    profile_id: i64,
    bound_identity: Option<&str>,
) -> Result<Result<Challenge, Rejection>, StoreError> {
    let now = Utc::now();
    let ids: Vec<&str> = bound_identity.into_iter().collect();
    let updated = diesel::update(
        challenges::table
            .filter(challenges::secret_hash.eq(secret_hash))
            .filter(challenges::profile_id.eq(profile_id))
            .filter(challenges::used_at.is_null())
            .filter(challenges::revoked_at.is_null())
            .filter(challenges::expires_at.gt(now))
            .filter(
                challenges::device_identity
                    .is_null()
                    .or(challenges::device_identity.eq_any(&ids)),
            ),
    )
    .set(challenges::used_at.eq(now))
    .returning(Challenge::as_returning())
    .get_result(conn)
    .optional()?;
    if let Some(c) = updated {
        return Ok(Ok(c));
    }
    let found = challenges::table
        .filter(challenges::secret_hash.eq(secret_hash))
        .select(Challenge::as_select())
        .first(conn)
        .optional()?;
    Ok(Err(match found {
        None => Rejection::Unknown,
        Some(c) if c.profile_id != profile_id => Rejection::WrongProfile,
        Some(c) if c.used_at.is_some() => Rejection::AlreadyUsed,
        Some(c) if c.revoked_at.is_some() => Rejection::Revoked,
        Some(c) if c.expires_at <= now => Rejection::Expired,
        Some(_) => Rejection::IdentityMismatch,
    }))
}

/// Whether a one-time challenge with `secret_hash` is outstanding for the
/// profile and the client (`lockout_key`) has failures to spare in its
/// window (`failure_limit` 0: no limit). A hint only: the one-statement
/// path asks before it signs anything, so an unauthenticated request costs
/// no private-key operation; the statement that writes still decides.
pub fn worth_signing_for(
    conn: &mut PgConnection,
    secret_hash: &[u8],
    profile_id: i64,
    lockout_key: &str,
    window_start: DateTime<Utc>,
    failure_limit: i32,
) -> Result<bool, StoreError> {
    use super::schema::challenge_failures as f;
    use diesel::dsl::{exists, not};
    let limit = if failure_limit > 0 {
        failure_limit
    } else {
        i32::MAX
    };
    let outstanding = challenges::table
        .filter(challenges::secret_hash.eq(secret_hash))
        .filter(challenges::profile_id.eq(profile_id))
        .filter(challenges::used_at.is_null())
        .filter(challenges::revoked_at.is_null())
        .filter(challenges::expires_at.gt(Utc::now()));
    let locked_out = f::table
        .filter(f::client_ip.eq(lockout_key))
        .filter(f::window_start.eq(window_start))
        .filter(f::count.ge(limit));
    Ok(diesel::select(exists(outstanding).and(not(exists(locked_out)))).get_result(conn)?)
}

pub fn by_id(conn: &mut PgConnection, id: i64) -> Result<Challenge, StoreError> {
    Ok(challenges::table
        .find(id)
        .select(Challenge::as_select())
        .first(conn)?)
}

/// Unused, unrevoked, unexpired challenges of a profile and organization
/// (what the mint cap counts).
pub fn count_unused(
    conn: &mut PgConnection,
    profile_id: i64,
    organization_id: i64,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(challenges::table
        .filter(challenges::profile_id.eq(profile_id))
        .filter(challenges::organization_id.eq(organization_id))
        .filter(challenges::used_at.is_null())
        .filter(challenges::revoked_at.is_null())
        .filter(challenges::expires_at.gt(now))
        .count()
        .get_result(conn)?)
}

/// Transaction-scoped advisory lock on (profile, organization): mints for
/// the same pair queue behind each other, in any process.
pub fn lock_for_mint(
    conn: &mut PgConnection,
    profile_id: i64,
    organization_id: i64,
) -> Result<(), StoreError> {
    use diesel::sql_types::BigInt;
    // 0x5CE9 in the high bits keeps these keys apart from other advisory
    // locks; a collision between pairs only serialises two mints.
    let key = (0x5CE9_i64 << 48) ^ (profile_id << 24) ^ organization_id;
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(key)
        .execute(conn)?;
    Ok(())
}

/// Delete unused challenges that expired before `before`; returns their IDs
/// (for the audit log).
pub fn purge_expired(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    use super::schema::enrollment_requests;
    // Challenges referenced by a request stay (the request shows which
    // challenge it used); only never-used ones go.
    Ok(diesel::delete(
        challenges::table
            .filter(challenges::used_at.is_null())
            .filter(challenges::expires_at.lt(before))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                enrollment_requests::table
                    .filter(enrollment_requests::challenge_id.eq(challenges::id.nullable())),
            ))),
    )
    .returning(challenges::id)
    .get_results(conn)?)
}

//! One-time challenge passwords, stored as SHA-256 hashes. Consumption is a
//! single conditional UPDATE, so concurrent requests (on any number of scepd
//! processes) racing for one challenge see exactly one winner.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

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

/// What the one-statement path asks before it signs anything: whether a
/// one-time challenge with `secret_hash` is outstanding for the profile,
/// and whether the client (`lockout_key`) has failures to spare in its
/// window (`failure_limit` 0: no limit). A hint only, so that an
/// unauthenticated request costs no private-key operation; the statement
/// that writes still decides.
pub struct SigningCheck {
    pub secret_hash: Vec<u8>,
    pub profile_id: i64,
    pub lockout_key: String,
    pub window_start: DateTime<Utc>,
    pub failure_limit: i32,
}

/// [`SigningCheck`]s of the requests that arrive together, in one
/// statement: one round trip for the crowd instead of one each. The
/// group-commit writer (`group_commit`) runs it for a batch of checks
/// alone, and carries the same rows in its write statement otherwise.
pub struct SigningChecks;

impl SigningChecks {
    pub fn run_refs(
        conn: &mut PgConnection,
        rows: &[&SigningCheck],
    ) -> Result<Vec<bool>, StoreError> {
        let found: Vec<(i32, bool)> = SigningCheckBatch::new(rows).load(conn)?;
        let mut out = vec![false; rows.len()];
        for (n, ok) in found {
            if let Some(slot) = usize::try_from(n).ok().and_then(|n| out.get_mut(n)) {
                *slot = ok;
            }
        }
        Ok(out)
    }
}

/// The checks as a relation `t` and the verdict over it, shared by the
/// check's own statement and the write statement that carries checks
/// (`issue_tx`), so both decide alike. Each challenge is probed by its own
/// secret behind a fence (OFFSET 0), as in `issue_tx`: otherwise young
/// statistics let the planner scan a partial index over every outstanding
/// challenge instead of the unique index.
macro_rules! signing_check_select {
    () => {
        "SELECT t.n,
       EXISTS (SELECT 1 FROM (SELECT * FROM challenges c WHERE c.secret_hash = t.secret_hash
                               OFFSET 0) c
                WHERE c.profile_id = t.profile_id AND c.used_at IS NULL
                  AND c.revoked_at IS NULL AND c.expires_at > now())
       AND NOT EXISTS (SELECT 1 FROM challenge_failures f
                        WHERE f.client_ip = t.lockout_key AND f.window_start = t.window_start
                          AND f.count >= t.failure_limit) AS ok
  FROM unnest({chk_n}, {chk_secret_hash}, {chk_profile_id}, {chk_lockout_key},
              {chk_window_start}, {chk_failure_limit})
    AS t(n, secret_hash, profile_id, lockout_key, window_start, failure_limit)"
    };
}
pub(super) use signing_check_select;

const SIGNING_CHECK_SQL: &str = signing_check_select!();

/// The batch as one array per column.
pub(super) struct SigningCheckBatch<'a> {
    n: Vec<i32>,
    secret_hash: Vec<&'a [u8]>,
    profile_id: Vec<i64>,
    lockout_key: Vec<&'a str>,
    window_start: Vec<DateTime<Utc>>,
    failure_limit: Vec<i32>,
}

impl<'a> SigningCheckBatch<'a> {
    pub(super) fn new(rows: &[&'a SigningCheck]) -> Self {
        Self {
            n: (0..rows.len()).map(|k| k as i32).collect(),
            secret_hash: rows.iter().map(|r| &r.secret_hash[..]).collect(),
            profile_id: rows.iter().map(|r| r.profile_id).collect(),
            lockout_key: rows.iter().map(|r| r.lockout_key.as_str()).collect(),
            window_start: rows.iter().map(|r| r.window_start).collect(),
            // 0 is no limit: a count never reaches i32::MAX.
            failure_limit: rows
                .iter()
                .map(|r| {
                    if r.failure_limit > 0 {
                        r.failure_limit
                    } else {
                        i32::MAX
                    }
                })
                .collect(),
        }
    }

    /// Binds the `{chk_*}` parameter `name`; `false` if it is no check's.
    pub(super) fn bind<'b>(
        &'b self,
        name: &str,
        out: &mut AstPass<'_, 'b, Pg>,
    ) -> QueryResult<bool> {
        use diesel::sql_types::{Array, BigInt, Bytea, Integer, Text, Timestamptz};
        match name {
            "chk_n" => out.push_bind_param::<Array<Integer>, _>(&self.n)?,
            "chk_secret_hash" => out.push_bind_param::<Array<Bytea>, _>(&self.secret_hash)?,
            "chk_profile_id" => out.push_bind_param::<Array<BigInt>, _>(&self.profile_id)?,
            "chk_lockout_key" => out.push_bind_param::<Array<Text>, _>(&self.lockout_key)?,
            "chk_window_start" => {
                out.push_bind_param::<Array<Timestamptz>, _>(&self.window_start)?
            }
            "chk_failure_limit" => out.push_bind_param::<Array<Integer>, _>(&self.failure_limit)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl QueryFragment<Pg> for SigningCheckBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        super::issue_tx::push_template(&mut out, SIGNING_CHECK_SQL, |name, out| {
            if self.bind(name, out)? {
                Ok(())
            } else {
                Err(super::issue_tx::unknown_bind(name))
            }
        })
    }
}

/// Prepared once per connection, like diesel's static queries (the SQL does
/// not depend on the batch size).
pub struct SigningCheckBatchId;

impl QueryId for SigningCheckBatch<'_> {
    type QueryId = SigningCheckBatchId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for SigningCheckBatch<'_> {
    type SqlType = (diesel::sql_types::Integer, diesel::sql_types::Bool);
}

impl RunQueryDsl<PgConnection> for SigningCheckBatch<'_> {}

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

//! API keys for MDMs calling `/api/v1`: only the token's SHA-256 is stored;
//! each key acts for the organizations in `api_key_scopes`, limited to the
//! profiles in `api_key_profiles` if it names any, until `expires_at`, at
//! most `requests_per_minute` times a minute (`api_key_usage`, 0: no limit).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{api_key_profiles, api_key_scopes, api_key_usage, api_keys};
use super::StoreError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub token_hash: Vec<u8>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub requests_per_minute: i32,
}

/// What a new key is limited to besides its organizations.
pub struct NewLimits<'a> {
    pub expires_at: Option<DateTime<Utc>>,
    pub requests_per_minute: i32,
    /// `device_profiles.id`s; empty: every profile.
    pub profiles: &'a [i64],
}

/// Insert a key, its organization scopes and its profiles.
pub fn insert(
    conn: &mut PgConnection,
    name: &str,
    token_hash: &[u8],
    organizations: &[i64],
    limits: &NewLimits<'_>,
    created_by: &str,
) -> Result<ApiKey, StoreError> {
    let key = diesel::insert_into(api_keys::table)
        .values((
            api_keys::name.eq(name),
            api_keys::token_hash.eq(token_hash),
            api_keys::created_by.eq(created_by),
            api_keys::expires_at.eq(limits.expires_at),
            api_keys::requests_per_minute.eq(limits.requests_per_minute),
        ))
        .returning(ApiKey::as_returning())
        .get_result(conn)?;
    let profiles: Vec<_> = limits
        .profiles
        .iter()
        .map(|p| {
            (
                api_key_profiles::api_key_id.eq(key.id),
                api_key_profiles::profile_id.eq(*p),
            )
        })
        .collect();
    diesel::insert_into(api_key_profiles::table)
        .values(&profiles)
        .execute(conn)?;
    let rows: Vec<_> = organizations
        .iter()
        .map(|o| {
            (
                api_key_scopes::api_key_id.eq(key.id),
                api_key_scopes::organization_id.eq(*o),
            )
        })
        .collect();
    diesel::insert_into(api_key_scopes::table)
        .values(&rows)
        .execute(conn)?;
    Ok(key)
}

/// The unrevoked key with this token hash.
pub fn active_by_hash(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<ApiKey>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::token_hash.eq(token_hash))
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKey::as_select())
        .first(conn)
        .optional()?)
}

pub fn by_id(conn: &mut PgConnection, id: i64) -> Result<ApiKey, StoreError> {
    Ok(api_keys::table
        .find(id)
        .select(ApiKey::as_select())
        .first(conn)?)
}

pub fn scopes(conn: &mut PgConnection, key_id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(api_key_scopes::table
        .filter(api_key_scopes::api_key_id.eq(key_id))
        .select(api_key_scopes::organization_id)
        .order(api_key_scopes::organization_id)
        .load(conn)?)
}

/// Revoke a key; `NotFound` when it does not exist or is already revoked.
pub fn revoke(conn: &mut PgConnection, id: i64) -> Result<ApiKey, StoreError> {
    Ok(diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(Utc::now()))
    .returning(ApiKey::as_returning())
    .get_result(conn)?)
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<ApiKey>, StoreError> {
    Ok(api_keys::table
        .order(api_keys::id)
        .select(ApiKey::as_select())
        .load(conn)?)
}

/// The profiles a key is limited to (empty: none named, every profile).
pub fn profiles(conn: &mut PgConnection, key_id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(api_key_profiles::table
        .filter(api_key_profiles::api_key_id.eq(key_id))
        .select(api_key_profiles::profile_id)
        .order(api_key_profiles::profile_id)
        .load(conn)?)
}

/// Count one request of `key_id` in the minute starting at `window_start`
/// and return the minute's count so far (this one included). One
/// statement, so concurrent requests on any process count exactly.
pub fn count_request(
    conn: &mut PgConnection,
    key_id: i64,
    window_start: DateTime<Utc>,
) -> Result<i32, StoreError> {
    // Minutes gone by are worth nothing: drop them as we go.
    diesel::delete(
        api_key_usage::table
            .filter(api_key_usage::api_key_id.eq(key_id))
            .filter(api_key_usage::window_start.lt(window_start)),
    )
    .execute(conn)?;
    Ok(diesel::insert_into(api_key_usage::table)
        .values((
            api_key_usage::api_key_id.eq(key_id),
            api_key_usage::window_start.eq(window_start),
            api_key_usage::count.eq(1),
        ))
        .on_conflict((api_key_usage::api_key_id, api_key_usage::window_start))
        .do_update()
        .set(api_key_usage::count.eq(api_key_usage::count + 1))
        .returning(api_key_usage::count)
        .get_result(conn)?)
}

/// Record that the key was used, at most once a minute (the console shows
/// the time; a write per request would buy nothing).
pub fn touch(conn: &mut PgConnection, key_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    let stale = now - chrono::Duration::minutes(1);
    diesel::update(
        api_keys::table.find(key_id).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(stale)),
        ),
    )
    .set(api_keys::last_used_at.eq(now))
    .execute(conn)?;
    Ok(())
}

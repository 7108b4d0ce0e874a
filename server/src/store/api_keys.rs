//! API keys for MDMs calling `/api/v1`: only the token's SHA-256 is stored;
//! each key acts for the organizations in `api_key_scopes`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{api_key_scopes, api_keys};
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
}

/// Insert a key and its organization scopes.
pub fn insert(
    conn: &mut PgConnection,
    name: &str,
    token_hash: &[u8],
    organizations: &[i64],
    created_by: &str,
) -> Result<ApiKey, StoreError> {
    let key = diesel::insert_into(api_keys::table)
        .values((
            api_keys::name.eq(name),
            api_keys::token_hash.eq(token_hash),
            api_keys::created_by.eq(created_by),
        ))
        .returning(ApiKey::as_returning())
        .get_result(conn)?;
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

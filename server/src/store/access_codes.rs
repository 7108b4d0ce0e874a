//! Organization/department access codes: static, admin-chosen enrollment
//! secrets (RFC 8894 §2.3 challengePassword), stored as argon2id hashes.
//! Verification and its cache live in `challenge::access_codes`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::access_codes;
use super::StoreError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = access_codes)]
pub struct AccessCode {
    pub id: i64,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub profile_id: Option<i64>,
    pub label: String,
    /// argon2id PHC string; never the code itself.
    pub code_hash: String,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = access_codes)]
pub struct NewAccessCode<'a> {
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub profile_id: Option<i64>,
    pub label: &'a str,
    pub code_hash: &'a str,
    pub created_by: &'a str,
}

pub fn insert(conn: &mut PgConnection, c: &NewAccessCode<'_>) -> Result<AccessCode, StoreError> {
    Ok(diesel::insert_into(access_codes::table)
        .values(c)
        .returning(AccessCode::as_returning())
        .get_result(conn)?)
}

pub fn by_id(conn: &mut PgConnection, id: i64) -> Result<AccessCode, StoreError> {
    Ok(access_codes::table
        .find(id)
        .select(AccessCode::as_select())
        .first(conn)?)
}

/// Enabled codes that may authenticate an enrollment for `profile_id`:
/// those bound to it and those valid for any profile.
pub fn candidates_for_profile(
    conn: &mut PgConnection,
    profile_id: i64,
) -> Result<Vec<AccessCode>, StoreError> {
    Ok(access_codes::table
        .filter(access_codes::enabled.eq(true))
        .filter(
            access_codes::profile_id
                .eq(profile_id)
                .or(access_codes::profile_id.is_null()),
        )
        .order(access_codes::id)
        .select(AccessCode::as_select())
        .load(conn)?)
}

/// Enable or disable a code. Bumping `updated_at` invalidates cached
/// verifications everywhere.
pub fn set_enabled(
    conn: &mut PgConnection,
    id: i64,
    enabled: bool,
) -> Result<AccessCode, StoreError> {
    Ok(diesel::update(access_codes::table.find(id))
        .set((
            access_codes::enabled.eq(enabled),
            access_codes::updated_at.eq(Utc::now()),
        ))
        .returning(AccessCode::as_returning())
        .get_result(conn)?)
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<AccessCode>, StoreError> {
    Ok(access_codes::table
        .order(access_codes::id)
        .select(AccessCode::as_select())
        .load(conn)?)
}

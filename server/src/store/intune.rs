//! Profiles whose challenges Microsoft Intune issues (`crate::intune`):
//! their tenant, app registration, sealed client secret, endpoints, and the
//! integration's last error.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{challenges, intune_settings};
use super::StoreError;

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = intune_settings)]
pub struct IntuneSettings {
    pub profile_id: i64,
    pub tenant: String,
    pub client_id: String,
    /// nonce || AES-256-GCM ciphertext || tag (`intune::Sealer`).
    pub client_secret_sealed: Vec<u8>,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub authority_url: String,
    pub graph_url: String,
    pub intune_resource_url: String,
    pub intune_app_id: String,
    pub validation_url: Option<String>,
    pub pki_connector_url: Option<String>,
    pub revocation_enabled: bool,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_revocation_sync_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for IntuneSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntuneSettings")
            .field("profile_id", &self.profile_id)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<sealed>")
            .finish_non_exhaustive()
    }
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = intune_settings, treat_none_as_null = true)]
pub struct NewIntuneSettings<'a> {
    pub profile_id: i64,
    pub tenant: &'a str,
    pub client_id: &'a str,
    pub client_secret_sealed: &'a [u8],
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub authority_url: &'a str,
    pub graph_url: &'a str,
    pub intune_resource_url: &'a str,
    pub intune_app_id: &'a str,
    pub validation_url: Option<&'a str>,
    pub pki_connector_url: Option<&'a str>,
    pub revocation_enabled: bool,
}

pub fn of_profile(
    conn: &mut PgConnection,
    profile_id: i64,
) -> Result<Option<IntuneSettings>, StoreError> {
    Ok(intune_settings::table
        .find(profile_id)
        .select(IntuneSettings::as_select())
        .first(conn)
        .optional()?)
}

/// Insert or replace the profile's settings (its error record stays).
pub fn upsert(conn: &mut PgConnection, s: &NewIntuneSettings<'_>) -> Result<(), StoreError> {
    diesel::insert_into(intune_settings::table)
        .values(s)
        .on_conflict(intune_settings::profile_id)
        .do_update()
        .set((s, intune_settings::updated_at.eq(diesel::dsl::now)))
        .execute(conn)?;
    Ok(())
}

/// True when there was a row to delete.
pub fn delete(conn: &mut PgConnection, profile_id: i64) -> Result<bool, StoreError> {
    Ok(diesel::delete(intune_settings::table.find(profile_id)).execute(conn)? > 0)
}

/// Every profile with the integration whose revocation requests are
/// fetched.
pub fn with_revocation(conn: &mut PgConnection) -> Result<Vec<IntuneSettings>, StoreError> {
    Ok(intune_settings::table
        .filter(intune_settings::revocation_enabled.eq(true))
        .select(IntuneSettings::as_select())
        .order(intune_settings::profile_id)
        .load(conn)?)
}

/// The profiles that use the same tenant (compared without case): a
/// revocation request names a certificate issued under any of them.
pub fn profiles_of_tenant(conn: &mut PgConnection, tenant: &str) -> Result<Vec<i64>, StoreError> {
    let rows: Vec<(i64, String)> = intune_settings::table
        .select((intune_settings::profile_id, intune_settings::tenant))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, t)| t.eq_ignore_ascii_case(tenant))
        .map(|(id, _)| id)
        .collect())
}

/// Record the outcome of a call to Intune: an error (kept, with its time,
/// until the next success) or a success.
pub fn record_outcome(
    conn: &mut PgConnection,
    profile_id: i64,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let q = diesel::update(intune_settings::table.find(profile_id));
    match error {
        Some(e) => q
            .set((
                intune_settings::last_error.eq(e),
                intune_settings::last_error_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?,
        None => q
            .set(intune_settings::last_success_at.eq(diesel::dsl::now))
            .execute(conn)?,
    };
    Ok(())
}

pub fn revocation_synced(conn: &mut PgConnection, profile_id: i64) -> Result<(), StoreError> {
    diesel::update(intune_settings::table.find(profile_id))
        .set(intune_settings::last_revocation_sync_at.eq(diesel::dsl::now))
        .execute(conn)?;
    Ok(())
}

/// Revoke the profile's outstanding one-time challenges (its challenges
/// are Intune's from now on); the number revoked.
pub fn revoke_unused_challenges(
    conn: &mut PgConnection,
    profile_id: i64,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        challenges::table
            .filter(challenges::profile_id.eq(profile_id))
            .filter(challenges::used_at.is_null())
            .filter(challenges::revoked_at.is_null()),
    )
    .set(challenges::revoked_at.eq(diesel::dsl::now))
    .execute(conn)?)
}

/// Key of the session advisory lock held while a process runs the Intune
/// revocation round ("4240004"; see `ca_identity` for the others).
const REVOCATION_ROUND_LOCK: i64 = 4_240_004;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// Take the revocation round's lock on this connection if no other
/// session holds it.
pub fn try_lock_revocation_round(conn: &mut PgConnection) -> Result<bool, StoreError> {
    let r: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(REVOCATION_ROUND_LOCK)
        .get_result(conn)?;
    Ok(r.locked)
}

pub fn unlock_revocation_round(conn: &mut PgConnection) -> Result<(), StoreError> {
    let _: Locked = diesel::sql_query("SELECT pg_advisory_unlock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(REVOCATION_ROUND_LOCK)
        .get_result(conn)?;
    Ok(())
}

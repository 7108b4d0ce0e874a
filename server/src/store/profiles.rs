//! Device certificate profiles and where they may be used.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{device_profiles, profile_scopes};
use super::StoreError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = device_profiles)]
pub struct Profile {
    pub id: i64,
    pub profile_id: String,
    pub name: String,
    pub cert_type: String,
    pub validity_days: i32,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub subject_template: String,
    pub san_types: Vec<String>,
    pub san_pattern: Option<String>,
    pub min_rsa_bits: i32,
    pub allowed_ec_curves: Vec<String>,
    pub hash_alg: String,
    pub approval_mode: String,
    pub renewal_window_days: i32,
    pub max_active_per_device: i32,
    pub revoke_on_replace: bool,
    pub allow_post: bool,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Grows with every change to the row (a trigger sees to it).
    pub revision: i64,
    /// A SUCCESS CertRep carries the CA and its issuers after the issued
    /// certificate (RFC 8894 §3.3.2); some VPN clients need that, others
    /// refuse it.
    pub certrep_includes_chain: bool,
    /// A first enrollment must be signed with the key being certified
    /// (RFC 8894 §2.3, strictly).
    pub signer_key_must_match: bool,
    /// A manual profile issues a renewal that keeps the identity at once.
    pub auto_renew: bool,
    /// A renewal may change the subject or SANs (an officer decides).
    pub renewal_allows_identity_change: bool,
    /// The weakest envelope cipher accepted: `des`, `des3` or `aes`
    /// (`enroll::policy::cipher_allowed`).
    pub min_cipher: String,
    /// Issued certificates carry the CA's CRL distribution point.
    pub include_crl_dp: bool,
    /// Issued certificates carry the OCSP responder's URL (authorityInfoAccess).
    pub include_ocsp_url: bool,
    /// A CSR's requested validity (`csr::validity`) shortens the
    /// certificate's, never lengthens it past `validity_days`.
    pub honor_requested_validity: bool,
}

impl Profile {
    pub fn auto_approve(&self) -> bool {
        self.approval_mode == "auto"
    }
}

/// The settings an admin chooses; everything else has a column default.
/// Also the changeset of an edit (the profile ID never changes; a cleared
/// SAN pattern must become NULL, hence `treat_none_as_null`).
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = device_profiles, treat_none_as_null = true)]
pub struct NewProfile<'a> {
    pub profile_id: &'a str,
    pub name: &'a str,
    pub cert_type: &'a str,
    pub validity_days: i32,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub subject_template: &'a str,
    pub san_types: Vec<String>,
    pub san_pattern: Option<&'a str>,
    pub min_rsa_bits: i32,
    pub allowed_ec_curves: Vec<String>,
    pub hash_alg: &'a str,
    pub approval_mode: &'a str,
    pub renewal_window_days: i32,
    pub max_active_per_device: i32,
    pub revoke_on_replace: bool,
    pub allow_post: bool,
    pub certrep_includes_chain: bool,
    pub signer_key_must_match: bool,
    pub auto_renew: bool,
    pub renewal_allows_identity_change: bool,
    pub min_cipher: &'a str,
    pub include_crl_dp: bool,
    pub include_ocsp_url: bool,
    pub honor_requested_validity: bool,
}

impl<'a> NewProfile<'a> {
    /// A profile with the defaults a new installation starts with.
    pub fn with_defaults(profile_id: &'a str, name: &'a str) -> Self {
        Self {
            profile_id,
            name,
            cert_type: "device",
            validity_days: 365,
            key_usage: vec!["digitalSignature".into(), "keyEncipherment".into()],
            extended_key_usage: vec!["clientAuth".into()],
            subject_template: "CN={{CommonName}}",
            san_types: vec![
                "dns".into(),
                "email".into(),
                "uri".into(),
                "upn".into(),
                "ip".into(),
            ],
            san_pattern: None,
            min_rsa_bits: 2048,
            allowed_ec_curves: vec![],
            hash_alg: "sha256",
            approval_mode: "auto",
            renewal_window_days: 30,
            max_active_per_device: 0,
            revoke_on_replace: false,
            allow_post: true,
            certrep_includes_chain: false,
            signer_key_must_match: false,
            auto_renew: false,
            renewal_allows_identity_change: false,
            min_cipher: "des",
            include_crl_dp: true,
            include_ocsp_url: true,
            honor_requested_validity: false,
        }
    }
}

pub fn create(conn: &mut PgConnection, p: &NewProfile<'_>) -> Result<Profile, StoreError> {
    Ok(diesel::insert_into(device_profiles::table)
        .values(p)
        .returning(Profile::as_returning())
        .get_result(conn)?)
}

pub fn by_profile_id(
    conn: &mut PgConnection,
    profile_id: &str,
) -> Result<Option<Profile>, StoreError> {
    Ok(device_profiles::table
        .filter(device_profiles::profile_id.eq(profile_id))
        .select(Profile::as_select())
        .first(conn)
        .optional()?)
}

pub fn by_id(conn: &mut PgConnection, id: i64) -> Result<Profile, StoreError> {
    Ok(device_profiles::table
        .find(id)
        .select(Profile::as_select())
        .first(conn)?)
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<Profile>, StoreError> {
    Ok(device_profiles::table
        .order(device_profiles::profile_id)
        .select(Profile::as_select())
        .load(conn)?)
}

/// The profile, locked until the transaction ends: an edit checks the
/// places it is enabled for and changes it without a concurrent edit
/// slipping in between.
pub fn lock(conn: &mut PgConnection, id: i64) -> Result<Profile, StoreError> {
    Ok(device_profiles::table
        .find(id)
        .for_update()
        .select(Profile::as_select())
        .first(conn)?)
}

/// Replace every setting (the profile ID stays as it is).
pub fn update(
    conn: &mut PgConnection,
    id: i64,
    p: &NewProfile<'_>,
    enabled: bool,
) -> Result<Profile, StoreError> {
    Ok(diesel::update(device_profiles::table.find(id))
        .set((
            p,
            device_profiles::enabled.eq(enabled),
            device_profiles::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Profile::as_returning())
        .get_result(conn)?)
}

pub fn set_enabled(conn: &mut PgConnection, id: i64, enabled: bool) -> Result<Profile, StoreError> {
    Ok(diesel::update(device_profiles::table.find(id))
        .set((
            device_profiles::enabled.eq(enabled),
            device_profiles::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Profile::as_returning())
        .get_result(conn)?)
}

/// Where the profile may be used: (organization, department or `None` for
/// the whole organization).
pub fn places_of(
    conn: &mut PgConnection,
    profile_id: i64,
) -> Result<Vec<(i64, Option<i64>)>, StoreError> {
    Ok(profile_scopes::table
        .filter(profile_scopes::profile_id.eq(profile_id))
        .select((
            profile_scopes::organization_id,
            profile_scopes::department_id,
        ))
        .order((
            profile_scopes::organization_id,
            profile_scopes::department_id,
        ))
        .load(conn)?)
}

/// Make `places` the profile's only places.
pub fn replace_places(
    conn: &mut PgConnection,
    profile_id: i64,
    places: &[(i64, Option<i64>)],
) -> Result<(), StoreError> {
    diesel::delete(profile_scopes::table.filter(profile_scopes::profile_id.eq(profile_id)))
        .execute(conn)?;
    for (org, dept) in places {
        enable_for(conn, profile_id, *org, *dept)?;
    }
    Ok(())
}

pub fn set_approval_mode(conn: &mut PgConnection, id: i64, mode: &str) -> Result<(), StoreError> {
    diesel::update(device_profiles::table.find(id))
        .set((
            device_profiles::approval_mode.eq(mode),
            device_profiles::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_allow_post(conn: &mut PgConnection, id: i64, allow: bool) -> Result<(), StoreError> {
    diesel::update(device_profiles::table.find(id))
        .set((
            device_profiles::allow_post.eq(allow),
            device_profiles::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Enable a profile for an organization (or one of its departments).
pub fn enable_for(
    conn: &mut PgConnection,
    profile_id: i64,
    organization_id: i64,
    department_id: Option<i64>,
) -> Result<(), StoreError> {
    diesel::insert_into(profile_scopes::table)
        .values((
            profile_scopes::profile_id.eq(profile_id),
            profile_scopes::organization_id.eq(organization_id),
            profile_scopes::department_id.eq(department_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(())
}

/// Whether the profile may be used by the organization, or by the department
/// (a whole-organization scope covers all its departments).
pub fn is_enabled_for(
    conn: &mut PgConnection,
    profile_id: i64,
    organization_id: i64,
    department_id: Option<i64>,
) -> Result<bool, StoreError> {
    let q = profile_scopes::table
        .filter(profile_scopes::profile_id.eq(profile_id))
        .filter(profile_scopes::organization_id.eq(organization_id));
    let n: i64 = match department_id {
        Some(d) => q
            .filter(
                profile_scopes::department_id
                    .is_null()
                    .or(profile_scopes::department_id.eq(d)),
            )
            .count()
            .get_result(conn)?,
        None => q
            .filter(profile_scopes::department_id.is_null())
            .count()
            .get_result(conn)?,
    };
    Ok(n > 0)
}

/// Organizations the profile is enabled for (wholly or for a department).
pub fn organizations_of(conn: &mut PgConnection, profile_id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(profile_scopes::table
        .filter(profile_scopes::profile_id.eq(profile_id))
        .select(profile_scopes::organization_id)
        .distinct()
        .order(profile_scopes::organization_id)
        .load(conn)?)
}

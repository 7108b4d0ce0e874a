//! API keys from the console: an MRAO or an RAO creates one for whole
//! organizations in its scope and revokes one whose organizations are all
//! in its scope. Token generation, hashing and the audit entries are
//! `api::keys`'s; the token exists only in the returned `Created`.

use diesel::pg::PgConnection;

use super::rules::{self, Actor};
use super::{check_places, AdminError, Refusals};
use crate::api::keys::{self, Created, KeyLimits};
use crate::api::ApiError;
use crate::store::api_keys::{self as store, ApiKey};

/// A key as an officer sees it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: ApiKey,
    pub organizations: Vec<i64>,
    /// The profiles it is limited to (`device_profiles.id`; empty: all).
    pub profiles: Vec<i64>,
    /// Whether this officer may revoke it.
    pub manageable: bool,
}

/// Keys acting for at least one organization the officer reaches.
pub fn listing(conn: &mut PgConnection, who: &Actor<'_>) -> Result<Vec<Listed>, AdminError> {
    let reach = who.reach(conn)?;
    let mut out = vec![];
    for key in store::list(conn)? {
        let organizations = store::scopes(conn, key.id)?;
        if reach
            .as_ref()
            .is_none_or(|r| organizations.iter().any(|o| r.contains(o)))
        {
            out.push(Listed {
                manageable: rules::may_manage_keys_for(who, &organizations),
                profiles: store::profiles(conn, key.id)?,
                key,
                organizations,
            });
        }
    }
    Ok(out)
}

/// Whether the officer may create keys at all.
pub fn may_create(who: &Actor<'_>) -> bool {
    rules::may_manage_keys_for(who, &[])
}

pub fn create(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    name: &str,
    organizations: &[i64],
    limits: &KeyLimits,
) -> Result<Created, AdminError> {
    if !rules::may_manage_keys_for(who, organizations) {
        return Err(AdminError::Forbidden);
    }
    let mut refusals = Refusals::default();
    if name.trim().is_empty() || name.trim().chars().count() > 200 {
        refusals.add("name", "name must be 1–200 characters");
    }
    if organizations.is_empty() {
        refusals.add("organizations", "choose at least one organization");
    }
    let places: Vec<_> = organizations.iter().map(|o| (*o, None)).collect();
    check_places(conn, &places, "organizations", &mut refusals)?;
    if let Err((field, message)) = keys::resolve_limits(conn, limits)? {
        refusals.add(field, message);
    }
    refusals.finish()?;
    keys::create(conn, name, organizations, limits, who.username).map_err(from_api)
}

/// Revoke: the key answers 401 from its next request on.
pub fn revoke(conn: &mut PgConnection, who: &Actor<'_>, id: i64) -> Result<ApiKey, AdminError> {
    let key = store::by_id(conn, id)?;
    let organizations = store::scopes(conn, id)?;
    let reach = who.reach(conn)?;
    if !reach
        .as_ref()
        .is_none_or(|r| organizations.iter().any(|o| r.contains(o)))
    {
        return Err(AdminError::NotFound);
    }
    if !rules::may_manage_keys_for(who, &organizations) {
        return Err(AdminError::Forbidden);
    }
    if key.revoked_at.is_some() {
        return Err(AdminError::Conflict(format!(
            "API key {id} is already revoked"
        )));
    }
    keys::revoke(conn, id, who.username).map_err(|e| match e {
        // Revoked by someone else since the check above.
        ApiError::NotFound(m) => AdminError::Conflict(m),
        e => from_api(e),
    })
}

fn from_api(e: ApiError) -> AdminError {
    match e {
        ApiError::Invalid(m) => AdminError::refused("name", m),
        ApiError::NotFound(m) => AdminError::refused("organizations", m),
        ApiError::Unavailable => AdminError::Store(crate::store::StoreError::Unavailable(
            "database unavailable".into(),
        )),
        e => AdminError::Failed(e.to_string()),
    }
}

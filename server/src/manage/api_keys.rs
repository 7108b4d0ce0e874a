//! API keys from the console: an MRAO or an RAO creates one for whole
//! organizations in its scope and revokes one whose organizations are all
//! in its scope. Token generation, hashing and the audit entries are
//! `api::keys`'s; the token exists only in the returned `Created`.

use diesel::pg::PgConnection;

use super::{check_places, field, Acting, ManageError};
use crate::api::keys::{self, Created};
use crate::api::ApiError;
use crate::store::api_keys::{self as store, ApiKey};

/// A key as an officer sees it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: ApiKey,
    pub organizations: Vec<i64>,
    /// Whether this officer may revoke it.
    pub manageable: bool,
}

/// Keys acting for at least one organization the officer reaches.
pub fn listing(conn: &mut PgConnection, who: &Acting<'_>) -> Result<Vec<Listed>, ManageError> {
    let reach = who.reach(conn)?;
    let mut out = vec![];
    for key in store::list(conn)? {
        let organizations = store::scopes(conn, key.id)?;
        if reach
            .as_ref()
            .is_none_or(|r| organizations.iter().any(|o| r.contains(o)))
        {
            out.push(Listed {
                manageable: who.may_manage_organizations(&organizations),
                key,
                organizations,
            });
        }
    }
    Ok(out)
}

/// Whether the officer may create keys at all.
pub fn may_create(who: &Acting<'_>) -> bool {
    who.may_manage_organizations(&[])
}

pub fn create(
    conn: &mut PgConnection,
    who: &Acting<'_>,
    name: &str,
    organizations: &[i64],
) -> Result<Created, ManageError> {
    if !who.may_manage_organizations(organizations) {
        return Err(ManageError::Forbidden);
    }
    let mut errors = vec![];
    if name.trim().is_empty() || name.trim().chars().count() > 200 {
        errors.push(field("name", "name must be 1–200 characters"));
    }
    if organizations.is_empty() {
        errors.push(field("organizations", "choose at least one organization"));
    }
    let places: Vec<_> = organizations.iter().map(|o| (*o, None)).collect();
    check_places(conn, &places, "organizations", &mut errors)?;
    if !errors.is_empty() {
        return Err(ManageError::Invalid(errors));
    }
    keys::create(conn, name, organizations, who.username).map_err(from_api)
}

/// Revoke: the key answers 401 from its next request on.
pub fn revoke(conn: &mut PgConnection, who: &Acting<'_>, id: i64) -> Result<ApiKey, ManageError> {
    let key = store::by_id(conn, id)?;
    let organizations = store::scopes(conn, id)?;
    let reach = who.reach(conn)?;
    if !reach
        .as_ref()
        .is_none_or(|r| organizations.iter().any(|o| r.contains(o)))
    {
        return Err(ManageError::NotFound);
    }
    if !who.may_manage_organizations(&organizations) {
        return Err(ManageError::Forbidden);
    }
    if key.revoked_at.is_some() {
        return Err(ManageError::Conflict(format!(
            "API key {id} is already revoked"
        )));
    }
    keys::revoke(conn, id, who.username).map_err(|e| match e {
        // Revoked by someone else since the check above.
        ApiError::NotFound(m) => ManageError::Conflict(m),
        e => from_api(e),
    })
}

fn from_api(e: ApiError) -> ManageError {
    match e {
        ApiError::Invalid(m) => ManageError::Invalid(vec![field("name", m)]),
        ApiError::NotFound(m) => ManageError::Invalid(vec![field("organizations", m)]),
        ApiError::Unavailable => ManageError::Store(crate::store::StoreError::Unavailable(
            "database unavailable".into(),
        )),
        e => ManageError::Failed(e.to_string()),
    }
}

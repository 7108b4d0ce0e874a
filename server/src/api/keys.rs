//! API keys: 256 random bits from the OS CSPRNG, shown once as
//! `scepd_<base32>`; only the SHA-256 is stored (a token this strong needs
//! no slow hash). Each key acts for a fixed set of organizations; creation
//! and revocation are audited.

use diesel::pg::PgConnection;
use diesel::Connection;

use super::ApiError;
use crate::store::api_keys::{self, ApiKey};
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::{orgs, StoreError};

const PREFIX: &str = "scepd_";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: i64,
    pub organizations: Vec<i64>,
}

impl Caller {
    /// The audit actor for this caller.
    pub fn actor(&self) -> String {
        format!("api-key:{}", self.key_id)
    }

    pub fn may_act_for(&self, organization_id: i64) -> bool {
        self.organizations.contains(&organization_id)
    }
}

/// A new key: `token` exists only here.
pub struct Created {
    pub token: String,
    pub key: ApiKey,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created")
            .field("id", &self.key.id)
            .field("token", &"<redacted>")
            .finish()
    }
}

fn hash_token(token: &str) -> [u8; 32] {
    openssl::sha::sha256(token.trim().as_bytes())
}

fn generate_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "random generator failed");
        ApiError::Internal
    })?;
    Ok(format!(
        "{PREFIX}{}",
        data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase()
    ))
}

/// Create a key for `organizations` (which must exist); audited without the token.
pub fn create(
    conn: &mut PgConnection,
    name: &str,
    organizations: &[i64],
    actor: &str,
) -> Result<Created, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::Invalid("an API key needs a name".into()));
    }
    if organizations.is_empty() {
        return Err(ApiError::Invalid(
            "an API key needs at least one organization".into(),
        ));
    }
    let token = generate_token()?;
    conn.transaction(|conn| {
        for o in organizations {
            orgs::org_by_id(conn, *o).map_err(|e| match e {
                StoreError::NotFound => ApiError::NotFound(format!("organization {o} not found")),
                e => e.into(),
            })?;
        }
        let key = api_keys::insert(conn, name.trim(), &hash_token(&token), organizations, actor)?;
        audit::record(
            conn,
            &AuditEvent {
                actor,
                kind: AuditKind::ApiKeyCreated,
                target: Some(format!("api_key:{}", key.id)),
                details: serde_json::json!({ "name": key.name, "organizations": organizations }),
                client_ip: None,
                organization_id: only_one(organizations),
                department_id: None,
            },
        )?;
        Ok(Created { token, key })
    })
}

/// The organization an API key's audit entries are filed under: its one
/// organization, or none for a key acting for several (an RAO of one of
/// them must not read about the others; the MRAO sees those entries).
fn only_one(organizations: &[i64]) -> Option<i64> {
    match organizations {
        [o] => Some(*o),
        _ => None,
    }
}

/// Revoke a key; it stops working at its next request in every process.
pub fn revoke(conn: &mut PgConnection, id: i64, actor: &str) -> Result<ApiKey, ApiError> {
    conn.transaction(|conn| {
        let key = api_keys::revoke(conn, id).map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("no active API key {id}")),
            e => e.into(),
        })?;
        let organizations = api_keys::scopes(conn, id)?;
        audit::record(
            conn,
            &AuditEvent {
                actor,
                kind: AuditKind::ApiKeyRevoked,
                target: Some(format!("api_key:{id}")),
                details: serde_json::json!({ "name": key.name }),
                client_ip: None,
                organization_id: only_one(&organizations),
                department_id: None,
            },
        )?;
        Ok(key)
    })
}

/// The caller a bearer token belongs to; `Unauthorized` for anything else.
pub fn authenticate(conn: &mut PgConnection, token: &str) -> Result<Caller, ApiError> {
    if !token.starts_with(PREFIX) {
        return Err(ApiError::Unauthorized);
    }
    let key = api_keys::active_by_hash(conn, &hash_token(token))?.ok_or(ApiError::Unauthorized)?;
    Ok(Caller {
        key_id: key.id,
        organizations: api_keys::scopes(conn, key.id)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_long_and_distinct() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert!(a.starts_with(PREFIX));
        assert_eq!(a.len(), PREFIX.len() + 52);
        assert_ne!(a, b);
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}

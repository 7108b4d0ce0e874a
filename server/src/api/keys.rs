//! API keys: 256 random bits from the OS CSPRNG, shown once as
//! `scepd_<base32>`; only the SHA-256 is stored (a token this strong needs
//! no slow hash). Each key acts for a fixed set of organizations, and may
//! be limited to some of their profiles, expire, and be limited in requests
//! per minute (counted in PostgreSQL, across processes); creation and
//! revocation are audited.

use chrono::{DateTime, DurationRound, Utc};
use diesel::pg::PgConnection;
use diesel::Connection;

use super::ApiError;
use crate::store::api_keys::{self, ApiKey, NewLimits};
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::{orgs, profiles, StoreError};

const PREFIX: &str = "scepd_";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: i64,
    pub organizations: Vec<i64>,
    /// `device_profiles.id`s the key is limited to; empty: any.
    pub profiles: Vec<i64>,
}

impl Caller {
    /// The audit actor for this caller.
    pub fn actor(&self) -> String {
        format!("api-key:{}", self.key_id)
    }

    pub fn may_act_for(&self, organization_id: i64) -> bool {
        self.organizations.contains(&organization_id)
    }

    /// Whether the key may use the profile with this `device_profiles.id`.
    pub fn may_use_profile(&self, profile_id: i64) -> bool {
        self.profiles.is_empty() || self.profiles.contains(&profile_id)
    }
}

/// What limits a new key besides its organizations.
#[derive(Debug, Clone, Default)]
pub struct KeyLimits {
    /// From then on the key answers 401 (None: it does not expire).
    pub expires_at: Option<DateTime<Utc>>,
    /// The profiles (their IDs, e.g. `default`) it may use; empty: every
    /// profile of its organizations.
    pub profiles: Vec<String>,
    /// Requests per minute across every scepd process (0: no limit).
    pub requests_per_minute: u32,
}

/// The most requests per minute a limit may name.
pub const MAX_REQUESTS_PER_MINUTE: u32 = 1_000_000;

/// A limit that cannot be: the form field (`expires`,
/// `requests_per_minute`, `profiles`) and why.
pub type LimitProblem = (&'static str, String);

/// Checks `limits` and returns the per-minute limit and the profiles'
/// `device_profiles.id`s, or what is wrong with them.
pub fn resolve_limits(
    conn: &mut PgConnection,
    limits: &KeyLimits,
) -> Result<Result<(i32, Vec<i64>), LimitProblem>, StoreError> {
    if limits.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Ok(Err(("expires", "the expiry must lie in the future".into())));
    }
    let Some(rpm) = i32::try_from(limits.requests_per_minute)
        .ok()
        .filter(|_| limits.requests_per_minute <= MAX_REQUESTS_PER_MINUTE)
    else {
        return Ok(Err((
            "requests_per_minute",
            format!("requests per minute must be 0 (no limit) to {MAX_REQUESTS_PER_MINUTE}"),
        )));
    };
    let mut ids = vec![];
    for p in &limits.profiles {
        match profiles::by_profile_id(conn, p.trim())? {
            Some(found) => ids.push(found.id),
            None => return Ok(Err(("profiles", format!("profile {p:?} not found")))),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Ok((rpm, ids)))
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
    limits: &KeyLimits,
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
        let (rpm, profile_ids) = match resolve_limits(conn, limits)? {
            Ok(resolved) => resolved,
            Err((_, message)) => return Err(ApiError::Invalid(message)),
        };
        let new = NewLimits {
            expires_at: limits.expires_at,
            requests_per_minute: rpm,
            profiles: &profile_ids,
        };
        let key = api_keys::insert(
            conn,
            name.trim(),
            &hash_token(&token),
            organizations,
            &new,
            actor,
        )?;
        audit::record(
            conn,
            &AuditEvent {
                actor,
                kind: AuditKind::ApiKeyCreated,
                target: Some(format!("api_key:{}", key.id)),
                details: serde_json::json!({
                    "name": key.name,
                    "organizations": organizations,
                    "profiles": limits.profiles,
                    "expires_at": key.expires_at,
                    "requests_per_minute": key.requests_per_minute,
                }),
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
    let now = Utc::now();
    if key.expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::Unauthorized);
    }
    if key.requests_per_minute > 0 {
        let minute = now
            .duration_trunc(chrono::Duration::minutes(1))
            .unwrap_or(now);
        if api_keys::count_request(conn, key.id, minute)? > key.requests_per_minute {
            let next = minute + chrono::Duration::minutes(1);
            let wait = (next - now).num_seconds().max(1);
            return Err(ApiError::RateLimited {
                limit: key.requests_per_minute,
                retry_after: u64::try_from(wait).unwrap_or(60),
            });
        }
    }
    api_keys::touch(conn, key.id, now)?;
    Ok(Caller {
        key_id: key.id,
        organizations: api_keys::scopes(conn, key.id)?,
        profiles: api_keys::profiles(conn, key.id)?,
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

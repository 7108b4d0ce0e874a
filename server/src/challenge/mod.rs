//! The challenge service: one-time challenge passwords minted per device for
//! a profile and an organization (RFC 8894 §2.3 challengePassword).
//!
//! A secret is 160 bits from the OS CSPRNG, shown once in base32; only its
//! SHA-256 is stored. Consumption is atomic in the database (`store::challenges`).
//! The number of unused challenges per profile and organization is capped,
//! as NDES caps its password cache. `access_codes` holds the static
//! organization secrets; `gate` the failed-attempt limit and the purge.

use chrono::{Duration, Utc};
use diesel::pg::PgConnection;
use diesel::Connection;

use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::challenges::{self, Challenge, NewChallenge};
use crate::store::{orgs, profiles, StoreError};

pub mod access_codes;
pub mod gate;

/// Unused challenges allowed per profile and organization unless configured.
pub const DEFAULT_MAX_UNUSED: u32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error("profile {0} not found")]
    UnknownProfile(String),
    #[error("organization {0} not found")]
    UnknownOrganization(i64),
    #[error("department {0} does not belong to organization {1}")]
    WrongDepartment(i64, i64),
    #[error("profile {profile} is not enabled for this organization or department")]
    ProfileNotEnabled { profile: String },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error(
        "{unused} unused challenges exist for this profile and organization; the limit is {limit}"
    )]
    LimitReached { unused: i64, limit: u32 },
    #[error("cannot hash access code: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("random generator failed: {0}")]
    Random(#[from] openssl::error::ErrorStack),
}

impl From<diesel::result::Error> for ChallengeError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(e.into())
    }
}

/// What to mint.
#[derive(Debug, Clone)]
pub struct MintRequest<'a> {
    /// The profile's stable ID (as in its SCEP URL).
    pub profile: &'a str,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    /// When set, only a request whose CN or serialNumber equals this may use it.
    pub device_identity: Option<&'a str>,
    pub ttl: Duration,
    pub count: u32,
    pub actor: &'a str,
}

/// A freshly minted challenge: `secret` exists only here, never in the DB.
pub struct Minted {
    pub secret: String,
    pub challenge: Challenge,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("id", &self.challenge.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

pub const MAX_BULK: u32 = 10_000;

/// 160 random bits, base32 without padding: 32 characters that survive
/// copying, URLs and configuration profiles.
pub fn generate_secret() -> Result<String, ChallengeError> {
    let mut bytes = [0u8; 20];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(data_encoding::BASE32_NOPAD.encode(&bytes))
}

/// The stored form of a secret. Surrounding whitespace is not part of it
/// (copy/paste adds it).
pub fn hash_secret(secret: &str) -> [u8; 32] {
    openssl::sha::sha256(secret.trim().as_bytes())
}

/// Mint `count` challenges in one transaction under the default cap.
pub fn mint(conn: &mut PgConnection, req: &MintRequest<'_>) -> Result<Vec<Minted>, ChallengeError> {
    mint_limited(conn, req, DEFAULT_MAX_UNUSED)
}

/// Mint `req.count` challenges (all bound to `req.device_identity`), refused
/// when the profile and organization would then hold more than
/// `max_unused` unused ones.
pub fn mint_limited(
    conn: &mut PgConnection,
    req: &MintRequest<'_>,
    max_unused: u32,
) -> Result<Vec<Minted>, ChallengeError> {
    let bindings = vec![req.device_identity; req.count as usize];
    mint_batch(conn, req, &bindings, max_unused)
}

/// Mint one challenge per device identity, each bound to its device
/// (`req.count` and `req.device_identity` are ignored).
pub fn mint_bound(
    conn: &mut PgConnection,
    req: &MintRequest<'_>,
    identities: &[&str],
    max_unused: u32,
) -> Result<Vec<Minted>, ChallengeError> {
    if identities.iter().any(|i| i.trim().is_empty()) {
        return Err(ChallengeError::Invalid("empty device identity".into()));
    }
    let bindings: Vec<Option<&str>> = identities.iter().map(|i| Some(*i)).collect();
    mint_batch(conn, req, &bindings, max_unused)
}

/// All of a batch or nothing: one transaction, each challenge audited
/// without its secret.
fn mint_batch(
    conn: &mut PgConnection,
    req: &MintRequest<'_>,
    bindings: &[Option<&str>],
    max_unused: u32,
) -> Result<Vec<Minted>, ChallengeError> {
    if bindings.is_empty() || bindings.len() > MAX_BULK as usize {
        return Err(ChallengeError::Invalid(format!(
            "count must be between 1 and {MAX_BULK}"
        )));
    }
    if req.ttl <= Duration::zero() || req.ttl > Duration::days(30) {
        return Err(ChallengeError::Invalid(
            "ttl must be positive and at most 30 days".into(),
        ));
    }
    conn.transaction(|conn| {
        let profile = profiles::by_profile_id(conn, req.profile)?
            .ok_or_else(|| ChallengeError::UnknownProfile(req.profile.to_string()))?;
        // Intune issues such a profile's challenges (docs/intune.md).
        if crate::store::intune::of_profile(conn, profile.id)?.is_some() {
            return Err(ChallengeError::Invalid(format!(
                "profile {}'s challenges are issued by Microsoft Intune",
                profile.profile_id
            )));
        }
        let org = orgs::org_by_id(conn, req.organization_id).map_err(|e| match e {
            StoreError::NotFound => ChallengeError::UnknownOrganization(req.organization_id),
            e => e.into(),
        })?;
        // A disabled organization or department enrolls nothing, so a
        // challenge for it would only be a dead secret in circulation.
        if !org.enabled {
            return Err(ChallengeError::Invalid(format!(
                "organization {} is disabled",
                org.name
            )));
        }
        if let Some(d) = req.department_id {
            let dep = orgs::department_by_id(conn, d).map_err(|e| match e {
                StoreError::NotFound => ChallengeError::WrongDepartment(d, req.organization_id),
                e => e.into(),
            })?;
            if dep.organization_id != req.organization_id {
                return Err(ChallengeError::WrongDepartment(d, req.organization_id));
            }
            if !dep.enabled {
                return Err(ChallengeError::Invalid(format!(
                    "department {} is disabled",
                    dep.name
                )));
            }
        }
        if !profiles::is_enabled_for(conn, profile.id, req.organization_id, req.department_id)? {
            return Err(ChallengeError::ProfileNotEnabled {
                profile: profile.profile_id.clone(),
            });
        }
        // Serialise mints for this profile and organization across
        // processes, so that concurrent batches cannot overshoot the cap.
        challenges::lock_for_mint(conn, profile.id, req.organization_id)?;
        let unused = challenges::count_unused(conn, profile.id, req.organization_id, Utc::now())?;
        if unused + bindings.len() as i64 > i64::from(max_unused) {
            return Err(ChallengeError::LimitReached {
                unused,
                limit: max_unused,
            });
        }
        let expires_at = Utc::now() + req.ttl;
        let mut out = Vec::with_capacity(bindings.len());
        for device_identity in bindings {
            let secret = generate_secret()?;
            let hash = hash_secret(&secret);
            let challenge = challenges::insert(
                conn,
                &NewChallenge {
                    secret_hash: &hash,
                    profile_id: profile.id,
                    organization_id: req.organization_id,
                    department_id: req.department_id,
                    device_identity: *device_identity,
                    expires_at,
                    created_by: req.actor,
                },
            )?;
            audit::record(
                conn,
                &AuditEvent {
                    actor: req.actor,
                    kind: AuditKind::ChallengeMinted,
                    target: Some(format!("challenge:{}", challenge.id)),
                    details: serde_json::json!({
                        "profile": profile.profile_id,
                        "organization_id": req.organization_id,
                        "department_id": req.department_id,
                        "device_identity": device_identity,
                        "expires_at": expires_at,
                    }),
                    client_ip: None,
                    organization_id: Some(req.organization_id),
                    department_id: req.department_id,
                },
            )?;
            out.push(Minted { secret, challenge });
        }
        Ok(out)
    })
}

/// Parse a TTL such as `60m`, `2h`, `1d`, `90s` or a bare number of
/// minutes (`input::parse_duration`: checked, so an absurd value is an
/// error, never a panic).
pub fn parse_ttl(s: &str) -> Result<Duration, ChallengeError> {
    crate::input::parse_duration(s).map_err(|e| ChallengeError::Invalid(format!("ttl: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_32_base32_chars_and_distinct() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn hash_ignores_surrounding_whitespace_only() {
        assert_eq!(hash_secret("ABC"), hash_secret(" ABC\n"));
        assert_ne!(hash_secret("ABC"), hash_secret("ABD"));
    }

    #[test]
    fn ttl_parses_units_and_rejects_garbage() {
        assert_eq!(parse_ttl("60m").unwrap(), Duration::minutes(60));
        assert_eq!(parse_ttl("2h").unwrap(), Duration::hours(2));
        assert_eq!(parse_ttl("45").unwrap(), Duration::minutes(45));
        assert_eq!(parse_ttl("1d").unwrap(), Duration::days(1));
        assert!(parse_ttl("xm").is_err());
        assert!(parse_ttl("5y").is_err());
        assert!(parse_ttl("999999999999999d").is_err());
    }

    #[test]
    fn minted_debug_hides_secret() {
        let m = Minted {
            secret: "TOPSECRETVALUE".into(),
            challenge: Challenge {
                id: 1,
                secret_hash: vec![],
                profile_id: 1,
                organization_id: 1,
                department_id: None,
                device_identity: None,
                expires_at: Utc::now(),
                used_at: None,
                revoked_at: None,
                created_by: "t".into(),
                created_at: Utc::now(),
            },
        };
        assert!(!format!("{m:?}").contains("TOPSECRET"));
    }
}

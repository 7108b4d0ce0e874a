//! Organization/department access codes (Sectigo's "access code"): a static
//! secret an admin chooses, presented as the challengePassword (RFC 8894
//! §2.3) when it is not a known one-time challenge.
//!
//! Codes are stored as argon2id hashes. A busy fleet would pay one argon2
//! run per enrollment, so successful verifications are cached in process,
//! keyed by the SHA-256 of the presented bytes together with the code's row
//! id, `updated_at` and stored hash: a hit proves that argon2 accepted
//! exactly these bytes for exactly this version of the code. The candidate
//! rows (and so `enabled`) are read from the database on every enrollment,
//! so a disabled or changed code stops working at once in every process.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use diesel::pg::PgConnection;
use diesel::Connection;

use super::ChallengeError;
use crate::store::access_codes::{self, AccessCode, NewAccessCode};
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::profiles::{self, Profile};
use crate::store::{orgs, StoreError};

/// Shorter codes are guessable despite argon2.
pub const MIN_LEN: usize = 12;

/// What to create.
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub organization_id: i64,
    pub department_id: Option<i64>,
    /// Restrict the code to one profile (its stable ID); `None`: every
    /// profile enabled for the organization/department.
    pub profile: Option<&'a str>,
    pub label: &'a str,
    pub code: &'a str,
    pub actor: &'a str,
}

/// Hash and store an access code; audited without the code.
pub fn create(conn: &mut PgConnection, req: &NewCode<'_>) -> Result<AccessCode, ChallengeError> {
    let code = req.code.trim();
    if code.chars().count() < MIN_LEN {
        return Err(ChallengeError::Invalid(format!(
            "an access code needs at least {MIN_LEN} characters"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(code.as_bytes(), &salt)
        .map_err(|e| ChallengeError::Hash(e.to_string()))?
        .to_string();
    conn.transaction(|conn| {
        orgs::org_by_id(conn, req.organization_id).map_err(|e| match e {
            StoreError::NotFound => ChallengeError::UnknownOrganization(req.organization_id),
            e => e.into(),
        })?;
        if let Some(d) = req.department_id {
            let dep = orgs::department_by_id(conn, d)?;
            if dep.organization_id != req.organization_id {
                return Err(ChallengeError::WrongDepartment(d, req.organization_id));
            }
        }
        let profile_id = match req.profile {
            Some(p) => Some(
                profiles::by_profile_id(conn, p)?
                    .ok_or_else(|| ChallengeError::UnknownProfile(p.to_string()))?
                    .id,
            ),
            None => None,
        };
        let row = access_codes::insert(
            conn,
            &NewAccessCode {
                organization_id: req.organization_id,
                department_id: req.department_id,
                profile_id,
                label: req.label,
                code_hash: &hash,
                created_by: req.actor,
            },
        )?;
        audit::record(
            conn,
            &AuditEvent {
                actor: req.actor,
                kind: AuditKind::AccessCodeCreated,
                target: Some(format!("access_code:{}", row.id)),
                details: serde_json::json!({
                    "label": req.label,
                    "organization_id": req.organization_id,
                    "department_id": req.department_id,
                    "profile": req.profile,
                }),
                client_ip: None,
                organization_id: Some(row.organization_id),
                department_id: row.department_id,
            },
        )?;
        Ok(row)
    })
}

/// Enable or disable a code (disabling is how one is revoked); audited as
/// `access_code.enabled` / `access_code.disabled` (`access_code.changed`
/// rows are from earlier versions).
pub fn set_enabled(
    conn: &mut PgConnection,
    id: i64,
    enabled: bool,
    actor: &str,
) -> Result<AccessCode, ChallengeError> {
    conn.transaction(|conn| {
        let row = access_codes::set_enabled(conn, id, enabled)?;
        audit::record(
            conn,
            &AuditEvent {
                actor,
                kind: if enabled {
                    AuditKind::AccessCodeEnabled
                } else {
                    AuditKind::AccessCodeDisabled
                },
                target: Some(format!("access_code:{id}")),
                details: serde_json::json!({ "label": row.label }),
                client_ip: None,
                organization_id: Some(row.organization_id),
                department_id: row.department_id,
            },
        )?;
        Ok(row)
    })
}

/// Successful verifications, bounded. Only successes are kept: caching
/// failures would let a client flood the map with garbage.
pub struct VerifyCache {
    hits: Mutex<HashMap<[u8; 32], ()>>,
    capacity: usize,
}

impl Default for VerifyCache {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl VerifyCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            hits: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn key(presented_sha: &[u8; 32], code: &AccessCode) -> [u8; 32] {
        let mut h = openssl::sha::Sha256::new();
        h.update(presented_sha);
        h.update(&code.id.to_be_bytes());
        h.update(&code.updated_at.timestamp_micros().to_be_bytes());
        h.update(code.code_hash.as_bytes());
        h.finish()
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        // A poisoned lock only costs an argon2 run.
        self.hits
            .lock()
            .map(|m| m.contains_key(key))
            .unwrap_or(false)
    }

    fn insert(&self, key: [u8; 32]) {
        if let Ok(mut m) = self.hits.lock() {
            // Clearing when full is crude but safe: the worst case is one
            // argon2 run per active code and distinct secret.
            if m.len() >= self.capacity {
                m.clear();
            }
            m.insert(key, ());
        }
    }

    pub fn len(&self) -> usize {
        self.hits.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn argon2_accepts(presented: &str, code: &AccessCode) -> bool {
    match PasswordHash::new(&code.code_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(presented.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::warn!(access_code = code.id, error = %e, "unparsable access code hash");
            false
        }
    }
}

/// Whether any enabled access code could authenticate a request on
/// `profile` (the candidates `find_match` would try, where the profile is
/// enabled for their place); no secret is compared.
pub fn any_usable(conn: &mut PgConnection, profile: &Profile) -> Result<bool, StoreError> {
    for code in access_codes::candidates_for_profile(conn, profile.id)? {
        if profiles::is_enabled_for(conn, profile.id, code.organization_id, code.department_id)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The enabled access code that `presented` matches for `profile`, if any,
/// and only where the profile is enabled for the code's organization or
/// department.
pub fn find_match(
    conn: &mut PgConnection,
    cache: &VerifyCache,
    presented: &str,
    profile: &Profile,
) -> Result<Option<AccessCode>, StoreError> {
    let presented = presented.trim();
    let presented_sha = openssl::sha::sha256(presented.as_bytes());
    for code in access_codes::candidates_for_profile(conn, profile.id)? {
        let key = VerifyCache::key(&presented_sha, &code);
        let ok = cache.contains(&key) || {
            let ok = argon2_accepts(presented, &code);
            if ok {
                cache.insert(key);
            }
            ok
        };
        if ok
            && profiles::is_enabled_for(conn, profile.id, code.organization_id, code.department_id)?
        {
            return Ok(Some(code));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn code(id: i64, hash: &str) -> AccessCode {
        AccessCode {
            id,
            organization_id: 1,
            department_id: None,
            profile_id: None,
            label: "t".into(),
            code_hash: hash.into(),
            enabled: true,
            created_by: "t".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn cache_key_changes_with_code_version_and_presented_bytes() {
        let a = code(1, "h1");
        let mut b = a.clone();
        b.updated_at += chrono::Duration::seconds(1);
        let s1 = openssl::sha::sha256(b"one");
        let s2 = openssl::sha::sha256(b"two");
        assert_ne!(VerifyCache::key(&s1, &a), VerifyCache::key(&s1, &b));
        assert_ne!(VerifyCache::key(&s1, &a), VerifyCache::key(&s2, &a));
        assert_ne!(
            VerifyCache::key(&s1, &a),
            VerifyCache::key(&s1, &code(2, "h1"))
        );
        assert_ne!(
            VerifyCache::key(&s1, &a),
            VerifyCache::key(&s1, &code(1, "h2"))
        );
    }

    #[test]
    fn cache_is_bounded() {
        let c = VerifyCache::new(2);
        c.insert([1; 32]);
        c.insert([2; 32]);
        c.insert([3; 32]);
        assert!(c.len() <= 2);
        assert!(c.contains(&[3; 32]));
    }

    #[test]
    fn argon2_accepts_only_the_right_code() {
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        let c = code(1, &hash);
        assert!(argon2_accepts("correct horse battery", &c));
        assert!(!argon2_accepts("correct horse batterx", &c));
        assert!(!argon2_accepts("x", &code(1, "not a phc string")));
    }
}

//! Access codes from the console: created and disabled or enabled by any
//! officer for an organization or department in its scope. Hashing, the
//! row and its audit entry are `challenge::access_codes`'s; this adds the
//! scope and the per-field refusals. The code itself is never returned.
//!
//! An officer may also have a code it types checked (to embed it in a
//! configuration profile): that check is the same argon2 verification a
//! device's enrollment runs, so it is limited like one. Failures count
//! against the officer in the failed-attempt gate (`challenge::gate`,
//! counted in PostgreSQL, keyed by officer), every check is audited, and
//! only places the officer holds may be named, a department only inside
//! its own organization.

use chrono::Utc;
use diesel::pg::PgConnection;
use diesel::Connection;

use super::{check_places, Actor, AdminError, Place, Refusals};
use crate::challenge::access_codes::{self as codes, NewCode, MIN_LEN};
use crate::challenge::gate::Gate;
use crate::challenge::ChallengeError;
use crate::store::access_codes::{self as store, AccessCode};
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::{attempts, profiles};

/// What an officer asks for.
pub struct CodeDraft<'a> {
    pub place: Place,
    /// Restrict to one profile (its stable ID); `None`: any profile.
    pub profile: Option<&'a str>,
    pub label: &'a str,
    pub code: &'a str,
}

impl std::fmt::Debug for CodeDraft<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeDraft")
            .field("place", &self.place)
            .field("profile", &self.profile)
            .field("label", &self.label)
            .field("code", &"<redacted>")
            .finish()
    }
}

/// Codes in the officer's scope, oldest first.
pub fn listing(conn: &mut PgConnection, who: &Actor<'_>) -> Result<Vec<AccessCode>, AdminError> {
    Ok(store::list(conn)?
        .into_iter()
        .filter(|c| who.scope.allows(c.organization_id, c.department_id))
        .collect())
}

pub fn create(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    d: &CodeDraft<'_>,
) -> Result<AccessCode, AdminError> {
    let (org, dept) = d.place;
    if !who.scope.allows(org, dept) {
        return Err(AdminError::Forbidden);
    }
    let mut refusals = Refusals::default();
    let label = d.label.trim();
    if label.is_empty() || label.chars().count() > 200 {
        refusals.add("label", "label must be 1–200 characters");
    }
    if d.code.trim().chars().count() < MIN_LEN {
        refusals.add(
            "code",
            format!("an access code needs at least {MIN_LEN} characters"),
        );
    }
    check_places(conn, &[d.place], "place", &mut refusals)?;
    let profile = d.profile.map(str::trim).filter(|p| !p.is_empty());
    if let Some(pid) = profile {
        match profiles::by_profile_id(conn, pid)? {
            None => refusals.add("profile", format!("unknown profile '{pid}'")),
            // A code only authenticates where its profile is enabled
            // (`find_match`); refuse one that could never work.
            Some(p) if !profiles::is_enabled_for(conn, p.id, org, dept)? => refusals.add(
                "profile",
                format!("profile '{pid}' is not enabled for this organization or department"),
            ),
            Some(_) => {}
        }
    }
    refusals.finish()?;
    codes::create(
        conn,
        &NewCode {
            organization_id: org,
            department_id: dept,
            profile,
            label,
            code: d.code,
            actor: who.username,
        },
    )
    .map_err(from_challenge)
}

/// Disable (devices presenting it are refused at once) or enable again.
pub fn set_enabled(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    id: i64,
    enabled: bool,
) -> Result<AccessCode, AdminError> {
    let row = store::by_id(conn, id)?;
    // Out of scope looks like absent, as for requests.
    if !who.scope.allows(row.organization_id, row.department_id) {
        return Err(AdminError::NotFound);
    }
    if row.enabled == enabled {
        return Err(AdminError::Conflict(format!(
            "access code {id} is already {}",
            if enabled { "enabled" } else { "disabled" }
        )));
    }
    codes::set_enabled(conn, id, enabled, who.username).map_err(from_challenge)
}

/// What checking a typed access code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// An enabled code of this organization that the profile accepts.
    Matched,
    /// No such code (a failure counted against the officer).
    NoMatch,
    /// The officer has used up its failed attempts; nothing was checked.
    Throttled,
}

impl CodeCheck {
    fn outcome(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::NoMatch => "no match",
            Self::Throttled => "throttled",
        }
    }
}

/// The gate's key for an officer's failures: not an address, so it
/// neither shares nor spends a SCEP client's budget.
fn officer_key(officer_id: i64) -> String {
    format!("officer:{officer_id}")
}

/// Check `code` as an access code of the place's organization for
/// `profile`, as officer `officer_id` (`who`) typed it. `Forbidden` when
/// the place is not the officer's (a department counts only in its own
/// organization); `NotFound` for an unknown profile. The check, the
/// failure count and the audit entry are one transaction.
pub fn check_typed(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    officer_id: i64,
    gate: &Gate,
    profile_id: &str,
    place: Place,
    code: &str,
) -> Result<CodeCheck, AdminError> {
    let (org, dept) = place;
    conn.transaction(|conn| {
        if !who.scope.allows_place(conn, org, dept)? {
            return Err(AdminError::Forbidden);
        }
        let profile = profiles::by_profile_id(conn, profile_id)?.ok_or(AdminError::NotFound)?;
        let key = officer_key(officer_id);
        let (found, failures) = if gate.locked_out(conn, Some(&key))? {
            (CodeCheck::Throttled, None)
        } else {
            // A fresh cache: a code once verified must not skip argon2
            // for the next guess of the same text.
            let cache = codes::VerifyCache::new(1);
            match codes::find_match(conn, &cache, code, &profile)? {
                Some(c) if c.organization_id == org => (CodeCheck::Matched, None),
                _ => {
                    let window = gate.window_start(Utc::now());
                    let n = attempts::record_failure(conn, &key, window)?;
                    (CodeCheck::NoMatch, Some(n))
                }
            }
        };
        audit::record(
            conn,
            &AuditEvent::new(who.username, AuditKind::AccessCodeChecked)
                .target(format!("profile:{}", profile.profile_id))
                .details(serde_json::json!({
                    "outcome": found.outcome(),
                    "failures_in_window": failures,
                }))
                .org(org)
                .dept(dept),
        )?;
        Ok(found)
    })
}

fn from_challenge(e: ChallengeError) -> AdminError {
    match e {
        ChallengeError::Store(s) => s.into(),
        ChallengeError::Invalid(m) => AdminError::refused("code", m),
        e @ (ChallengeError::UnknownOrganization(_) | ChallengeError::WrongDepartment(..)) => {
            AdminError::refused("place", e.to_string())
        }
        e @ ChallengeError::UnknownProfile(_) => AdminError::refused("profile", e.to_string()),
        e => AdminError::Failed(e.to_string()),
    }
}

//! Access codes from the console: created and disabled or enabled by any
//! officer for an organization or department in its scope. Hashing, the
//! row and its audit entry are `challenge::access_codes`'s; this adds the
//! scope and the per-field refusals. The code itself is never returned.

use diesel::pg::PgConnection;

use super::{check_places, Actor, AdminError, Place, Refusals};
use crate::challenge::access_codes::{self as codes, NewCode, MIN_LEN};
use crate::challenge::ChallengeError;
use crate::store::access_codes::{self as store, AccessCode};
use crate::store::profiles;

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

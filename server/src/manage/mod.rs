//! Officer administration of what devices enroll with: device certificate
//! profiles, organization access codes and API keys. Every change is
//! checked here against the acting officer's role and scope — whatever a
//! form offered or a client forged — and audited in the transaction that
//! makes it. The console and the CLI both come through here, so a profile
//! is validated by one set of rules wherever it is made.
//!
//! Who may do what (also in `docs/ARCHITECTURE.md`):
//! * profiles: an MRAO any; an RAO those enabled only for places in its
//!   scope (and at least one); a DRAO none (read-only).
//! * access codes: any officer, for an organization or department in its
//!   scope.
//! * API keys: an MRAO any; an RAO for whole organizations in its scope
//!   (a key acts for whole organizations); a DRAO none.

use crate::store::admins::Role;
use crate::store::queue::Scope;
use crate::store::{orgs, StoreError};

pub mod access_codes;
pub mod api_keys;
pub mod profile_settings;
pub mod profiles;

/// An organization, or one of its departments.
pub type Place = (i64, Option<i64>);

/// The officer making a change.
#[derive(Debug, Clone, Copy)]
pub struct Acting<'a> {
    pub username: &'a str,
    pub role: Role,
    pub scope: &'a Scope,
}

static EVERYTHING: Scope = Scope::All;

impl<'a> Acting<'a> {
    /// The command line: run by whoever holds the data directory and the
    /// database, so it acts with an MRAO's reach.
    pub fn cli(username: &'a str) -> Acting<'a> {
        Acting {
            username,
            role: Role::Mrao,
            scope: &EVERYTHING,
        }
    }

    /// Profiles: an MRAO always; an RAO when every place is in its scope.
    pub fn may_manage_places(&self, places: &[Place]) -> bool {
        match self.role {
            Role::Mrao => true,
            Role::Rao => places.iter().all(|(o, d)| self.scope.allows(*o, *d)),
            Role::Drao => false,
        }
    }

    /// API keys act for whole organizations: an MRAO, or an RAO holding
    /// every one of them.
    pub fn may_manage_organizations(&self, organizations: &[i64]) -> bool {
        match self.role {
            Role::Mrao => true,
            Role::Rao => organizations.iter().all(|o| self.scope.allows(*o, None)),
            Role::Drao => false,
        }
    }

    /// Organizations the officer reaches, wholly or through a department;
    /// `None` means all.
    pub fn reach(&self, conn: &mut diesel::PgConnection) -> Result<Option<Vec<i64>>, StoreError> {
        self.scope.organizations_reached(conn)
    }
}

/// One refused field of a form (named as the store column or form field)
/// and why, in words for the officer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

pub(crate) fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The input is refused; each field with its reason. Nothing changed.
    #[error("{}", summary(.0))]
    Invalid(Vec<FieldError>),
    /// Outside the officer's role or scope. Nothing changed.
    #[error("not allowed for this officer")]
    Forbidden,
    /// Absent, or outside everything the officer may see.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Failed(String),
}

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            e => Self::Store(e),
        }
    }
}

impl From<diesel::result::Error> for ManageError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::from(e).into()
    }
}

/// Check that every place exists and each department belongs to its
/// organization.
pub(crate) fn check_places(
    conn: &mut diesel::PgConnection,
    places: &[Place],
    name: &'static str,
    errors: &mut Vec<FieldError>,
) -> Result<(), StoreError> {
    for (org, dept) in places {
        let ok = match orgs::org_by_id(conn, *org) {
            Ok(_) => match dept {
                Some(d) => match orgs::department_by_id(conn, *d) {
                    Ok(dep) => dep.organization_id == *org,
                    Err(StoreError::NotFound) => false,
                    Err(e) => return Err(e),
                },
                None => true,
            },
            Err(StoreError::NotFound) => false,
            Err(e) => return Err(e),
        };
        if !ok {
            errors.push(field(name, "unknown organization or department"));
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_follow_role_and_scope() {
        let rao_scope = Scope::Limited {
            organizations: vec![1],
            departments: vec![9],
        };
        let rao = Acting {
            username: "r",
            role: Role::Rao,
            scope: &rao_scope,
        };
        assert!(rao.may_manage_places(&[(1, None), (1, Some(3)), (2, Some(9))]));
        assert!(!rao.may_manage_places(&[(1, None), (2, None)]));
        assert!(rao.may_manage_organizations(&[1]));
        assert!(!rao.may_manage_organizations(&[1, 2]));
        let drao = Acting {
            role: Role::Drao,
            ..rao
        };
        assert!(!drao.may_manage_places(&[(2, Some(9))]));
        assert!(!drao.may_manage_organizations(&[1]));
        let cli = Acting::cli("cli");
        assert!(cli.may_manage_places(&[(7, None)]));
        assert!(cli.may_manage_organizations(&[7, 8]));
    }
}

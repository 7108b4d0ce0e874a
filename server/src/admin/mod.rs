//! Officer administration, for the console and the CLI: organizations,
//! their departments and the officers (MRAO, RAO, DRAO); device
//! certificate profiles, organization access codes and API keys. Every
//! change is checked here against the acting officer's role and scope
//! (`rules`) — whatever a form offered or a client forged — and written
//! with its audit entry in one transaction. A refused input comes back as
//! one message per field, so a form reports all its faults at once.
//!
//! Who may do what (also in `docs/ARCHITECTURE.md`):
//! * organizations: an MRAO; departments: an MRAO, or an RAO holding the
//!   organization; officers: at the actor's level or below and inside its
//!   scope (`rules`).
//! * profiles: an MRAO any; an RAO those enabled only for places in its
//!   scope (and at least one); a DRAO none (read-only).
//! * access codes: any officer, for an organization or department in its
//!   scope.
//! * API keys: an MRAO any; an RAO for whole organizations in its scope
//!   (a key acts for whole organizations); a DRAO none.
//!
//! The CLI (`scepd org`, `scepd admin`) stays the operator's unscoped path
//! for the directory; `scepd profile create` comes through here as an
//! MRAO (`Actor::cli`).

use crate::store::{orgs as store_orgs, StoreError};

pub mod access_codes;
pub mod api_keys;
pub mod officers;
pub mod orgs;
pub mod profile_settings;
pub mod profiles;
pub mod rules;
pub mod second_factor;

pub use rules::Actor;

/// An organization, or one of its departments.
pub type Place = (i64, Option<i64>);

/// One refused field of a form (named as the store column or form field)
/// and why, in words for the officer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Why an administrative change was not made. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input is refused; each field with its reason.
    #[error("{}", summary(.0))]
    Refused(Vec<FieldError>),
    /// Seen, but outside the officer's role or scope.
    #[error("not allowed for this officer")]
    Forbidden,
    /// Absent, or outside everything the officer may see
    /// (indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// Not possible in the current state (already disabled, the last
    /// MRAO, ...).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Failed(String),
}

impl AdminError {
    /// One refused field.
    pub fn refused(field_name: &'static str, message: impl Into<String>) -> Self {
        Self::Refused(vec![field(field_name, message)])
    }
}

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            e => Self::Store(e),
        }
    }
}

impl From<diesel::result::Error> for AdminError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::from(e).into()
    }
}

/// Collects field refusals so that a form reports all its faults at once,
/// in the order found.
#[derive(Debug, Default)]
pub(crate) struct Refusals(Vec<FieldError>);

impl Refusals {
    pub(crate) fn add(&mut self, field_name: &'static str, message: impl Into<String>) {
        self.0.push(field(field_name, message));
    }

    /// `value` when `r` holds it; otherwise record the message under `field`.
    pub(crate) fn take<T>(&mut self, field: &'static str, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.add(field, m)).ok()
    }

    pub(crate) fn extend(&mut self, errors: Vec<FieldError>) {
        self.0.extend(errors);
    }

    /// Whether `field` is already refused.
    pub(crate) fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }

    pub(crate) fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    pub(crate) fn finish(self) -> Result<(), AdminError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AdminError::Refused(self.0))
        }
    }
}

/// Check that every place exists and each department belongs to its
/// organization; refuse `name` at the first that does not.
pub(crate) fn check_places(
    conn: &mut diesel::PgConnection,
    places: &[Place],
    name: &'static str,
    refusals: &mut Refusals,
) -> Result<(), StoreError> {
    for (org, dept) in places {
        let ok = match store_orgs::org_by_id(conn, *org) {
            Ok(_) => match dept {
                Some(d) => match store_orgs::department_by_id(conn, *d) {
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
            refusals.add(name, "unknown organization or department");
            return Ok(());
        }
    }
    Ok(())
}

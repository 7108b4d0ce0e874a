//! The RA directory as the console manages it: organizations, their
//! departments and the officers (MRAO, RAO, DRAO), each change checked
//! against the acting officer's role and scope (`rules`) and written with
//! its audit row in one transaction. The CLI (`scepd org`, `scepd admin`)
//! stays the operator's unscoped path.

use crate::store::StoreError;

pub mod officers;
pub mod orgs;
pub mod rules;

pub use rules::Actor;

/// Why a directory change was not made.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Unknown, or outside the actor's sight (indistinguishable on purpose).
    #[error("not found")]
    NotFound,
    /// Seen, but not the actor's to change.
    #[error("forbidden")]
    Forbidden,
    /// The input, field by field: (form field, message for the officer).
    #[error("refused: {0:?}")]
    Refused(Vec<(&'static str, String)>),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(StoreError),
}

impl DirectoryError {
    pub fn refused(field: &'static str, message: impl Into<String>) -> Self {
        Self::Refused(vec![(field, message.into())])
    }
}

impl From<StoreError> for DirectoryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            e => Self::Store(e),
        }
    }
}

impl From<diesel::result::Error> for DirectoryError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::from(e).into()
    }
}

/// Collects field refusals so that a form reports all its faults at once.
#[derive(Debug, Default)]
pub(crate) struct Refusals(Vec<(&'static str, String)>);

impl Refusals {
    pub(crate) fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// `value` when `r` holds it; otherwise record the message under `field`.
    pub(crate) fn take<T>(&mut self, field: &'static str, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.add(field, m)).ok()
    }

    pub(crate) fn finish(self) -> Result<(), DirectoryError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DirectoryError::Refused(self.0))
        }
    }
}

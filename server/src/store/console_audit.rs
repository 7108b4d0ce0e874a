//! The audit log as the RA console shows it: filtered by event kind, actor
//! and date range, keyset paginated newest first (`audit_log_at`,
//! `audit_log_event`, `audit_log_actor`). Who may see which entries is the
//! caller's choice through `only_actor` (officers below MRAO see their own).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::audit::AuditEntry;
use super::queue::Cursor;
use super::schema::audit_log;
use super::StoreError;

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact event name, e.g. `certificate.revoked`.
    pub event: Option<String>,
    /// Exact actor.
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive end.
    pub until: Option<DateTime<Utc>>,
    /// When set, only entries this officer made (applied on top of `actor`).
    pub only_actor: Option<String>,
}

#[derive(Debug)]
pub struct AuditPage {
    pub rows: Vec<AuditEntry>,
    pub next: Option<Cursor>,
}

pub fn list(
    conn: &mut PgConnection,
    f: &AuditFilter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<AuditPage, StoreError> {
    let mut q = audit_log::table.into_boxed();
    if let Some(e) = &f.event {
        q = q.filter(audit_log::event.eq(e.clone()));
    }
    if let Some(a) = &f.actor {
        q = q.filter(audit_log::actor.eq(a.clone()));
    }
    if let Some(a) = &f.only_actor {
        q = q.filter(audit_log::actor.eq(a.clone()));
    }
    if let Some(t) = f.from {
        q = q.filter(audit_log::at.ge(t));
    }
    if let Some(t) = f.until {
        q = q.filter(audit_log::at.lt(t));
    }
    if let Some(c) = after {
        q = q.filter(
            audit_log::at
                .lt(c.created_at)
                .or(audit_log::at.eq(c.created_at).and(audit_log::id.lt(c.id))),
        );
    }
    let mut rows: Vec<AuditEntry> = q
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(limit + 1)
        .select(AuditEntry::as_select())
        .load(conn)?;
    let next = Cursor::cut(&mut rows, limit, |r| (r.at, r.id));
    Ok(AuditPage { rows, next })
}

//! The audit log as the RA console shows it: filtered by event kind, actor
//! and date range, keyset paginated newest first, seen through the
//! officer's `Scope`. An MRAO sees every entry; an RAO the entries of its
//! organizations, a DRAO those of its departments, and either one the
//! entries it made itself (a login, say, concerns no organization),
//! recognised by the officer's id recorded with them, never by the actor
//! name: device events are written under fixed names such as
//! `auto-approve`, for every organization.
//!
//! A limited scope is read as one keyset range scan per organization
//! (`audit_log_org_listing`, or `audit_log_org_event` with an event
//! filter), per department (`audit_log_dept_*` likewise) and for the
//! officer's own entries (`audit_log_officer_*`), each stopping after a page,
//! merged here: an OR of the three would make PostgreSQL either sort every
//! entry of a large organization or walk the whole log.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;

use super::audit::AuditEntry;
use super::queue::{Cursor, Scope};
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
}

/// Who is looking: the scope decides which entries exist for them.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub scope: &'a Scope,
    /// The officer looking (`admins.id`), whose own entries it sees
    /// whatever they concern; None: only the scope's.
    pub officer_id: Option<i64>,
}

#[derive(Debug)]
pub struct AuditPage {
    pub rows: Vec<AuditEntry>,
    pub next: Option<Cursor>,
}

type Boxed<'a> = audit_log::BoxedQuery<'a, Pg>;

/// The user's filters and the page position, without any scope.
fn filtered<'a>(f: &AuditFilter, after: Option<Cursor>) -> Boxed<'a> {
    let mut q = audit_log::table.into_boxed();
    if let Some(e) = &f.event {
        q = q.filter(audit_log::event.eq(e.clone()));
    }
    if let Some(a) = &f.actor {
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
    q
}

/// One query per part of the scope; together they cover exactly the
/// entries `viewer` may see.
fn scoped<'a>(viewer: Viewer<'_>, f: &AuditFilter, after: Option<Cursor>) -> Vec<Boxed<'a>> {
    match viewer.scope {
        Scope::All => vec![filtered(f, after)],
        Scope::Limited {
            organizations,
            departments,
        } => organizations
            .iter()
            .map(|&o| filtered(f, after).filter(audit_log::organization_id.eq(o)))
            .chain(
                departments
                    .iter()
                    .map(|&d| filtered(f, after).filter(audit_log::department_id.eq(d))),
            )
            .chain(
                viewer
                    .officer_id
                    .map(|id| filtered(f, after).filter(audit_log::actor_officer_id.eq(id))),
            )
            .collect(),
    }
}

/// A page of the entries `viewer` may see matching `f`, newest first,
/// after `after`.
pub fn list(
    conn: &mut PgConnection,
    viewer: Viewer<'_>,
    f: &AuditFilter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<AuditPage, StoreError> {
    let mut rows: Vec<AuditEntry> = Vec::new();
    for q in scoped(viewer, f, after) {
        // Each part's own first `limit + 1` rows: the merged page can hold
        // no row that is not among them.
        rows.extend(
            q.order((audit_log::at.desc(), audit_log::id.desc()))
                .limit(limit + 1)
                .select(AuditEntry::as_select())
                .load::<AuditEntry>(conn)?,
        );
    }
    rows.sort_unstable_by_key(|r| std::cmp::Reverse((r.at, r.id)));
    // An entry of my department in my organization, made by me, came
    // back up to three times; ids are unique, so copies are adjacent.
    rows.dedup_by_key(|r| r.id);
    let next = Cursor::cut(&mut rows, limit, |r| (r.at, r.id));
    Ok(AuditPage { rows, next })
}

//! What an RA officer may see and act on, and the request queue as seen
//! through that scope. An MRAO sees everything; an RAO the organizations
//! assigned in `admin_scopes`; a DRAO only its departments. Every console
//! query goes through a `Scope`, and every action re-reads the row through
//! it, so a forged form cannot reach a request outside the officer's scope.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::admins::{Admin, Role};
use super::requests::{EnrollmentRequest, Status};
use super::schema::{admin_scopes, enrollment_requests};
use super::StoreError;

/// The organizations and departments an officer may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Whole organizations plus single departments; both empty means
    /// nothing (fail closed).
    Limited {
        organizations: Vec<i64>,
        departments: Vec<i64>,
    },
}

impl Scope {
    /// The organizations the scope reaches, wholly or through one of its
    /// departments; `None` means all.
    pub fn organizations_reached(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        match self {
            Self::All => Ok(None),
            Self::Limited {
                organizations,
                departments,
            } => {
                let mut ids = organizations.clone();
                for d in departments {
                    ids.push(super::orgs::department_by_id(conn, *d)?.organization_id);
                }
                Ok(Some(ids))
            }
        }
    }

    /// True when a row of `organization_id`/`department_id` is in scope.
    /// The pair is taken as consistent, as a stored row holds it; a pair a
    /// client sent goes through [`Scope::allows_place`], since a
    /// department in scope would otherwise vouch for any organization.
    pub fn allows(&self, organization_id: i64, department_id: Option<i64>) -> bool {
        match self {
            Self::All => true,
            Self::Limited {
                organizations,
                departments,
            } => {
                organizations.contains(&organization_id)
                    || department_id.is_some_and(|d| departments.contains(&d))
            }
        }
    }
}

impl Scope {
    /// [`Scope::allows`] for a place a client named: also the department
    /// (if any) exists and belongs to the organization.
    pub fn allows_place(
        &self,
        conn: &mut PgConnection,
        organization_id: i64,
        department_id: Option<i64>,
    ) -> Result<bool, StoreError> {
        if !self.allows(organization_id, department_id) {
            return Ok(false);
        }
        match department_id {
            None => Ok(true),
            Some(d) => match super::orgs::department_by_id(conn, d) {
                Ok(dep) => Ok(dep.organization_id == organization_id),
                Err(StoreError::NotFound) => Ok(false),
                Err(e) => Err(e),
            },
        }
    }
}

/// The scope of `admin`: from its role and its `admin_scopes` rows. A DRAO
/// row without a department grants nothing: a DRAO never gets a whole
/// organization by a missing value.
pub fn scope_of(conn: &mut PgConnection, admin: &Admin) -> Result<Scope, StoreError> {
    let role = Role::parse(&admin.role);
    if role == Some(Role::Mrao) {
        return Ok(Scope::All);
    }
    let rows: Vec<(i64, Option<i64>)> = admin_scopes::table
        .filter(admin_scopes::admin_id.eq(admin.id))
        .select((admin_scopes::organization_id, admin_scopes::department_id))
        .load(conn)?;
    let mut organizations = Vec::new();
    let mut departments = Vec::new();
    for (org, dept) in rows {
        match (role, dept) {
            (Some(Role::Rao), None) => organizations.push(org),
            (Some(Role::Rao | Role::Drao), Some(d)) => departments.push(d),
            _ => {}
        }
    }
    Ok(Scope::Limited {
        organizations,
        departments,
    })
}

/// Position in the queue (newest first) for keyset pagination: the page
/// after a cursor holds rows strictly older than it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: i64,
}

impl Cursor {
    /// Keyset paging: `rows` were fetched with `LIMIT limit + 1`; keep
    /// `limit` of them and, when there was one more, return the cursor of
    /// the last row kept (its `(created_at, id)` from `key`).
    pub fn cut<T>(
        rows: &mut Vec<T>,
        limit: i64,
        key: impl Fn(&T) -> (DateTime<Utc>, i64),
    ) -> Option<Cursor> {
        if rows.len() as i64 <= limit {
            return None;
        }
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        rows.last().map(|r| {
            let (created_at, id) = key(r);
            Cursor { created_at, id }
        })
    }

    /// `<microseconds since epoch>.<id>`: opaque to users, exact to the row.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at.timestamp_micros(), self.id)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (micros, id) = s.split_once('.')?;
        Some(Cursor {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// Queue filters from the console.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    /// Case-insensitive substring of the common name or subject.
    pub text: Option<String>,
}

/// One page of requests and the cursor of the next page, if any.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<EnrollmentRequest>,
    pub next: Option<Cursor>,
}

type Boxed<'a> = enrollment_requests::BoxedQuery<'a, diesel::pg::Pg>;

fn in_scope<'a>(q: Boxed<'a>, scope: &Scope) -> Boxed<'a> {
    match scope {
        Scope::All => q,
        Scope::Limited {
            organizations,
            departments,
        } => q.filter(
            enrollment_requests::organization_id
                .eq_any(organizations.clone())
                .or(enrollment_requests::department_id
                    .assume_not_null()
                    .eq_any(departments.clone())
                    .and(enrollment_requests::department_id.is_not_null())),
        ),
    }
}

/// Escape LIKE metacharacters so user text matches literally.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A page of requests in scope, newest first, after `after`.
pub fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    filter: &Filter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Page, StoreError> {
    let mut q = in_scope(enrollment_requests::table.into_boxed(), scope);
    if let Some(s) = filter.status {
        q = q.filter(enrollment_requests::status.eq(s.as_str()));
    }
    if let Some(t) = filter.text.as_deref().filter(|t| !t.trim().is_empty()) {
        let p = like_pattern(t.trim());
        // Substring on names (trigram indexes), exact on transactionID.
        q = q.filter(
            enrollment_requests::subject
                .ilike(p.clone())
                .or(enrollment_requests::common_name.assume_not_null().ilike(p))
                .or(enrollment_requests::transaction_id.eq(t.trim().to_string())),
        );
    }
    if let Some(c) = after {
        q = q.filter(
            enrollment_requests::created_at
                .lt(c.created_at)
                .or(enrollment_requests::created_at
                    .eq(c.created_at)
                    .and(enrollment_requests::id.lt(c.id))),
        );
    }
    let mut rows: Vec<EnrollmentRequest> = q
        .order((
            enrollment_requests::created_at.desc(),
            enrollment_requests::id.desc(),
        ))
        .limit(limit + 1)
        .select(EnrollmentRequest::as_select())
        .load(conn)?;
    let next = Cursor::cut(&mut rows, limit, |r| (r.created_at, r.id));
    Ok(Page { rows, next })
}

/// One request, or `NotFound` when it does not exist *or* is outside the
/// scope: an officer cannot even learn that another department's request
/// exists.
pub fn request(
    conn: &mut PgConnection,
    scope: &Scope,
    id: i64,
) -> Result<EnrollmentRequest, StoreError> {
    Ok(in_scope(enrollment_requests::table.into_boxed(), scope)
        .filter(enrollment_requests::id.eq(id))
        .select(EnrollmentRequest::as_select())
        .first(conn)?)
}

/// Number of requests in scope per status (dashboard). One count per
/// state: diesel cannot group a boxed query, and four index scans on
/// `enrollment_requests_queue` are cheap.
pub fn counts(conn: &mut PgConnection, scope: &Scope) -> Result<Vec<(Status, i64)>, StoreError> {
    let mut out = Vec::with_capacity(4);
    for st in [
        Status::Requested,
        Status::Applied,
        Status::Issued,
        Status::Declined,
    ] {
        let n: i64 = in_scope(enrollment_requests::table.into_boxed(), scope)
            .filter(enrollment_requests::status.eq(st.as_str()))
            .count()
            .get_result(conn)?;
        out.push((st, n));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_to_the_microsecond() {
        let c = Cursor {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("garbage"), None);
        assert_eq!(Cursor::decode("1.x"), None);
    }

    #[test]
    fn limited_scope_allows_only_its_organizations_and_departments() {
        let s = Scope::Limited {
            organizations: vec![1],
            departments: vec![7],
        };
        assert!(s.allows(1, None));
        assert!(s.allows(1, Some(3)));
        assert!(s.allows(2, Some(7)));
        assert!(!s.allows(2, None));
        assert!(!s.allows(2, Some(8)));
        let nothing = Scope::Limited {
            organizations: vec![],
            departments: vec![],
        };
        assert!(!nothing.allows(1, None));
    }

    #[test]
    fn like_metacharacters_match_literally() {
        assert_eq!(like_pattern("a%b_c"), "%a\\%b\\_c%");
    }
}

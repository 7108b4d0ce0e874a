//! Challenges as the RA console sees them: the outstanding ones (unused,
//! unrevoked, unexpired) in an officer's scope, never with a value (only
//! hashes are stored), and revocation of one, audited in the same
//! transaction. Minting goes through `challenge::mint`, not here.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;

use super::audit::{self, AuditEvent, AuditKind};
use super::challenges::Challenge;
use super::queue::Scope;
use super::schema::challenges;
use super::StoreError;

type Boxed<'a> = challenges::BoxedQuery<'a, Pg>;

fn in_scope<'a>(q: Boxed<'a>, scope: &Scope) -> Boxed<'a> {
    match scope {
        Scope::All => q,
        Scope::Limited {
            organizations,
            departments,
        } => q.filter(
            challenges::organization_id
                .eq_any(organizations.clone())
                .or(challenges::department_id
                    .assume_not_null()
                    .eq_any(departments.clone())
                    .and(challenges::department_id.is_not_null())),
        ),
    }
}

/// Outstanding challenges in scope, newest first, at most `limit`.
pub fn outstanding(
    conn: &mut PgConnection,
    scope: &Scope,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Challenge>, StoreError> {
    Ok(in_scope(challenges::table.into_boxed(), scope)
        .filter(challenges::used_at.is_null())
        .filter(challenges::revoked_at.is_null())
        .filter(challenges::expires_at.gt(now))
        .order((challenges::created_at.desc(), challenges::id.desc()))
        .limit(limit)
        .select(Challenge::as_select())
        .load(conn)?)
}

/// Revoke an outstanding challenge in scope: `NotFound` when it does not
/// exist or is outside the scope, `Conflict` when it was used, revoked or
/// has expired. Audited with the change.
pub fn revoke(
    conn: &mut PgConnection,
    scope: &Scope,
    id: i64,
    actor: &str,
) -> Result<Challenge, StoreError> {
    conn.transaction(|conn| {
        let found: Challenge = in_scope(challenges::table.into_boxed(), scope)
            .filter(challenges::id.eq(id))
            .select(Challenge::as_select())
            .first(conn)?;
        let now = Utc::now();
        // One conditional UPDATE: a device consuming the challenge at the
        // same moment either wins (and this is a conflict) or loses.
        let revoked: Option<Challenge> = diesel::update(
            challenges::table
                .find(found.id)
                .filter(challenges::used_at.is_null())
                .filter(challenges::revoked_at.is_null())
                .filter(challenges::expires_at.gt(now)),
        )
        .set(challenges::revoked_at.eq(now))
        .returning(Challenge::as_returning())
        .get_result(conn)
        .optional()?;
        let revoked = revoked.ok_or_else(|| {
            StoreError::Conflict(format!("challenge {id} is used, revoked or expired"))
        })?;
        audit::record(
            conn,
            &AuditEvent {
                actor,
                kind: AuditKind::ChallengeRevoked,
                target: Some(format!("challenge:{id}")),
                details: serde_json::json!({
                    "organization_id": revoked.organization_id,
                    "department_id": revoked.department_id,
                    "profile_id": revoked.profile_id,
                }),
                client_ip: None,
                organization_id: Some(revoked.organization_id),
                department_id: revoked.department_id,
            },
        )?;
        Ok(revoked)
    })
}

//! RA officers managed from the console: create (with an initial password,
//! argon2id as `scepd admin create` hashes it), edit role, email and
//! assignments, disable or enable, reset a password. The actor reaches
//! only the officers `rules::may_manage` grants it; anyone else is
//! `NotFound`, so a forged id learns nothing.
//!
//! Disabling an officer or resetting its password ends its sessions in the
//! same transaction; an officer resets passwords only below its own rank
//! (an MRAO any other's), and changes its own with its current one, which
//! ends its other sessions. At least one enabled MRAO always remains: the MRAO
//! rows are locked while a change that could remove the last one is made.

use diesel::pg::PgConnection;
use diesel::Connection;

use super::rules::{self, Actor};
use super::{AdminError, Refusals};
use crate::store::admins::{self, Admin, Grant, Role};
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::{orgs, sessions, StoreError};

/// An officer the actor may manage, with its assignments.
#[derive(Debug, Clone)]
pub struct OfficerInSight {
    pub admin: Admin,
    pub role: Role,
    pub grants: Vec<Grant>,
}

/// What an officer form submits (the password travels separately).
#[derive(Debug, Clone, Copy)]
pub struct OfficerForm<'a> {
    pub role: &'a str,
    pub email: &'a str,
    /// Place values (`org` or `org:dept`) as the form's checkboxes send them.
    pub places: &'a [String],
}

struct Checked {
    role: Role,
    email: Option<String>,
    grants: Vec<Grant>,
}

fn load(conn: &mut PgConnection, admin: Admin) -> Result<Option<OfficerInSight>, AdminError> {
    let Some(role) = Role::parse(&admin.role) else {
        return Ok(None);
    };
    let grants = admins::scopes_of(conn, admin.id)?;
    Ok(Some(OfficerInSight {
        admin,
        role,
        grants,
    }))
}

/// Every officer the actor may manage, by username.
pub fn in_sight(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
) -> Result<Vec<OfficerInSight>, AdminError> {
    let mut out = vec![];
    for admin in admins::list(conn)? {
        if let Some(o) = load(conn, admin)? {
            if rules::may_manage(actor, o.role, &o.grants) {
                out.push(o);
            }
        }
    }
    Ok(out)
}

/// One officer the actor may manage; `NotFound` otherwise.
pub fn officer_in_sight(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
) -> Result<OfficerInSight, AdminError> {
    let admin = admins::by_id(conn, id)?;
    match load(conn, admin)? {
        Some(o) if rules::may_manage(actor, o.role, &o.grants) => Ok(o),
        _ => Err(AdminError::NotFound),
    }
}

/// Check role, email and assignments, reporting every bad field at once.
fn check(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    form: &OfficerForm<'_>,
    refusals: &mut Refusals,
) -> Result<Option<Checked>, AdminError> {
    let role = match Role::parse(form.role.trim()) {
        None => {
            refusals.add("role", "choose a role");
            None
        }
        Some(r) if !rules::may_assign_role(actor, r) => {
            refusals.add("role", "above your own role");
            None
        }
        Some(r) => Some(r),
    };
    let email = refusals.take("email", rules::check_email(form.email));
    let mut grants = vec![];
    let mut scope_ok = true;
    for value in form.places {
        let Some(g) = rules::parse_grant(value) else {
            refusals.add("scope", "unknown organization or department");
            scope_ok = false;
            continue;
        };
        if !rules::may_assign(actor, g) || !exists(conn, g)? {
            // Out of scope and non-existent read alike: the officer learns
            // nothing about places it cannot see.
            refusals.add("scope", "outside your scope");
            scope_ok = false;
            continue;
        }
        grants.push(g);
    }
    grants.sort();
    grants.dedup();
    if let (Some(r), true) = (role, scope_ok) {
        if let Err(m) = rules::grants_fit_role(r, &grants) {
            refusals.add("scope", m);
        }
    }
    Ok(match (role, email) {
        (Some(role), Some(email)) => Some(Checked {
            role,
            email,
            grants,
        }),
        _ => None,
    })
}

/// The organization exists, and the department (if any) belongs to it.
fn exists(conn: &mut PgConnection, g: Grant) -> Result<bool, AdminError> {
    let found = match g.department_id {
        None => orgs::org_by_id(conn, g.organization_id).map(|_| true),
        Some(d) => orgs::department_by_id(conn, d).map(|d| d.organization_id == g.organization_id),
    };
    match found {
        Ok(b) => Ok(b),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn hash(password: &str) -> Result<String, AdminError> {
    crate::bootstrap::hash_password(password)
        .map_err(|e| AdminError::Failed(format!("password hashing failed: {e}")))
}

fn record(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    kind: AuditKind,
    username: &str,
    details: serde_json::Value,
) -> Result<(), AdminError> {
    // Filed under the officer's place when it has one: the organization all
    // its assignments share, and the department when it holds just one.
    let grants = match admins::by_username(conn, username)? {
        Some(a) => admins::scopes_of(conn, a.id)?,
        None => vec![],
    };
    let mut ev = AuditEvent::new(actor.username, kind)
        .target(format!("admin:{username}"))
        .details(details);
    if let Some(first) = grants.first() {
        if grants
            .iter()
            .all(|g| g.organization_id == first.organization_id)
        {
            ev = ev.org(first.organization_id);
            if let [only] = grants.as_slice() {
                ev = ev.dept(only.department_id);
            }
        }
    }
    audit::record(conn, &ev)?;
    Ok(())
}

fn places(grants: &[Grant]) -> Vec<String> {
    grants.iter().map(|g| rules::grant_value(*g)).collect()
}

/// Whether `target` is the last enabled MRAO, so that demoting or
/// disabling it would leave none. Locks the enabled MRAO rows so that two
/// officers demoting each other at once cannot both pass.
fn last_mrao(conn: &mut PgConnection, target: &OfficerInSight) -> Result<bool, AdminError> {
    if target.role != Role::Mrao || !target.admin.enabled {
        return Ok(false);
    }
    let others = admins::lock_enabled_mraos(conn)?
        .into_iter()
        .filter(|id| *id != target.admin.id)
        .count();
    Ok(others == 0)
}

pub fn create(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    username: &str,
    password: &str,
    form: &OfficerForm<'_>,
) -> Result<Admin, AdminError> {
    let mut refusals = Refusals::default();
    let username = refusals.take("username", rules::check_username(username));
    if let Some(u) = &username {
        if admins::by_username(conn, u)?.is_some() {
            refusals.add("username", "already exists");
        }
    }
    refusals.take("password", rules::check_password(password));
    let checked = check(conn, actor, form, &mut refusals)?;
    refusals.finish()?;
    let (Some(username), Some(c)) = (username, checked) else {
        return Err(AdminError::refused("username", "required"));
    };
    let hash = hash(password)?;
    conn.transaction(|conn| {
        let admin = admins::create(conn, &username, &hash, c.role, c.email.as_deref()).map_err(
            |e| match e {
                StoreError::Conflict(_) => AdminError::refused("username", "already exists"),
                e => e.into(),
            },
        )?;
        admins::replace_scopes(conn, admin.id, &c.grants)?;
        record(
            conn,
            actor,
            AuditKind::AdminCreated,
            &admin.username,
            serde_json::json!({
                "role": c.role.as_str(),
                "email": c.email,
                "scope": places(&c.grants),
            }),
        )?;
        Ok(admin)
    })
}

pub fn update(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
    form: &OfficerForm<'_>,
) -> Result<Admin, AdminError> {
    let target = officer_in_sight(conn, actor, id)?;
    let mut refusals = Refusals::default();
    let checked = check(conn, actor, form, &mut refusals)?;
    refusals.finish()?;
    let Some(c) = checked else {
        return Err(AdminError::refused("role", "choose a role"));
    };
    conn.transaction(|conn| {
        if c.role != Role::Mrao && last_mrao(conn, &target)? {
            return Err(AdminError::refused(
                "role",
                "the last enabled MRAO must stay an MRAO",
            ));
        }
        let admin = admins::update_profile(conn, id, c.role, c.email.as_deref())?;
        admins::replace_scopes(conn, id, &c.grants)?;
        record(
            conn,
            actor,
            AuditKind::AdminUpdated,
            &admin.username,
            serde_json::json!({
                "role": c.role.as_str(),
                "previous_role": target.role.as_str(),
                "email": c.email,
                "previous_email": target.admin.email,
                "scope": places(&c.grants),
                "previous_scope": places(&target.grants),
            }),
        )?;
        Ok(admin)
    })
}

pub fn set_enabled(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
    enabled: bool,
) -> Result<Admin, AdminError> {
    let target = officer_in_sight(conn, actor, id)?;
    conn.transaction(|conn| {
        // A button, not a form: what stands in the way is a conflict.
        if !enabled {
            if last_mrao(conn, &target)? {
                return Err(AdminError::Conflict(
                    "the last enabled MRAO cannot be disabled".into(),
                ));
            }
            // Another officer must do it: disabling oneself mid-session
            // is more likely a slip than an intent.
            if target.admin.username == actor.username {
                return Err(AdminError::Conflict(
                    "you cannot disable your own account".into(),
                ));
            }
        }
        let admin = admins::set_enabled(conn, id, enabled)?;
        let ended = if enabled {
            0
        } else {
            sessions::delete_for_admin(conn, id)?
        };
        let kind = if enabled {
            AuditKind::AdminEnabled
        } else {
            AuditKind::AdminDisabled
        };
        record(
            conn,
            actor,
            kind,
            &admin.username,
            serde_json::json!({ "role": target.role.as_str(), "sessions_ended": ended }),
        )?;
        Ok(admin)
    })
}

/// Set another officer's password. Its sessions end with it (whoever held
/// the old password is out). Only above the target's rank, or as an MRAO
/// (`rules::may_reset_password`); one's own goes through
/// [`change_own_password`], which asks for the current one.
pub fn reset_password(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
    password: &str,
) -> Result<Admin, AdminError> {
    rules::check_password(password).map_err(|m| AdminError::refused("password", m))?;
    let hash = hash(password)?;
    conn.transaction(|conn| {
        let target = officer_in_sight(conn, actor, id)?;
        if target.admin.username == actor.username {
            return Err(AdminError::refused(
                "current_password",
                "to change your own password, give your current one",
            ));
        }
        if !rules::may_reset_password(actor, target.role) {
            return Err(AdminError::Forbidden);
        }
        admins::set_password_hash(conn, id, &hash)?;
        let ended = sessions::delete_for_admin(conn, id)?;
        record(
            conn,
            actor,
            AuditKind::AdminPasswordReset,
            &target.admin.username,
            serde_json::json!({ "sessions_ended": ended }),
        )?;
        Ok(target.admin.clone())
    })
}

/// Change the acting officer's own password (`officer_id`, acting in the
/// session `keep_session`): the current password must be given (an open
/// session alone is not enough), and every other session of the officer
/// ends, in case someone else holds the old password.
pub fn change_own_password(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    officer_id: i64,
    keep_session: &[u8],
    current: &str,
    password: &str,
) -> Result<Admin, AdminError> {
    let mut refusals = Refusals::default();
    if current.is_empty() {
        refusals.add("current_password", "give your current password");
    }
    refusals.take("password", rules::check_password(password));
    refusals.finish()?;
    let hash = hash(password)?;
    conn.transaction(|conn| {
        let me = admins::by_id(conn, officer_id)?;
        if me.username != actor.username || !me.enabled {
            return Err(AdminError::NotFound);
        }
        if !password_matches(current, &me.password_hash) {
            return Err(AdminError::refused(
                "current_password",
                "that is not your current password",
            ));
        }
        admins::set_password_hash(conn, officer_id, &hash)?;
        admins::set_must_change_password(conn, officer_id, false)?;
        let ended = sessions::delete_for_admin_except(conn, officer_id, keep_session)?;
        record(
            conn,
            actor,
            AuditKind::AdminPasswordReset,
            &me.username,
            serde_json::json!({ "own": true, "sessions_ended": ended }),
        )?;
        Ok(me)
    })
}

fn password_matches(password: &str, stored: &str) -> bool {
    use argon2::{PasswordHash, PasswordVerifier};
    PasswordHash::new(stored).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

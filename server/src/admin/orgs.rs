//! Organizations and departments through an officer's eyes: what it sees
//! (the organizations its scope reaches, and in each only the departments
//! it holds unless it holds the whole organization) and what it may change
//! (`rules`). Every change is audited in its transaction.
//!
//! A disabled organization or department stays visible and keeps its
//! certificates, but no challenge is minted and no enrollment is filed
//! under it (`challenge::mint`, `enroll`).

use diesel::pg::PgConnection;
use diesel::Connection;

use super::rules::{self, Actor};
use super::AdminError;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::orgs::{self, Department, Organization};
use crate::store::StoreError;

/// An organization and the departments of it the actor sees.
#[derive(Debug, Clone)]
pub struct OrgInSight {
    pub org: Organization,
    pub departments: Vec<Department>,
    /// Whether the actor may rename or disable the organization.
    pub may_edit: bool,
    /// Whether the actor may add, rename or disable its departments.
    pub may_edit_departments: bool,
}

fn sight(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    org: Organization,
) -> Result<Option<OrgInSight>, AdminError> {
    let departments: Vec<Department> = orgs::departments_of(conn, org.id)?
        .into_iter()
        .filter(|d| actor.scope.allows(org.id, Some(d.id)))
        .collect();
    if departments.is_empty() && !actor.scope.allows(org.id, None) {
        return Ok(None);
    }
    Ok(Some(OrgInSight {
        may_edit: rules::may_manage_organizations(actor),
        may_edit_departments: rules::may_manage_departments(actor, org.id),
        org,
        departments,
    }))
}

/// Every organization the actor sees, by name.
pub fn in_sight(conn: &mut PgConnection, actor: &Actor<'_>) -> Result<Vec<OrgInSight>, AdminError> {
    let mut out = vec![];
    for org in orgs::list_orgs(conn)? {
        out.extend(sight(conn, actor, org)?);
    }
    Ok(out)
}

/// One organization, `NotFound` when the actor does not see it.
pub fn org_in_sight(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
) -> Result<OrgInSight, AdminError> {
    let org = orgs::org_by_id(conn, id)?;
    sight(conn, actor, org)?.ok_or(AdminError::NotFound)
}

/// One department with its organization, `NotFound` when out of sight.
pub fn department_in_sight(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
) -> Result<(OrgInSight, Department), AdminError> {
    let dept = orgs::department_by_id(conn, id)?;
    if !actor.scope.allows(dept.organization_id, Some(dept.id)) {
        return Err(AdminError::NotFound);
    }
    Ok((org_in_sight(conn, actor, dept.organization_id)?, dept))
}

fn name(value: &str) -> Result<String, AdminError> {
    rules::check_name(value, 200).map_err(|m| AdminError::refused("name", m))
}

fn taken(e: StoreError) -> AdminError {
    match e {
        StoreError::Conflict(_) => AdminError::refused("name", "already exists"),
        e => e.into(),
    }
}

fn record(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    kind: AuditKind,
    target: String,
    (organization_id, department_id): (i64, Option<i64>),
    details: serde_json::Value,
) -> Result<(), AdminError> {
    audit::record(
        conn,
        &AuditEvent::new(actor.username, kind)
            .target(target)
            .details(details)
            .org(organization_id)
            .dept(department_id),
    )?;
    Ok(())
}

pub fn create_org(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    value: &str,
) -> Result<Organization, AdminError> {
    if !rules::may_manage_organizations(actor) {
        return Err(AdminError::Forbidden);
    }
    let name = name(value)?;
    conn.transaction(|conn| {
        let org = orgs::create_org(conn, &name).map_err(taken)?;
        record(
            conn,
            actor,
            AuditKind::OrganizationCreated,
            format!("organization:{}", org.id),
            (org.id, None),
            serde_json::json!({ "name": org.name }),
        )?;
        Ok(org)
    })
}

pub fn rename_org(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
    value: &str,
) -> Result<Organization, AdminError> {
    let seen = org_in_sight(conn, actor, id)?;
    if !seen.may_edit {
        return Err(AdminError::Forbidden);
    }
    let name = name(value)?;
    conn.transaction(|conn| {
        let org = orgs::rename_org(conn, id, &name).map_err(taken)?;
        record(
            conn,
            actor,
            AuditKind::OrganizationUpdated,
            format!("organization:{id}"),
            (id, None),
            serde_json::json!({ "name": org.name, "previous_name": seen.org.name }),
        )?;
        Ok(org)
    })
}

pub fn set_org_enabled(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
    enabled: bool,
) -> Result<Organization, AdminError> {
    if !org_in_sight(conn, actor, id)?.may_edit {
        return Err(AdminError::Forbidden);
    }
    conn.transaction(|conn| {
        let org = orgs::set_org_enabled(conn, id, enabled)?;
        let kind = if enabled {
            AuditKind::OrganizationEnabled
        } else {
            AuditKind::OrganizationDisabled
        };
        record(
            conn,
            actor,
            kind,
            format!("organization:{id}"),
            (id, None),
            serde_json::json!({ "name": org.name }),
        )?;
        Ok(org)
    })
}

pub fn create_department(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    organization_id: i64,
    value: &str,
) -> Result<Department, AdminError> {
    if !org_in_sight(conn, actor, organization_id)?.may_edit_departments {
        return Err(AdminError::Forbidden);
    }
    let name = name(value)?;
    conn.transaction(|conn| {
        let dept = orgs::create_department(conn, organization_id, &name).map_err(taken)?;
        record(
            conn,
            actor,
            AuditKind::DepartmentCreated,
            format!("department:{}", dept.id),
            (organization_id, Some(dept.id)),
            serde_json::json!({ "organization_id": organization_id, "name": dept.name }),
        )?;
        Ok(dept)
    })
}

pub fn rename_department(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
    value: &str,
) -> Result<Department, AdminError> {
    let (seen, before) = department_in_sight(conn, actor, id)?;
    if !seen.may_edit_departments {
        return Err(AdminError::Forbidden);
    }
    let name = name(value)?;
    conn.transaction(|conn| {
        let dept = orgs::rename_department(conn, id, &name).map_err(taken)?;
        record(
            conn,
            actor,
            AuditKind::DepartmentUpdated,
            format!("department:{id}"),
            (dept.organization_id, Some(dept.id)),
            serde_json::json!({
                "organization_id": dept.organization_id,
                "name": dept.name,
                "previous_name": before.name,
            }),
        )?;
        Ok(dept)
    })
}

pub fn set_department_enabled(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
    id: i64,
    enabled: bool,
) -> Result<Department, AdminError> {
    if !department_in_sight(conn, actor, id)?.0.may_edit_departments {
        return Err(AdminError::Forbidden);
    }
    conn.transaction(|conn| {
        let dept = orgs::set_department_enabled(conn, id, enabled)?;
        let kind = if enabled {
            AuditKind::DepartmentEnabled
        } else {
            AuditKind::DepartmentDisabled
        };
        record(
            conn,
            actor,
            kind,
            format!("department:{id}"),
            (dept.organization_id, Some(dept.id)),
            serde_json::json!({ "organization_id": dept.organization_id, "name": dept.name }),
        )?;
        Ok(dept)
    })
}

/// Every place the actor may assign to an officer, labelled
/// "Organization" or "Organization / Department", disabled ones marked.
pub fn assignable_places(
    conn: &mut PgConnection,
    actor: &Actor<'_>,
) -> Result<Vec<(crate::store::admins::Grant, String)>, AdminError> {
    use crate::store::admins::Grant;
    let off = |enabled: bool| if enabled { "" } else { " (disabled)" };
    let mut out = vec![];
    for seen in in_sight(conn, actor)? {
        let org = &seen.org;
        let whole = Grant {
            organization_id: org.id,
            department_id: None,
        };
        if rules::may_assign(actor, whole) {
            out.push((whole, format!("{}{}", org.name, off(org.enabled))));
        }
        for d in &seen.departments {
            out.push((
                Grant {
                    organization_id: org.id,
                    department_id: Some(d.id),
                },
                format!("{} / {}{}", org.name, d.name, off(org.enabled && d.enabled)),
            ));
        }
    }
    Ok(out)
}

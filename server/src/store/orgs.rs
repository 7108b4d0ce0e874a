//! Organizations and their departments.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{departments, organizations};
use super::StoreError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = departments)]
pub struct Department {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

pub fn create_org(conn: &mut PgConnection, name: &str) -> Result<Organization, StoreError> {
    Ok(diesel::insert_into(organizations::table)
        .values(organizations::name.eq(name))
        .returning(Organization::as_returning())
        .get_result(conn)?)
}

pub fn org_by_id(conn: &mut PgConnection, id: i64) -> Result<Organization, StoreError> {
    Ok(organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(conn)?)
}

pub fn org_by_name(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Organization>, StoreError> {
    Ok(organizations::table
        .filter(organizations::name.eq(name))
        .select(Organization::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_orgs(conn: &mut PgConnection) -> Result<Vec<Organization>, StoreError> {
    Ok(organizations::table
        .order(organizations::name)
        .select(Organization::as_select())
        .load(conn)?)
}

pub fn create_department(
    conn: &mut PgConnection,
    organization_id: i64,
    name: &str,
) -> Result<Department, StoreError> {
    Ok(diesel::insert_into(departments::table)
        .values((
            departments::organization_id.eq(organization_id),
            departments::name.eq(name),
        ))
        .returning(Department::as_returning())
        .get_result(conn)?)
}

pub fn department_by_id(conn: &mut PgConnection, id: i64) -> Result<Department, StoreError> {
    Ok(departments::table
        .find(id)
        .select(Department::as_select())
        .first(conn)?)
}

pub fn departments_of(
    conn: &mut PgConnection,
    organization_id: i64,
) -> Result<Vec<Department>, StoreError> {
    Ok(departments::table
        .filter(departments::organization_id.eq(organization_id))
        .order(departments::name)
        .select(Department::as_select())
        .load(conn)?)
}

/// Rename an organization; `Conflict` when the name is taken.
pub fn rename_org(
    conn: &mut PgConnection,
    id: i64,
    name: &str,
) -> Result<Organization, StoreError> {
    Ok(diesel::update(organizations::table.find(id))
        .set(organizations::name.eq(name))
        .returning(Organization::as_returning())
        .get_result(conn)?)
}

pub fn set_org_enabled(
    conn: &mut PgConnection,
    id: i64,
    enabled: bool,
) -> Result<Organization, StoreError> {
    Ok(diesel::update(organizations::table.find(id))
        .set(organizations::enabled.eq(enabled))
        .returning(Organization::as_returning())
        .get_result(conn)?)
}

/// Rename a department; `Conflict` when its organization has one so named.
pub fn rename_department(
    conn: &mut PgConnection,
    id: i64,
    name: &str,
) -> Result<Department, StoreError> {
    Ok(diesel::update(departments::table.find(id))
        .set(departments::name.eq(name))
        .returning(Department::as_returning())
        .get_result(conn)?)
}

pub fn set_department_enabled(
    conn: &mut PgConnection,
    id: i64,
    enabled: bool,
) -> Result<Department, StoreError> {
    Ok(diesel::update(departments::table.find(id))
        .set(departments::enabled.eq(enabled))
        .returning(Department::as_returning())
        .get_result(conn)?)
}

/// Whether new enrollments may be filed under this organization and
/// department: both must exist and be enabled.
pub fn accepts_enrollment(
    conn: &mut PgConnection,
    organization_id: i64,
    department_id: Option<i64>,
) -> Result<bool, StoreError> {
    if !org_by_id(conn, organization_id)?.enabled {
        return Ok(false);
    }
    match department_id {
        Some(d) => Ok(department_by_id(conn, d)?.enabled),
        None => Ok(true),
    }
}

//! RA officers (MRAO, RAO, DRAO) and their organization/department scopes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{admin_scopes, admins};
use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Mrao,
    Rao,
    Drao,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mrao => "mrao",
            Self::Rao => "rao",
            Self::Drao => "drao",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mrao" => Some(Self::Mrao),
            "rao" => Some(Self::Rao),
            "drao" => Some(Self::Drao),
            _ => None,
        }
    }
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = admins)]
pub struct Admin {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub email: Option<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

pub fn count(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(admins::table.count().get_result(conn)?)
}

pub fn create(
    conn: &mut PgConnection,
    username: &str,
    password_hash: &str,
    role: Role,
    email: Option<&str>,
) -> Result<Admin, StoreError> {
    Ok(diesel::insert_into(admins::table)
        .values((
            admins::username.eq(username),
            admins::password_hash.eq(password_hash),
            admins::role.eq(role.as_str()),
            admins::email.eq(email),
        ))
        .returning(Admin::as_returning())
        .get_result(conn)?)
}

pub fn by_username(conn: &mut PgConnection, username: &str) -> Result<Option<Admin>, StoreError> {
    Ok(admins::table
        .filter(admins::username.eq(username))
        .select(Admin::as_select())
        .first(conn)
        .optional()?)
}

pub fn add_scope(
    conn: &mut PgConnection,
    admin_id: i64,
    organization_id: i64,
    department_id: Option<i64>,
) -> Result<(), StoreError> {
    diesel::insert_into(admin_scopes::table)
        .values((
            admin_scopes::admin_id.eq(admin_id),
            admin_scopes::organization_id.eq(organization_id),
            admin_scopes::department_id.eq(department_id),
        ))
        .execute(conn)?;
    Ok(())
}

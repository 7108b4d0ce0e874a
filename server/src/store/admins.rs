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
    /// Higher manages lower: MRAO 3, RAO 2, DRAO 1.
    pub fn rank(self) -> u8 {
        match self {
            Self::Mrao => 3,
            Self::Rao => 2,
            Self::Drao => 1,
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
    /// The password was generated at bootstrap: the console accepts only
    /// its change until it is changed.
    pub must_change_password: bool,
    /// The sealed TOTP secret (`admin::second_factor`).
    pub totp_secret: Option<Vec<u8>>,
    /// Set once the officer confirmed the secret with a code.
    pub totp_enabled_at: Option<DateTime<Utc>>,
    /// The last accepted TOTP time step (a code is accepted once).
    pub totp_last_step: Option<i64>,
}

impl Admin {
    pub fn has_second_factor(&self) -> bool {
        self.totp_enabled_at.is_some()
    }
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

pub fn by_id(conn: &mut PgConnection, id: i64) -> Result<Admin, StoreError> {
    Ok(admins::table
        .find(id)
        .select(Admin::as_select())
        .first(conn)?)
}

/// Every officer, by username.
pub fn list(conn: &mut PgConnection) -> Result<Vec<Admin>, StoreError> {
    Ok(admins::table
        .order(admins::username)
        .select(Admin::as_select())
        .load(conn)?)
}

/// An officer's assignments as (organization, department) rows.
pub fn scopes_of(conn: &mut PgConnection, admin_id: i64) -> Result<Vec<Grant>, StoreError> {
    let rows: Vec<(i64, Option<i64>)> = admin_scopes::table
        .filter(admin_scopes::admin_id.eq(admin_id))
        .order((admin_scopes::organization_id, admin_scopes::department_id))
        .select((admin_scopes::organization_id, admin_scopes::department_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(organization_id, department_id)| Grant {
            organization_id,
            department_id,
        })
        .collect())
}

/// One `admin_scopes` row: a whole organization, or one department of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub organization_id: i64,
    pub department_id: Option<i64>,
}

/// Replace an officer's assignments with `grants`.
pub fn replace_scopes(
    conn: &mut PgConnection,
    admin_id: i64,
    grants: &[Grant],
) -> Result<(), StoreError> {
    diesel::delete(admin_scopes::table.filter(admin_scopes::admin_id.eq(admin_id)))
        .execute(conn)?;
    for g in grants {
        add_scope(conn, admin_id, g.organization_id, g.department_id)?;
    }
    Ok(())
}

pub fn update_profile(
    conn: &mut PgConnection,
    id: i64,
    role: Role,
    email: Option<&str>,
) -> Result<Admin, StoreError> {
    Ok(diesel::update(admins::table.find(id))
        .set((admins::role.eq(role.as_str()), admins::email.eq(email)))
        .returning(Admin::as_returning())
        .get_result(conn)?)
}

pub fn set_enabled(conn: &mut PgConnection, id: i64, enabled: bool) -> Result<Admin, StoreError> {
    Ok(diesel::update(admins::table.find(id))
        .set(admins::enabled.eq(enabled))
        .returning(Admin::as_returning())
        .get_result(conn)?)
}

pub fn set_password_hash(
    conn: &mut PgConnection,
    id: i64,
    password_hash: &str,
) -> Result<(), StoreError> {
    diesel::update(admins::table.find(id))
        .set(admins::password_hash.eq(password_hash))
        .execute(conn)?;
    Ok(())
}

/// Whether the officer must change its password before anything else.
pub fn set_must_change_password(
    conn: &mut PgConnection,
    id: i64,
    must: bool,
) -> Result<(), StoreError> {
    diesel::update(admins::table.find(id))
        .set(admins::must_change_password.eq(must))
        .execute(conn)?;
    Ok(())
}

/// Lock the enabled MRAO rows (until the transaction ends) and return
/// their ids: the console refuses any change that would leave none.
pub fn lock_enabled_mraos(conn: &mut PgConnection) -> Result<Vec<i64>, StoreError> {
    Ok(admins::table
        .filter(admins::role.eq(Role::Mrao.as_str()))
        .filter(admins::enabled.eq(true))
        .select(admins::id)
        .for_update()
        .load(conn)?)
}

//! `scepd admin create`: add an RA officer (MRAO, RAO or DRAO) with its
//! organization/department scope. The password comes from an environment
//! variable, never from argv (visible in `ps` and shell history).

use clap::Subcommand;
use diesel::Connection;
use server::bootstrap;
use server::config::Config;
use server::store::audit::{self, AuditEvent, AuditKind};
use server::store::{admins, orgs, StoreError};

use crate::serve::{start, Running};

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create an officer; prints its ID.
    Create {
        username: String,
        /// mrao (everything), rao (its organizations), drao (its departments).
        #[arg(long)]
        role: String,
        /// Organization (ID or name); required for rao and drao.
        #[arg(long)]
        org: Option<String>,
        /// Department (ID or name) within --org; repeatable; required for drao.
        #[arg(long = "department")]
        departments: Vec<String>,
        /// Name of the environment variable holding the password.
        #[arg(long)]
        password_env: String,
        /// Address for notifications (pending requests in scope).
        #[arg(long)]
        email: Option<String>,
    },
}

/// A failure inside the creating transaction: a message for the operator,
/// or the database error that rolled it back.
enum TxError {
    Msg(String),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

impl From<String> for TxError {
    fn from(m: String) -> Self {
        Self::Msg(m)
    }
}

fn org_id(conn: &mut diesel::PgConnection, s: &str) -> Result<i64, String> {
    let found = match s.parse::<i64>() {
        Ok(id) => orgs::org_by_id(conn, id).ok(),
        Err(_) => orgs::org_by_name(conn, s).map_err(|e| e.to_string())?,
    };
    found
        .map(|o| o.id)
        .ok_or_else(|| format!("no organization {s:?}"))
}

fn department_id(conn: &mut diesel::PgConnection, org: i64, s: &str) -> Result<i64, String> {
    orgs::departments_of(conn, org)
        .map_err(|e| e.to_string())?
        .iter()
        .find(|d| d.id.to_string() == s || d.name == s)
        .map(|d| d.id)
        .ok_or_else(|| format!("no department {s:?} in organization {org}"))
}

pub fn admin(cfg: &Config, cmd: AdminCmd) -> Result<(), String> {
    let AdminCmd::Create {
        username,
        role,
        org,
        departments,
        password_env,
        email,
    } = cmd;
    let role = admins::Role::parse(&role).ok_or_else(|| format!("unknown role {role:?}"))?;
    match (role, &org, departments.is_empty()) {
        (admins::Role::Mrao, None, true) => {}
        (admins::Role::Mrao, _, _) => return Err("an MRAO has no --org or --department".into()),
        (_, None, _) => return Err("rao and drao need --org".into()),
        (admins::Role::Drao, Some(_), true) => return Err("a drao needs --department".into()),
        _ => {}
    }
    let password = std::env::var(&password_env)
        .map_err(|_| format!("environment variable {password_env} is not set"))?;
    if password.chars().count() < 12 {
        return Err("the password needs at least 12 characters".into());
    }
    let hash = bootstrap::hash_password(&password).map_err(|e| e.to_string())?;
    let running = start(cfg, None)?;
    let res = (|| {
        let mut conn = running.enroll.pool().get().map_err(|e| e.to_string())?;
        conn.transaction(|conn| -> Result<i64, TxError> {
            let a = admins::create(conn, &username, &hash, role, email.as_deref()).map_err(
                |e| match e {
                    StoreError::Conflict(_) => format!("officer {username:?} already exists"),
                    e => e.to_string(),
                },
            )?;
            let mut event = AuditEvent::new("cli", AuditKind::AdminCreated)
                .target(format!("admin:{username}"))
                .details(serde_json::json!({
                    "role": role.as_str(),
                    "org": org,
                    "departments": departments,
                }));
            if let Some(org) = &org {
                let org = org_id(conn, org)?;
                if departments.is_empty() {
                    admins::add_scope(conn, a.id, org, None).map_err(|e| e.to_string())?;
                }
                let mut ids = Vec::with_capacity(departments.len());
                for d in &departments {
                    let d = department_id(conn, org, d)?;
                    admins::add_scope(conn, a.id, org, Some(d)).map_err(|e| e.to_string())?;
                    ids.push(d);
                }
                // An officer of one department is that department's news.
                event = event.org(org).dept(match ids[..] {
                    [d] => Some(d),
                    _ => None,
                });
            }
            audit::record(conn, &event).map_err(|e| e.to_string())?;
            Ok(a.id)
        })
        .map_err(|e| match e {
            TxError::Msg(m) => m,
            TxError::Db(e) => e.to_string(),
        })
    })();
    let Running { enroll, db, .. } = running;
    drop(enroll);
    if let Some(c) = db.cluster {
        let _ = c.stop();
    }
    println!("{}", res?);
    Ok(())
}

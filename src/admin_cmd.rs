//! `scepd admin create`: add an RA officer (MRAO, RAO or DRAO) with its
//! organization/department scope. The password comes from an environment
//! variable, never from argv (visible in `ps` and shell history).

use clap::Subcommand;
use server::admin::officers::{self, OfficerForm};
use server::admin::Actor;
use server::config::Config;
use server::store::{admins, orgs};

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

pub(crate) fn org_id(conn: &mut diesel::PgConnection, s: &str) -> Result<i64, String> {
    let found = match s.parse::<i64>() {
        Ok(id) => orgs::org_by_id(conn, id).ok(),
        Err(_) => orgs::org_by_name(conn, s).map_err(|e| e.to_string())?,
    };
    found
        .map(|o| o.id)
        .ok_or_else(|| format!("no organization {s:?}"))
}

pub(crate) fn department_id(
    conn: &mut diesel::PgConnection,
    org: i64,
    s: &str,
) -> Result<i64, String> {
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
    let running = start(cfg, server::bootstrap::IdentityOptions::default())?;
    let res = (|| {
        let mut conn = running.enroll.pool().get().map_err(|e| e.to_string())?;
        // Names resolved to the places a console form would send; the
        // officer is then created by the same rules as in the console
        // (username, password, role and scope checked, audited as `cli`).
        let mut places = vec![];
        if let Some(org) = &org {
            let org = org_id(&mut conn, org)?;
            if departments.is_empty() {
                places.push(org.to_string());
            }
            for d in &departments {
                places.push(format!("{org}:{}", department_id(&mut conn, org, d)?));
            }
        }
        let form = OfficerForm {
            role: role.as_str(),
            email: email.as_deref().unwrap_or(""),
            places: &places,
        };
        officers::create(&mut conn, &Actor::cli("cli"), &username, &password, &form)
            .map(|a| a.id)
            .map_err(|e| e.to_string())
    })();
    let Running { enroll, db, .. } = running;
    drop(enroll);
    if let Some(c) = db.cluster {
        let _ = c.stop();
    }
    println!("{}", res?);
    Ok(())
}

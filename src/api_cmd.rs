//! `scepd api-key ...` and `scepd access-code ...`: credentials for MDMs
//! (JSON API keys) and organization access codes. Secrets are printed once
//! to stdout (API keys) or read from the environment/stdin (access codes,
//! so they stay out of shell history and `ps`).

use clap::Subcommand;
use server::api::keys;
use server::challenge::access_codes::{self, NewCode};
use server::config::Config;
use server::store;

use crate::commands::{department_id, org_id, with_db};

#[derive(Subcommand)]
pub enum ApiKeyCmd {
    /// Create an API key for organizations; prints the token once.
    Create {
        /// A name for the key (e.g. the MDM it is for).
        #[arg(long)]
        name: String,
        /// Organizations (ID or name) the key may act for; repeatable.
        #[arg(long = "org", required = true)]
        orgs: Vec<String>,
        /// Profiles (their IDs) the key may use; repeatable [default: all].
        #[arg(long = "profile")]
        profiles: Vec<String>,
        /// Days until the key expires [default: never].
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Requests per minute, across every scepd process [default: 0, no limit].
        #[arg(long, default_value_t = 0)]
        requests_per_minute: u32,
        #[arg(long, default_value = "cli")]
        actor: String,
    },
    /// List keys (never their tokens).
    List,
    /// Revoke a key by ID.
    Revoke {
        id: i64,
        #[arg(long, default_value = "cli")]
        actor: String,
    },
}

#[derive(Subcommand)]
pub enum AccessCodeCmd {
    /// Store an access code (argon2id); the code comes from
    /// SCEPD_ACCESS_CODE or the first line of stdin. Prints its ID.
    Create {
        /// Organization ID or name.
        #[arg(long)]
        org: String,
        /// Department ID or name within the organization.
        #[arg(long)]
        department: Option<String>,
        /// Restrict the code to one profile ID.
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        label: String,
        #[arg(long, env = "SCEPD_ACCESS_CODE", hide_env_values = true)]
        code: Option<String>,
        #[arg(long, default_value = "cli")]
        actor: String,
    },
    /// List access codes (never the codes).
    List,
    /// Disable a code: enrollments with it are refused at once.
    Disable {
        id: i64,
        #[arg(long, default_value = "cli")]
        actor: String,
    },
    /// Enable a disabled code again.
    Enable {
        id: i64,
        #[arg(long, default_value = "cli")]
        actor: String,
    },
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn api_key(cfg: &Config, cmd: ApiKeyCmd) -> Result<(), String> {
    with_db(cfg, |_, conn| match cmd {
        ApiKeyCmd::Create {
            name,
            orgs,
            profiles,
            expires_in_days,
            requests_per_minute,
            actor,
        } => {
            let ids = orgs
                .iter()
                .map(|o| org_id(conn, o))
                .collect::<Result<Vec<_>, _>>()?;
            let limits = keys::KeyLimits {
                expires_at: expires_in_days
                    .map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d))),
                profiles,
                requests_per_minute,
            };
            let created = keys::create(conn, &name, &ids, &limits, &actor).map_err(err)?;
            eprintln!(
                "API key {} created; the token is shown once:",
                created.key.id
            );
            println!("{}", created.token);
            Ok(())
        }
        ApiKeyCmd::List => {
            for k in store::api_keys::list(conn).map_err(err)? {
                let scopes = store::api_keys::scopes(conn, k.id).map_err(err)?;
                let scopes: Vec<String> = scopes.iter().map(i64::to_string).collect();
                let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or_else(|| "never".to_string(), |t| t.to_rfc3339())
                };
                // id, name, organizations, state, expires, requests/min, last used
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    k.id,
                    k.name,
                    scopes.join(","),
                    if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    },
                    at(k.expires_at),
                    k.requests_per_minute,
                    at(k.last_used_at),
                );
            }
            Ok(())
        }
        ApiKeyCmd::Revoke { id, actor } => {
            keys::revoke(conn, id, &actor).map_err(err)?;
            eprintln!("API key {id} revoked");
            Ok(())
        }
    })
}

fn read_code(code: Option<String>) -> Result<String, String> {
    if let Some(c) = code {
        return Ok(c);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(err)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn access_code(cfg: &Config, cmd: AccessCodeCmd) -> Result<(), String> {
    let cmd = match cmd {
        AccessCodeCmd::Create {
            org,
            department,
            profile,
            label,
            code,
            actor,
        } => AccessCodeCmd::Create {
            code: Some(read_code(code)?),
            org,
            department,
            profile,
            label,
            actor,
        },
        other => other,
    };
    with_db(cfg, |_, conn| match cmd {
        AccessCodeCmd::Create {
            org,
            department,
            profile,
            label,
            code,
            actor,
        } => {
            let organization_id = org_id(conn, &org)?;
            let department_id = department
                .map(|d| department_id(conn, organization_id, &d))
                .transpose()?;
            let row = access_codes::create(
                conn,
                &NewCode {
                    organization_id,
                    department_id,
                    profile: profile.as_deref(),
                    label: &label,
                    code: code.as_deref().unwrap_or_default(),
                    actor: &actor,
                },
            )
            .map_err(err)?;
            println!("{}", row.id);
            Ok(())
        }
        AccessCodeCmd::List => {
            for c in store::access_codes::list(conn).map_err(err)? {
                println!(
                    "{}\t{}\torg {}\tdept {}\tprofile {}\t{}",
                    c.id,
                    c.label,
                    c.organization_id,
                    c.department_id.map_or("-".into(), |d| d.to_string()),
                    c.profile_id.map_or("any".into(), |p| p.to_string()),
                    if c.enabled { "enabled" } else { "disabled" }
                );
            }
            Ok(())
        }
        AccessCodeCmd::Disable { id, actor } => {
            access_codes::set_enabled(conn, id, false, &actor).map_err(err)?;
            eprintln!("access code {id} disabled");
            Ok(())
        }
        AccessCodeCmd::Enable { id, actor } => {
            access_codes::set_enabled(conn, id, true, &actor).map_err(err)?;
            eprintln!("access code {id} enabled");
            Ok(())
        }
    })
}

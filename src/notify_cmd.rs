//! `scepd notify`: notification contacts, officers' own mail switch, a test
//! mail, and the undelivered part of the outbox.

use clap::Subcommand;
use server::config::Config;
use server::notify::sender;
use server::store::{admins, notification_contacts as contacts, outbox, profiles, StoreError};

use crate::commands::{org_id, with_db};

#[derive(Subcommand)]
pub enum NotifyCmd {
    /// Notification contacts of organizations and profiles.
    #[command(subcommand)]
    Contact(ContactCmd),
    /// Turn an officer's own pending-request mails on or off.
    OfficerMail {
        username: String,
        /// on or off.
        state: String,
    },
    /// Send a test mail now, bypassing the outbox; fails if SMTP does.
    Test {
        #[arg(long)]
        to: String,
    },
    /// List pending and failed mails, newest first.
    Outbox {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub enum ContactCmd {
    /// Add a contact (or replace its events); prints its ID.
    Add {
        /// Organization (ID or name).
        #[arg(long)]
        org: String,
        /// Profile ID (e.g. "wifi"); without it, every profile of the organization.
        #[arg(long)]
        profile: Option<String>,
        #[arg(long)]
        email: String,
        /// Comma-separated: issued, declined, revoked, expiring.
        #[arg(long, default_value = "issued,declined,revoked,expiring")]
        events: String,
    },
    /// List contacts.
    List,
}

fn parse_events(s: &str) -> Result<Vec<String>, String> {
    let events: Vec<String> = s
        .split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if events.is_empty() {
        return Err("--events needs at least one event".into());
    }
    match events
        .iter()
        .find(|e| !contacts::EVENTS.contains(&e.as_str()))
    {
        Some(bad) => Err(format!(
            "unknown event {bad:?}; choose from {}",
            contacts::EVENTS.join(", ")
        )),
        None => Ok(events),
    }
}

pub fn notify(cfg: &Config, cmd: NotifyCmd) -> Result<(), String> {
    match cmd {
        NotifyCmd::Contact(ContactCmd::Add {
            org,
            profile,
            email,
            events,
        }) => {
            let events = parse_events(&events)?;
            if !email.contains('@') {
                return Err(format!("{email:?} is not an email address"));
            }
            let id = with_db(cfg, |_, conn| {
                let org = org_id(conn, &org)?;
                let profile = match &profile {
                    Some(p) => Some(
                        profiles::by_profile_id(conn, p)
                            .map_err(|e| e.to_string())?
                            .ok_or_else(|| format!("no profile {p:?}"))?
                            .id,
                    ),
                    None => None,
                };
                contacts::upsert(conn, org, profile, &email, &events)
                    .map(|c| c.id)
                    .map_err(|e| e.to_string())
            })?;
            println!("{id}");
            Ok(())
        }
        NotifyCmd::Contact(ContactCmd::List) => with_db(cfg, |_, conn| {
            for c in contacts::list(conn).map_err(|e| e.to_string())? {
                let profile = c.profile_id.map(|p| p.to_string()).unwrap_or("*".into());
                println!(
                    "{}\torg {}\tprofile {}\t{}\t{}",
                    c.id,
                    c.organization_id,
                    profile,
                    c.email,
                    c.events.join(",")
                );
            }
            Ok(())
        }),
        NotifyCmd::OfficerMail { username, state } => {
            let on = match state.as_str() {
                "on" => true,
                "off" => false,
                o => return Err(format!("{o:?} is neither on nor off")),
            };
            with_db(cfg, |_, conn| {
                if admins::by_username(conn, &username)
                    .map_err(|e| e.to_string())?
                    .is_none()
                {
                    return Err(format!("no officer {username:?}"));
                }
                contacts::set_officer_mail(conn, &username, on).map_err(|e| match e {
                    StoreError::NotFound => format!("no officer {username:?}"),
                    e => e.to_string(),
                })
            })
        }
        NotifyCmd::Test { to } => {
            sender::send_test(&cfg.mail, &cfg.public_url, &to).map_err(|e| e.to_string())?;
            println!("test mail sent to {to}");
            Ok(())
        }
        NotifyCmd::Outbox { limit } => with_db(cfg, |_, conn| {
            for r in outbox::undelivered(conn, limit).map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\t{}\t{}\tattempts {}\tnext {}\t{}",
                    r.id,
                    r.status,
                    r.kind,
                    r.recipient,
                    r.attempts,
                    r.next_attempt_at.format("%Y-%m-%d %H:%M:%S"),
                    r.last_error.unwrap_or_default()
                );
            }
            Ok(())
        }),
    }
}

//! `scepd intune`: a profile's Microsoft Intune settings (docs/intune.md),
//! through the same service as the console and the API.

use clap::Subcommand;
use server::admin::rules::Actor;
use server::config::Config;
use server::intune::settings::{self, SettingsForm};

use crate::commands::{err, with_db};

#[derive(Subcommand)]
pub enum IntuneCmd {
    /// Make a profile's challenges Intune's, or change its settings (what
    /// is not given stays as it is).
    Set(Box<SetArgs>),
    /// Show a profile's settings (never the secret) and its last error.
    Show { profile: String },
    /// The profile's challenges are no longer Intune's.
    Remove { profile: String },
    /// Fetch and apply Intune's revocation requests once, for every profile.
    SyncRevocations,
}

#[derive(clap::Args)]
pub struct SetArgs {
    profile: String,
    /// Entra ID tenant: its ID or domain (contoso.onmicrosoft.com).
    #[arg(long)]
    tenant: Option<String>,
    /// The app registration's application (client) ID.
    #[arg(long)]
    client_id: Option<String>,
    /// File holding the app registration's client secret (kept out of the
    /// process list); stored sealed, never shown again.
    #[arg(long)]
    client_secret_file: Option<std::path::PathBuf>,
    /// Organization (name or id) Intune's enrollments are filed under.
    #[arg(long)]
    organization: Option<String>,
    /// Department (name or id) of that organization, if any.
    #[arg(long)]
    department: Option<String>,
    /// Entra ID login authority [default: https://login.microsoftonline.com/].
    #[arg(long)]
    authority_url: Option<String>,
    /// Microsoft Graph, for service discovery [default: https://graph.microsoft.com/].
    #[arg(long)]
    graph_url: Option<String>,
    /// Intune's resource (token scope) [default: https://api.manage.microsoft.com/].
    #[arg(long)]
    intune_resource_url: Option<String>,
    /// Intune's app ID in Entra ID [default: 0000000a-0000-0000-c000-000000000000].
    #[arg(long)]
    intune_app_id: Option<String>,
    /// Use this ScepRequestValidationFEService URL instead of discovering it.
    #[arg(long)]
    validation_url: Option<String>,
    /// Use this PkiConnectorFEService URL instead of discovering it.
    #[arg(long)]
    pki_connector_url: Option<String>,
    /// Fetch and apply Intune's revocation requests [default: true].
    #[arg(long)]
    revocation: Option<bool>,
}

pub fn intune(cfg: &Config, cmd: IntuneCmd) -> Result<(), String> {
    with_db(cfg, |running, conn| {
        let who = Actor::cli("cli");
        match cmd {
            IntuneCmd::Show { profile } => {
                match settings::show(conn, &who, &profile).map_err(err)? {
                    Some(s) => {
                        println!("{}", serde_json::to_string_pretty(&s).map_err(err)?);
                        Ok(())
                    }
                    None => Err(format!("profile {profile} does not use Intune")),
                }
            }
            IntuneCmd::Remove { profile } => {
                settings::remove(conn, &who, &profile).map_err(err)?;
                println!("profile {profile}: challenges are no longer Intune's");
                Ok(())
            }
            IntuneCmd::SyncRevocations => {
                for r in running.enroll.intune_revocation_round().map_err(err)? {
                    println!("{}", serde_json::to_string(&r).map_err(err)?);
                }
                Ok(())
            }
            IntuneCmd::Set(a) => {
                let old = settings::show(conn, &who, &a.profile).map_err(err)?;
                let organization_id = match (&a.organization, &old) {
                    (Some(o), _) => crate::admin_cmd::org_id(conn, o)?,
                    (None, Some(s)) => s.organization_id,
                    (None, None) => return Err("--organization is required".into()),
                };
                let department_id = match (&a.department, &old) {
                    (Some(d), _) => {
                        Some(crate::admin_cmd::department_id(conn, organization_id, d)?)
                    }
                    (None, Some(s)) if a.organization.is_none() => s.department_id,
                    _ => None,
                };
                let client_secret = match &a.client_secret_file {
                    Some(p) => Some(
                        std::fs::read_to_string(p)
                            .map_err(|e| format!("{}: {e}", p.display()))?
                            .trim()
                            .to_string(),
                    ),
                    None => None,
                };
                let keep = |new: &Option<String>, old: Option<&String>| {
                    new.clone().or_else(|| old.cloned())
                };
                let o = old.as_ref();
                let form = SettingsForm {
                    tenant: keep(&a.tenant, o.map(|s| &s.tenant)).unwrap_or_default(),
                    client_id: keep(&a.client_id, o.map(|s| &s.client_id)).unwrap_or_default(),
                    client_secret,
                    organization_id,
                    department_id,
                    authority_url: keep(&a.authority_url, o.map(|s| &s.authority_url)),
                    graph_url: keep(&a.graph_url, o.map(|s| &s.graph_url)),
                    intune_resource_url: keep(
                        &a.intune_resource_url,
                        o.map(|s| &s.intune_resource_url),
                    ),
                    intune_app_id: keep(&a.intune_app_id, o.map(|s| &s.intune_app_id)),
                    validation_url: keep(
                        &a.validation_url,
                        o.and_then(|s| s.validation_url.as_ref()),
                    ),
                    pki_connector_url: keep(
                        &a.pki_connector_url,
                        o.and_then(|s| s.pki_connector_url.as_ref()),
                    ),
                    revocation_enabled: a
                        .revocation
                        .or(o.map(|s| s.revocation_enabled))
                        .unwrap_or(true),
                };
                let sealer = running
                    .enroll
                    .intune()
                    .ok_or("the Intune client is not set up")?
                    .sealer();
                let shown = settings::set(conn, &who, sealer, &a.profile, &form).map_err(err)?;
                println!("{}", serde_json::to_string_pretty(&shown).map_err(err)?);
                Ok(())
            }
        }
    })
}

//! `scepd webhook`: a profile's challenge-validation and notification
//! webhooks (docs/webhooks.md), through the same service as the console
//! and the API, acting as an MRAO. The secret is read from a file or from
//! standard input, never from the command line (where `ps` shows it).

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use server::admin::Actor;
use server::config::Config;
use server::webhook::settings::{self, Draft};

use crate::commands::{err, with_db};

#[derive(Subcommand)]
pub enum WebhookCmd {
    /// Create or change a profile's webhook, e.g.
    /// `scepd webhook set wifi challenge --url https://mdm.example/scep --secret-file s.txt`.
    Set(SetArgs),
    /// Show a profile's webhooks (never the secret), with the last error.
    Show {
        /// Profile ID.
        profile: String,
    },
    /// Remove a profile's webhook.
    Remove {
        profile: String,
        /// `challenge` or `notify`.
        purpose: String,
    },
}

#[derive(Args)]
pub struct SetArgs {
    /// Profile ID.
    profile: String,
    /// `challenge` (validates unknown challenge passwords) or `notify`
    /// (issued, declined, revoked and failed events).
    purpose: String,
    #[arg(long)]
    url: String,
    /// File holding the shared secret (at least 16 characters).
    #[arg(long, conflicts_with = "secret_stdin")]
    secret_file: Option<PathBuf>,
    /// Read the shared secret from standard input.
    #[arg(long)]
    secret_stdin: bool,
    /// Challenge webhooks: the longest a device waits, 100–10000 ms [default: 3000].
    #[arg(long)]
    timeout_ms: Option<i32>,
    /// Challenge webhooks: answer PENDING (an officer decides) rather than
    /// FAILURE when the webhook times out or fails with 5xx.
    #[arg(long)]
    pending_on_error: Option<bool>,
    /// Notification webhooks: events, comma-separated (issued, declined,
    /// revoked, failed) [default: all].
    #[arg(long, value_delimiter = ',')]
    events: Option<Vec<String>>,
    #[arg(long)]
    enabled: Option<bool>,
}

pub fn webhook(cfg: &Config, cmd: WebhookCmd) -> Result<(), String> {
    let actor = Actor::cli("cli");
    match cmd {
        WebhookCmd::Set(a) => {
            let secret = match (&a.secret_file, a.secret_stdin) {
                (Some(p), _) => {
                    Some(std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?)
                }
                (None, true) => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s).map_err(err)?;
                    Some(s)
                }
                (None, false) => None,
            };
            let draft = Draft {
                url: a.url,
                secret,
                timeout_ms: a.timeout_ms,
                pending_on_error: a.pending_on_error,
                events: a.events,
                enabled: a.enabled,
            };
            with_db(cfg, |running, conn| {
                let sealer = running
                    .enroll
                    .webhook_sealer()
                    .ok_or("webhooks are not available")?;
                let shown = settings::set(conn, &actor, &sealer, &a.profile, &a.purpose, &draft)
                    .map_err(err)?;
                eprintln!("{}: {} webhook {}", a.profile, shown.purpose, shown.url);
                Ok(())
            })
        }
        WebhookCmd::Show { profile } => with_db(cfg, |_, conn| {
            let shown = settings::show(conn, &actor, &profile).map_err(err)?;
            println!("{}", serde_json::to_string_pretty(&shown).map_err(err)?);
            Ok(())
        }),
        WebhookCmd::Remove { profile, purpose } => with_db(cfg, |_, conn| {
            settings::remove(conn, &actor, &profile, &purpose).map_err(err)?;
            eprintln!("{profile}: {purpose} webhook removed");
            Ok(())
        }),
    }
}

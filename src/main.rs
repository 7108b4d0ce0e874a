//! `scepd`: the SCEP enrollment service and its administration commands.
//! `serve` runs the HTTP service; the other commands work on the same
//! data directory and database (and may run while `serve` does).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use server::config::Settings;

mod admin_cmd;
mod api_cmd;
mod ca_cmd;
mod commands;
mod console_tls;
mod export;
mod intune_cmd;
mod notify_cmd;
mod serve;
mod webhook_cmd;

/// SCEP (RFC 8894) enrollment service with an RA console.
///
/// Every setting can also come from the environment (SCEPD_*, DATABASE_URL)
/// or a TOML file given with --config; flags win over the environment,
/// which wins over the file.
#[derive(Parser)]
#[command(name = "scepd", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (bootstraps CA, RA, database and first admin on first start).
    Serve,
    /// Bootstrap without serving; optionally import an existing CA.
    Init {
        /// PEM certificate of an existing CA to use instead of generating one;
        /// for an intermediate CA, followed by its issuers up to the root
        /// (each must have issued the one before it).
        #[arg(long, requires = "import_ca_key")]
        import_ca: Option<std::path::PathBuf>,
        /// PEM private key of that CA (PKCS#8 or traditional, encrypted or not).
        #[arg(long, requires = "import_ca")]
        import_ca_key: Option<std::path::PathBuf>,
        /// File holding the passphrase of an encrypted --import-ca-key (a
        /// file keeps it out of the process list and shell history).
        #[arg(long, requires = "import_ca_key")]
        import_ca_key_passphrase_file: Option<std::path::PathBuf>,
    },
    /// One-time challenge passwords.
    #[command(subcommand)]
    Challenge(commands::ChallengeCmd),
    /// Enrollment requests awaiting a decision.
    #[command(subcommand)]
    Request(commands::RequestCmd),
    /// Issued certificates.
    #[command(subcommand)]
    Cert(commands::CertCmd),
    /// The CA: show what the database records, create the rollover CA,
    /// adopt an older database, print the CRL.
    #[command(subcommand)]
    Ca(ca_cmd::CaCmd),
    /// Organizations and departments.
    #[command(subcommand)]
    Org(commands::OrgCmd),
    /// Device certificate profiles.
    #[command(subcommand)]
    Profile(commands::ProfileCmd),
    /// API keys for MDMs using /api/v1.
    #[command(subcommand)]
    ApiKey(api_cmd::ApiKeyCmd),
    /// Organization/department access codes (static enrollment secrets).
    #[command(subcommand)]
    AccessCode(api_cmd::AccessCodeCmd),
    /// RA officers.
    #[command(subcommand)]
    Admin(admin_cmd::AdminCmd),
    /// Email notifications: contacts, test mail, outbox.
    #[command(subcommand)]
    Notify(notify_cmd::NotifyCmd),
    /// Microsoft Intune as a profile's challenge issuer (docs/intune.md).
    #[command(subcommand)]
    Intune(intune_cmd::IntuneCmd),
    /// A profile's challenge-validation and notification webhooks.
    #[command(subcommand)]
    Webhook(webhook_cmd::WebhookCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match cli.settings.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("scepd: {e}");
            return ExitCode::from(2);
        }
    };
    serve::init_logging(&cfg, matches!(cli.command, Command::Serve));
    let res = match cli.command {
        Command::Serve => serve::run(cfg),
        Command::Init {
            import_ca,
            import_ca_key,
            import_ca_key_passphrase_file,
        } => commands::init(
            &cfg,
            import_ca,
            import_ca_key,
            import_ca_key_passphrase_file,
        ),
        Command::Challenge(c) => commands::challenge(&cfg, c),
        Command::Request(c) => commands::request(&cfg, c),
        Command::Cert(c) => commands::cert(&cfg, c),
        Command::Ca(c) => ca_cmd::ca(&cfg, c),
        Command::Org(c) => commands::org(&cfg, c),
        Command::Profile(c) => commands::profile(&cfg, c),
        Command::ApiKey(c) => api_cmd::api_key(&cfg, c),
        Command::AccessCode(c) => api_cmd::access_code(&cfg, c),
        Command::Admin(c) => admin_cmd::admin(&cfg, c),
        Command::Notify(c) => notify_cmd::notify(&cfg, c),
        Command::Intune(c) => intune_cmd::intune(&cfg, c),
        Command::Webhook(c) => webhook_cmd::webhook(&cfg, c),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scepd: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Administration commands that work on the same data directory and
//! database as `serve`. Output meant for scripts (challenges, serials) goes
//! to stdout one item per line; everything else to stderr.

use std::path::PathBuf;

use clap::Subcommand;
use diesel::pg::PgConnection;
use server::admin::{self, profile_settings::ProfileDraft, Actor};
use server::bootstrap;
use server::challenge::{self, MintRequest};
use server::config::Config;
use server::enroll::policy::MIN_CIPHERS;
use server::store::{orgs, profiles, requests};

use crate::serve::{start, Running};

#[derive(Subcommand)]
pub enum ChallengeCmd {
    /// Mint one-time challenges; prints one per line.
    Mint {
        /// Profile ID (as in /scep/<profile-id>).
        #[arg(long, default_value = "default")]
        profile: String,
        /// Organization ID or name.
        #[arg(long, default_value = "Default")]
        org: String,
        /// Department ID or name within the organization.
        #[arg(long)]
        department: Option<String>,
        /// Bind the challenge to this device identity (CN or serialNumber).
        #[arg(long)]
        device: Option<String>,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Lifetime, e.g. 60m, 2h, 1d.
        #[arg(long, default_value = "60m")]
        ttl: String,
    },
}

#[derive(Subcommand)]
pub enum RequestCmd {
    /// List requests in a state (requested, applied, issued, declined).
    List {
        #[arg(long, default_value = "requested")]
        status: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Approve a request: it is issued at once; the device gets it at its next poll.
    Approve {
        id: i64,
        #[arg(long, default_value = "cli")]
        actor: String,
    },
    /// Decline a request with a reason.
    Decline {
        id: i64,
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "cli")]
        actor: String,
    },
}

#[derive(Subcommand)]
pub enum CertCmd {
    /// Revoke a certificate by serial (hex) with an RFC 5280 reason.
    Revoke {
        serial: String,
        /// unspecified, keyCompromise, cACompromise, affiliationChanged,
        /// superseded, cessationOfOperation, certificateHold, privilegeWithdrawn
        #[arg(long, default_value = "unspecified")]
        reason: String,
        #[arg(long, default_value = "cli")]
        actor: String,
    },
}

#[derive(Subcommand)]
pub enum OrgCmd {
    /// Create an organization; prints its ID.
    Create { name: String },
    /// Create a department in an organization; prints its ID.
    AddDepartment { org: String, name: String },
    /// List organizations.
    List,
}

/// The settings of a new device certificate profile.
#[derive(clap::Args)]
pub struct ProfileArgs {
    /// Stable profile ID used in the SCEP URL.
    id: String,
    #[arg(long)]
    name: Option<String>,
    /// auto (issue at once) or manual (officer approves).
    #[arg(long, default_value = "auto")]
    approval: String,
    /// Organizations (ID or name) that may use it.
    #[arg(long = "org", default_value = "Default")]
    orgs: Vec<String>,
    /// device or user.
    #[arg(long, default_value = "device")]
    cert_type: String,
    #[arg(long, default_value_t = 365)]
    validity_days: i32,
    /// Key usage, comma-separated (digitalSignature, keyEncipherment, ...).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "digitalSignature,keyEncipherment"
    )]
    key_usage: Vec<String>,
    /// Extended key usage, comma-separated (clientAuth, serverAuth, emailProtection, codeSigning, ipsecIKE or an OID).
    #[arg(long, value_delimiter = ',', default_value = "clientAuth")]
    eku: Vec<String>,
    /// Subject template, e.g. "CN={{CommonName}},O=Acme"; variables:
    /// {{CommonName}}, {{SerialNumber}}, {{DeviceId}}, {{UserPrincipalName}}.
    #[arg(long, default_value = "CN={{CommonName}}")]
    subject: String,
    /// SAN types a request may carry, comma-separated (dns, email, uri, upn, ip).
    #[arg(long, value_delimiter = ',', default_value = "dns,email,uri,upn,ip")]
    san_types: Vec<String>,
    /// Regular expression every SAN value must match in full.
    #[arg(long)]
    san_pattern: Option<String>,
    #[arg(long, default_value_t = 2048)]
    min_rsa_bits: i32,
    /// EC curves allowed, comma-separated (P-256, P-384); none by default.
    #[arg(long, value_delimiter = ',')]
    ec_curves: Vec<String>,
    /// sha256, sha384 or sha512.
    #[arg(long, default_value = "sha256")]
    hash: String,
    #[arg(long, default_value_t = 30)]
    renewal_window_days: i32,
    /// Active certificates one device (CN) may hold; 0 = no limit.
    #[arg(long, default_value_t = 0)]
    max_active: i32,
    /// Revoke (superseded) the certificate a new one replaces: at the
    /// per-device limit the oldest, instead of refusing; after a renewal,
    /// the renewed one once its successor is delivered.
    #[arg(long)]
    revoke_on_replace: bool,
    /// Do not advertise POSTPKIOperation (clients then use GET).
    #[arg(long)]
    no_post: bool,
    /// Include the CA chain (CA and its issuers) with the certificate in a
    /// SUCCESS reply; some VPN clients need it, others refuse it.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value_t = false)]
    certrep_includes_chain: bool,
    /// A first enrollment must be signed with the key being certified
    /// (RFC 8894 §2.3, strictly).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value_t = false)]
    signer_key_must_match: bool,
    /// On a manual profile, issue a renewal that keeps the certificate's
    /// subject and SANs at once (an auto-approve profile always does).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value_t = false)]
    auto_renew: bool,
    /// A renewal may change the subject or SANs; an officer then decides.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value_t = false)]
    renewal_allows_identity_change: bool,
    /// The weakest envelope cipher accepted. Single DES can be broken
    /// offline: des3 or aes recommended; micromdm's scepclient needs des.
    /// Access codes need DES3 or AES whatever this says.
    #[arg(long, value_name = "des|des3|aes", default_value = "des",
          value_parser = clap::builder::PossibleValuesParser::new(MIN_CIPHERS))]
    min_cipher: String,
    /// Issued certificates carry the CA's CRL distribution point.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value_t = true)]
    crl_dp: bool,
    /// Issued certificates carry the OCSP responder's URL (authorityInfoAccess).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value_t = true)]
    ocsp_url: bool,
    /// Honour the validity a CSR asks for (Windows ValidityPeriod and
    /// ValidityPeriodUnits), up to --validity-days.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value_t = false)]
    honor_requested_validity: bool,
}

/// Settings of an existing profile to change; those not given stay.
#[derive(clap::Args)]
pub struct ProfileSetArgs {
    /// Profile ID (as in /scep/<profile-id>).
    id: String,
    /// Include the CA chain (CA and its issuers) with the certificate in a
    /// SUCCESS reply.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    certrep_includes_chain: Option<bool>,
    /// A first enrollment must be signed with the key being certified.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    signer_key_must_match: Option<bool>,
    /// On a manual profile, issue a renewal that keeps the identity at once.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    auto_renew: Option<bool>,
    /// A renewal may change the subject or SANs; an officer then decides.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    renewal_allows_identity_change: Option<bool>,
    /// Revoke the certificate a new one replaces (per-device limit, renewal).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    revoke_on_replace: Option<bool>,
    /// The weakest envelope cipher accepted (des3 or aes recommended;
    /// micromdm's scepclient needs des).
    #[arg(long, value_name = "des|des3|aes",
          value_parser = clap::builder::PossibleValuesParser::new(MIN_CIPHERS))]
    min_cipher: Option<String>,
    /// Issued certificates carry the CA's CRL distribution point.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    crl_dp: Option<bool>,
    /// Issued certificates carry the OCSP responder's URL (authorityInfoAccess).
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    ocsp_url: Option<bool>,
    /// Honour the validity a CSR asks for, up to the profile's validity.
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    honor_requested_validity: Option<bool>,
}

/// Through `server::admin`, so the CLI and the console apply one set of
/// rules and both audit the creation.
fn create_profile(conn: &mut PgConnection, a: &ProfileArgs) -> CmdResult {
    let name = a.name.clone().unwrap_or_else(|| a.id.clone());
    let mut d = ProfileDraft::defaults(&a.id, &name);
    d.approval_mode = a.approval.clone();
    d.cert_type = a.cert_type.clone();
    d.validity_days = a.validity_days;
    d.key_usage = a.key_usage.clone();
    d.extended_key_usage = a.eku.clone();
    d.subject_template = a.subject.clone();
    d.san_types = a.san_types.clone();
    d.san_pattern = a.san_pattern.clone();
    d.min_rsa_bits = a.min_rsa_bits;
    d.allowed_ec_curves = a.ec_curves.clone();
    d.hash_alg = a.hash.clone();
    d.renewal_window_days = a.renewal_window_days;
    d.max_active_per_device = a.max_active;
    d.revoke_on_replace = a.revoke_on_replace;
    d.allow_post = !a.no_post;
    d.certrep_includes_chain = a.certrep_includes_chain;
    d.signer_key_must_match = a.signer_key_must_match;
    d.auto_renew = a.auto_renew;
    d.renewal_allows_identity_change = a.renewal_allows_identity_change;
    d.min_cipher = a.min_cipher.clone();
    d.include_crl_dp = a.crl_dp;
    d.include_ocsp_url = a.ocsp_url;
    d.honor_requested_validity = a.honor_requested_validity;
    d.places = a
        .orgs
        .iter()
        .map(|o| org_id(conn, o).map(|id| (id, None)))
        .collect::<Result<Vec<_>, _>>()?;
    let created = admin::profiles::create(conn, &Actor::cli("cli"), &d).map_err(err)?;
    println!("{}", created.profile_id);
    Ok(())
}

/// Through `server::admin` as `create_profile`: the same rules, the
/// change audited, the profile's revision raised.
fn set_profile(conn: &mut PgConnection, a: &ProfileSetArgs) -> CmdResult {
    let patch = admin::profile_settings::SettingsPatch {
        certrep_includes_chain: a.certrep_includes_chain,
        signer_key_must_match: a.signer_key_must_match,
        auto_renew: a.auto_renew,
        renewal_allows_identity_change: a.renewal_allows_identity_change,
        revoke_on_replace: a.revoke_on_replace,
        min_cipher: a.min_cipher.clone(),
        include_crl_dp: a.crl_dp,
        include_ocsp_url: a.ocsp_url,
        honor_requested_validity: a.honor_requested_validity,
    };
    if patch.is_empty() {
        return Err("nothing to change: give at least one setting (see --help)".into());
    }
    let p = admin::profiles::change(conn, &Actor::cli("cli"), &a.id, |d| patch.apply(d)).map_err(
        |e| match e {
            admin::AdminError::NotFound => format!("no profile {:?}", a.id),
            e => err(e),
        },
    )?;
    eprintln!(
        "{}: certrep_includes_chain={} signer_key_must_match={} auto_renew={} \
         renewal_allows_identity_change={} revoke_on_replace={} min_cipher={} \
         crl_dp={} ocsp_url={} honor_requested_validity={}",
        p.profile_id,
        p.certrep_includes_chain,
        p.signer_key_must_match,
        p.auto_renew,
        p.renewal_allows_identity_change,
        p.revoke_on_replace,
        p.min_cipher,
        p.include_crl_dp,
        p.include_ocsp_url,
        p.honor_requested_validity
    );
    Ok(())
}

#[derive(Subcommand)]
pub enum ProfileCmd {
    /// Create a device certificate profile and enable it for organizations.
    Create(Box<ProfileArgs>),
    /// Change settings of a profile, e.g.
    /// `scepd profile set wifi --certrep-includes-chain=true`.
    Set(ProfileSetArgs),
    /// List profiles.
    List,
    /// Export an Apple .mobileconfig with a fresh one-time challenge.
    Export(crate::export::ExportArgs),
    /// Set the Wi-Fi/VPN payloads exported with a profile.
    ApplePayloads(crate::export::ApplePayloadsArgs),
}

type CmdResult = Result<(), String>;

pub(crate) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Run `f` with a connection, then stop a private cluster we started.
pub fn with_db<T>(
    cfg: &Config,
    f: impl FnOnce(&Running, &mut PgConnection) -> Result<T, String>,
) -> Result<T, String> {
    let running = start(cfg, bootstrap::IdentityOptions::default())?;
    let res = {
        let mut conn = running.enroll.pool().get().map_err(err)?;
        f(&running, &mut conn)
    };
    let Running { enroll, db, .. } = running;
    drop(enroll);
    if let Some(c) = db.cluster {
        let _ = c.stop();
    }
    res
}

pub fn init(
    cfg: &Config,
    import_ca: Option<PathBuf>,
    import_key: Option<PathBuf>,
    import_key_passphrase: Option<PathBuf>,
) -> CmdResult {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let import = match (import_ca, import_key) {
        (Some(c), Some(k)) => Some(bootstrap::ImportCa {
            cert_pem: read(&c)?,
            key_pem: read(&k)?,
            key_passphrase: import_key_passphrase
                .as_ref()
                .map(|p| {
                    read(p).map(|mut t| {
                        while matches!(t.last(), Some(b'\n' | b'\r')) {
                            t.pop();
                        }
                        t
                    })
                })
                .transpose()?,
        }),
        _ => None,
    };
    let running = start(
        cfg,
        bootstrap::IdentityOptions {
            import,
            adopt_foreign: false,
        },
    )?;
    let auth = running.enroll.authority();
    println!("CA fingerprint (SHA-256): {}", auth.ca.fingerprint());
    if !auth.issuers().is_empty() {
        println!(
            "CA issuers (served with GetCACert): {}",
            auth.issuers().len()
        );
    }
    println!("SCEP URL: {}/scep", cfg.public_url);
    if let Some(c) = running.db.cluster {
        let _ = c.stop();
    }
    Ok(())
}

pub(crate) fn org_id(conn: &mut PgConnection, s: &str) -> Result<i64, String> {
    if let Ok(id) = s.parse::<i64>() {
        return Ok(orgs::org_by_id(conn, id)
            .map_err(|_| format!("no organization {id}"))?
            .id);
    }
    Ok(orgs::org_by_name(conn, s)
        .map_err(err)?
        .ok_or_else(|| format!("no organization named {s:?}"))?
        .id)
}

pub(crate) fn department_id(conn: &mut PgConnection, org: i64, s: &str) -> Result<i64, String> {
    let deps = orgs::departments_of(conn, org).map_err(err)?;
    deps.iter()
        .find(|d| d.id.to_string() == s || d.name == s)
        .map(|d| d.id)
        .ok_or_else(|| format!("no department {s:?} in organization {org}"))
}

pub fn challenge(cfg: &Config, cmd: ChallengeCmd) -> CmdResult {
    let ChallengeCmd::Mint {
        profile,
        org,
        department,
        device,
        count,
        ttl,
    } = cmd;
    let ttl = challenge::parse_ttl(&ttl).map_err(err)?;
    with_db(cfg, |_, conn| {
        let org = org_id(conn, &org)?;
        let department = department
            .map(|d| department_id(conn, org, &d))
            .transpose()?;
        let minted = challenge::mint_limited(
            conn,
            &MintRequest {
                profile: &profile,
                organization_id: org,
                department_id: department,
                device_identity: device.as_deref(),
                ttl,
                count,
                actor: "cli",
            },
            cfg.challenge_max_unused,
        )
        .map_err(err)?;
        for m in minted {
            println!("{}", m.secret);
        }
        Ok(())
    })
}

pub fn request(cfg: &Config, cmd: RequestCmd) -> CmdResult {
    with_db(cfg, |running, conn| match cmd {
        RequestCmd::List { status, limit } => {
            let st = requests::Status::parse(&status)
                .ok_or_else(|| format!("unknown status {status:?}"))?;
            for r in requests::list_by_status(conn, st, limit).map_err(err)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    r.id,
                    r.created_at.format("%F %T"),
                    r.transaction_id,
                    r.subject,
                    r.status
                );
            }
            Ok(())
        }
        RequestCmd::Approve { id, actor } => {
            let r = running.enroll.approve(id, &actor).map_err(err)?;
            eprintln!("request {} is {}", r.id, r.status);
            Ok(())
        }
        RequestCmd::Decline { id, reason, actor } => {
            let r = running.enroll.decline(id, &actor, &reason).map_err(err)?;
            eprintln!("request {} is {}", r.id, r.status);
            Ok(())
        }
    })
}

pub fn cert(cfg: &Config, cmd: CertCmd) -> CmdResult {
    let CertCmd::Revoke {
        serial,
        reason,
        actor,
    } = cmd;
    with_db(cfg, |running, _| {
        let out = running
            .enroll
            .revoke(&serial, &reason, &actor)
            .map_err(err)?;
        eprintln!(
            "revoked {} ({})",
            out.certificate.serial, out.certificate.subject
        );
        Ok(())
    })
}

pub fn org(cfg: &Config, cmd: OrgCmd) -> CmdResult {
    with_db(cfg, |_, conn| match cmd {
        OrgCmd::Create { name } => {
            let o = orgs::create_org(conn, &name).map_err(err)?;
            println!("{}", o.id);
            Ok(())
        }
        OrgCmd::AddDepartment { org, name } => {
            let org = org_id(conn, &org)?;
            let d = orgs::create_department(conn, org, &name).map_err(err)?;
            println!("{}", d.id);
            Ok(())
        }
        OrgCmd::List => {
            for o in orgs::list_orgs(conn).map_err(err)? {
                println!("{}\t{}", o.id, o.name);
            }
            Ok(())
        }
    })
}

pub fn profile(cfg: &Config, cmd: ProfileCmd) -> CmdResult {
    with_db(cfg, |running, conn| match cmd {
        ProfileCmd::Export(a) => crate::export::export(running, conn, a),
        ProfileCmd::ApplePayloads(a) => crate::export::set_apple_payloads(conn, a),
        ProfileCmd::Create(args) => create_profile(conn, &args),
        ProfileCmd::Set(args) => set_profile(conn, &args),
        ProfileCmd::List => {
            for p in profiles::list(conn).map_err(err)? {
                println!(
                    "{}\t{}\t{}\t{}",
                    p.profile_id,
                    p.name,
                    p.approval_mode,
                    if p.enabled { "enabled" } else { "disabled" }
                );
            }
            Ok(())
        }
    })
}

//! `scepd profile export` (an Apple `.mobileconfig` with a fresh one-time
//! challenge) and `scepd profile apple-payloads` (the Wi-Fi and VPN
//! payloads exported with a profile).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Args;
use diesel::pg::PgConnection;
use server::challenge;
use server::mobileconfig::{self, ChallengeChoice, ExportRequest, SubjectAltName};
use server::store::{apple_payloads, profiles};

use crate::commands::{department_id, org_id};
use crate::serve::Running;

#[derive(Args)]
pub struct ExportArgs {
    /// Profile ID (as in /scep/<profile-id>).
    #[arg(long, default_value = "default")]
    profile: String,
    /// Organization ID or name.
    #[arg(long, default_value = "Default")]
    org: String,
    /// Department ID or name within the organization.
    #[arg(long)]
    department: Option<String>,
    /// The device's identity: fills the profile's subject template and
    /// binds the challenge to it.
    #[arg(long)]
    device: Option<String>,
    /// Lifetime of the minted challenge, e.g. 60m, 2h, 7d (at most 30d).
    #[arg(long, default_value = "7d")]
    ttl: String,
    /// Embed the access code in this file instead of minting a challenge.
    #[arg(long)]
    access_code_file: Option<PathBuf>,
    /// Write the XML property list without a CMS signature.
    #[arg(long)]
    unsigned: bool,
    #[arg(long = "san-dns")]
    san_dns: Vec<String>,
    #[arg(long = "san-email")]
    san_email: Vec<String>,
    #[arg(long = "san-uri")]
    san_uri: Vec<String>,
    #[arg(long = "san-upn")]
    san_upn: Vec<String>,
    /// Reverse-DNS prefix of PayloadIdentifier (default: from the public URL).
    #[arg(long)]
    identifier_prefix: Option<String>,
    /// When the device removes the profile (RFC 3339), e.g. 2027-01-01T00:00:00Z.
    #[arg(long)]
    removal_date: Option<String>,
    /// Output file (mode 0600: it holds the challenge); `-` for stdout.
    #[arg(short = 'o', long)]
    out: PathBuf,
    /// Export even though the public URL is a loopback address that
    /// devices cannot reach (for tests on this machine).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct ApplePayloadsArgs {
    /// Profile ID.
    profile: String,
    /// SSID of a WPA2/WPA3-Enterprise network joined with EAP-TLS.
    #[arg(long)]
    wifi_ssid: Option<String>,
    #[arg(long)]
    wifi_hidden: bool,
    /// WPA2 (also joins WPA3) or WPA3.
    #[arg(long, default_value = "WPA2")]
    wifi_encryption: String,
    /// RADIUS server certificate name the device trusts (repeatable).
    #[arg(long = "wifi-trusted-server-name")]
    wifi_trusted_server_names: Vec<String>,
    /// Name of an IKEv2 VPN shown on the device.
    #[arg(long)]
    vpn_name: Option<String>,
    #[arg(long, requires = "vpn_remote_identifier")]
    vpn_remote_address: Option<String>,
    #[arg(long, requires = "vpn_remote_address")]
    vpn_remote_identifier: Option<String>,
    /// Default: the device certificate's CN.
    #[arg(long)]
    vpn_local_identifier: Option<String>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn export(running: &Running, conn: &mut PgConnection, a: ExportArgs) -> Result<(), String> {
    // Before anything is minted: such a profile only sends devices to themselves.
    if let Some(reason) =
        server::public_url::unreachable_reason(&running.enroll.authority().public_url)
    {
        if !a.force {
            return Err(format!("refusing to export: {reason} (or pass --force)"));
        }
        eprintln!("warning: {reason}");
    }
    let org = org_id(conn, &a.org)?;
    let department = a
        .department
        .as_deref()
        .map(|d| department_id(conn, org, d))
        .transpose()?;
    let code = match &a.access_code_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let choice = match &code {
        Some(c) => ChallengeChoice::AccessCode(c),
        None => ChallengeChoice::Mint {
            ttl: challenge::parse_ttl(&a.ttl).map_err(err)?,
        },
    };
    let removal_date = a
        .removal_date
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| format!("bad --removal-date {s:?}: {e}"))
        })
        .transpose()?;
    let signer = if a.unsigned {
        None
    } else {
        Some(
            mobileconfig::ensure_signer(
                &running.data,
                &running.enroll.authority().ca,
                &running.key_passphrase,
            )
            .map_err(err)?,
        )
    };
    let exported = mobileconfig::export_mobileconfig(
        conn,
        &running.enroll,
        signer.as_ref(),
        &ExportRequest {
            profile: &a.profile,
            organization_id: org,
            department_id: department,
            device_identity: a.device.as_deref(),
            challenge: choice,
            subject_alt_name: SubjectAltName {
                dns: a.san_dns,
                rfc822: a.san_email,
                uri: a.san_uri,
                nt_principal: a.san_upn,
            },
            identifier_prefix: a.identifier_prefix.as_deref(),
            removal_date,
            signed: !a.unsigned,
            actor: "cli",
        },
    )
    .map_err(err)?;
    if a.out.as_os_str() == "-" {
        std::io::stdout().write_all(&exported.bytes).map_err(err)?;
    } else {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&a.out)
            .map_err(|e| format!("{}: {e}", a.out.display()))?;
        f.write_all(&exported.bytes)
            .map_err(|e| format!("{}: {e}", a.out.display()))?;
    }
    eprintln!(
        "wrote {} profile {} ({} bytes)",
        if exported.signed {
            "signed"
        } else {
            "unsigned"
        },
        exported.payload_identifier,
        exported.bytes.len()
    );
    Ok(())
}

pub fn set_apple_payloads(conn: &mut PgConnection, a: ApplePayloadsArgs) -> Result<(), String> {
    let profile = profiles::by_profile_id(conn, &a.profile)
        .map_err(err)?
        .ok_or_else(|| format!("no profile {:?}", a.profile))?;
    if a.wifi_encryption != "WPA2" && a.wifi_encryption != "WPA3" {
        return Err(format!(
            "--wifi-encryption must be WPA2 or WPA3, not {:?}",
            a.wifi_encryption
        ));
    }
    let mut p = apple_payloads::ApplePayloads::none(profile.id);
    p.wifi_ssid = a.wifi_ssid;
    p.wifi_hidden = a.wifi_hidden;
    p.wifi_encryption = a.wifi_encryption;
    p.wifi_trusted_server_names = a.wifi_trusted_server_names;
    p.vpn_name = a.vpn_name;
    p.vpn_remote_address = a.vpn_remote_address;
    p.vpn_remote_identifier = a.vpn_remote_identifier;
    p.vpn_local_identifier = a.vpn_local_identifier;
    apple_payloads::upsert(conn, &p).map_err(err)?;
    eprintln!(
        "updated the Apple payloads of profile {}",
        profile.profile_id
    );
    Ok(())
}

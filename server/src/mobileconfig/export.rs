//! The export service: reads the profile, organization and Apple payload
//! settings, mints the one-time challenge (RFC 8894 §2.3, audited by
//! `challenge::mint`) and builds and signs the profile. Everything that can
//! be refused is checked before a challenge is minted.

use chrono::{DateTime, Duration, Utc};
use diesel::pg::PgConnection;
use openssl::nid::Nid;

use super::{
    apple_key_usage, apple_keysize, build, identifier_prefix, payload_identifier, sign,
    subject_from_template, ExportParams, MobileconfigError, ProfileSigner, Retries, SubjectAltName,
    VpnSettings, WifiSettings,
};
use crate::challenge::{self, MintRequest};
use crate::enroll::Enroll;
use crate::store::{apple_payloads, orgs, profiles, StoreError};

/// Where the embedded challenge comes from.
#[derive(Clone, Copy)]
pub enum ChallengeChoice<'a> {
    /// A fresh one-time challenge valid for `ttl`, bound to the device
    /// identity when one is given.
    Mint { ttl: Duration },
    /// An access code the administrator chose to embed instead.
    AccessCode(&'a str),
}

impl std::fmt::Debug for ChallengeChoice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mint { ttl } => f.debug_struct("Mint").field("ttl", ttl).finish(),
            Self::AccessCode(_) => f.write_str("AccessCode(<redacted>)"),
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest<'a> {
    /// The profile's stable ID (as in its SCEP URL).
    pub profile: &'a str,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    /// The device's CN/serialNumber: fills the subject template and binds
    /// a minted challenge to it.
    pub device_identity: Option<&'a str>,
    pub challenge: ChallengeChoice<'a>,
    pub subject_alt_name: SubjectAltName,
    /// Reverse-DNS prefix; derived from the public URL when `None`.
    pub identifier_prefix: Option<&'a str>,
    pub removal_date: Option<DateTime<Utc>>,
    pub signed: bool,
    pub actor: &'a str,
}

/// An exported profile. The bytes contain the challenge: hand them to the
/// admin, never log them.
pub struct Exported {
    pub bytes: Vec<u8>,
    pub signed: bool,
    pub payload_identifier: String,
    /// `application/x-apple-aspen-config`, which devices accept signed or not.
    pub content_type: &'static str,
    pub file_name: String,
    /// The minted challenge's row, if one was minted.
    pub challenge_id: Option<i64>,
}

impl std::fmt::Debug for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exported")
            .field("len", &self.bytes.len())
            .field("signed", &self.signed)
            .field("payload_identifier", &self.payload_identifier)
            .field("challenge_id", &self.challenge_id)
            .finish()
    }
}

pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// SubjectAltName types the profile must allow for the values requested.
fn check_sans(allowed: &[String], san: &SubjectAltName) -> Result<(), MobileconfigError> {
    for (kind, values) in [
        ("dns", &san.dns),
        ("email", &san.rfc822),
        ("uri", &san.uri),
        ("upn", &san.nt_principal),
    ] {
        if !values.is_empty() && !allowed.iter().any(|a| a == kind) {
            return Err(MobileconfigError::Invalid(format!(
                "the profile does not allow {kind} subjectAltNames"
            )));
        }
    }
    Ok(())
}

/// Build (and sign, unless asked not to) a profile for one device; mints
/// its challenge last, so a refused export leaves no unused challenge.
pub fn export_mobileconfig(
    conn: &mut PgConnection,
    enroll: &Enroll,
    signer: Option<&ProfileSigner>,
    req: &ExportRequest<'_>,
) -> Result<Exported, MobileconfigError> {
    let profile = profiles::by_profile_id(conn, req.profile)?
        .ok_or_else(|| MobileconfigError::NotFound(format!("profile {}", req.profile)))?;
    if !profile.enabled {
        return Err(MobileconfigError::Invalid(format!(
            "profile {} is disabled",
            profile.profile_id
        )));
    }
    let org = orgs::org_by_id(conn, req.organization_id).map_err(|e| match e {
        StoreError::NotFound => {
            MobileconfigError::NotFound(format!("organization {}", req.organization_id))
        }
        e => e.into(),
    })?;
    if !profiles::is_enabled_for(conn, profile.id, org.id, req.department_id)? {
        return Err(MobileconfigError::Invalid(format!(
            "profile {} is not enabled for this organization or department",
            profile.profile_id
        )));
    }
    if req.signed && signer.is_none() {
        return Err(MobileconfigError::Invalid(
            "no profile-signing identity is loaded".into(),
        ));
    }
    check_sans(&profile.san_types, &req.subject_alt_name)?;
    let subject = subject_from_template(
        &profile.subject_template,
        req.device_identity,
        &req.subject_alt_name,
    )?;
    let keysize = apple_keysize(profile.min_rsa_bits)?;
    let stored = apple_payloads::for_profile(conn, profile.id)?;
    let wifi = stored.as_ref().and_then(|s| {
        s.wifi_ssid.as_ref().map(|ssid| WifiSettings {
            ssid: ssid.clone(),
            hidden: s.wifi_hidden,
            encryption: s.wifi_encryption.clone(),
            trusted_server_names: s.wifi_trusted_server_names.clone(),
        })
    });
    let device_cn = subject
        .iter()
        .find(|(k, _)| k == "CN")
        .map(|(_, v)| v.clone());
    let vpn = match stored.as_ref() {
        Some(s) => match (&s.vpn_remote_address, &s.vpn_remote_identifier) {
            (Some(addr), Some(rid)) => Some(VpnSettings {
                name: s
                    .vpn_name
                    .clone()
                    .unwrap_or_else(|| format!("{} VPN", org.name)),
                remote_address: addr.clone(),
                remote_identifier: rid.clone(),
                local_identifier: s
                    .vpn_local_identifier
                    .clone()
                    .or_else(|| device_cn.clone())
                    .ok_or_else(|| {
                        MobileconfigError::Invalid(
                            "the VPN needs a local identifier: set one or give a device CN".into(),
                        )
                    })?,
            }),
            _ => None,
        },
        None => None,
    };

    let auth = enroll.authority();
    let ca_der = auth.ca.cert_der()?;
    let ca_cn = auth
        .ca
        .subject()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_else(|| "scepd CA".into());
    let prefix = match req.identifier_prefix {
        Some(p) if !p.trim().is_empty() => p.trim().to_string(),
        _ => identifier_prefix(&auth.public_url),
    };
    let scep_url = format!("{}/scep/{}", auth.public_url, profile.profile_id);

    let (secret, challenge_id) = match req.challenge {
        ChallengeChoice::AccessCode(code) => (code.to_string(), None),
        ChallengeChoice::Mint { ttl } => {
            let mut minted = challenge::mint(
                conn,
                &MintRequest {
                    profile: &profile.profile_id,
                    organization_id: org.id,
                    department_id: req.department_id,
                    device_identity: req.device_identity,
                    ttl,
                    count: 1,
                    actor: req.actor,
                },
            )?;
            let m = minted
                .pop()
                .ok_or_else(|| MobileconfigError::Invalid("no challenge was minted".into()))?;
            (m.secret, Some(m.challenge.id))
        }
    };
    if secret.trim().is_empty() {
        return Err(MobileconfigError::Invalid("the challenge is empty".into()));
    }

    let params = ExportParams {
        identifier_prefix: &prefix,
        scep_url: &scep_url,
        profile_id: &profile.profile_id,
        profile_name: &profile.name,
        organization_id: org.id,
        organization_name: &org.name,
        subject: &subject,
        challenge: &secret,
        keysize,
        key_usage: apple_key_usage(&profile.key_usage),
        retries: Retries::for_approval(!profile.auto_approve()),
        ca_der: &ca_der,
        ca_common_name: &ca_cn,
        subject_alt_name: &req.subject_alt_name,
        wifi: wifi.as_ref(),
        vpn: vpn.as_ref(),
        removal_date: req.removal_date,
    };
    let xml = build(&params)?;
    let bytes = match (req.signed, signer) {
        (true, Some(s)) => sign(&xml, s)?,
        _ => xml,
    };
    let file_name = match req.device_identity {
        Some(d) => format!("{}-{}.mobileconfig", profile.profile_id, sanitize(d)),
        None => format!("{}.mobileconfig", profile.profile_id),
    };
    Ok(Exported {
        bytes,
        signed: req.signed,
        payload_identifier: payload_identifier(&prefix, &profile.profile_id, org.id),
        content_type: CONTENT_TYPE,
        file_name,
        challenge_id,
    })
}

/// A device identity made safe for a download file name.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

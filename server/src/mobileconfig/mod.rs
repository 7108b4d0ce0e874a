//! Apple configuration profiles (`.mobileconfig`) that enroll a device with
//! scepd: a `com.apple.security.scep` payload (with a one-time challenge),
//! a `com.apple.security.root` payload with the CA, and optional Wi-Fi
//! (EAP-TLS) and IKEv2 VPN payloads that use the SCEP identity.
//!
//! Keys and types follow Apple's published schema
//! (github.com/apple/device-management, `mdm/profiles/*.yaml`). The XML is
//! written by the `plist` crate; the CMS signature is in [`sign`], the
//! database-backed export (which mints the challenge) in [`export`].

use chrono::{DateTime, Utc};
use plist::{Dictionary, Value};

use crate::ca::CaError;
use crate::challenge::ChallengeError;
use crate::store::StoreError;

mod export;
mod sign;
mod subject;
#[cfg(test)]
mod tests;

pub use export::{export_mobileconfig, ChallengeChoice, ExportRequest, Exported, CONTENT_TYPE};
pub use sign::{ensure_signer, sign, ProfileSigner};
pub use subject::{apple_key_usage, apple_keysize, identifier_prefix, subject_from_template};

#[derive(Debug, thiserror::Error)]
pub enum MobileconfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("cannot write the property list: {0}")]
    Plist(#[from] plist::Error),
    #[error("OpenSSL error: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    KeyStore(#[from] crate::key_store::KeyStoreError),
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl From<diesel::result::Error> for MobileconfigError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(e.into())
    }
}

/// How often a device polls while its request is PENDING (RFC 8894 §3.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    pub count: i64,
    pub delay_secs: i64,
}

impl Retries {
    /// Apple's defaults (3 × 10 s) suit automatic issue. A manual profile
    /// waits for an officer, so the device keeps polling for about four
    /// hours (48 × 5 min) before it gives up.
    pub fn for_approval(manual: bool) -> Self {
        if manual {
            Self {
                count: 48,
                delay_secs: 300,
            }
        } else {
            Self {
                count: 3,
                delay_secs: 10,
            }
        }
    }
}

/// The `SubjectAltName` dictionary of the SCEP payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectAltName {
    pub dns: Vec<String>,
    pub rfc822: Vec<String>,
    pub uri: Vec<String>,
    pub nt_principal: Vec<String>,
}

impl SubjectAltName {
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty()
            && self.rfc822.is_empty()
            && self.uri.is_empty()
            && self.nt_principal.is_empty()
    }
}

/// A WPA2/WPA3-Enterprise network joined with EAP-TLS and the SCEP identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WifiSettings {
    pub ssid: String,
    pub hidden: bool,
    /// Apple's `EncryptionType`: `WPA2` or `WPA3`.
    pub encryption: String,
    /// RADIUS certificate names (`TLSTrustedServerNames`).
    pub trusted_server_names: Vec<String>,
}

/// An IKEv2 VPN authenticated with the SCEP identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnSettings {
    pub name: String,
    pub remote_address: String,
    pub remote_identifier: String,
    pub local_identifier: String,
}

/// Everything one profile file contains.
#[derive(Debug, Clone)]
pub struct ExportParams<'a> {
    /// Reverse-DNS prefix of every PayloadIdentifier, e.g. `com.example`.
    pub identifier_prefix: &'a str,
    pub scep_url: &'a str,
    pub profile_id: &'a str,
    pub profile_name: &'a str,
    pub organization_id: i64,
    pub organization_name: &'a str,
    /// Relative distinguished names in order, e.g. `[("CN", "dev")]`.
    pub subject: &'a [(String, String)],
    pub challenge: &'a str,
    pub keysize: i64,
    /// Apple's bitmask: 1 signing, 4 encryption; 0 leaves it out.
    pub key_usage: i64,
    pub retries: Retries,
    pub ca_der: &'a [u8],
    pub ca_common_name: &'a str,
    pub subject_alt_name: &'a SubjectAltName,
    pub wifi: Option<&'a WifiSettings>,
    pub vpn: Option<&'a VpnSettings>,
    pub removal_date: Option<DateTime<Utc>>,
}

/// The stable top-level PayloadIdentifier: a device replaces an installed
/// profile with the same identifier, so a new download updates it.
pub fn payload_identifier(prefix: &str, profile_id: &str, organization_id: i64) -> String {
    format!(
        "{}.scepd.{profile_id}.{organization_id}",
        prefix.trim_end_matches('.')
    )
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

fn string_array(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

/// Keys every payload carries (Apple's "Payload Dictionary Keys").
fn payload_header(kind: &str, identifier: String, uuid: &str, display: String) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert("PayloadType".into(), kind.into());
    d.insert("PayloadVersion".into(), Value::Integer(1.into()));
    d.insert("PayloadIdentifier".into(), identifier.into());
    d.insert("PayloadUUID".into(), uuid.into());
    d.insert("PayloadDisplayName".into(), display.into());
    d
}

fn scep_payload(p: &ExportParams<'_>, identifier: &str, uuid: &str) -> Dictionary {
    let mut c = Dictionary::new();
    c.insert("URL".into(), p.scep_url.into());
    c.insert("Name".into(), p.profile_id.into());
    // Subject is an array of RDNs, each an array of [OID, value] pairs.
    let subject = p
        .subject
        .iter()
        .map(|(k, v)| {
            Value::Array(vec![Value::Array(vec![
                Value::String(k.clone()),
                Value::String(v.clone()),
            ])])
        })
        .collect();
    c.insert("Subject".into(), Value::Array(subject));
    c.insert("Challenge".into(), p.challenge.into());
    c.insert("Keysize".into(), Value::Integer(p.keysize.into()));
    c.insert("Key Type".into(), "RSA".into());
    if p.key_usage != 0 {
        c.insert("Key Usage".into(), Value::Integer(p.key_usage.into()));
    }
    c.insert("Retries".into(), Value::Integer(p.retries.count.into()));
    c.insert(
        "RetryDelay".into(),
        Value::Integer(p.retries.delay_secs.into()),
    );
    // Apple documents CAFingerprint as the MD5 or SHA-1 hash of the CA
    // certificate (802.1X white paper); SHA-256 is not documented.
    c.insert(
        "CAFingerprint".into(),
        Value::Data(openssl::sha::sha1(p.ca_der).to_vec()),
    );
    if !p.subject_alt_name.is_empty() {
        let mut san = Dictionary::new();
        let san_ref = p.subject_alt_name;
        for (key, values) in [
            ("dNSName", &san_ref.dns),
            ("rfc822Name", &san_ref.rfc822),
            ("uniformResourceIdentifier", &san_ref.uri),
            ("ntPrincipalName", &san_ref.nt_principal),
        ] {
            // Apple takes a string or an array of strings per key.
            match values.as_slice() {
                [] => {}
                [one] => {
                    san.insert(key.into(), one.clone().into());
                }
                many => {
                    san.insert(key.into(), string_array(many));
                }
            }
        }
        c.insert("SubjectAltName".into(), Value::Dictionary(san));
    }
    let mut d = payload_header(
        "com.apple.security.scep",
        format!("{identifier}.scep"),
        uuid,
        format!("{} certificate", p.profile_name),
    );
    d.insert(
        "PayloadDescription".into(),
        "Requests a device certificate by SCEP".into(),
    );
    d.insert("PayloadContent".into(), Value::Dictionary(c));
    d
}

fn root_payload(p: &ExportParams<'_>, identifier: &str, uuid: &str) -> Dictionary {
    let mut d = payload_header(
        "com.apple.security.root",
        format!("{identifier}.root"),
        uuid,
        p.ca_common_name.to_string(),
    );
    d.insert("PayloadCertificateFileName".into(), "ca.cer".into());
    d.insert("PayloadContent".into(), Value::Data(p.ca_der.to_vec()));
    d
}

fn wifi_payload(
    w: &WifiSettings,
    identifier: &str,
    uuid: &str,
    scep_uuid: &str,
    root_uuid: &str,
) -> Dictionary {
    let mut eap = Dictionary::new();
    // 13 = EAP-TLS: the SCEP identity is the credential.
    eap.insert(
        "AcceptEAPTypes".into(),
        Value::Array(vec![Value::Integer(13.into())]),
    );
    eap.insert(
        "PayloadCertificateAnchorUUID".into(),
        Value::Array(vec![root_uuid.into()]),
    );
    if !w.trusted_server_names.is_empty() {
        eap.insert(
            "TLSTrustedServerNames".into(),
            string_array(&w.trusted_server_names),
        );
    }
    let mut d = payload_header(
        "com.apple.wifi.managed",
        format!("{identifier}.wifi"),
        uuid,
        format!("Wi-Fi {}", w.ssid),
    );
    d.insert("SSID_STR".into(), w.ssid.clone().into());
    d.insert("HIDDEN_NETWORK".into(), w.hidden.into());
    d.insert("AutoJoin".into(), true.into());
    d.insert("EncryptionType".into(), w.encryption.clone().into());
    d.insert("PayloadCertificateUUID".into(), scep_uuid.into());
    d.insert("EAPClientConfiguration".into(), Value::Dictionary(eap));
    d
}

fn vpn_payload(v: &VpnSettings, identifier: &str, uuid: &str, scep_uuid: &str) -> Dictionary {
    let mut ike = Dictionary::new();
    ike.insert("RemoteAddress".into(), v.remote_address.clone().into());
    ike.insert(
        "RemoteIdentifier".into(),
        v.remote_identifier.clone().into(),
    );
    ike.insert("LocalIdentifier".into(), v.local_identifier.clone().into());
    ike.insert("AuthenticationMethod".into(), "Certificate".into());
    ike.insert("CertificateType".into(), "RSA".into());
    ike.insert("ExtendedAuthEnabled".into(), Value::Integer(0.into()));
    ike.insert("PayloadCertificateUUID".into(), scep_uuid.into());
    let mut d = payload_header(
        "com.apple.vpn.managed",
        format!("{identifier}.vpn"),
        uuid,
        v.name.clone(),
    );
    d.insert("UserDefinedName".into(), v.name.clone().into());
    d.insert("VPNType".into(), "IKEv2".into());
    d.insert("IKEv2".into(), Value::Dictionary(ike));
    d
}

/// Build the (unsigned) profile as an XML property list.
pub fn build(p: &ExportParams<'_>) -> Result<Vec<u8>, MobileconfigError> {
    if p.scep_url.is_empty() || p.challenge.is_empty() || p.subject.is_empty() {
        return Err(MobileconfigError::Invalid(
            "a profile needs a SCEP URL, a challenge and a subject".into(),
        ));
    }
    let identifier = payload_identifier(p.identifier_prefix, p.profile_id, p.organization_id);
    let scep_uuid = new_uuid();
    let root_uuid = new_uuid();
    let mut content = vec![
        Value::Dictionary(root_payload(p, &identifier, &root_uuid)),
        Value::Dictionary(scep_payload(p, &identifier, &scep_uuid)),
    ];
    if let Some(w) = p.wifi {
        content.push(Value::Dictionary(wifi_payload(
            w,
            &identifier,
            &new_uuid(),
            &scep_uuid,
            &root_uuid,
        )));
    }
    if let Some(v) = p.vpn {
        content.push(Value::Dictionary(vpn_payload(
            v,
            &identifier,
            &new_uuid(),
            &scep_uuid,
        )));
    }
    let mut top = payload_header(
        "Configuration",
        identifier,
        &new_uuid(),
        format!("{} ({})", p.profile_name, p.organization_name),
    );
    top.insert("PayloadOrganization".into(), p.organization_name.into());
    top.insert(
        "PayloadDescription".into(),
        format!(
            "Installs the certificate authority \"{}\" and requests a \"{}\" certificate for this device.",
            p.ca_common_name, p.profile_name
        )
        .into(),
    );
    top.insert("PayloadRemovalDisallowed".into(), false.into());
    if let Some(at) = p.removal_date {
        top.insert(
            "RemovalDate".into(),
            Value::Date(std::time::SystemTime::from(at).into()),
        );
    }
    top.insert("PayloadContent".into(), Value::Array(content));
    let mut out = Vec::new();
    Value::Dictionary(top).to_writer_xml(&mut out)?;
    Ok(out)
}

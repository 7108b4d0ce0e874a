//! Translating a scepd profile into the SCEP payload's request settings:
//! the Subject a device puts in its CSR, the key size and Apple's key usage
//! bitmask, and the reverse-DNS prefix of payload identifiers.

use super::{MobileconfigError, SubjectAltName};

/// Apple's shortcuts for subject attributes; anything else goes as a
/// dotted OID (Apple's SCEP payload reference).
const APPLE_SHORT: &[&str] = &["C", "L", "ST", "O", "OU", "CN"];

/// Other attribute names a subject template may use, with their OIDs.
const KNOWN_OIDS: &[(&str, &str)] = &[
    ("serialNumber", "2.5.4.5"),
    ("emailAddress", "1.2.840.113549.1.9.1"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("title", "2.5.4.12"),
    ("GN", "2.5.4.42"),
    ("SN", "2.5.4.4"),
];

const SERIAL_NUMBER_OID: &str = "2.5.4.5";

fn apple_attribute(key: &str) -> Result<String, MobileconfigError> {
    let key = key.trim();
    if let Some(short) = APPLE_SHORT.iter().find(|s| s.eq_ignore_ascii_case(key)) {
        return Ok((*short).to_string());
    }
    if let Some((_, oid)) = KNOWN_OIDS.iter().find(|(n, _)| n.eq_ignore_ascii_case(key)) {
        return Ok((*oid).to_string());
    }
    if !key.is_empty() && key.split('.').all(|p| p.parse::<u64>().is_ok()) {
        return Ok(key.to_string());
    }
    Err(MobileconfigError::Invalid(format!(
        "subject attribute {key:?} has no OID known to scepd"
    )))
}

/// The device's CSR subject for a profile's `subject_template` (as in
/// `enroll::policy::build_subject`), with `{{CommonName}}`, `{{DeviceId}}`
/// and `{{SerialNumber}}` taken from `device` and `{{UserPrincipalName}}`
/// from the SubjectAltName. The server rebuilds the certificate subject
/// from the CSR, so the attributes the variables come from are added when
/// the template does not already place them (a CN for `{{CommonName}}`, a
/// serialNumber for `{{SerialNumber}}`).
pub fn subject_from_template(
    template: &str,
    device: Option<&str>,
    san: &SubjectAltName,
) -> Result<Vec<(String, String)>, MobileconfigError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut needs_cn = false;
    let mut needs_serial = false;
    let device_value = |name: &str| {
        device
            .filter(|d| !d.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                MobileconfigError::Invalid(format!(
                    "the profile's subject uses {{{{{name}}}}}: give the device identity"
                ))
            })
    };
    for part in template.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, raw) = part.split_once('=').ok_or_else(|| {
            MobileconfigError::Invalid(format!("bad subject template part {part:?}"))
        })?;
        let mut value = String::new();
        let mut rest = raw;
        while let Some(start) = rest.find("{{") {
            value.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                MobileconfigError::Invalid("unterminated {{ in subject template".into())
            })?;
            let name = after[..end].trim();
            let v = match name {
                "CommonName" | "DeviceId" => {
                    needs_cn = true;
                    device_value(name)?
                }
                "SerialNumber" => {
                    needs_serial = true;
                    device_value(name)?
                }
                "UserPrincipalName" => san.nt_principal.first().cloned().ok_or_else(|| {
                    MobileconfigError::Invalid(
                        "the profile's subject uses {{UserPrincipalName}}: give a UPN SubjectAltName"
                            .into(),
                    )
                })?,
                other => {
                    return Err(MobileconfigError::Invalid(format!(
                        "unknown subject variable {{{{{other}}}}}"
                    )))
                }
            };
            value.push_str(&v);
            rest = &after[end + 2..];
        }
        value.push_str(rest);
        if !value.is_empty() {
            out.push((apple_attribute(key)?, value));
        }
    }
    // The device value is present in `device_value`'s checks above.
    if let Some(d) = device {
        if needs_cn && !out.iter().any(|(k, v)| k == "CN" && v == d) {
            out.push(("CN".into(), d.to_string()));
        }
        if needs_serial && !out.iter().any(|(k, v)| k == SERIAL_NUMBER_OID && v == d) {
            out.push((SERIAL_NUMBER_OID.into(), d.to_string()));
        }
    }
    if out.is_empty() {
        return Err(MobileconfigError::Invalid(
            "the subject would be empty".into(),
        ));
    }
    Ok(out)
}

/// Apple accepts 1024, 2048 and 4096 and defaults to 1024: take the
/// smallest accepted size that meets the profile's minimum, never 1024.
pub fn apple_keysize(min_rsa_bits: i32) -> Result<i64, MobileconfigError> {
    match min_rsa_bits {
        i32::MIN..=2048 => Ok(2048),
        2049..=4096 => Ok(4096),
        _ => Err(MobileconfigError::Invalid(format!(
            "the profile requires {min_rsa_bits}-bit RSA keys; Apple devices generate at most 4096"
        ))),
    }
}

/// Apple's `Key Usage` bitmask for a profile's keyUsage names:
/// 1 signing (digitalSignature, nonRepudiation), 4 encryption
/// (keyEncipherment, dataEncipherment, keyAgreement).
pub fn apple_key_usage(key_usage: &[String]) -> i64 {
    let mut bits = 0;
    for u in key_usage {
        match u.as_str() {
            "digitalSignature" | "nonRepudiation" | "contentCommitment" => bits |= 1,
            "keyEncipherment" | "dataEncipherment" | "keyAgreement" => bits |= 4,
            _ => {}
        }
    }
    bits
}

/// A reverse-DNS prefix from the public URL's host (`scep.example.com` →
/// `com.example.scep`); an IP address or a single-label name gives `local`.
pub fn identifier_prefix(public_url: &str) -> String {
    let host = public_url
        .split("://")
        .nth(1)
        .unwrap_or(public_url)
        .split(['/', ':', '?'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let labels: Vec<String> = host
        .split('.')
        .map(|l| {
            l.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|l| !l.is_empty())
        .collect();
    if labels.len() < 2 || host.parse::<std::net::IpAddr>().is_ok() {
        return "local".into();
    }
    labels.into_iter().rev().collect::<Vec<_>>().join(".")
}

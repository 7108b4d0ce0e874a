//! A profile's issuance policy applied to a PKCS#10 request: key strength,
//! SAN types and values, and the subject built from the profile's template.
//! Pure: a violation is refused with its reason, never silently trimmed.

use openssl::x509::{X509Name, X509NameBuilder};

use crate::csr::{Csr, KeyInfo, San};
use crate::store::profiles::Profile;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyViolation(pub String);

fn violation(msg: impl Into<String>) -> PolicyViolation {
    PolicyViolation(msg.into())
}

/// The SAN type names used in profiles (`san_types`).
pub fn san_type(san: &San) -> &'static str {
    match san {
        San::Dns(_) => "dns",
        San::Email(_) => "email",
        San::Uri(_) => "uri",
        San::Ip(_) => "ip",
        San::Upn(_) => "upn",
    }
}

pub fn san_value(san: &San) -> String {
    match san {
        San::Dns(v) | San::Email(v) | San::Uri(v) | San::Upn(v) => v.clone(),
        San::Ip(ip) => ip.to_string(),
    }
}

/// Check the request against the profile and build the subject to issue.
pub fn check(profile: &Profile, csr: &Csr) -> Result<X509Name, PolicyViolation> {
    match &csr.key {
        KeyInfo::Rsa { bits } => {
            if (*bits as i64) < profile.min_rsa_bits as i64 {
                return Err(violation(format!(
                    "RSA key of {bits} bits is below the profile's minimum of {}",
                    profile.min_rsa_bits
                )));
            }
        }
        KeyInfo::Ec { curve } => {
            if !profile
                .allowed_ec_curves
                .iter()
                .any(|c| c.eq_ignore_ascii_case(curve))
            {
                return Err(violation(format!(
                    "EC curve {curve} is not allowed by the profile"
                )));
            }
        }
        KeyInfo::Other(alg) => {
            return Err(violation(format!("key algorithm {alg} is not allowed")));
        }
    }
    let pattern = match profile.san_pattern.as_deref() {
        Some(p) if !p.is_empty() => Some(
            regex::Regex::new(&format!("^(?:{p})$"))
                .map_err(|_| violation("the profile's SAN pattern is invalid"))?,
        ),
        _ => None,
    };
    for san in &csr.sans {
        let t = san_type(san);
        if !profile.san_types.iter().any(|a| a == t) {
            return Err(violation(format!(
                "subjectAltName type {t} is not allowed by the profile"
            )));
        }
        if let Some(re) = &pattern {
            let v = san_value(san);
            if !re.is_match(&v) {
                return Err(violation(format!(
                    "subjectAltName {} does not match the profile's pattern",
                    san
                )));
            }
        }
    }
    build_subject(&profile.subject_template, csr)
}

fn variable(csr: &Csr, name: &str) -> Option<String> {
    let upn = || {
        csr.sans.iter().find_map(|s| match s {
            San::Upn(v) => Some(v.clone()),
            _ => None,
        })
    };
    match name {
        "CommonName" => csr.common_name.clone(),
        "SerialNumber" => csr.serial_number.clone(),
        "DeviceId" => csr
            .serial_number
            .clone()
            .or_else(|| csr.common_name.clone()),
        "UserPrincipalName" => upn(),
        _ => None,
    }
}

/// `CN={{CommonName}},O=Acme` → an X509Name. Attributes are split before
/// substitution, so a value containing a comma cannot inject an attribute.
pub fn build_subject(template: &str, csr: &Csr) -> Result<X509Name, PolicyViolation> {
    let mut b = X509NameBuilder::new().map_err(|e| violation(e.to_string()))?;
    let mut any = false;
    for part in template.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, raw) = part
            .split_once('=')
            .ok_or_else(|| violation(format!("bad subject template part {part:?}")))?;
        let mut value = String::new();
        let mut rest = raw;
        while let Some(start) = rest.find("{{") {
            value.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| violation("unterminated {{ in subject template"))?;
            let name = after[..end].trim();
            let v = variable(csr, name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    violation(format!(
                        "the request has no {name}, which the subject needs"
                    ))
                })?;
            value.push_str(&v);
            rest = &after[end + 2..];
        }
        value.push_str(rest);
        if value.is_empty() {
            continue;
        }
        if value.len() > 64 && key.trim().eq_ignore_ascii_case("CN") {
            return Err(violation("common name longer than 64 characters"));
        }
        b.append_entry_by_text(key.trim(), &value)
            .map_err(|_| violation(format!("bad subject attribute {}", key.trim())))?;
        any = true;
    }
    if !any {
        return Err(violation("the subject would be empty"));
    }
    Ok(b.build())
}

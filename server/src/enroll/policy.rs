//! A profile's issuance policy applied to a PKCS#10 request: key strength,
//! SAN types and values, and the subject built from the profile's template.
//! Pure: a violation is refused with its reason, never silently trimmed.

use openssl::x509::{X509Name, X509NameBuilder};

use crate::csr::{Csr, KeyInfo, San};
use crate::store::profiles::Profile;
use crate::wire::ContentCipher;

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
        Some(p) if !p.is_empty() => {
            Some(san_regex(p).map_err(|_| violation("the profile's SAN pattern is invalid"))?)
        }
        _ => None,
    };
    for san in &csr.sans {
        let t = san_type(san);
        if !profile.san_types.iter().any(|a| a == t) {
            return Err(violation(format!(
                "subjectAltName type {t} is not allowed by the profile"
            )));
        }
        match &pattern {
            Some(re) => {
                let v = san_value(san);
                if !re.is_match(&v) {
                    return Err(violation(format!(
                        "subjectAltName {} does not match the profile's pattern",
                        san
                    )));
                }
            }
            // A UPN, an email address or a URI names a person or a service
            // that relying parties trust as such (a UPN logs on to Windows):
            // copied from whatever the device asks, it would be the
            // device's to choose. Only a pattern the officer wrote lets one
            // through. DNS names and addresses keep the profile's types.
            None if NEED_PATTERN.contains(&t) => {
                return Err(violation(format!(
                    "subjectAltName {san}: type {t} needs the profile's SAN pattern to allow it"
                )));
            }
            None => {}
        }
    }
    build_subject(&profile.subject_template, csr)
}

/// SAN types issued only when the profile's pattern allows the value.
pub const NEED_PATTERN: &[&str] = &["upn", "email", "uri"];

/// A profile's SAN pattern as applied: it must match a whole value.
pub fn san_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

/// The variables a subject template may use.
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "CommonName",
    "SerialNumber",
    "DeviceId",
    "UserPrincipalName",
];

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

enum Piece<'t> {
    Text(&'t str),
    Var(&'t str),
}

/// The `KEY=value` parts of a template, each value split into text and
/// `{{variables}}`. Attributes are split before substitution, so a value
/// containing a comma cannot inject an attribute.
fn template_parts(template: &str) -> Result<Vec<(&str, Vec<Piece<'_>>)>, PolicyViolation> {
    let mut parts = vec![];
    for part in template.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, raw) = part
            .split_once('=')
            .ok_or_else(|| violation(format!("bad subject template part {part:?}")))?;
        let mut pieces = vec![];
        let mut rest = raw;
        while let Some(start) = rest.find("{{") {
            pieces.push(Piece::Text(&rest[..start]));
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| violation("unterminated {{ in subject template"))?;
            pieces.push(Piece::Var(after[..end].trim()));
            rest = &after[end + 2..];
        }
        pieces.push(Piece::Text(rest));
        parts.push((key.trim(), pieces));
    }
    Ok(parts)
}

/// `CN={{CommonName}},O=Acme` → an X509Name.
pub fn build_subject(template: &str, csr: &Csr) -> Result<X509Name, PolicyViolation> {
    let mut b = X509NameBuilder::new().map_err(|e| violation(e.to_string()))?;
    let mut any = false;
    for (key, pieces) in template_parts(template)? {
        let mut value = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => value.push_str(t),
                Piece::Var(name) => {
                    let v = variable(csr, name)
                        .filter(|v| !v.trim().is_empty())
                        .ok_or_else(|| {
                            violation(format!(
                                "the request has no {name}, which the subject needs"
                            ))
                        })?;
                    value.push_str(&v);
                }
            }
        }
        if value.is_empty() {
            continue;
        }
        if value.len() > 64 && key.eq_ignore_ascii_case("CN") {
            return Err(violation("common name longer than 64 characters"));
        }
        b.append_entry_by_text(key, &value)
            .map_err(|_| violation(format!("bad subject attribute {key}")))?;
        any = true;
    }
    if !any {
        return Err(violation("the subject would be empty"));
    }
    Ok(b.build())
}

/// Check a template when a profile is saved, so that a typo is refused
/// once, to the officer, instead of failing every enrollment: known
/// variables only, attribute names OpenSSL knows, not empty.
pub fn check_template(template: &str) -> Result<(), PolicyViolation> {
    let mut b = X509NameBuilder::new().map_err(|e| violation(e.to_string()))?;
    let mut any = false;
    for (key, pieces) in template_parts(template)? {
        let mut filled = false;
        for piece in &pieces {
            match piece {
                Piece::Var(name) if !TEMPLATE_VARIABLES.contains(name) => {
                    return Err(violation(format!(
                        "unknown variable {{{{{name}}}}} (use {})",
                        TEMPLATE_VARIABLES.join(", ")
                    )));
                }
                Piece::Var(_) => filled = true,
                Piece::Text(t) => filled |= !t.is_empty(),
            }
        }
        if !filled {
            continue;
        }
        b.append_entry_by_text(key, "x")
            .map_err(|_| violation(format!("unknown subject attribute {key:?}")))?;
        any = true;
    }
    if !any {
        return Err(violation("the subject would be empty"));
    }
    Ok(())
}

/// An envelope's content cipher by strength, weakest first: the order of
/// the variants is the ranking `min_cipher` compares against. AES-128,
/// -192 and -256 rank alike: each is far beyond an offline search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CipherStrength {
    /// Single DES: a 56-bit key, found offline by exhaustive search.
    Des,
    Des3,
    Aes,
}

/// The values of a profile's `min_cipher`, weakest first.
pub const MIN_CIPHERS: &[&str] = &["des", "des3", "aes"];

impl CipherStrength {
    pub fn of(cipher: ContentCipher) -> Self {
        match cipher {
            ContentCipher::DesCbc => Self::Des,
            ContentCipher::Des3Cbc => Self::Des3,
            ContentCipher::Aes128Cbc | ContentCipher::Aes192Cbc | ContentCipher::Aes256Cbc => {
                Self::Aes
            }
        }
    }

    /// As GetCACaps and clients name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Des => "single DES",
            Self::Des3 => "DES3",
            Self::Aes => "AES",
        }
    }

    /// A profile's `min_cipher`. The database's CHECK admits only
    /// [`MIN_CIPHERS`]; anything else is taken as the strongest, so that
    /// it refuses rather than accepts.
    pub fn minimum(min_cipher: &str) -> Self {
        match min_cipher {
            "des" => Self::Des,
            "des3" => Self::Des3,
            _ => Self::Aes,
        }
    }
}

/// The secret a request authenticates with, when the cipher is judged
/// together with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// Spent by the enrollment it authorizes: breaking the envelope
    /// later reveals nothing that still opens a door.
    OneTimeChallenge,
    /// An organization's static code: whoever breaks one envelope may
    /// enroll devices with it until an officer disables it.
    AccessCode,
}

/// The weakest cipher an access code is accepted under, whatever the
/// profile allows.
pub const ACCESS_CODE_MIN_CIPHER: CipherStrength = CipherStrength::Des3;

/// Whether a message enveloped with `cipher` is accepted on `profile`
/// (FAILURE badAlg otherwise, with the reason): the profile's
/// `min_cipher` for every message, and for a request authenticated by
/// `secret`, that secret's own minimum. The one rule every path asks:
/// the general path, the one-statement path (which hands what this
/// refuses to the general path) and GetCACaps.
pub fn cipher_allowed(
    profile: &Profile,
    cipher: ContentCipher,
    secret: Option<Secret>,
) -> Result<(), String> {
    cipher_meets(CipherStrength::minimum(&profile.min_cipher), cipher, secret)
}

fn cipher_meets(
    min: CipherStrength,
    cipher: ContentCipher,
    secret: Option<Secret>,
) -> Result<(), String> {
    let used = CipherStrength::of(cipher);
    if used < min {
        let wanted = match min {
            CipherStrength::Aes => "AES",
            _ => "DES3 or AES",
        };
        return Err(format!(
            "the request is enveloped with {}, weaker than this profile's \
             minimum ({}); the client must use {wanted}",
            used.label(),
            min.label()
        ));
    }
    if secret == Some(Secret::AccessCode) && used < ACCESS_CODE_MIN_CIPHER {
        return Err(
            "access codes are not accepted over single DES, which can be \
                    broken offline; the client must use DES3 or AES"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked_for_variables_attributes_and_emptiness() {
        assert!(check_template("CN={{CommonName}},O=Acme").is_ok());
        assert!(check_template("CN={{ DeviceId }},serialNumber={{SerialNumber}}").is_ok());
        let e = check_template("CN={{Hostname}}").unwrap_err().0;
        assert!(e.contains("unknown variable {{Hostname}}"), "{e}");
        assert!(check_template("CN={{CommonName").is_err());
        assert!(check_template("FOO=bar").unwrap_err().0.contains("FOO"));
        assert!(check_template("CN").is_err());
        assert!(check_template(" , O=").is_err());
    }

    #[test]
    fn san_pattern_must_match_a_whole_value() {
        let re = san_regex(r"[a-z]+\.example\.com").unwrap();
        assert!(re.is_match("dev.example.com"));
        assert!(!re.is_match("dev.example.com.evil"));
        assert!(san_regex("(unclosed").is_err());
    }

    #[test]
    fn ciphers_rank_des_below_des3_below_every_aes() {
        use ContentCipher::*;
        let min = CipherStrength::minimum;
        for (profile_min, refused, accepted) in [
            (
                "des",
                &[][..],
                &[DesCbc, Des3Cbc, Aes128Cbc, Aes192Cbc, Aes256Cbc][..],
            ),
            (
                "des3",
                &[DesCbc][..],
                &[Des3Cbc, Aes128Cbc, Aes192Cbc, Aes256Cbc][..],
            ),
            (
                "aes",
                &[DesCbc, Des3Cbc][..],
                &[Aes128Cbc, Aes192Cbc, Aes256Cbc][..],
            ),
        ] {
            for c in refused {
                let e = cipher_meets(min(profile_min), *c, None).unwrap_err();
                assert!(e.contains("weaker than this profile's minimum"), "{e}");
            }
            for c in accepted {
                assert_eq!(cipher_meets(min(profile_min), *c, None), Ok(()));
            }
        }
        assert_eq!(min("nonsense"), CipherStrength::Aes, "unknown fails closed");
    }

    #[test]
    fn an_access_code_needs_des3_whatever_the_profile_allows() {
        use ContentCipher::*;
        let des = CipherStrength::Des;
        let e = cipher_meets(des, DesCbc, Some(Secret::AccessCode)).unwrap_err();
        assert!(
            e.starts_with("access codes are not accepted over single DES"),
            "{e}"
        );
        assert_eq!(
            cipher_meets(des, DesCbc, Some(Secret::OneTimeChallenge)),
            Ok(())
        );
        for c in [Des3Cbc, Aes128Cbc, Aes256Cbc] {
            assert_eq!(cipher_meets(des, c, Some(Secret::AccessCode)), Ok(()));
        }
        // The profile's own minimum is named first when both refuse.
        let e = cipher_meets(CipherStrength::Des3, DesCbc, Some(Secret::AccessCode));
        assert!(e.unwrap_err().contains("profile's minimum (DES3)"));
    }
}

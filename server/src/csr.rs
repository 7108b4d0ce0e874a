//! PKCS#10 certification requests (RFC 2986): signature check, subject, key,
//! and the two attributes SCEP relies on — PKCS#9 challengePassword
//! (RFC 2985 §5.4.1, RFC 8894 §2.2) and extensionRequest (RFC 2985 §5.4.2).
//!
//! OpenSSL verifies the self-signature and hands us the key; the attributes
//! are read with `x509-cert`, since rust-openssl does not expose them.

use std::fmt;
use std::net::IpAddr;

use der::asn1::{Any, ObjectIdentifier};
use der::{Decode, Encode, Tag, Tagged};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Public};
use openssl::x509::{X509Name, X509NameRef, X509Req};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::request::CertReq;

const OID_CHALLENGE_PASSWORD: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");
const OID_EXTENSION_REQUEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
/// Microsoft's pre-standard extension request attribute, still sent by some
/// Windows-derived clients.
const OID_MS_EXTENSION_REQUEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.14");
const OID_SAN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const OID_KU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_UPN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.20.2.3");

/// Errors from parsing a PKCS#10 request.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("malformed certification request: {0}")]
    Malformed(String),
    #[error("certification request signature does not verify")]
    BadSignature,
    #[error("OpenSSL error: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// A subjectAltName entry we understand.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum San {
    Dns(String),
    Email(String),
    Uri(String),
    Ip(IpAddr),
    /// Microsoft UPN otherName (1.3.6.1.4.1.311.20.2.3).
    Upn(String),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(v) => write!(f, "DNS:{v}"),
            San::Email(v) => write!(f, "email:{v}"),
            San::Uri(v) => write!(f, "URI:{v}"),
            San::Ip(v) => write!(f, "IP:{v}"),
            San::Upn(v) => write!(f, "UPN:{v}"),
        }
    }
}

/// Public key algorithm summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyInfo {
    Rsa {
        bits: u32,
    },
    /// NIST curve name, e.g. "P-256".
    Ec {
        curve: String,
    },
    Other(String),
}

impl fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyInfo::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyInfo::Ec { curve } => write!(f, "EC {curve}"),
            KeyInfo::Other(s) => f.write_str(s),
        }
    }
}

/// A parsed and signature-checked PKCS#10 request.
pub struct Csr {
    pub der: Vec<u8>,
    pub subject: X509Name,
    /// RFC 4514 string: RDNs in reverse order, e.g. "CN=dev1,O=Acme".
    pub subject_text: String,
    pub common_name: Option<String>,
    /// The subject's serialNumber attribute (2.5.4.5), if present.
    pub serial_number: Option<String>,
    pub public_key: PKey<Public>,
    /// The SubjectPublicKeyInfo DER (copied into the issued certificate).
    pub spki_der: Vec<u8>,
    /// SHA-256 of the SubjectPublicKeyInfo DER.
    pub public_key_sha256: [u8; 32],
    pub key: KeyInfo,
    pub challenge_password: Option<String>,
    pub sans: Vec<San>,
    /// keyUsage names (RFC 5280 spelling) from the extensionRequest.
    pub requested_key_usage: Vec<String>,
    /// extendedKeyUsage dotted OIDs from the extensionRequest.
    pub requested_eku: Vec<String>,
    /// The validity asked for in Microsoft's enrollment name-value pairs
    /// (`validity`); a profile may honour it up to its own.
    pub requested_validity: Option<validity::RequestedValidity>,
}

impl fmt::Debug for Csr {
    // The challenge password is a secret; show only whether it is there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csr")
            .field("subject", &self.subject_text)
            .field("key", &self.key)
            .field("public_key_sha256", &hex::encode(self.public_key_sha256))
            .field(
                "challenge_password",
                &self.challenge_password.as_ref().map(|_| "<redacted>"),
            )
            .field("sans", &self.sans)
            .field("requested_key_usage", &self.requested_key_usage)
            .field("requested_eku", &self.requested_eku)
            .field("requested_validity", &self.requested_validity)
            .finish_non_exhaustive()
    }
}

impl Csr {
    /// Parses a DER PKCS#10 request and verifies its self-signature.
    pub fn from_der(der: &[u8]) -> Result<Csr, CsrError> {
        Self::from_der_known_key(der, None)
    }

    /// As [`Csr::from_der`]; when the request's SubjectPublicKeyInfo is the
    /// one whose SHA-256 `known` names (a SCEP request signed with the key
    /// it certifies), `known`'s key object checks the self-signature and
    /// becomes the request's key. OpenSSL then reuses the Montgomery
    /// constants it computed for that object instead of deriving them again
    /// for a second copy of the same key.
    pub fn from_der_known_key(
        der: &[u8],
        known: Option<([u8; 32], &PKeyRef<Public>)>,
    ) -> Result<Csr, CsrError> {
        let parsed = CertReq::from_der(der).map_err(|e| CsrError::Malformed(e.to_string()))?;
        let spki_der = parsed
            .info
            .public_key
            .to_der()
            .map_err(|e| CsrError::Malformed(e.to_string()))?;
        let public_key_sha256 = openssl::sha::sha256(&spki_der);
        let same_key = known.and_then(|(sha, key)| (sha == public_key_sha256).then_some(key));
        let (public_key, subject) = match direct::key_and_subject(der, &parsed, same_key)? {
            Some(ks) => ks,
            None => {
                let req = X509Req::from_der(der).map_err(|e| CsrError::Malformed(e.to_string()))?;
                let public_key = req
                    .public_key()
                    .map_err(|e| CsrError::Malformed(format!("unusable public key: {e}")))?;
                // Proof of possession (RFC 2986 §3): an error here means the
                // signature could not be checked at all, which we treat the same.
                if !req.verify(&public_key).unwrap_or(false) {
                    return Err(CsrError::BadSignature);
                }
                (public_key, req.subject_name().to_owned()?)
            }
        };

        let mut csr = Csr {
            der: der.to_vec(),
            subject_text: rfc4514(&subject),
            common_name: first_value(&subject, Nid::COMMONNAME),
            serial_number: first_value(&subject, Nid::SERIALNUMBER),
            subject,
            key: key_info(&public_key),
            public_key,
            public_key_sha256,
            spki_der,
            challenge_password: None,
            sans: Vec::new(),
            requested_key_usage: Vec::new(),
            requested_eku: Vec::new(),
            requested_validity: None,
        };

        for attr in parsed.info.attributes.iter() {
            if attr.oid == OID_CHALLENGE_PASSWORD {
                let value = attr
                    .values
                    .iter()
                    .next()
                    .ok_or_else(|| CsrError::Malformed("empty challengePassword".into()))?;
                csr.challenge_password = Some(directory_string(value)?);
            } else if attr.oid == validity::OID_ENROLLMENT_NAME_VALUE_PAIR {
                csr.requested_validity = csr
                    .requested_validity
                    .or_else(|| attr.values.iter().find_map(validity::from_pairs));
            } else if attr.oid == OID_EXTENSION_REQUEST || attr.oid == OID_MS_EXTENSION_REQUEST {
                for value in attr.values.iter() {
                    let exts: Vec<Extension> = value
                        .decode_as()
                        .map_err(|e| CsrError::Malformed(format!("extensionRequest: {e}")))?;
                    csr.apply_extensions(&exts)?;
                }
            }
        }
        // A NUL inside a name is the old prefix trick ("bank.example\0.evil")
        // and PostgreSQL text cannot hold one: the request would fail in the
        // enrollment transaction (HTTP 500) instead of being refused.
        let has_nul = csr
            .common_name
            .iter()
            .chain(&csr.serial_number)
            .any(|v| v.contains('\0'))
            || csr.sans.iter().any(|s| s.to_string().contains('\0'));
        if has_nul {
            return Err(CsrError::Malformed(
                "NUL character in the subject or a subjectAltName".into(),
            ));
        }
        Ok(csr)
    }

    /// Parses a PEM ("CERTIFICATE REQUEST") request; convenience for tests
    /// and the console.
    pub fn from_pem(pem: &[u8]) -> Result<Csr, CsrError> {
        let req = X509Req::from_pem(pem).map_err(|e| CsrError::Malformed(e.to_string()))?;
        Self::from_der(&req.to_der()?)
    }

    pub fn subject_name(&self) -> &X509NameRef {
        &self.subject
    }

    fn apply_extensions(&mut self, exts: &[Extension]) -> Result<(), CsrError> {
        let malformed = |what: &str, e: der::Error| CsrError::Malformed(format!("{what}: {e}"));
        for ext in exts {
            let bytes = ext.extn_value.as_bytes();
            if ext.extn_id == OID_SAN {
                let san =
                    SubjectAltName::from_der(bytes).map_err(|e| malformed("subjectAltName", e))?;
                for gn in san.0 {
                    if let Some(s) = convert_general_name(gn)? {
                        self.sans.push(s);
                    }
                }
            } else if ext.extn_id == OID_KU {
                let ku = KeyUsage::from_der(bytes).map_err(|e| malformed("keyUsage", e))?;
                self.requested_key_usage = key_usage_names(&ku);
            } else if ext.extn_id == OID_EKU {
                let eku = ExtendedKeyUsage::from_der(bytes)
                    .map_err(|e| malformed("extendedKeyUsage", e))?;
                self.requested_eku = eku.0.iter().map(|o| o.to_string()).collect();
            }
        }
        Ok(())
    }
}

/// Converts one GeneralName; kinds we cannot issue (directoryName, RID,
/// other otherNames) are skipped rather than failing the whole request.
fn convert_general_name(gn: GeneralName) -> Result<Option<San>, CsrError> {
    Ok(match gn {
        GeneralName::DnsName(s) => Some(San::Dns(s.to_string())),
        GeneralName::Rfc822Name(s) => Some(San::Email(s.to_string())),
        GeneralName::UniformResourceIdentifier(s) => Some(San::Uri(s.to_string())),
        GeneralName::IpAddress(o) => {
            let b = o.as_bytes();
            let ip = if let Ok(v4) = <[u8; 4]>::try_from(b) {
                IpAddr::from(v4)
            } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
                IpAddr::from(v6)
            } else {
                return Err(CsrError::Malformed(format!(
                    "IP address SAN of {} bytes",
                    b.len()
                )));
            };
            Some(San::Ip(ip))
        }
        GeneralName::OtherName(on) if on.type_id == OID_UPN => {
            Some(San::Upn(directory_string(&on.value)?))
        }
        _ => None,
    })
}

fn key_usage_names(ku: &KeyUsage) -> Vec<String> {
    let bits = [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ];
    bits.iter()
        .filter(|(set, _)| *set)
        .map(|(_, n)| (*n).to_string())
        .collect()
}

/// Decodes a DirectoryString-like value. RFC 2985 allows PrintableString,
/// UTF8String and BMPString (plus legacy TeletexString); IA5String is not
/// allowed but some clients send it anyway.
fn directory_string(v: &Any) -> Result<String, CsrError> {
    let bytes = v.value();
    let text = match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| CsrError::Malformed("string is not valid UTF-8".into()))?
        }
        // T.61 in theory; in practice Latin-1, which maps 1:1 onto U+0000..U+00FF.
        Tag::TeletexString => bytes.iter().map(|b| char::from(*b)).collect(),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return Err(CsrError::Malformed("odd-length BMPString".into()));
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units)
                .map_err(|_| CsrError::Malformed("invalid BMPString".into()))?
        }
        other => {
            return Err(CsrError::Malformed(format!(
                "unexpected string type {other}"
            )))
        }
    };
    Ok(text)
}

#[path = "csr_direct.rs"]
mod direct;
pub mod validity;

fn key_info(key: &PKey<Public>) -> KeyInfo {
    match key.id() {
        Id::RSA => KeyInfo::Rsa { bits: key.bits() },
        Id::EC => {
            let curve = key.ec_key().ok().and_then(|k| k.group().curve_name());
            match curve {
                Some(Nid::X9_62_PRIME256V1) => KeyInfo::Ec {
                    curve: "P-256".into(),
                },
                Some(Nid::SECP384R1) => KeyInfo::Ec {
                    curve: "P-384".into(),
                },
                Some(Nid::SECP521R1) => KeyInfo::Ec {
                    curve: "P-521".into(),
                },
                Some(nid) => KeyInfo::Ec {
                    curve: nid.short_name().unwrap_or("unknown").to_string(),
                },
                None => KeyInfo::Other("EC (explicit curve)".into()),
            }
        }
        Id::ED25519 => KeyInfo::Other("Ed25519".into()),
        Id::ED448 => KeyInfo::Other("Ed448".into()),
        other => KeyInfo::Other(format!("key type {}", other.as_raw())),
    }
}

fn entry_value(data: &openssl::asn1::Asn1StringRef) -> String {
    match data.to_string() {
        Ok(s) => s,
        // RFC 4514 §2.4 hex form for values we cannot render as text.
        Err(_) => format!("#{}", hex::encode(data.as_slice())),
    }
}

fn first_value(name: &X509NameRef, nid: Nid) -> Option<String> {
    name.entries_by_nid(nid)
        .next()
        .map(|e| entry_value(e.data()))
}

fn escape_rfc4514(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// RFC 4514 rendering (last RDN first). Attribute types without an RFC 4514
/// short name use OpenSSL's short name (e.g. "serialNumber").
fn rfc4514(name: &X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let nid = e.object().nid();
            let key = match nid {
                Nid::STREETADDRESS => "STREET".to_string(),
                Nid::USERID => "UID".to_string(),
                Nid::DOMAINCOMPONENT => "DC".to_string(),
                _ => nid
                    .short_name()
                    .map(str::to_string)
                    .unwrap_or_else(|_| e.object().to_string()),
            };
            let raw = e.data().as_slice();
            let value = if e.data().to_string().is_ok() {
                escape_rfc4514(&entry_value(e.data()))
            } else {
                format!("#{}", hex::encode(raw))
            };
            format!("{key}={value}")
        })
        .collect();
    parts.reverse();
    parts.join(",")
}

#[cfg(test)]
#[path = "csr/tests.rs"]
mod tests;

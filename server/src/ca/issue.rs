//! End-entity certificate issuance under the RFC 5280 §4.1/§4.2 profile:
//! v3, basicConstraints CA:FALSE, critical keyUsage, EKU, SAN, SKI, AKI and
//! an optional CRL distribution point and OCSP responder URL.

use chrono::{DateTime, Utc};
use der::Encode;
use openssl::bn::BigNumRef;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKeyRef, Public};
use openssl::x509::{X509NameRef, X509};

use super::der_ext::{
    aia_ocsp_value, crl_dp_value, eku_value, key_identifier_from_spki, san_value, x509_time,
    OID_AIA, OID_AKI, OID_CRL_DP, OID_EKU, OID_SAN, OID_SKI,
};
use super::{CaError, CaIdentity, Eku, KeyUsage};
use crate::csr::San;
use crate::wire::asn1::{encode, encode_unsigned_integer, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE};

const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_KEY_USAGE: &str = "2.5.29.15";
const TAG_BOOLEAN: u8 = 0x01;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;

/// Everything the enrollment layer decides about a certificate.
pub struct IssueParams<'a> {
    pub public_key: &'a PKeyRef<Public>,
    /// The SubjectPublicKeyInfo DER of `public_key` when the caller has it
    /// (a CSR does): saves OpenSSL 3's slow key encoder on every issuance.
    pub spki_der: Option<&'a [u8]>,
    pub subject: &'a X509NameRef,
    pub sans: &'a [San],
    pub not_before: DateTime<Utc>,
    /// Clamped to the CA's own notAfter: a leaf outliving its issuer fails
    /// path validation on many clients once the CA expires.
    pub not_after: DateTime<Utc>,
    /// Empty means no keyUsage extension.
    pub key_usage: &'a [KeyUsage],
    /// Empty means no extendedKeyUsage extension.
    pub extended_key_usage: &'a [Eku],
    pub crl_url: Option<&'a str>,
    /// The OCSP responder written into authorityInfoAccess (RFC 6960).
    pub ocsp_url: Option<&'a str>,
    pub digest: MessageDigest,
    pub serial: &'a BigNumRef,
}

/// Issues an end-entity certificate signed by `ca`.
pub fn issue(ca: &CaIdentity, p: &IssueParams<'_>) -> Result<X509, CaError> {
    Ok(X509::from_der(&issue_der(ca, p)?)?)
}

/// As [`issue`], returning the certificate's DER without parsing it back
/// (OpenSSL 3 parses a certificate's public key through its decoder
/// framework, which costs more than the rest of the parse).
pub fn issue_der(ca: &CaIdentity, p: &IssueParams<'_>) -> Result<Vec<u8>, CaError> {
    let not_after = p.not_after.min(ca.not_after());
    if p.not_before >= not_after {
        return Err(CaError::InvalidValidity(format!(
            "notBefore {} is not before notAfter {} (requested {}, CA expires {})",
            p.not_before,
            not_after,
            p.not_after,
            ca.not_after()
        )));
    }
    if p.serial.is_negative() || p.serial.num_bits() == 0 {
        return Err(CaError::InvalidSerial);
    }

    let spki = match p.spki_der {
        Some(d) => d.to_vec(),
        None => p.public_key.public_key_to_der()?,
    };
    let mut exts = vec![extension(
        OID_BASIC_CONSTRAINTS,
        true,
        &encode(TAG_SEQUENCE, &[]),
    )?];
    if let Some(ku) = key_usage_value(p.key_usage) {
        exts.push(extension(OID_KEY_USAGE, true, &ku)?);
    }
    if !p.extended_key_usage.is_empty() {
        let oids: Vec<&str> = p.extended_key_usage.iter().map(Eku::oid).collect();
        exts.push(extension(OID_EKU, false, &eku_value(&oids)?)?);
    }
    let empty_subject = p.subject.entries().next().is_none();
    if !p.sans.is_empty() {
        // RFC 5280 §4.2.1.6: critical when the subject is empty.
        exts.push(extension(OID_SAN, empty_subject, &san_value(p.sans)?)?);
    } else if empty_subject {
        return Err(CaError::InvalidName(
            "certificate needs a subject or a subjectAltName".into(),
        ));
    }
    let ski = encode(TAG_OCTET_STRING, &key_identifier_from_spki(&spki)?);
    exts.push(extension(OID_SKI, false, &ski)?);
    exts.push(extension(OID_AKI, false, ca.aki_value())?);
    if let Some(url) = p.crl_url {
        exts.push(extension(OID_CRL_DP, false, &crl_dp_value(url)?)?);
    }
    if let Some(url) = p.ocsp_url {
        exts.push(extension(OID_AIA, false, &aia_ocsp_value(url)?)?);
    }

    // RFC 5280 §4.1: the TBSCertificate is assembled as DER directly and
    // only the signature is OpenSSL's.
    let alg = signature_algorithm(ca.key().id(), p.digest)?;
    let validity = [
        x509_time(p.not_before)?.to_der()?,
        x509_time(not_after)?.to_der()?,
    ]
    .concat();
    let tbs = encode(
        TAG_SEQUENCE,
        &[
            encode(0xa0, &encode(0x02, &[2])),
            encode_unsigned_integer(&p.serial.to_vec()),
            alg.clone(),
            ca.subject_der().to_vec(),
            encode(TAG_SEQUENCE, &validity),
            p.subject.to_der()?,
            spki,
            encode(0xa3, &encode(TAG_SEQUENCE, &exts.concat())),
        ]
        .concat(),
    );
    let signature = ca.key().sign(p.digest, &tbs)?;
    let cert = encode(
        TAG_SEQUENCE,
        &[
            tbs,
            alg,
            encode(TAG_BIT_STRING, &[&[0u8][..], &signature].concat()),
        ]
        .concat(),
    );
    Ok(cert)
}

/// One Extension (RFC 5280 §4.1): OID, critical only when true (DER
/// omits the DEFAULT FALSE), and the value wrapped in an OCTET STRING.
fn extension(oid: &str, critical: bool, value: &[u8]) -> Result<Vec<u8>, CaError> {
    let oid = der::asn1::ObjectIdentifier::new(oid).map_err(|e| CaError::Der(e.to_string()))?;
    let mut body = encode(TAG_OID, oid.as_bytes());
    if critical {
        body.extend(encode(TAG_BOOLEAN, &[0xff]));
    }
    body.extend(encode(TAG_OCTET_STRING, value));
    Ok(encode(TAG_SEQUENCE, &body))
}

/// keyUsage BIT STRING (RFC 5280 §4.2.1.3) with trailing zero bits
/// removed, as DER requires for named bit lists; None when empty.
fn key_usage_value(usages: &[KeyUsage]) -> Option<Vec<u8>> {
    let mut bits: u8 = 0;
    for u in usages {
        bits |= match u {
            KeyUsage::DigitalSignature => 0x80,
            KeyUsage::NonRepudiation => 0x40,
            KeyUsage::KeyEncipherment => 0x20,
            KeyUsage::DataEncipherment => 0x10,
            KeyUsage::KeyAgreement => 0x08,
        };
    }
    if bits == 0 {
        return None;
    }
    let unused = bits.trailing_zeros() as u8;
    Some(encode(TAG_BIT_STRING, &[unused, bits]))
}

/// The AlgorithmIdentifier of the CA's signature (RFC 4055 / RFC 5758).
fn signature_algorithm(key: Id, md: MessageDigest) -> Result<Vec<u8>, CaError> {
    let nid = md.type_();
    let (oid, null_params) = match (key, nid) {
        (Id::RSA, Nid::SHA256) => ("1.2.840.113549.1.1.11", true),
        (Id::RSA, Nid::SHA384) => ("1.2.840.113549.1.1.12", true),
        (Id::RSA, Nid::SHA512) => ("1.2.840.113549.1.1.13", true),
        (Id::EC, Nid::SHA256) => ("1.2.840.10045.4.3.2", false),
        (Id::EC, Nid::SHA384) => ("1.2.840.10045.4.3.3", false),
        (Id::EC, Nid::SHA512) => ("1.2.840.10045.4.3.4", false),
        _ => {
            return Err(CaError::Der(format!(
                "no signature algorithm for this CA key with {:?}",
                nid.short_name().unwrap_or("?")
            )))
        }
    };
    let oid = der::asn1::ObjectIdentifier::new(oid).map_err(|e| CaError::Der(e.to_string()))?;
    let mut body = encode(TAG_OID, oid.as_bytes());
    if null_params {
        body.extend(encode(TAG_NULL, &[]));
    }
    Ok(encode(TAG_SEQUENCE, &body))
}

#[cfg(test)]
#[path = "issue_tests.rs"]
mod tests;

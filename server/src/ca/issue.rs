//! End-entity certificate issuance under the RFC 5280 §4.1/§4.2 profile:
//! v3, basicConstraints CA:FALSE, critical keyUsage, EKU, SAN, SKI, AKI and
//! an optional CRL distribution point.

use chrono::{DateTime, Utc};
use openssl::bn::BigNumRef;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKeyRef, Public};
use openssl::x509::extension::{BasicConstraints, KeyUsage as KuExt};
use openssl::x509::{X509Builder, X509NameRef, X509};

use super::der_ext::{
    aki_extension, asn1_time, crl_dp_extension, eku_extension, key_identifier, san_extension,
    ski_extension,
};
use super::{CaError, CaIdentity, Eku, KeyUsage};
use crate::csr::San;

/// Everything the enrollment layer decides about a certificate.
pub struct IssueParams<'a> {
    pub public_key: &'a PKeyRef<Public>,
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
    pub digest: MessageDigest,
    pub serial: &'a BigNumRef,
}

/// Issues an end-entity certificate signed by `ca`.
pub fn issue(ca: &CaIdentity, p: &IssueParams<'_>) -> Result<X509, CaError> {
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

    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    b.set_serial_number(p.serial.to_asn1_integer()?.as_ref())?;
    b.set_subject_name(p.subject)?;
    b.set_issuer_name(ca.subject())?;
    b.set_pubkey(p.public_key)?;
    b.set_not_before(asn1_time(p.not_before)?.as_ref())?;
    b.set_not_after(asn1_time(not_after)?.as_ref())?;

    b.append_extension(BasicConstraints::new().critical().build()?)?;
    if !p.key_usage.is_empty() {
        let mut ku = KuExt::new();
        ku.critical();
        for u in p.key_usage {
            match u {
                KeyUsage::DigitalSignature => ku.digital_signature(),
                KeyUsage::NonRepudiation => ku.non_repudiation(),
                KeyUsage::KeyEncipherment => ku.key_encipherment(),
                KeyUsage::DataEncipherment => ku.data_encipherment(),
                KeyUsage::KeyAgreement => ku.key_agreement(),
            };
        }
        b.append_extension(ku.build()?)?;
    }
    if !p.extended_key_usage.is_empty() {
        let oids: Vec<&str> = p.extended_key_usage.iter().map(Eku::oid).collect();
        b.append_extension(eku_extension(&oids)?)?;
    }
    if !p.sans.is_empty() {
        let empty_subject = p.subject.entries().next().is_none();
        b.append_extension(san_extension(p.sans, empty_subject)?)?;
    } else if p.subject.entries().next().is_none() {
        return Err(CaError::InvalidName(
            "certificate needs a subject or a subjectAltName".into(),
        ));
    }
    b.append_extension(ski_extension(&key_identifier(p.public_key)?)?)?;
    b.append_extension(aki_extension(ca.aki_value())?)?;
    if let Some(url) = p.crl_url {
        b.append_extension(crl_dp_extension(url)?)?;
    }

    b.sign(ca.key(), p.digest)?;
    Ok(b.build())
}

#[cfg(test)]
#[path = "issue_tests.rs"]
mod tests;

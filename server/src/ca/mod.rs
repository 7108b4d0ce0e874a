//! Certificate authority: the issuing CA and RA identities, the delegated
//! OCSP responder certificate, certificate issuance, CRL signing and CA
//! rollover (RFC 5280 profile; the RA
//! certificate is the SCEP recipient/signer of RFC 8894 §2.1 and §3).
//!
//! Everything here is pure OpenSSL plus DER encoding; there is no storage or
//! network access. Extensions that rust-openssl cannot build without its
//! string-based config parser (EKU, SAN, AKI, CRL DP, CRL reason codes) are
//! encoded as DER with `x509-cert` and attached with
//! `X509Extension::new_from_der`, so user-controlled values never pass through
//! OpenSSL's config syntax.

mod chain;
mod crl;
mod der_ext;
mod identity;
mod issue;
pub mod key_file;
pub mod pkcs11;
mod profile;
mod signer;
#[cfg(test)]
pub(crate) mod test_support;

pub use chain::{certs_from_pem, certs_to_pem, check_chain, import_ca_chain};
pub use crl::{sign_crl, RevocationReason, RevokedEntry};
pub(crate) use identity::to_chrono;
pub use identity::{
    import_ca, new_ocsp_responder, new_ra_cert, new_ra_encryption_cert, new_root_ca,
    new_root_ca_with, rollover, rollover_with, CaIdentity,
};
pub use issue::{issue, issue_der, IssueParams};
pub use profile::{Eku, KeyUsage};
pub use signer::CaKey;

use std::fmt;
use std::str::FromStr;

use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::X509Ref;

/// Errors from the CA layer.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("OpenSSL error: {0}")]
    OpenSsl(#[from] ErrorStack),
    #[error("DER encoding error: {0}")]
    Der(String),
    #[error("unsupported key specification {0:?} (expected rsa2048, rsa3072, rsa4096, ec-p256 or ec-p384)")]
    UnsupportedKeySpec(String),
    #[error("imported key does not match certificate")]
    KeyMismatch,
    #[error("certificate is not a CA (basicConstraints CA:TRUE is missing)")]
    NotACa,
    #[error("CA certificate's keyUsage does not allow signing certificates (keyCertSign)")]
    CannotSignCertificates,
    #[error(
        "could not parse the private key (expected PEM; an encrypted key needs its passphrase)"
    )]
    BadKey,
    #[error(
        "cannot decrypt the private key with the passphrase from {0}: the passphrase is wrong \
         or the file is damaged"
    )]
    WrongPassphrase(String),
    #[error("the private key is encrypted: give its passphrase (--import-ca-key-passphrase-file)")]
    KeyNeedsPassphrase,
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("CA certificate has expired")]
    Expired,
    #[error("the RA certificate needs an RSA key (SCEP uses RSA key transport)")]
    RaKeyNotRsa,
    #[error("invalid validity period: {0}")]
    InvalidValidity(String),
    #[error("certificate serial must be positive and non-zero")]
    InvalidSerial,
    #[error("invalid subjectAltName: {0}")]
    InvalidSan(String),
    #[error("invalid extended key usage OID {0:?}")]
    InvalidEku(String),
    #[error("unknown key usage {0:?}")]
    UnknownKeyUsage(String),
    #[error("unknown revocation reason {0:?}")]
    UnknownRevocationReason(String),
    #[error("invalid CRL: {0}")]
    InvalidCrl(String),
    #[error("could not parse certificate: {0}")]
    BadCertificate(String),
    #[error("CA chain does not link: {0}")]
    BrokenChain(String),
    #[error("HSM: {0}")]
    Hsm(String),
    #[error("the CA key is in an HSM and cannot be exported or used as a file")]
    KeyInHsm,
}

impl From<der::Error> for CaError {
    fn from(e: der::Error) -> Self {
        CaError::Der(e.to_string())
    }
}

/// Key algorithm and size for CA, RA or test keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA with the given modulus size; only 2048, 3072 and 4096 are accepted.
    Rsa(u32),
    EcP256,
    EcP384,
}

impl FromStr for KeySpec {
    type Err = CaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rsa2048" => Ok(KeySpec::Rsa(2048)),
            "rsa3072" => Ok(KeySpec::Rsa(3072)),
            "rsa4096" => Ok(KeySpec::Rsa(4096)),
            "ec-p256" => Ok(KeySpec::EcP256),
            "ec-p384" => Ok(KeySpec::EcP384),
            _ => Err(CaError::UnsupportedKeySpec(s.to_string())),
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Rsa(bits) => write!(f, "rsa{bits}"),
            KeySpec::EcP256 => f.write_str("ec-p256"),
            KeySpec::EcP384 => f.write_str("ec-p384"),
        }
    }
}

/// Generates a fresh private key.
pub fn generate_key(spec: KeySpec) -> Result<PKey<Private>, CaError> {
    match spec {
        KeySpec::Rsa(bits @ (2048 | 3072 | 4096)) => Ok(PKey::from_rsa(Rsa::generate(bits)?)?),
        KeySpec::Rsa(_) => Err(CaError::UnsupportedKeySpec(spec.to_string())),
        KeySpec::EcP256 => ec_key(Nid::X9_62_PRIME256V1),
        KeySpec::EcP384 => ec_key(Nid::SECP384R1),
    }
}

fn ec_key(curve: Nid) -> Result<PKey<Private>, CaError> {
    let group = EcGroup::from_curve_name(curve)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

/// A positive certificate serial number with 158 bits of randomness.
///
/// RFC 5280 §4.1.2.2 caps serials at 20 octets and CA/B Forum practice asks
/// for at least 64 unpredictable bits; we take 20 bytes from OpenSSL's
/// CSPRNG (seeded from the OS), clear the sign bit so the DER INTEGER stays
/// positive within 20 octets, and set the next bit so the value is never
/// zero and always 159 bits long.
pub fn random_serial() -> Result<BigNum, CaError> {
    let mut bytes = [0u8; 20];
    openssl::rand::rand_bytes(&mut bytes)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(BigNum::from_slice(&bytes)?)
}

/// SHA-256 of the certificate DER as uppercase hex (display, Apple's
/// `CAFingerprint` profile key).
pub fn sha256_fingerprint(cert: &X509Ref) -> Result<String, CaError> {
    Ok(hex::encode_upper(cert.digest(MessageDigest::sha256())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CaIdentity>();
    }

    #[test]
    fn key_spec_round_trips_through_strings() {
        for s in ["rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"] {
            let spec: KeySpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert!("rsa1024".parse::<KeySpec>().is_err());
        assert!("ed25519".parse::<KeySpec>().is_err());
    }

    #[test]
    fn generate_key_rejects_odd_rsa_sizes() {
        assert!(matches!(
            generate_key(KeySpec::Rsa(1024)),
            Err(CaError::UnsupportedKeySpec(_))
        ));
    }

    #[test]
    fn generate_key_produces_requested_algorithm() {
        let k = generate_key(KeySpec::EcP384).unwrap();
        let ec = k.ec_key().unwrap();
        assert_eq!(ec.group().curve_name(), Some(Nid::SECP384R1));
        let k = generate_key(KeySpec::Rsa(2048)).unwrap();
        assert_eq!(k.bits(), 2048);
    }

    #[test]
    fn random_serials_are_positive_distinct_and_long() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        for s in [&a, &b] {
            assert!(!s.is_negative());
            assert_eq!(s.num_bits(), 159);
            assert!(s.to_vec().len() <= 20);
        }
    }

    #[test]
    fn fingerprint_is_uppercase_sha256_hex() {
        let key = generate_key(KeySpec::EcP256).unwrap();
        let cert = new_root_ca(&key, "Test CA", "Acme", 30).unwrap();
        let fp = sha256_fingerprint(&cert).unwrap();
        let expected = hex::encode_upper(openssl::sha::sha256(&cert.to_der().unwrap()));
        assert_eq!(fp, expected);
        assert_eq!(fp.len(), 64);
    }
}

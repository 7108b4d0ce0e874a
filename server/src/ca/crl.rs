//! CRL signing (RFC 5280 §5): v2 CRLs with authorityKeyIdentifier and
//! cRLNumber (§5.2.1, §5.2.3) and a reasonCode entry extension (§5.3.1).
//!
//! rust-openssl cannot attach entry extensions to an `X509Revoked`, so each
//! entry is DER-encoded with `x509-cert` and parsed back with
//! `X509Revoked::from_der`; OpenSSL then assembles and signs the list.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use der::asn1::OctetString;
use der::Encode;
use openssl::bn::BigNum;
use openssl::x509::extension::CrlNumber;
use openssl::x509::{X509CrlBuilder, X509Revoked};
use x509_cert::crl::RevokedCert;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;

use super::der_ext::{aki_extension, asn1_time, x509_time};
use super::{CaError, CaIdentity};

/// id-ce-cRLReasons.
const OID_CRL_REASON: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.29.21");

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number, big-endian unsigned bytes.
    pub serial: Vec<u8>,
    pub revoked_at: DateTime<Utc>,
    pub reason: Option<RevocationReason>,
}

/// CRLReason codes of RFC 5280 §5.3.1 (removeFromCRL and aACompromise are
/// omitted: we neither issue delta CRLs nor attribute certificates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 8] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
    ];

    /// The RFC 5280 ASN.1 name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    /// The CRLReason ENUMERATED value (7 is unused by RFC 5280).
    pub fn code(&self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::PrivilegeWithdrawn => 9,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    fn to_der_reason(self) -> CrlReason {
        match self {
            RevocationReason::Unspecified => CrlReason::Unspecified,
            RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
            RevocationReason::CaCompromise => CrlReason::CaCompromise,
            RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
            RevocationReason::Superseded => CrlReason::Superseded,
            RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
            RevocationReason::CertificateHold => CrlReason::CertificateHold,
            RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        }
    }
}

impl FromStr for RevocationReason {
    type Err = CaError;

    /// Accepts the RFC name case-insensitively (so "caCompromise" works too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| CaError::UnknownRevocationReason(s.to_string()))
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn revoked_entry(e: &RevokedEntry) -> Result<X509Revoked, CaError> {
    if e.serial.is_empty() || e.serial.iter().all(|b| *b == 0) {
        return Err(CaError::InvalidCrl(
            "revoked serial is empty or zero".into(),
        ));
    }
    // SerialNumber::new treats the bytes as unsigned and adds the sign octet.
    let serial_number = SerialNumber::new(&e.serial)?;
    let crl_entry_extensions = match e.reason {
        Some(reason) => Some(vec![Extension {
            extn_id: OID_CRL_REASON,
            critical: false,
            extn_value: OctetString::new(reason.to_der_reason().to_der()?)?,
        }]),
        None => None,
    };
    let entry: RevokedCert = RevokedCert {
        serial_number,
        revocation_date: x509_time(e.revoked_at)?,
        crl_entry_extensions,
    };
    Ok(X509Revoked::from_der(&entry.to_der()?)?)
}

/// Signs a DER CRL listing `revoked`, with the identity's default digest.
pub fn sign_crl(
    ca: &CaIdentity,
    revoked: &[RevokedEntry],
    crl_number: i64,
    this_update: DateTime<Utc>,
    next_update: DateTime<Utc>,
) -> Result<Vec<u8>, CaError> {
    if crl_number < 0 {
        return Err(CaError::InvalidCrl(format!(
            "CRL number {crl_number} is negative"
        )));
    }
    if next_update <= this_update {
        return Err(CaError::InvalidCrl(
            "nextUpdate must be after thisUpdate".into(),
        ));
    }
    let mut b = X509CrlBuilder::new()?;
    b.set_issuer_name(ca.subject())?;
    b.set_last_update(asn1_time(this_update)?.as_ref())?;
    b.set_next_update(asn1_time(next_update)?.as_ref())?;
    b.append_extension(aki_extension(ca.aki_value())?)?;
    // Range-checked above: CrlNumber::new asserts on negative values.
    let number = BigNum::from_dec_str(&crl_number.to_string())?;
    b.append_extension(CrlNumber::new(number)?.build()?)?;
    for e in revoked {
        b.add_revoked(revoked_entry(e)?)?;
    }
    if !revoked.is_empty() {
        b.sort()?;
    }
    ca.key().sign_crl(b, ca.default_digest())
}

#[cfg(test)]
#[path = "crl_tests.rs"]
mod tests;

//! OCSP (RFC 6960) as bytes: reading an OCSPRequest and writing the
//! OCSPResponse, signed by a delegated responder ([`Responder`]). Pure: no
//! HTTP, no database, no policy; `enroll::ocsp` decides what to answer.
//!
//! The ASN.1 types are `x509-ocsp`'s (RustCrypto). Its last release is
//! built on `der` 0.7 and `x509-cert` 0.2, older than the rest of the
//! server, so those two appear here under their own names (`x509_cert02`);
//! nothing of them leaves this module. docs/ocsp.md says why this crate.

pub mod client;
mod responder;

pub use responder::Responder;

use chrono::{DateTime, Utc};
use openssl::hash::{hash, MessageDigest};
use x509_cert02::der::asn1::{GeneralizedTime, ObjectIdentifier, OctetString};
use x509_cert02::der::{Decode, Encode};
use x509_cert02::ext::pkix::CrlReason;
use x509_ocsp::{
    CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, OcspResponseStatus,
    RevokedInfo,
};

use crate::ca::RevocationReason;

/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// RFC 8954 §2.1: a nonce is 1 to 32 octets.
const NONCE_LEN: std::ops::RangeInclusive<usize> = 1..=32;
/// Most certificates asked about in one request. RFC 5019 clients ask one;
/// the bound keeps a request's database work small.
pub const MAX_CERTS_PER_REQUEST: usize = 16;

/// Errors building a response (never the client's fault).
#[derive(Debug, thiserror::Error)]
pub enum OcspError {
    #[error("DER: {0}")]
    Der(String),
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("CA: {0}")]
    Ca(#[from] crate::ca::CaError),
}

impl From<x509_cert02::der::Error> for OcspError {
    fn from(e: x509_cert02::der::Error) -> Self {
        Self::Der(e.to_string())
    }
}

/// A request the responder cannot read, answered `malformedRequest`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed OCSP request: {0}")]
pub struct Malformed(pub String);

/// One certificate asked about (RFC 6960 §4.1.1 CertID).
#[derive(Debug, Clone)]
pub struct Query {
    id: CertId,
    /// The serial number as unsigned big-endian octets, no leading zeros.
    pub serial: Vec<u8>,
}

impl Query {
    /// Whether the CertID names `ca` as issuer: issuerNameHash over the
    /// DER of its subject, issuerKeyHash over its public key's BIT STRING
    /// contents, with the hash the client chose (SHA-1 or SHA-2).
    pub fn is_issued_by(&self, ca_subject_der: &[u8], ca_key_bits: &[u8]) -> bool {
        let Some(md) = digest_of(&self.id.hash_algorithm.oid) else {
            return false;
        };
        let matches = |data: &[u8], want: &OctetString| {
            hash(md, data).is_ok_and(|h| h.as_ref() == want.as_bytes())
        };
        matches(ca_subject_der, &self.id.issuer_name_hash)
            && matches(ca_key_bits, &self.id.issuer_key_hash)
    }
}

/// A parsed OCSPRequest: what is asked, and the nonce to echo.
#[derive(Debug, Clone)]
pub struct Request {
    pub queries: Vec<Query>,
    /// The nonce extension's extnValue as sent (RFC 8954), echoed verbatim.
    pub nonce: Option<Vec<u8>>,
}

/// Reads a DER OCSPRequest (RFC 6960 §4.1.1). A signature on the request
/// (optionalSignature) is not required and not checked.
pub fn parse_request(der: &[u8]) -> Result<Request, Malformed> {
    let req = OcspRequest::from_der(der).map_err(|e| Malformed(e.to_string()))?;
    let list = req.tbs_request.request_list;
    if list.is_empty() {
        return Err(Malformed("no certificate asked about".into()));
    }
    if list.len() > MAX_CERTS_PER_REQUEST {
        return Err(Malformed(format!(
            "more than {MAX_CERTS_PER_REQUEST} certificates in one request"
        )));
    }
    let mut nonce = None;
    for ext in req.tbs_request.request_extensions.iter().flatten() {
        if ext.extn_id != ID_PKIX_OCSP_NONCE {
            continue;
        }
        let value = ext.extn_value.as_bytes();
        // RFC 6960 §4.4.1: the value is an OCTET STRING; RFC 8954 §2.1
        // bounds it and has a nonce outside 1..=32 octets refused.
        let inner = OctetString::from_der(value)
            .map_err(|_| Malformed("nonce is not an OCTET STRING".into()))?;
        if !NONCE_LEN.contains(&inner.as_bytes().len()) {
            return Err(Malformed(format!(
                "nonce of {} octets (RFC 8954: 1 to 32)",
                inner.as_bytes().len()
            )));
        }
        nonce = Some(value.to_vec());
    }
    let queries = list
        .into_iter()
        .map(|r| {
            let id = r.req_cert;
            let raw = id.serial_number.as_bytes();
            let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
            Query {
                serial: raw[start..].to_vec(),
                id,
            }
        })
        .collect();
    Ok(Request { queries, nonce })
}

/// The hash a CertID names, if we compute it.
fn digest_of(oid: &ObjectIdentifier) -> Option<MessageDigest> {
    match oid.to_string().as_str() {
        "1.3.14.3.2.26" => Some(MessageDigest::sha1()),
        "2.16.840.1.101.3.4.2.1" => Some(MessageDigest::sha256()),
        "2.16.840.1.101.3.4.2.2" => Some(MessageDigest::sha384()),
        "2.16.840.1.101.3.4.2.3" => Some(MessageDigest::sha512()),
        _ => None,
    }
}

/// What the responder says of one certificate (RFC 6960 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked {
        at: DateTime<Utc>,
        reason: Option<RevocationReason>,
    },
    Unknown,
}

/// One SingleResponse: the status and the window it holds for.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: Status,
    /// When the status was read from the database.
    pub this_update: DateTime<Utc>,
    /// Until when it may be served again without reading (the cache
    /// window); `None` when every answer reads afresh.
    pub next_update: Option<DateTime<Utc>>,
}

/// An unsigned OCSPResponse with an error status (RFC 6960 §2.3).
pub fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    let r = OcspResponse {
        response_status: status,
        response_bytes: None,
    };
    // One ENUMERATED in a SEQUENCE: `30 03 0a 01 <status>`.
    r.to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, status as u8])
}

pub fn malformed_request() -> Vec<u8> {
    error_response(OcspResponseStatus::MalformedRequest)
}

/// A successful response: one SingleResponse per query, in order, signed by
/// `responder` (RFC 6960 §4.2.1), echoing the nonce.
pub fn basic_response(
    responder: &Responder,
    queries: &[Query],
    answers: &[Answer],
    nonce: Option<&[u8]>,
    produced_at: DateTime<Utc>,
) -> Result<Vec<u8>, OcspError> {
    let responses = queries
        .iter()
        .zip(answers)
        .map(|(q, a)| {
            Ok(x509_ocsp::SingleResponse {
                cert_id: q.id.clone(),
                cert_status: cert_status(&a.status)?,
                this_update: time(a.this_update)?,
                next_update: a.next_update.map(time).transpose()?,
                single_extensions: None,
            })
        })
        .collect::<Result<Vec<_>, OcspError>>()?;
    responder.sign(responses, nonce, time(produced_at)?)
}

fn cert_status(s: &Status) -> Result<CertStatus, OcspError> {
    Ok(match s {
        Status::Good => CertStatus::good(),
        Status::Unknown => CertStatus::unknown(),
        Status::Revoked { at, reason } => CertStatus::revoked(RevokedInfo {
            revocation_time: time(*at)?,
            revocation_reason: reason.map(crl_reason),
        }),
    })
}

fn crl_reason(r: RevocationReason) -> CrlReason {
    match r {
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

/// GeneralizedTime in whole seconds (RFC 6960 §4.2.2.1, RFC 5280 §4.1.2.5.2).
fn time(t: DateTime<Utc>) -> Result<OcspGeneralizedTime, OcspError> {
    let secs = u64::try_from(t.timestamp())
        .map_err(|_| OcspError::Der(format!("time {t} is before 1970")))?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_unix_duration(
        std::time::Duration::from_secs(secs),
    )?))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

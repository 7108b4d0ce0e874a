//! The delegated responder that signs OCSP answers for one CA (RFC 6960
//! §4.2.2.2): its own RSA key and a certificate the CA issued for it with
//! id-kp-OCSPSigning and id-pkix-ocsp-nocheck (`ca::new_ocsp_responder`).
//! The CA key signs certificates and CRLs only.

use chrono::{DateTime, Duration, Utc};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use x509_cert02::der::asn1::{BitString, Null, ObjectIdentifier, OctetString};
use x509_cert02::der::{Decode, Encode};
use x509_cert02::ext::Extension;
use x509_cert02::spki::AlgorithmIdentifierOwned;
use x509_cert02::Certificate;
use x509_ocsp::{BasicOcspResponse, OcspResponse, ResponderId, ResponseData, SingleResponse};

use super::{OcspError, ID_PKIX_OCSP_NONCE};
use crate::ca::{self, CaIdentity, KeySpec};

/// sha256WithRSAEncryption (RFC 4055).
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// A responder certificate's life. id-pkix-ocsp-nocheck means clients
/// never ask whether it was revoked, so it is kept short (RFC 6960
/// §4.2.2.2.1) and replaced in memory before it runs out.
pub const LIFETIME: Duration = Duration::days(7);

pub struct Responder {
    key: PKey<Private>,
    cert: X509,
    /// The certificate as the response's `certs` carries it.
    cert_asn1: Certificate,
    /// SHA-1 of the responder key's BIT STRING: ResponderID byKey (§4.2.2.3).
    key_hash: Vec<u8>,
    not_after: DateTime<Utc>,
}

impl Responder {
    /// A fresh RSA-2048 key and a certificate for it signed by `ca`.
    pub fn issue(ca: &CaIdentity) -> Result<Self, OcspError> {
        let key = ca::generate_key(KeySpec::Rsa(2048))?;
        let cert = ca::new_ocsp_responder(ca, &key, LIFETIME)?;
        Self::new(cert, key)
    }

    fn new(cert: X509, key: PKey<Private>) -> Result<Self, OcspError> {
        let der = cert.to_der()?;
        let cert_asn1 = Certificate::from_der(&der)?;
        let bits = cert_asn1
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        let key_hash = openssl::sha::sha1(bits).to_vec();
        let id = CaIdentity::new(cert.clone(), key.clone())?;
        Ok(Self {
            not_after: id.not_after(),
            key,
            cert,
            cert_asn1,
            key_hash,
        })
    }

    pub fn cert(&self) -> &X509 {
        &self.cert
    }

    /// Whether the certificate should be replaced: within its last half.
    pub fn is_due_for_renewal(&self, now: DateTime<Utc>) -> bool {
        self.not_after - now < LIFETIME / 2
    }

    /// The BasicOCSPResponse over `responses`, wrapped as a successful
    /// OCSPResponse (RFC 6960 §4.2.1).
    pub(super) fn sign(
        &self,
        responses: Vec<SingleResponse>,
        nonce: Option<&[u8]>,
        produced_at: x509_ocsp::OcspGeneralizedTime,
    ) -> Result<Vec<u8>, OcspError> {
        let response_extensions = match nonce {
            Some(v) => Some(vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(v)?,
            }]),
            None => None,
        };
        let tbs = ResponseData {
            version: x509_ocsp::Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new(self.key_hash.clone())?),
            produced_at,
            responses,
            response_extensions,
        };
        let signature =
            crate::wire::pkcs1::sign(&self.key, MessageDigest::sha256(), &tbs.to_der()?)?;
        let basic = BasicOcspResponse {
            tbs_response_data: tbs,
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(Null.into()),
            },
            signature: BitString::from_bytes(&signature)?,
            certs: Some(vec![self.cert_asn1.clone()]),
        };
        Ok(OcspResponse::successful(basic)?.to_der()?)
    }
}

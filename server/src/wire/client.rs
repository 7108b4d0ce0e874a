//! Client side of the SCEP wire format (RFC 8894 §3.3, §4.2): builds
//! PKIMessage requests and reads CertRep and GetCACert responses. Used by
//! integration tests and the load benchmark, never by the server itself.

use openssl::pkey::{PKeyRef, Private};
use openssl::x509::{X509Ref, X509};

use super::asn1::{self, TAG_SEQUENCE};
use super::decode::{malformed, octets_attr, read_header, string_attr, verify_content};
use super::pkcs7_ffi::{self, scep_nids, AttrKind, AttrSpec, SignedData};
use super::{
    envelope, ContentCipher, DigestAlg, FailInfo, KeyTransport, MessageType, Nonce, PkiStatus,
};
use super::{TransactionId, WireError};

/// Everything needed to build one request PKIMessage.
pub struct ClientRequest<'a> {
    pub message_type: MessageType,
    pub transaction_id: TransactionId,
    pub sender_nonce: Nonce,
    pub signer_cert: &'a X509Ref,
    pub signer_key: &'a PKeyRef<Private>,
    /// The RA certificate the envelope is encrypted to.
    pub recipient: &'a X509Ref,
    pub cipher: ContentCipher,
    pub key_transport: KeyTransport,
    pub digest: DigestAlg,
    pub content: ClientContent<'a>,
}

/// The messageData of a request.
pub enum ClientContent<'a> {
    /// PKCSReq / RenewalReq: PKCS#10 DER.
    Csr(&'a [u8]),
    /// CertPoll: DER Names of the issuer and the requested subject.
    IssuerAndSubject {
        issuer_der: &'a [u8],
        subject_der: &'a [u8],
    },
    /// GetCert / GetCRL: issuer Name DER and big-endian unsigned serial.
    IssuerAndSerial {
        issuer_der: &'a [u8],
        serial: &'a [u8],
    },
}

impl ClientContent<'_> {
    fn to_der(&self) -> Vec<u8> {
        match self {
            Self::Csr(csr) => csr.to_vec(),
            Self::IssuerAndSubject {
                issuer_der,
                subject_der,
            } => asn1::encode(TAG_SEQUENCE, &[*issuer_der, *subject_der].concat()),
            Self::IssuerAndSerial { issuer_der, serial } => asn1::encode(
                TAG_SEQUENCE,
                &[*issuer_der, &asn1::encode_unsigned_integer(serial)].concat(),
            ),
        }
    }
}

/// Builds a request PKIMessage (DER): content enveloped to the RA with the
/// requested cipher and key transport, then signed with the requester's key.
pub fn build_request(req: &ClientRequest<'_>) -> Result<Vec<u8>, WireError> {
    let env = envelope::encrypt(
        &req.content.to_der(),
        req.recipient,
        req.cipher,
        req.key_transport,
    )?;
    sign_request(req, &env)
}

/// Signs an already built pkcsPKIEnvelope with the request's attributes.
pub(crate) fn sign_request(
    req: &ClientRequest<'_>,
    envelope_der: &[u8],
) -> Result<Vec<u8>, WireError> {
    let nids = scep_nids()?;
    let attrs = [
        AttrSpec {
            nid: nids.transaction_id,
            kind: AttrKind::PrintableString,
            value: req.transaction_id.0.as_bytes(),
        },
        AttrSpec {
            nid: nids.message_type,
            kind: AttrKind::PrintableString,
            value: req.message_type.code().as_bytes(),
        },
        AttrSpec {
            nid: nids.sender_nonce,
            kind: AttrKind::OctetString,
            value: &req.sender_nonce.0,
        },
    ];
    pkcs7_ffi::sign_with_attributes(
        req.signer_cert,
        req.signer_key,
        req.digest.message_digest(),
        &[],
        &attrs,
        envelope_der,
    )
}

/// A decoded CertRep.
#[derive(Debug)]
pub struct CertRepMsg {
    pub status: PkiStatus,
    pub fail_info: Option<FailInfo>,
    pub transaction_id: TransactionId,
    pub sender_nonce: Nonce,
    pub recipient_nonce: Nonce,
    pub digest: DigestAlg,
    /// Content-encryption algorithm of the envelope (SUCCESS only).
    pub cipher: Option<ContentCipher>,
    pub certs: Vec<X509>,
    /// DER CRLs.
    pub crls: Vec<Vec<u8>>,
}

/// Verifies the CertRep's signature against `ra_cert` (the signer must be
/// the RA), decrypts the envelope with the client's key/cert on SUCCESS, and
/// extracts certificates/CRLs from the degenerate content.
pub fn parse_cert_rep(
    der: &[u8],
    ra_cert: &X509Ref,
    client_cert: &X509Ref,
    client_key: &PKeyRef<Private>,
) -> Result<CertRepMsg, WireError> {
    let nids = scep_nids()?;
    let sd = SignedData::from_der(der)?;
    let header = read_header(&sd)?;
    if header.message_type != MessageType::CertRep {
        return Err(malformed(format!(
            "expected CertRep, got {}",
            header.message_type.name()
        )));
    }
    let status = string_attr(&sd, nids.pki_status, "pkiStatus")?
        .ok_or_else(|| malformed("pkiStatus missing"))?;
    let status = PkiStatus::from_code(&status)
        .ok_or_else(|| malformed(format!("unknown pkiStatus {status:?}")))?;
    let fail_info = match string_attr(&sd, nids.fail_info, "failInfo")? {
        Some(f) => Some(
            FailInfo::from_code(&f).ok_or_else(|| malformed(format!("unknown failInfo {f:?}")))?,
        ),
        None => None,
    };
    let recipient_nonce = octets_attr(&sd, nids.recipient_nonce, "recipientNonce")?
        .ok_or_else(|| malformed("recipientNonce missing"))?;

    let p7 = openssl::pkcs7::Pkcs7::from_der(der).map_err(|e| malformed(format!("PKCS#7: {e}")))?;
    let content = verify_content(&p7, ra_cert)?;

    let (mut certs, mut crls, mut cipher) = (Vec::new(), Vec::new(), None);
    if status == PkiStatus::Success {
        let (plain, c, _) = envelope::decrypt(
            &content,
            client_key,
            &client_cert.to_owned(),
            &client_cert.to_der()?,
        )?;
        let inner = SignedData::from_der(&plain)?;
        for d in inner.certificates_der()? {
            certs.push(X509::from_der(&d).map_err(|e| malformed(format!("certificate: {e}")))?);
        }
        crls = inner.crls_der()?;
        cipher = Some(c);
    }
    Ok(CertRepMsg {
        status,
        fail_info,
        transaction_id: header.transaction_id,
        sender_nonce: header.sender_nonce,
        recipient_nonce: Nonce(recipient_nonce),
        digest: header.digest,
        cipher,
        certs,
        crls,
    })
}

/// Parses a GetCACert body (degenerate PKCS#7, or a single DER certificate)
/// into certificates.
pub fn parse_certs_only(der: &[u8]) -> Result<Vec<X509>, WireError> {
    match SignedData::from_der(der) {
        Ok(sd) => sd
            .certificates_der()?
            .iter()
            .map(|d| X509::from_der(d).map_err(|e| malformed(format!("certificate: {e}"))))
            .collect(),
        Err(_) => X509::from_der(der)
            .map(|c| vec![c])
            .map_err(|_| malformed("neither a PKCS#7 nor a certificate")),
    }
}

/// Verifies a GetNextCACert response signed by `ca_cert` and returns the
/// certificates of its certs-only content.
pub fn parse_signed_next_ca(der: &[u8], ca_cert: &X509Ref) -> Result<Vec<X509>, WireError> {
    let p7 = openssl::pkcs7::Pkcs7::from_der(der).map_err(|e| malformed(format!("PKCS#7: {e}")))?;
    let content = verify_content(&p7, ca_cert)?;
    parse_certs_only(&content)
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

//! Server-side encoding: the CertRep PKIMessage (RFC 8894 §3.3.2), the
//! degenerate certs-only / CRL-only SignedData (§3.4, §4.2, §3.3.4) and the
//! signed GetNextCACert response (§3.5.2, §4.7). Output is always DER.

use openssl::pkey::{PKeyRef, Private};
use openssl::x509::X509Ref;

use super::pkcs7_ffi::{self, scep_nids, AttrKind, AttrSpec};
use super::signed;
use super::{envelope, ContentCipher, FailInfo, Header, MessageType, Nonce, PkiStatus, SignerCert};
use super::{RaIdentity, WireError};

/// What a CertRep answers.
pub enum Reply<'a> {
    /// SUCCESS: `content` (a degenerate SignedData from `certs_only` /
    /// `crl_only`) is enveloped to `recipient` with `cipher`.
    Success {
        content: Vec<u8>,
        recipient: &'a SignerCert,
        cipher: ContentCipher,
    },
    Pending,
    Failure(FailInfo),
}

/// RFC 8894 §3.3.2 CertRep: signed by the RA with the request's digest;
/// attributes transactionID (same), messageType 3, pkiStatus, failInfo (on
/// failure), senderNonce (fresh), recipientNonce (the request's
/// senderNonce); the RA certificate is included. PENDING and FAILURE carry
/// an empty id-data content. Returns DER.
pub fn cert_rep(ra: &RaIdentity, request: &Header, reply: Reply<'_>) -> Result<Vec<u8>, WireError> {
    let nids = scep_nids()?;
    let (status, fail, content) = match reply {
        Reply::Success {
            content,
            recipient,
            cipher,
        } => (
            PkiStatus::Success,
            None,
            envelope::encrypt_to_signer(&content, recipient, cipher)?,
        ),
        Reply::Pending => (PkiStatus::Pending, None, Vec::new()),
        Reply::Failure(f) => (PkiStatus::Failure, Some(f), Vec::new()),
    };
    let sender_nonce = Nonce::random()?;
    let printable = |nid, value: &'static str| AttrSpec {
        nid,
        kind: AttrKind::PrintableString,
        value: value.as_bytes(),
    };
    let mut attrs = vec![
        AttrSpec {
            nid: nids.transaction_id,
            kind: AttrKind::PrintableString,
            value: request.transaction_id.0.as_bytes(),
        },
        printable(nids.message_type, MessageType::CertRep.code()),
        printable(nids.pki_status, status.code()),
        AttrSpec {
            nid: nids.sender_nonce,
            kind: AttrKind::OctetString,
            value: &sender_nonce.0,
        },
        AttrSpec {
            nid: nids.recipient_nonce,
            kind: AttrKind::OctetString,
            value: &request.sender_nonce.0,
        },
    ];
    if let Some(f) = fail {
        attrs.push(printable(nids.fail_info, f.code()));
    }
    if let Some(der) = signed::sign_rsa(ra.cert_der(), &ra.key, request.digest, &attrs, &content)? {
        return Ok(der);
    }
    pkcs7_ffi::sign_with_attributes(
        &ra.cert,
        &ra.key,
        request.digest.message_digest(),
        &[],
        &attrs,
        &content,
    )
}

/// Degenerate certificates-only PKCS#7 (GetCACert body, CertRep content).
pub fn certs_only(certs: &[&X509Ref]) -> Result<Vec<u8>, WireError> {
    pkcs7_ffi::degenerate(certs, &[])
}

/// As [`certs_only`] from certificates' DER, assembled directly: the same
/// bytes OpenSSL writes, without parsing the certificates first.
pub fn certs_only_der(certs: &[&[u8]]) -> Vec<u8> {
    use super::asn1::{encode, TAG_INTEGER, TAG_SEQUENCE};
    const TAG_SET: u8 = 0x31;
    const TAG_OID: u8 = 0x06;
    use super::asn1::{OID_DATA as DATA, OID_SIGNED_DATA as SIGNED_DATA};
    let signed = encode(
        TAG_SEQUENCE,
        &[
            encode(TAG_INTEGER, &[1]),
            encode(TAG_SET, &[]),
            encode(TAG_SEQUENCE, &encode(TAG_OID, DATA)),
            // certificates [0] IMPLICIT, in the order given (as OpenSSL).
            encode(0xa0, &certs.concat()),
            encode(TAG_SET, &[]),
        ]
        .concat(),
    );
    encode(
        TAG_SEQUENCE,
        &[encode(TAG_OID, SIGNED_DATA), encode(0xa0, &signed)].concat(),
    )
}

/// Degenerate PKCS#7 carrying one CRL (GetCRL reply content).
pub fn crl_only(crl_der: &[u8]) -> Result<Vec<u8>, WireError> {
    pkcs7_ffi::degenerate(&[], &[crl_der])
}

/// RFC 8894 §3.5.2 GetNextCACert: SignedData by `signer_cert` (the current
/// CA) whose content is `certs_only(next CA [+ next RA])`. SHA-256.
pub fn signed_next_ca(
    signer_cert: &X509Ref,
    signer_key: &PKeyRef<Private>,
    content: &[u8],
) -> Result<Vec<u8>, WireError> {
    pkcs7_ffi::sign_with_attributes(
        signer_cert,
        signer_key,
        openssl::hash::MessageDigest::sha256(),
        &[],
        &[],
        content,
    )
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;

//! Server-side decoding of a SCEP PKIMessage (RFC 8894 §3.2, §3.3): the
//! outer SignedData and its attributes ([`decode`]), then signature check,
//! decryption and messageData parsing ([`SignedMessage::open`]).

use openssl::pkcs7::{Pkcs7, Pkcs7Flags, Pkcs7Ref};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509Ref;

use super::asn1::{self, read_single, TAG_INTEGER, TAG_SEQUENCE};
use super::direct;
use super::pkcs7_ffi::{scep_nids, AttrKind, SignedData};
use super::{
    envelope, ContentCipher, DigestAlg, Header, KeyTransport, MessageType, Nonce, RaIdentity,
    SignerCert,
};
use super::{TransactionId, WireError};

/// Outer SignedData decoded and attributes read; the signature is checked
/// by [`SignedMessage::open`] (already, when the direct path read it).
pub struct SignedMessage {
    header: Header,
    signer: SignerCert,
    body: Body,
}

enum Body {
    /// Read by `direct`: signature verified, this is the signed content.
    Verified(Vec<u8>),
    /// Read by OpenSSL; not verified yet.
    Pkcs7(Pkcs7),
}

/// A verified and decrypted request.
#[derive(Debug)]
pub struct PkiMessage {
    pub header: Header,
    pub signer_cert: SignerCert,
    pub cipher: ContentCipher,
    pub key_transport: KeyTransport,
    pub content: MessageContent,
}

/// The messageData of a request, by message type (RFC 8894 §3.3.1-§3.3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageContent {
    /// PKCSReq and RenewalReq: the PKCS#10 DER.
    CertReq { csr_der: Vec<u8> },
    /// CertPoll: IssuerAndSubject.
    CertPoll {
        issuer_der: Vec<u8>,
        subject_der: Vec<u8>,
    },
    /// GetCert: IssuerAndSerialNumber, serial as big-endian unsigned bytes.
    GetCert {
        issuer_der: Vec<u8>,
        serial: Vec<u8>,
    },
    /// GetCRL: IssuerAndSerialNumber of the certificate whose CRL is wanted.
    GetCrl {
        issuer_der: Vec<u8>,
        serial: Vec<u8>,
    },
}

pub(crate) fn malformed(msg: impl Into<String>) -> WireError {
    WireError::Malformed(msg.into())
}

/// Where the signed attributes come from: OpenSSL's parse or `direct`'s.
pub(crate) trait Attrs {
    fn signed_attribute(&self, nid: openssl::nid::Nid) -> Option<(AttrKind, Vec<u8>)>;
    fn signer_count(&self) -> usize;
    fn digest_nid(&self) -> Option<openssl::nid::Nid>;
}

impl Attrs for SignedData {
    fn signed_attribute(&self, nid: openssl::nid::Nid) -> Option<(AttrKind, Vec<u8>)> {
        SignedData::signed_attribute(self, nid)
    }
    fn signer_count(&self) -> usize {
        SignedData::signer_count(self)
    }
    fn digest_nid(&self) -> Option<openssl::nid::Nid> {
        SignedData::digest_nid(self)
    }
}

/// A string attribute (PrintableString, or the string types lenient
/// clients use instead).
pub(crate) fn string_attr(
    sd: &impl Attrs,
    nid: openssl::nid::Nid,
    name: &str,
) -> Result<Option<String>, WireError> {
    match sd.signed_attribute(nid) {
        None => Ok(None),
        Some((AttrKind::PrintableString | AttrKind::Utf8String | AttrKind::Ia5String, bytes)) => {
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| malformed(format!("{name} is not text")))
        }
        Some((kind, _)) => Err(malformed(format!("{name} has type {kind:?}"))),
    }
}

pub(crate) fn octets_attr(
    sd: &impl Attrs,
    nid: openssl::nid::Nid,
    name: &str,
) -> Result<Option<Vec<u8>>, WireError> {
    match sd.signed_attribute(nid) {
        None => Ok(None),
        Some((AttrKind::OctetString, bytes)) => Ok(Some(bytes)),
        Some((kind, _)) => Err(malformed(format!("{name} has type {kind:?}"))),
    }
}

/// messageType, transactionID, senderNonce and digest, all required.
pub(crate) fn read_header(sd: &impl Attrs) -> Result<Header, WireError> {
    let nids = scep_nids()?;
    if sd.signer_count() == 0 {
        return Err(malformed("SignedData has no SignerInfo"));
    }
    let mt = string_attr(sd, nids.message_type, "messageType")?
        .ok_or_else(|| malformed("messageType missing"))?;
    let message_type = MessageType::from_code(&mt)
        .ok_or_else(|| malformed(format!("unknown messageType {mt:?}")))?;
    let txid = string_attr(sd, nids.transaction_id, "transactionID")?
        .ok_or_else(|| malformed("transactionID missing"))?;
    if txid.is_empty() {
        return Err(malformed("transactionID is empty"));
    }
    // RFC 8894 §3.2.1.1: a PrintableString. Control characters are never
    // sent by a real client, and a NUL cannot even be stored or looked up
    // (PostgreSQL text), which made CertPoll fail with HTTP 500.
    if txid.chars().any(char::is_control) {
        return Err(malformed("transactionID contains control characters"));
    }
    let nonce = octets_attr(sd, nids.sender_nonce, "senderNonce")?
        .ok_or_else(|| malformed("senderNonce missing"))?;
    let digest_nid = sd
        .digest_nid()
        .ok_or_else(|| malformed("no digest algorithm"))?;
    let digest = DigestAlg::from_nid(digest_nid).ok_or_else(|| {
        WireError::UnsupportedAlgorithm(format!(
            "digest {}",
            digest_nid.long_name().unwrap_or("unknown")
        ))
    })?;
    Ok(Header {
        message_type,
        transaction_id: TransactionId(txid),
        sender_nonce: Nonce(nonce),
        digest,
    })
}

/// Verifies the signature over the signed attributes (and through the
/// messageDigest attribute, the content) with `signer` only, and returns the
/// content. No chain building: trust is the caller's policy.
pub(crate) fn verify_content(p7: &Pkcs7Ref, signer: &X509Ref) -> Result<Vec<u8>, WireError> {
    let mut certs = Stack::new()?;
    certs.push(signer.to_owned())?;
    let store = X509StoreBuilder::new()?.build();
    let mut out = Vec::new();
    p7.verify(
        &certs,
        &store,
        None,
        Some(&mut out),
        Pkcs7Flags::NOVERIFY | Pkcs7Flags::NOINTERN,
    )
    .map_err(|_| WireError::BadSignature)?;
    Ok(out)
}

/// Decodes a PKIMessage (DER or BER). Anything undecodable, or a missing
/// transactionID/messageType/senderNonce, is `Malformed`.
pub fn decode(der: &[u8]) -> Result<SignedMessage, WireError> {
    if let Some(v) = direct::decode(der) {
        // Header errors are the same whichever path read the attributes.
        return Ok(SignedMessage {
            header: read_header(&v.parsed)?,
            signer: v.signer,
            body: Body::Verified(v.content),
        });
    }
    decode_openssl(der)
}

/// For tests and fuzzing: when the direct path reads `der`, OpenSSL's path
/// must read the same header and signer, and `open` must give the same
/// result (or the same failInfo). `Ok(false)`: not read directly.
#[cfg(any(test, feature = "fuzzing"))]
pub fn direct_agrees_with_openssl(der: &[u8], ra: &RaIdentity) -> Result<bool, String> {
    let Ok(direct) = decode(der) else {
        return Ok(false);
    };
    if !direct.read_directly() {
        return Ok(false);
    }
    let via = decode_openssl(der).map_err(|e| format!("OpenSSL refuses it: {e}"))?;
    if direct.header() != via.header() {
        return Err(format!(
            "headers: {:?} vs {:?}",
            direct.header(),
            via.header()
        ));
    }
    if direct.signer_cert().der() != via.signer_cert().der() {
        return Err("signer certificates differ".into());
    }
    match (direct.open(ra), via.open(ra)) {
        (Ok(a), Ok(b)) => {
            let same = a.content == b.content
                && (a.cipher, a.key_transport) == (b.cipher, b.key_transport);
            same.then_some(true)
                .ok_or_else(|| format!("opened differently: {a:?} vs {b:?}"))
        }
        (Err(a), Err(b)) if a.fail_info() == b.fail_info() => Ok(true),
        (a, b) => Err(format!("open: {a:?} vs {b:?}")),
    }
}

/// Every layout and encoding, by OpenSSL's PKCS#7 parser.
pub(super) fn decode_openssl(der: &[u8]) -> Result<SignedMessage, WireError> {
    let sd = SignedData::from_der(der)?;
    let header = read_header(&sd)?;
    let p7 = sd.into_pkcs7();
    // PKCS7_get0_signers matches the SignerInfo's issuerAndSerialNumber
    // against the certificates carried in the message.
    let none = Stack::new()?;
    let signers = p7
        .signers(&none, Pkcs7Flags::empty())
        .map_err(|_| malformed("signer certificate not included"))?;
    let signer_cert = signers
        .iter()
        .next()
        .map(X509Ref::to_owned)
        .ok_or_else(|| malformed("signer certificate not included"))?;
    Ok(SignedMessage {
        header,
        signer: SignerCert::from_x509(signer_cert)?,
        body: Body::Pkcs7(p7),
    })
}

impl SignedMessage {
    /// Whether the direct path read this message (tests).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn read_directly(&self) -> bool {
        matches!(self.body, Body::Verified(_))
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The certificate whose key signed the message (self-signed for a first
    /// enrollment, a previously issued one for renewal).
    pub fn signer_cert(&self) -> &SignerCert {
        &self.signer
    }

    /// Verifies the signature with the signer cert's key (not the chain;
    /// policy is the caller's), decrypts the EnvelopedData with the RA key,
    /// and parses the content for the message type.
    pub fn open(&self, ra: &RaIdentity) -> Result<PkiMessage, WireError> {
        self.open_for(&[ra])
    }

    /// As [`SignedMessage::open`], decrypting with whichever of `ours` the
    /// envelope names (an RA's signing and encryption certificates).
    pub fn open_for(&self, ours: &[&RaIdentity]) -> Result<PkiMessage, WireError> {
        let envelope_der = match &self.body {
            Body::Verified(content) => std::borrow::Cow::Borrowed(content),
            Body::Pkcs7(p7) => std::borrow::Cow::Owned(verify_content(p7, self.signer.x509()?)?),
        };
        // RFC 8894 §3.3.2: a SUCCESS is enveloped to the signer's key, and
        // CMS can do that only for RSA (key transport) or EC (key
        // agreement). Another signer (DSA, say) could never be answered:
        // refuse it here, signed and badAlg, rather than fail on the reply.
        let key_id = self.signer.public_key().id();
        if !matches!(key_id, openssl::pkey::Id::RSA | openssl::pkey::Id::EC) {
            return Err(WireError::UnsupportedAlgorithm(format!(
                "signer key type {key_id:?}: no reply can be enveloped to it"
            )));
        }
        if envelope_der.is_empty() {
            return Err(malformed("request has no pkcsPKIEnvelope"));
        }
        // The reply to an EC signer wraps its content key with AES key wrap
        // (RFC 5753 key agreement), which needs at least 16 bytes: a single
        // DES key (8) cannot be wrapped, so no SUCCESS could be sent.
        // Decided on the algorithm, before anything is decrypted.
        let (cipher, _) = envelope::algorithms(&envelope_der)?;
        if key_id == openssl::pkey::Id::EC && cipher == ContentCipher::DesCbc {
            return Err(WireError::UnsupportedAlgorithm(
                "single DES cannot be enveloped to an EC signer".into(),
            ));
        }
        let (plain, cipher, key_transport) = envelope::decrypt_for(&envelope_der, ours)?;
        // Past the key unwrap every failure is one answer (badMessageCheck):
        // content that does not parse is what a wrong content key yields.
        let content = parse_content(self.header.message_type, &plain)
            .map_err(|_| envelope::undecryptable())?;
        Ok(PkiMessage {
            header: self.header.clone(),
            signer_cert: self.signer.clone(),
            cipher,
            key_transport,
            content,
        })
    }
}

fn two_fields<'a>(plain: &'a [u8], what: &str) -> Result<(Vec<u8>, asn1::Tlv<'a>), WireError> {
    let seq = read_single(plain)?.expect(TAG_SEQUENCE, what)?.children()?;
    match seq.as_slice() {
        [issuer, second] => Ok((
            issuer.expect(TAG_SEQUENCE, "issuer Name")?.raw.to_vec(),
            *second,
        )),
        _ => Err(malformed(format!("{what} must have two fields"))),
    }
}

fn parse_content(mt: MessageType, plain: &[u8]) -> Result<MessageContent, WireError> {
    match mt {
        MessageType::PkcsReq | MessageType::RenewalReq => {
            read_single(plain)?.expect(TAG_SEQUENCE, "CertificationRequest")?;
            Ok(MessageContent::CertReq {
                csr_der: plain.to_vec(),
            })
        }
        MessageType::CertPoll => {
            let (issuer_der, subject) = two_fields(plain, "IssuerAndSubject")?;
            let subject_der = subject.expect(TAG_SEQUENCE, "subject Name")?.raw.to_vec();
            Ok(MessageContent::CertPoll {
                issuer_der,
                subject_der,
            })
        }
        MessageType::GetCert | MessageType::GetCrl => {
            let (issuer_der, serial) = two_fields(plain, "IssuerAndSerialNumber")?;
            let serial =
                asn1::unsigned_integer(serial.expect(TAG_INTEGER, "serialNumber")?.content)?;
            Ok(if mt == MessageType::GetCert {
                MessageContent::GetCert { issuer_der, serial }
            } else {
                MessageContent::GetCrl { issuer_der, serial }
            })
        }
        MessageType::CertRep => Err(malformed("CertRep is not a request")),
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;

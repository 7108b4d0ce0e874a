//! SCEP wire format (RFC 8894 §3): PKIMessage decoding and CertRep encoding.
//!
//! Pure: bytes in, typed messages out. No HTTP, no database, no policy.
//! The only `unsafe` in the crate lives in [`pkcs7_ffi`], which reads and
//! writes the PKCS#7 signed attributes that rust-openssl's safe API lacks.
//!
//! Server side: [`decode`] then [`SignedMessage::open`] for a PKIMessage
//! (RFC 8894 §3.3), [`cert_rep`] for the reply (§3.3.2), [`certs_only`],
//! [`crl_only`] and [`signed_next_ca`] for the other bodies (§3.5, §4).
//! Client side (tests, load benchmark): [`client`].

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::symm::Cipher;
use openssl::x509::X509;

pub(crate) mod asn1;
pub mod client;
mod decode;
mod direct;
mod encode;
mod envelope;
pub(crate) mod pkcs1;
#[allow(unsafe_code)]
pub mod pkcs7_ffi;
mod signed;
mod signer;
#[cfg(test)]
mod testutil;

#[cfg(any(test, feature = "fuzzing"))]
pub use decode::direct_agrees_with_openssl;
pub use decode::{decode, MessageContent, PkiMessage, SignedMessage};
pub use encode::{cert_rep, certs_only, certs_only_der, crl_only, signed_next_ca, Reply};
pub use signer::SignerCert;

/// One-line RFC 4514-style rendering of a name, most significant last.
pub fn name_text(name: &openssl::x509::X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?").to_string();
            let val = e.data().to_string().unwrap_or_default();
            format!("{key}={val}")
        })
        .collect();
    parts.reverse();
    parts.join(",")
}

/// The SCEP attributes common to every PKIMessage (RFC 8894 §3.2.1), plus
/// the signer's digest algorithm, which a CertRep must reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub message_type: MessageType,
    pub transaction_id: TransactionId,
    pub sender_nonce: Nonce,
    pub digest: DigestAlg,
}

/// RFC 8894 §3.2.1.2 messageType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    CertRep,
    RenewalReq,
    PkcsReq,
    CertPoll,
    GetCert,
    GetCrl,
}

impl MessageType {
    /// The decimal string carried in the attribute (a PrintableString).
    pub fn code(self) -> &'static str {
        match self {
            Self::CertRep => "3",
            Self::RenewalReq => "17",
            Self::PkcsReq => "19",
            Self::CertPoll => "20",
            Self::GetCert => "21",
            Self::GetCrl => "22",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code.trim() {
            "3" => Self::CertRep,
            "17" => Self::RenewalReq,
            "19" => Self::PkcsReq,
            "20" => Self::CertPoll,
            "21" => Self::GetCert,
            "22" => Self::GetCrl,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::CertRep => "CertRep",
            Self::RenewalReq => "RenewalReq",
            Self::PkcsReq => "PKCSReq",
            Self::CertPoll => "CertPoll",
            Self::GetCert => "GetCert",
            Self::GetCrl => "GetCRL",
        }
    }
}

/// RFC 8894 §3.2.1.3 pkiStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkiStatus {
    Success,
    Failure,
    Pending,
}

impl PkiStatus {
    pub fn code(self) -> &'static str {
        match self {
            Self::Success => "0",
            Self::Failure => "2",
            Self::Pending => "3",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code.trim() {
            "0" => Self::Success,
            "2" => Self::Failure,
            "3" => Self::Pending,
            _ => return None,
        })
    }
}

/// RFC 8894 §3.2.1.4 failInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    BadAlg,
    BadMessageCheck,
    BadRequest,
    BadTime,
    BadCertId,
}

impl FailInfo {
    pub fn code(self) -> &'static str {
        match self {
            Self::BadAlg => "0",
            Self::BadMessageCheck => "1",
            Self::BadRequest => "2",
            Self::BadTime => "3",
            Self::BadCertId => "4",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code.trim() {
            "0" => Self::BadAlg,
            "1" => Self::BadMessageCheck,
            "2" => Self::BadRequest,
            "3" => Self::BadTime,
            "4" => Self::BadCertId,
            _ => return None,
        })
    }
}

/// RFC 8894 §3.2.1.1 transactionID (a PrintableString chosen by the client).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(pub String);

impl std::fmt::Display for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 8894 §3.2.1.5 senderNonce / recipientNonce (16 octets in practice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(pub Vec<u8>);

impl Nonce {
    /// A fresh 16-byte nonce from the OS CSPRNG.
    pub fn random() -> Result<Self, WireError> {
        let mut n = vec![0u8; 16];
        openssl::rand::rand_bytes(&mut n)?;
        Ok(Self(n))
    }
}

/// Digest algorithm of a SignerInfo; a CertRep answers with the client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlg {
    /// The SignerInfo digest algorithm of a NID, if SCEP allows it.
    pub fn from_nid(nid: openssl::nid::Nid) -> Option<Self> {
        use openssl::nid::Nid;
        Some(match nid {
            Nid::SHA1 => Self::Sha1,
            Nid::SHA256 => Self::Sha256,
            Nid::SHA384 => Self::Sha384,
            Nid::SHA512 => Self::Sha512,
            _ => return None,
        })
    }

    /// The AlgorithmIdentifier OID's content octets.
    pub(crate) fn oid(self) -> &'static [u8] {
        match self {
            Self::Sha1 => &[0x2b, 0x0e, 0x03, 0x02, 0x1a],
            Self::Sha256 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
            Self::Sha384 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
            Self::Sha512 => &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
        }
    }

    pub(crate) fn from_oid(oid: &[u8]) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|d| d.oid() == oid)
    }

    pub(crate) fn nid(self) -> openssl::nid::Nid {
        use openssl::nid::Nid;
        match self {
            Self::Sha1 => Nid::SHA1,
            Self::Sha256 => Nid::SHA256,
            Self::Sha384 => Nid::SHA384,
            Self::Sha512 => Nid::SHA512,
        }
    }

    /// The last arc of shaNWithRSAEncryption (1.2.840.113549.1.1.n).
    pub(crate) fn rsa_signature_arc(self) -> u8 {
        match self {
            Self::Sha1 => 5,
            Self::Sha256 => 11,
            Self::Sha384 => 12,
            Self::Sha512 => 13,
        }
    }

    pub fn message_digest(self) -> MessageDigest {
        match self {
            Self::Sha1 => MessageDigest::sha1(),
            Self::Sha256 => MessageDigest::sha256(),
            Self::Sha384 => MessageDigest::sha384(),
            Self::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// Content-encryption algorithm of an EnvelopedData; a CertRep answers with
/// the client's, never a weaker one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    /// Single DES: broken, but micromdm's scepclient (go pkcs7) uses nothing
    /// else. Whether it is accepted is the service's policy, not ours.
    DesCbc,
    Des3Cbc,
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
}

impl ContentCipher {
    pub fn cipher(self) -> Cipher {
        match self {
            Self::DesCbc => Cipher::des_cbc(),
            Self::Des3Cbc => Cipher::des_ede3_cbc(),
            Self::Aes128Cbc => Cipher::aes_128_cbc(),
            Self::Aes192Cbc => Cipher::aes_192_cbc(),
            Self::Aes256Cbc => Cipher::aes_256_cbc(),
        }
    }
}

/// RSA key transport of the EnvelopedData's RecipientInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTransport {
    RsaPkcs1v15,
    RsaOaep,
}

/// The RA's certificate and key: requests are encrypted to it and CertReps
/// are signed by it. Built with [`RaIdentity::new`], which encodes the
/// certificate once: every enrollment needs its DER twice (to find our
/// RecipientInfo, and in the CertRep's certificates and signer ID), and
/// OpenSSL re-encodes a parsed certificate on every `to_der`. The fields
/// are read through accessors so that the DER cannot fall out of step.
pub struct RaIdentity {
    cert: X509,
    key: PKey<Private>,
    cert_der: Vec<u8>,
}

impl RaIdentity {
    pub fn new(cert: X509, key: PKey<Private>) -> Result<RaIdentity, openssl::error::ErrorStack> {
        let cert_der = cert.to_der()?;
        Ok(RaIdentity {
            cert,
            key,
            cert_der,
        })
    }

    pub fn cert(&self) -> &X509 {
        &self.cert
    }

    pub fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// The certificate's DER, as encoded when the identity was built.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }
}

/// Errors of the wire layer. `Malformed` is the client's fault and becomes
/// HTTP 400; the others become a signed CertRep FAILURE (see `fail_info`).
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    #[error("envelope cannot be decrypted: {0}")]
    Decrypt(String),
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

impl WireError {
    /// RFC 8894 §3.3.2.2: which failInfo a CertRep FAILURE carries.
    pub fn fail_info(&self) -> FailInfo {
        match self {
            Self::BadSignature | Self::Decrypt(_) => FailInfo::BadMessageCheck,
            Self::UnsupportedAlgorithm(_) => FailInfo::BadAlg,
            Self::Malformed(_) | Self::OpenSsl(_) => FailInfo::BadRequest,
        }
    }
}

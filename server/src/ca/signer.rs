//! The CA's private key wherever it lives: in memory (decrypted from
//! `<data>/ca/ca.key`) or in an HSM (`pkcs11`). Issuance, CRLs, RA and
//! rollover certificates all sign through [`CaKey`]; the software arm is
//! the same call as before, so the common case pays one `match`.

use std::sync::OnceLock;

use der::Decode;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::x509::{X509Builder, X509CrlBuilder, X509};

use super::pkcs11::HsmKey;
use super::{generate_key, CaError, KeySpec};
use crate::wire::asn1::encode;

const TAG_SEQUENCE: u8 = 0x30;
const TAG_BIT_STRING: u8 = 0x03;

pub enum CaKey {
    Software(PKey<Private>),
    Pkcs11(HsmKey),
}

impl CaKey {
    /// The signature of `data` with `md` (PKCS#1 v1.5 or DER ECDSA).
    pub fn sign(&self, md: MessageDigest, data: &[u8]) -> Result<Vec<u8>, CaError> {
        match self {
            CaKey::Software(k) => Ok(crate::wire::pkcs1::sign(k, md, data)?),
            CaKey::Pkcs11(k) => k.sign(md, data),
        }
    }

    /// RSA or EC.
    pub fn id(&self) -> Id {
        match self {
            CaKey::Software(k) => k.id(),
            CaKey::Pkcs11(k) => k.id(),
        }
    }

    pub fn public_key(&self) -> Result<PKey<Public>, CaError> {
        match self {
            CaKey::Software(k) => Ok(PKey::public_key_from_der(&k.public_key_to_der()?)?),
            CaKey::Pkcs11(k) => Ok(k.public_key().clone()),
        }
    }

    /// The key itself when it is in memory.
    pub fn software(&self) -> Option<&PKeyRef<Private>> {
        match self {
            CaKey::Software(k) => Some(k),
            CaKey::Pkcs11(_) => None,
        }
    }

    pub fn hsm(&self) -> Option<&HsmKey> {
        match self {
            CaKey::Software(_) => None,
            CaKey::Pkcs11(k) => Some(k),
        }
    }

    /// Signs a certificate OpenSSL's builder assembled.
    pub(crate) fn sign_x509(&self, mut b: X509Builder, md: MessageDigest) -> Result<X509, CaError> {
        match self {
            CaKey::Software(k) => {
                b.sign(k, md)?;
                Ok(b.build())
            }
            CaKey::Pkcs11(k) => {
                b.sign(placeholder(k.id())?, md)?;
                let der = resign(&b.build().to_der()?, k, md)?;
                Ok(X509::from_der(&der)?)
            }
        }
    }

    /// Signs a CRL OpenSSL's builder assembled; DER.
    pub(crate) fn sign_crl(
        &self,
        mut b: X509CrlBuilder,
        md: MessageDigest,
    ) -> Result<Vec<u8>, CaError> {
        match self {
            CaKey::Software(k) => {
                b.sign(k, md)?;
                Ok(b.build()?.to_der()?)
            }
            CaKey::Pkcs11(k) => {
                b.sign(placeholder(k.id())?, md)?;
                resign(&b.build()?.to_der()?, k, md)
            }
        }
    }
}

/// A throwaway key of the HSM key's algorithm. OpenSSL's builders only sign
/// with a key they hold; the AlgorithmIdentifier they write depends on the
/// algorithm and digest alone, so a builder signs with this and [`resign`]
/// swaps in the HSM's signature over the same to-be-signed bytes.
fn placeholder(id: Id) -> Result<&'static PKeyRef<Private>, CaError> {
    static RSA: OnceLock<PKey<Private>> = OnceLock::new();
    static EC: OnceLock<PKey<Private>> = OnceLock::new();
    let (cell, spec) = match id {
        Id::RSA => (&RSA, KeySpec::Rsa(2048)),
        Id::EC => (&EC, KeySpec::EcP256),
        _ => return Err(CaError::Hsm("the HSM key is neither RSA nor EC".into())),
    };
    if let Some(k) = cell.get() {
        return Ok(k);
    }
    let k = generate_key(spec)?;
    Ok(cell.get_or_init(|| k))
}

/// `SEQUENCE { toBeSigned, algorithm, BIT STRING signature }` (a
/// Certificate, RFC 5280 §4.1, or a CertificateList, §5.1) with its
/// signature replaced by `key`'s over the same toBeSigned.
fn resign(signed: &[u8], key: &HsmKey, md: MessageDigest) -> Result<Vec<u8>, CaError> {
    let parts = Vec::<der::Any>::from_der(signed)?;
    let [tbs, alg, _] = parts.as_slice() else {
        return Err(CaError::Der("a signed object has three parts".into()));
    };
    let tbs = der::Encode::to_der(tbs)?;
    let sig = key.sign(md, &tbs)?;
    let alg = der::Encode::to_der(alg)?;
    Ok(encode(
        TAG_SEQUENCE,
        &[
            tbs,
            alg,
            encode(TAG_BIT_STRING, &[&[0u8][..], &sig].concat()),
        ]
        .concat(),
    ))
}

//! The certificate that signed a request. Read with `x509-cert`, its RSA
//! key built from the SubjectPublicKeyInfo's numbers: OpenSSL 3 parses an
//! `X509`'s key through its provider decoder framework, which cost about a
//! tenth of an enrollment's CPU (docs/BENCHMARKS.md). The `X509` itself is
//! parsed only when something needs it (an EC key, a non-DER certificate).

use std::sync::OnceLock;

use der::{Decode, Encode};
use openssl::pkey::{Id, PKey, PKeyRef, Public};
use openssl::rsa::Rsa;
use openssl::x509::{X509Ref, X509};

use super::asn1::{encode, read_single, TAG_INTEGER, TAG_SEQUENCE};
use super::WireError;

const RSA_ENCRYPTION: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

pub struct SignerCert {
    der: Vec<u8>,
    issuer_der: Vec<u8>,
    /// DER of the certificate's IssuerAndSerialNumber (RFC 5652 §10.2.4),
    /// when its serial could be read as it is.
    issuer_and_serial: Option<Vec<u8>>,
    /// SHA-256 of the SubjectPublicKeyInfo in DER, the same digest a CSR's
    /// key gets (`Csr::public_key_sha256`).
    spki_sha256: [u8; 32],
    key: PKey<Public>,
    x509: OnceLock<X509>,
}

impl std::fmt::Debug for SignerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerCert")
            .field("sha256", &hex::encode(openssl::sha::sha256(&self.der)))
            .finish_non_exhaustive()
    }
}

impl Clone for SignerCert {
    fn clone(&self) -> Self {
        let x509 = OnceLock::new();
        if let Some(x) = self.x509.get() {
            let _ = x509.set(x.clone());
        }
        Self {
            der: self.der.clone(),
            issuer_der: self.issuer_der.clone(),
            issuer_and_serial: self.issuer_and_serial.clone(),
            spki_sha256: self.spki_sha256,
            key: self.key.clone(),
            x509,
        }
    }
}

fn malformed(what: &str, e: impl std::fmt::Display) -> WireError {
    WireError::Malformed(format!("signer certificate: {what}: {e}"))
}

/// The issuer Name and serialNumber INTEGER of a certificate, each as the
/// exact bytes it carries (what a SignerInfo's or a RecipientInfo's
/// IssuerAndSerialNumber repeats).
pub(crate) fn raw_issuer_and_serial(cert: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let outer = read_single(cert)?.expect(TAG_SEQUENCE, "Certificate")?;
    let tbs = outer.children()?;
    let fields = tbs
        .first()
        .ok_or_else(|| malformed("tbsCertificate", "missing"))?
        .expect(TAG_SEQUENCE, "tbsCertificate")?
        .children()?;
    // [0] version is optional; then serialNumber, signature, issuer.
    let mut rest = fields.iter().skip_while(|f| f.tag == 0xa0);
    let serial = rest
        .next()
        .ok_or_else(|| malformed("serialNumber", "missing"))?;
    let issuer = rest.nth(1).ok_or_else(|| malformed("issuer", "missing"))?;
    Ok((
        issuer.expect(TAG_SEQUENCE, "issuer")?.raw,
        serial.expect(TAG_INTEGER, "serialNumber")?.raw,
    ))
}

impl SignerCert {
    /// From DER. An RSA key is built from its numbers; any other key (or a
    /// certificate `x509-cert` refuses) goes through OpenSSL's parser.
    pub fn from_der(der: &[u8]) -> Result<Self, WireError> {
        match x509_cert::Certificate::from_der(der) {
            Ok(parsed) => Self::from_parsed(der, &parsed),
            Err(_) => Self::from_x509(X509::from_der(der)?),
        }
    }

    /// From `der` and its `x509-cert` parse.
    pub(crate) fn from_parsed(
        der: &[u8],
        parsed: &x509_cert::Certificate,
    ) -> Result<Self, WireError> {
        let tbs = parsed.tbs_certificate();
        let spki = tbs.subject_public_key_info();
        let rsa = if spki.algorithm.oid == RSA_ENCRYPTION {
            spki.subject_public_key
                .as_bytes()
                .and_then(|bits| Rsa::public_key_from_der_pkcs1(bits).ok())
        } else {
            None
        };
        let Some(rsa) = rsa else {
            return Self::from_x509(X509::from_der(der)?);
        };
        let (issuer, serial) = raw_issuer_and_serial(der)?;
        let spki_der = spki.to_der().map_err(|e| malformed("key", e))?;
        Ok(Self {
            der: der.to_vec(),
            issuer_and_serial: Some(encode(TAG_SEQUENCE, &[issuer, serial].concat())),
            issuer_der: issuer.to_vec(),
            spki_sha256: openssl::sha::sha256(&spki_der),
            key: PKey::from_rsa(rsa)?,
            x509: OnceLock::new(),
        })
    }

    /// From a certificate OpenSSL already parsed. Throwaway signer
    /// certificates in the field are often ones `x509-cert` refuses (a
    /// serial of 32 or 33 octets, say), so nothing here depends on it: the
    /// key's DER comes from OpenSSL, which encodes a SubjectPublicKeyInfo as
    /// `x509-cert` does.
    pub fn from_x509(cert: X509) -> Result<Self, WireError> {
        let der = cert.to_der()?;
        let issuer_der = cert.issuer_name().to_der()?;
        let issuer_and_serial = raw_issuer_and_serial(&der)
            .ok()
            .map(|(_, serial)| encode(TAG_SEQUENCE, &[issuer_der.as_slice(), serial].concat()));
        let key = cert.public_key()?;
        let spki_sha256 = openssl::sha::sha256(&key.public_key_to_der()?);
        let x509 = OnceLock::new();
        let _ = x509.set(cert);
        Ok(Self {
            der,
            issuer_der,
            issuer_and_serial,
            spki_sha256,
            key,
            x509,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The issuer Name, DER.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }

    pub(crate) fn issuer_and_serial(&self) -> Option<&[u8]> {
        self.issuer_and_serial.as_deref()
    }

    /// SHA-256 of the certificate's SubjectPublicKeyInfo (DER).
    pub fn spki_sha256(&self) -> [u8; 32] {
        self.spki_sha256
    }

    pub fn public_key(&self) -> &PKeyRef<Public> {
        &self.key
    }

    pub fn is_rsa(&self) -> bool {
        self.key.id() == Id::RSA
    }

    /// The certificate as OpenSSL's `X509`, parsed on first use.
    pub fn x509(&self) -> Result<&X509Ref, WireError> {
        if let Some(x) = self.x509.get() {
            return Ok(x);
        }
        let parsed = X509::from_der(&self.der)?;
        Ok(self.x509.get_or_init(|| parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::self_signed;

    #[test]
    fn agrees_with_openssl() {
        let c = self_signed("signer agrees");
        let der = c.cert.to_der().unwrap();
        let direct = SignerCert::from_der(&der).unwrap();
        let via = SignerCert::from_x509(c.cert.clone()).unwrap();
        assert!(direct.x509.get().is_none(), "RSA needs no X509 parse");
        assert_eq!(direct.der(), via.der());
        assert_eq!(direct.issuer_der(), via.issuer_der());
        assert_eq!(direct.issuer_and_serial(), via.issuer_and_serial());
        assert!(direct.issuer_and_serial().is_some());
        assert_eq!(direct.spki_sha256(), via.spki_sha256());
        assert!(direct.public_key().public_eq(via.public_key()));
        assert_eq!(direct.x509().unwrap().to_der().unwrap(), der);
    }

    /// A throwaway signer certificate as clients in the field write it:
    /// `serial` octets of serial number, X.509 `version` (0 = v1).
    fn field_signer(serial_octets: usize, version: i32) -> (X509, SignerCert) {
        let c = self_signed("signer agrees");
        let mut serial = vec![0x5a; serial_octets];
        serial[0] = 0x01;
        let mut b = X509::builder().unwrap();
        b.set_version(version).unwrap();
        b.set_serial_number(
            &openssl::bn::BigNum::from_slice(&serial)
                .unwrap()
                .to_asn1_integer()
                .unwrap(),
        )
        .unwrap();
        b.set_subject_name(c.cert.subject_name()).unwrap();
        b.set_issuer_name(c.cert.subject_name()).unwrap();
        b.set_pubkey(&c.key).unwrap();
        b.set_not_before(c.cert.not_before()).unwrap();
        b.set_not_after(c.cert.not_after()).unwrap();
        b.sign(&c.key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let cert = b.build();
        let signer = SignerCert::from_der(&cert.to_der().unwrap()).unwrap();
        (cert, signer)
    }

    /// certmonger writes a 33-octet serial, another client the 32 ASCII
    /// octets of its transactionID; `x509-cert` refuses both (RFC 5280
    /// §4.1.2.2 caps conforming serials at 20). The key is read all the same.
    #[test]
    fn a_long_serial_or_v1_certificate_keeps_its_key() {
        let common =
            SignerCert::from_der(&self_signed("signer agrees").cert.to_der().unwrap()).unwrap();
        for (octets, version) in [(33, 2), (32, 2), (33, 0), (8, 0)] {
            let (cert, signer) = field_signer(octets, version);
            assert_eq!(
                signer.spki_sha256(),
                common.spki_sha256(),
                "{octets} {version}"
            );
            assert!(signer.public_key().public_eq(common.public_key()));
            // The reply is enveloped to it by issuer and serial as sent.
            let der = cert.to_der().unwrap();
            let (_, serial) = raw_issuer_and_serial(&der).unwrap();
            assert!(signer.issuer_and_serial().unwrap().ends_with(serial));
            assert!(serial.len() >= octets + 2);
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(SignerCert::from_der(b"\x30\x03\x02\x01\x01").is_err());
    }
}

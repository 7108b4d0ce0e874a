//! The CSR's key and proof of possession for the common cases (RSA with
//! PKCS#1 v1.5 and ECDSA on a named NIST curve, SHA-2), built from the
//! parsed SubjectPublicKeyInfo. OpenSSL 3 parses a whole `X509_REQ`'s key
//! through its provider decoder framework, which costs more than the
//! signature check itself; everything else (SHA-1, RSA-PSS, EdDSA, explicit
//! curves) returns `None` and is handled by `X509Req` as before.

use der::asn1::ObjectIdentifier;
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509Name;
use x509_cert::request::CertReq;

use super::CsrError;
use crate::wire::asn1::{read_single, TAG_SEQUENCE};

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// (key is RSA, digest) of a signature algorithm we verify directly.
fn signature_alg(oid: &ObjectIdentifier) -> Option<(bool, MessageDigest)> {
    Some(match oid.to_string().as_str() {
        "1.2.840.113549.1.1.11" => (true, MessageDigest::sha256()),
        "1.2.840.113549.1.1.12" => (true, MessageDigest::sha384()),
        "1.2.840.113549.1.1.13" => (true, MessageDigest::sha512()),
        "1.2.840.10045.4.3.2" => (false, MessageDigest::sha256()),
        "1.2.840.10045.4.3.3" => (false, MessageDigest::sha384()),
        "1.2.840.10045.4.3.4" => (false, MessageDigest::sha512()),
        _ => return None,
    })
}

fn curve(oid: &ObjectIdentifier) -> Option<Nid> {
    Some(match oid.to_string().as_str() {
        "1.2.840.10045.3.1.7" => Nid::X9_62_PRIME256V1,
        "1.3.132.0.34" => Nid::SECP384R1,
        "1.3.132.0.35" => Nid::SECP521R1,
        _ => return None,
    })
}

fn malformed(what: &str, e: impl std::fmt::Display) -> CsrError {
    CsrError::Malformed(format!("{what}: {e}"))
}

/// `Some((key, subject))` once the self-signature verified; `None` when this
/// key or signature type is left to OpenSSL's `X509Req`. `same_key`, when
/// given, holds the very key of the request's SubjectPublicKeyInfo (the
/// caller compared the encodings) and is used instead of a new object.
pub(super) fn key_and_subject(
    der: &[u8],
    parsed: &CertReq,
    same_key: Option<&PKeyRef<Public>>,
) -> Result<Option<(PKey<Public>, X509Name)>, CsrError> {
    let Some((rsa_sig, digest)) = signature_alg(&parsed.algorithm.oid) else {
        return Ok(None);
    };
    let spki = &parsed.info.public_key;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CsrError::Malformed("public key is not whole bytes".into()))?;
    let key = if spki.algorithm.oid == RSA && rsa_sig {
        match same_key.filter(|k| k.id() == Id::RSA) {
            Some(k) => k.to_owned(),
            None => {
                let rsa =
                    Rsa::public_key_from_der_pkcs1(bits).map_err(|e| malformed("RSA key", e))?;
                PKey::from_rsa(rsa)?
            }
        }
    } else if spki.algorithm.oid == EC && !rsa_sig {
        let Some(params) = &spki.algorithm.parameters else {
            return Ok(None);
        };
        let Some(nid) = params
            .decode_as::<ObjectIdentifier>()
            .ok()
            .and_then(|oid| curve(&oid))
        else {
            return Ok(None);
        };
        let group = EcGroup::from_curve_name(nid)?;
        let mut ctx = BigNumContext::new()?;
        let point =
            EcPoint::from_bytes(&group, bits, &mut ctx).map_err(|e| malformed("EC key", e))?;
        PKey::from_ec_key(EcKey::from_public_key(&group, &point)?)?
    } else {
        return Ok(None);
    };

    // Verify over the CertificationRequestInfo exactly as received.
    let outer = read_single(der)
        .and_then(|t| t.expect(TAG_SEQUENCE, "CertificationRequest"))
        .and_then(|t| t.children())
        .map_err(|e| malformed("CertificationRequest", e))?;
    let info = outer
        .first()
        .ok_or_else(|| CsrError::Malformed("empty CertificationRequest".into()))?;
    let signature = parsed
        .signature
        .as_bytes()
        .ok_or_else(|| CsrError::Malformed("signature is not whole bytes".into()))?;
    // An error means the signature could not be checked: refused the same.
    let verified = crate::wire::pkcs1::verify(&key, digest, info.raw, signature).unwrap_or(false);
    if !verified {
        return Err(CsrError::BadSignature);
    }
    // version, subject, subjectPKInfo, attributes: the subject's own bytes.
    let subject_der = info
        .children()
        .ok()
        .and_then(|fields| fields.get(1).map(|f| f.raw))
        .ok_or_else(|| CsrError::Malformed("CertificationRequestInfo has no subject".into()))?;
    let subject = X509Name::from_der(subject_der).map_err(|e| malformed("subject", e))?;
    Ok(Some((key, subject)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use openssl::ec::EcKey;
    use openssl::pkey::Private;
    use openssl::x509::{X509NameBuilder, X509Req, X509ReqBuilder};

    fn csr(key: &PKey<Private>, md: MessageDigest) -> Vec<u8> {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "dev-1").unwrap();
        name.append_entry_by_text("O", "Acme").unwrap();
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_subject_name(&name.build()).unwrap();
        b.set_pubkey(key).unwrap();
        b.sign(key, md).unwrap();
        b.build().to_der().unwrap()
    }

    fn direct(der: &[u8]) -> Result<Option<(PKey<Public>, X509Name)>, CsrError> {
        key_and_subject(der, &CertReq::from_der(der).unwrap(), None)
    }

    #[test]
    fn agrees_with_openssl_for_rsa_and_named_curves() {
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let p256 = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap());
        let p384 = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap());
        let cases = [
            (rsa, MessageDigest::sha256()),
            (
                PKey::from_ec_key(p256.unwrap()).unwrap(),
                MessageDigest::sha256(),
            ),
            (
                PKey::from_ec_key(p384.unwrap()).unwrap(),
                MessageDigest::sha384(),
            ),
        ];
        for (key, md) in cases {
            let der = csr(&key, md);
            let (pk, subject) = direct(&der).unwrap().expect("handled directly");
            let req = X509Req::from_der(&der).unwrap();
            assert!(req.verify(&pk).unwrap());
            assert_eq!(
                pk.public_key_to_der().unwrap(),
                req.public_key().unwrap().public_key_to_der().unwrap()
            );
            assert_eq!(
                subject.to_der().unwrap(),
                req.subject_name().to_der().unwrap()
            );
        }
    }

    #[test]
    fn refuses_a_bad_signature_and_leaves_other_algorithms_to_openssl() {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut der = csr(&key, MessageDigest::sha256());
        let last = der.len() - 1;
        der[last] ^= 1;
        assert!(matches!(direct(&der), Err(CsrError::BadSignature)));
        assert!(direct(&csr(&key, MessageDigest::sha1())).unwrap().is_none());
    }
}

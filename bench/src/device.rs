//! One simulated device's request material: a PKCS#10 CSR carrying the
//! challengePassword attribute (RFC 2986 §4.1, PKCS#9 1.2.840.113549.1.9.7;
//! the openssl crate cannot add request attributes, so the
//! CertificationRequestInfo is encoded here) and the self-signed
//! certificate that signs the PKIMessage (RFC 8894 §2.3).

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use openssl::x509::{X509NameBuilder, X509Req, X509};

use crate::keys::Key;

type R<T> = Result<T, String>;

fn e(err: openssl::error::ErrorStack) -> String {
    err.to_string()
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(body.len()));
    out.extend_from_slice(body);
    out
}

/// OID 1.2.840.113549.1.9.7 (challengePassword).
const CHALLENGE_PASSWORD_OID: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07];
/// sha256WithRSAEncryption, 1.2.840.113549.1.1.11, NULL parameters.
const SHA256_RSA_ALG: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];

fn name_der(cn: &str) -> R<Vec<u8>> {
    let mut name = X509NameBuilder::new().map_err(e)?;
    name.append_entry_by_text("CN", cn).map_err(e)?;
    name.build().to_der().map_err(e)
}

/// A signed PKCS#10 request for `cn` with the challenge as a
/// PrintableString (base32 secrets are printable; every SCEP server reads it).
pub fn csr(key: &Key, cn: &str, challenge: &str) -> R<Vec<u8>> {
    let attr = tlv(
        0x30,
        &[
            tlv(0x06, &CHALLENGE_PASSWORD_OID),
            tlv(0x31, &tlv(0x13, challenge.as_bytes())),
        ]
        .concat(),
    );
    let info = tlv(
        0x30,
        &[
            vec![0x02, 0x01, 0x00],
            name_der(cn)?,
            key.public_key_to_der().map_err(e)?,
            tlv(0xa0, &attr),
        ]
        .concat(),
    );
    let mut signer = Signer::new(MessageDigest::sha256(), key).map_err(e)?;
    signer.update(&info).map_err(e)?;
    let mut sig = vec![0u8];
    sig.extend(signer.sign_to_vec().map_err(e)?);
    let der = tlv(
        0x30,
        &[info, SHA256_RSA_ALG.to_vec(), tlv(0x03, &sig)].concat(),
    );
    // Self-check once per request: a malformed CSR would be a bench bug.
    let req = X509Req::from_der(&der).map_err(e)?;
    if !req.verify(key).map_err(e)? {
        return Err("built CSR does not verify".into());
    }
    Ok(der)
}

/// The self-signed certificate a device signs its first PKCSReq with.
pub fn self_signed(key: &Key, cn: &str) -> R<X509> {
    let mut name = X509NameBuilder::new().map_err(e)?;
    name.append_entry_by_text("CN", cn).map_err(e)?;
    let name = name.build();
    let mut b = X509::builder().map_err(e)?;
    b.set_version(2).map_err(e)?;
    let serial = BigNum::from_u32(1)
        .and_then(|s| s.to_asn1_integer())
        .map_err(e)?;
    b.set_serial_number(&serial).map_err(e)?;
    b.set_subject_name(&name).map_err(e)?;
    b.set_issuer_name(&name).map_err(e)?;
    b.set_pubkey(key).map_err(e)?;
    let nb = Asn1Time::days_from_now(0).map_err(e)?;
    let na = Asn1Time::days_from_now(1).map_err(e)?;
    b.set_not_before(&nb).map_err(e)?;
    b.set_not_after(&na).map_err(e)?;
    b.sign(key, MessageDigest::sha256()).map_err(e)?;
    Ok(b.build())
}

//! PKCS#10 requests (RFC 2986) assembled by hand, for what `openssl req`
//! will not write: a challengePassword beyond PKCS#9's 255 characters (as
//! Intune's are) and Microsoft's enrollment name-value pairs (MS-WCCE
//! §2.2.2.7.10), in which Windows' SCEP client asks for a validity.

use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use openssl::x509::{X509NameBuilder, X509Req};

use crate::device::Device;

/// One DER TLV.
pub fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

fn bmp(s: &str) -> Vec<u8> {
    let body: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
    der(0x1e, &body)
}

/// The challengePassword attribute (1.2.840.113549.1.9.7), a UTF8String.
pub fn challenge_password(challenge: &str) -> Vec<u8> {
    let oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07,
    ];
    der(
        0x30,
        &[oid.to_vec(), der(0x31, &der(0x0c, challenge.as_bytes()))].concat(),
    )
}

/// szOID_ENROLLMENT_NAME_VALUE_PAIR (1.3.6.1.4.1.311.13.2.1): one value,
/// `SEQUENCE OF SEQUENCE { name BMPString, value BMPString }`.
pub fn name_value_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let oid = [
        0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0d, 0x02, 0x01,
    ];
    let seq: Vec<u8> = pairs
        .iter()
        .flat_map(|(n, v)| der(0x30, &[bmp(n), bmp(v)].concat()))
        .collect();
    der(0x30, &[oid.to_vec(), der(0x31, &der(0x30, &seq))].concat())
}

/// A request for `dev`'s key and CN with these attributes, signed with
/// SHA-256 and checked by OpenSSL.
pub fn csr(dev: &Device, attributes: &[Vec<u8>]) -> Vec<u8> {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", &dev.cn).unwrap();
    let name = name.build().to_der().unwrap();
    let info = der(
        0x30,
        &[
            vec![0x02, 0x01, 0x00],
            name,
            dev.key.public_key_to_der().unwrap(),
            der(0xa0, &attributes.concat()),
        ]
        .concat(),
    );
    let mut signer = Signer::new(MessageDigest::sha256(), &dev.key).unwrap();
    signer.update(&info).unwrap();
    let sig = signer.sign_to_vec().unwrap();
    let sha256_rsa = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
    ];
    let csr = der(
        0x30,
        &[
            info,
            sha256_rsa.to_vec(),
            der(0x03, &[vec![0], sig].concat()),
        ]
        .concat(),
    );
    let parsed = X509Req::from_der(&csr).unwrap();
    assert!(parsed.verify(&dev.key).unwrap());
    csr
}

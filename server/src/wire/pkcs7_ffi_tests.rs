//! Tests of the FFI wrapper: attribute roundtrip, degenerate SignedData,
//! OAEP envelope and OID registration.

use super::*;
use crate::wire::testutil::{self_signed, Identity};

fn signer() -> Identity {
    self_signed("ffi signer")
}

#[test]
fn signed_attributes_roundtrip_with_their_types() {
    let id = signer();
    let nids = scep_nids().unwrap();
    let attrs = [
        AttrSpec {
            nid: nids.transaction_id,
            kind: AttrKind::PrintableString,
            value: b"TX-42",
        },
        AttrSpec {
            nid: nids.sender_nonce,
            kind: AttrKind::OctetString,
            value: &[0u8, 1, 2, 255],
        },
    ];
    let der = sign_with_attributes(
        &id.cert,
        &id.key,
        MessageDigest::sha384(),
        &[],
        &attrs,
        b"hello",
    )
    .unwrap();
    let sd = SignedData::from_der(&der).unwrap();
    assert_eq!(sd.signer_count(), 1);
    assert_eq!(
        sd.signed_attribute(nids.transaction_id),
        Some((AttrKind::PrintableString, b"TX-42".to_vec()))
    );
    assert_eq!(
        sd.signed_attribute(nids.sender_nonce),
        Some((AttrKind::OctetString, vec![0, 1, 2, 255]))
    );
    assert_eq!(sd.signed_attribute(nids.pki_status), None);
    assert_eq!(sd.digest_nid(), Some(Nid::SHA384));
    assert_eq!(sd.content(), Some(b"hello".to_vec()));
    assert_eq!(
        sd.certificates_der().unwrap(),
        vec![id.cert.to_der().unwrap()]
    );
    // OpenSSL itself accepts the signature over our attributes.
    let p7 = openssl::pkcs7::Pkcs7::from_der(&der).unwrap();
    let mut certs = openssl::stack::Stack::new().unwrap();
    certs.push(id.cert.clone()).unwrap();
    let store = openssl::x509::store::X509StoreBuilder::new()
        .unwrap()
        .build();
    let mut out = Vec::new();
    let flags = openssl::pkcs7::Pkcs7Flags::NOVERIFY | openssl::pkcs7::Pkcs7Flags::NOINTERN;
    p7.verify(&certs, &store, None, Some(&mut out), flags)
        .unwrap();
    assert_eq!(out, b"hello");
}

#[test]
fn empty_content_is_an_empty_octet_string() {
    let id = signer();
    let der =
        sign_with_attributes(&id.cert, &id.key, MessageDigest::sha256(), &[], &[], b"").unwrap();
    let sd = SignedData::from_der(&der).unwrap();
    assert_eq!(sd.content(), Some(Vec::new()));
}

#[test]
fn degenerate_carries_certs_and_crls_and_no_signer_or_content() {
    let a = self_signed("degenerate a");
    let b = self_signed("degenerate b");
    let crl = crate::wire::testutil::empty_crl(&a);
    let der = degenerate(&[&a.cert, &b.cert], &[&crl]).unwrap();
    let sd = SignedData::from_der(&der).unwrap();
    assert_eq!(sd.signer_count(), 0);
    assert_eq!(sd.content(), None);
    assert_eq!(
        sd.certificates_der().unwrap(),
        vec![a.cert.to_der().unwrap(), b.cert.to_der().unwrap()]
    );
    assert_eq!(sd.crls_der().unwrap(), vec![crl]);
}

#[test]
fn non_signed_content_info_is_malformed() {
    let id = signer();
    let mut certs = openssl::stack::Stack::new().unwrap();
    certs.push(id.cert.clone()).unwrap();
    let env = openssl::pkcs7::Pkcs7::encrypt(
        &certs,
        b"x",
        Cipher::aes_128_cbc(),
        openssl::pkcs7::Pkcs7Flags::BINARY,
    )
    .unwrap()
    .to_der()
    .unwrap();
    assert!(matches!(
        SignedData::from_der(&env),
        Err(WireError::Malformed(_))
    ));
    assert!(matches!(
        SignedData::from_der(b"\x30\x03garbage"),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn oaep_envelope_decrypts_with_cms() {
    let id = signer();
    let der = envelope_oaep(
        &id.cert.to_der().unwrap(),
        b"secret content",
        Cipher::aes_256_cbc(),
    )
    .unwrap();
    let cms = openssl::cms::CmsContentInfo::from_der(&der).unwrap();
    assert_eq!(cms.decrypt(&id.key, &id.cert).unwrap(), b"secret content");
    // id-RSAES-OAEP 1.2.840.113549.1.1.7 is the key transport algorithm.
    let oaep = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07,
    ];
    assert!(der.windows(oaep.len()).any(|w| w == oaep));
}

#[test]
fn scep_nids_are_stable_and_distinct() {
    let a = scep_nids().unwrap();
    let b = scep_nids().unwrap();
    assert_eq!(a.transaction_id, b.transaction_id);
    let all = [
        a.message_type,
        a.pki_status,
        a.fail_info,
        a.sender_nonce,
        a.recipient_nonce,
        a.transaction_id,
    ];
    for (i, x) in all.iter().enumerate() {
        assert_ne!(*x, Nid::UNDEF);
        assert!(all[i + 1..].iter().all(|y| y != x));
    }
    assert_eq!(
        Asn1Object::from_str("2.16.840.1.113733.1.9.7")
            .unwrap()
            .nid(),
        a.transaction_id
    );
}

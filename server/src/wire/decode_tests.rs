//! Request decode/open tests: every cipher, key transport and digest, each
//! message type, and each failure class of RFC 8894 §3.3.2.2.

use super::*;
use crate::wire::client::{build_request, sign_request, ClientContent};
use crate::wire::pkcs7_ffi::{sign_with_attributes, AttrSpec};
use crate::wire::testutil::{berify, patch, request, self_signed, Identity};
use crate::wire::FailInfo;
use openssl::hash::MessageDigest;
use openssl::x509::X509ReqBuilder;
use openssl::x509::X509;

const CIPHERS: [ContentCipher; 4] = [
    ContentCipher::Des3Cbc,
    ContentCipher::Aes128Cbc,
    ContentCipher::Aes192Cbc,
    ContentCipher::Aes256Cbc,
];

fn csr_der(id: &Identity) -> Vec<u8> {
    let mut b = X509ReqBuilder::new().unwrap();
    b.set_subject_name(id.cert.subject_name()).unwrap();
    b.set_pubkey(&id.key).unwrap();
    b.sign(&id.key, MessageDigest::sha256()).unwrap();
    b.build().to_der().unwrap()
}

#[test]
fn every_cipher_transport_and_digest_roundtrips() {
    let (client, ra) = (self_signed("client"), self_signed("ra"));
    let csr = csr_der(&client);
    for cipher in CIPHERS {
        for kt in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep] {
            for digest in [DigestAlg::Sha1, DigestAlg::Sha256, DigestAlg::Sha512] {
                let mut req = request(&client, &ra, ClientContent::Csr(&csr));
                (req.cipher, req.key_transport, req.digest) = (cipher, kt, digest);
                let der = build_request(&req).unwrap();
                let msg = decode(&der).unwrap();
                let want = Header {
                    message_type: MessageType::PkcsReq,
                    transaction_id: TransactionId("TXID-ABCDEF".into()),
                    sender_nonce: Nonce(vec![0x5a; 16]),
                    digest,
                };
                assert_eq!(msg.header(), &want);
                assert_eq!(
                    msg.signer_cert().der().to_vec(),
                    client.cert.to_der().unwrap()
                );
                let opened = msg.open(&ra.ra()).unwrap();
                assert_eq!((opened.cipher, opened.key_transport), (cipher, kt));
                assert_eq!(opened.header, want);
                assert_eq!(
                    opened.content,
                    MessageContent::CertReq {
                        csr_der: csr.clone()
                    }
                );
            }
        }
    }
}

#[test]
fn each_message_type_parses_its_content() {
    let (client, ra) = (self_signed("client"), self_signed("ra"));
    let issuer = ra.cert.subject_name().to_der().unwrap();
    let subject = client.cert.subject_name().to_der().unwrap();
    let csr = csr_der(&client);
    let serial = [0x00, 0x9f, 0x01];
    let cases = [
        (
            MessageType::RenewalReq,
            ClientContent::Csr(&csr),
            MessageContent::CertReq {
                csr_der: csr.clone(),
            },
        ),
        (
            MessageType::CertPoll,
            ClientContent::IssuerAndSubject {
                issuer_der: &issuer,
                subject_der: &subject,
            },
            MessageContent::CertPoll {
                issuer_der: issuer.clone(),
                subject_der: subject.clone(),
            },
        ),
        (
            MessageType::GetCert,
            ClientContent::IssuerAndSerial {
                issuer_der: &issuer,
                serial: &serial,
            },
            MessageContent::GetCert {
                issuer_der: issuer.clone(),
                serial: vec![0x9f, 0x01],
            },
        ),
        (
            MessageType::GetCrl,
            ClientContent::IssuerAndSerial {
                issuer_der: &issuer,
                serial: &[0x01],
            },
            MessageContent::GetCrl {
                issuer_der: issuer.clone(),
                serial: vec![0x01],
            },
        ),
    ];
    for (mt, content, want) in cases {
        let mut req = request(&client, &ra, content);
        req.message_type = mt;
        let msg = decode(&build_request(&req).unwrap()).unwrap();
        assert_eq!(msg.header().message_type, mt);
        assert_eq!(msg.open(&ra.ra()).unwrap().content, want);
    }
}

#[test]
fn missing_scep_attribute_is_malformed() {
    let client = self_signed("client");
    let nids = scep_nids().unwrap();
    let key = client.key.clone();
    let cert = client.cert.clone();
    let txid = AttrSpec {
        nid: nids.transaction_id,
        kind: AttrKind::PrintableString,
        value: b"T1",
    };
    let mt = AttrSpec {
        nid: nids.message_type,
        kind: AttrKind::PrintableString,
        value: b"19",
    };
    let nonce = AttrSpec {
        nid: nids.sender_nonce,
        kind: AttrKind::OctetString,
        value: &[1; 16],
    };
    for attrs in [vec![mt, nonce], vec![txid, nonce], vec![txid, mt]] {
        let der =
            sign_with_attributes(&cert, &key, MessageDigest::sha256(), &[], &attrs, b"x").unwrap();
        match decode(&der) {
            Err(WireError::Malformed(m)) => assert!(m.contains("missing"), "{m}"),
            other => panic!("expected Malformed, got {:?}", other.err()),
        }
    }
    // A nonce of the wrong ASN.1 type is malformed too.
    let bad_nonce = AttrSpec {
        nid: nids.sender_nonce,
        kind: AttrKind::PrintableString,
        value: b"n",
    };
    let der = sign_with_attributes(
        &cert,
        &key,
        MessageDigest::sha256(),
        &[],
        &[txid, mt, bad_nonce],
        b"x",
    )
    .unwrap();
    assert!(matches!(decode(&der), Err(WireError::Malformed(_))));
}

#[test]
fn garbage_is_malformed() {
    for bytes in [
        &b""[..],
        b"\x30\x80",
        b"hello world",
        &[0x30, 0x03, 0x02, 0x01, 0x00],
    ] {
        assert!(matches!(decode(bytes), Err(WireError::Malformed(_))));
    }
}

#[test]
fn tampered_attribute_or_content_is_bad_signature() {
    let (client, ra) = (self_signed("client"), self_signed("ra"));
    let csr = csr_der(&client);
    let der = build_request(&request(&client, &ra, ClientContent::Csr(&csr))).unwrap();

    let forged = patch(&der, b"TXID-ABCDEF", b"TXID-ABCDEG");
    let msg = decode(&forged).unwrap();
    assert_eq!(msg.header().transaction_id.0, "TXID-ABCDEG");
    assert!(matches!(msg.open(&ra.ra()), Err(WireError::BadSignature)));

    // Flip one bit inside the eContent (the envelope's encrypted bytes).
    let env = crate::wire::pkcs7_ffi::SignedData::from_der(&der)
        .unwrap()
        .content()
        .unwrap();
    let start = der
        .windows(env.len())
        .position(|w| w == env.as_slice())
        .unwrap();
    let mut forged = der.clone();
    forged[start + env.len() - 20] ^= 0x01;
    assert!(matches!(
        decode(&forged).unwrap().open(&ra.ra()),
        Err(WireError::BadSignature)
    ));
}

#[test]
fn envelope_for_another_recipient_is_decrypt_error() {
    let (client, ra, other) = (
        self_signed("client"),
        self_signed("ra"),
        self_signed("other"),
    );
    let csr = csr_der(&client);
    for kt in [KeyTransport::RsaPkcs1v15, KeyTransport::RsaOaep] {
        let mut req = request(&client, &other, ClientContent::Csr(&csr));
        req.key_transport = kt;
        let msg = decode(&build_request(&req).unwrap()).unwrap();
        let err = msg.open(&ra.ra()).unwrap_err();
        assert!(matches!(err, WireError::Decrypt(_)), "{err:?}");
        assert_eq!(err.fail_info(), FailInfo::BadMessageCheck);
    }
}

#[test]
fn single_des_envelope_opens_and_reports_its_cipher() {
    // micromdm scepclient 2.1.0 sends nothing else; whether to accept it is
    // the service's policy, so the wire layer must identify it correctly.
    let (client, ra) = (self_signed("client"), self_signed("ra"));
    let csr = csr_der(&client);
    let mut req = request(&client, &ra, ClientContent::Csr(&csr));
    req.cipher = ContentCipher::DesCbc;
    let der = build_request(&req).unwrap();
    let msg = decode(&der).unwrap().open(&ra.ra()).unwrap();
    assert_eq!(msg.cipher, ContentCipher::DesCbc);
    assert_eq!(msg.content, MessageContent::CertReq { csr_der: csr });
}

#[test]
fn ber_indefinite_length_request_decodes_and_opens() {
    let (client, ra) = (self_signed("client"), self_signed("ra"));
    let csr = csr_der(&client);
    let req = request(&client, &ra, ClientContent::Csr(&csr));
    // Like Apple: the envelope is BER too, and the signature covers those
    // BER octets.
    let env =
        crate::wire::envelope::encrypt(&csr, &ra.cert, req.cipher, req.key_transport).unwrap();
    let der = sign_request(&req, &berify(&env)).unwrap();
    let ber = berify(&der);
    assert_ne!(ber, der);
    assert_eq!(&ber[..2], &[0x30, 0x80]);
    assert!(
        ber.windows(2).any(|w| w == [0x24, 0x80]),
        "has a constructed OCTET STRING"
    );
    let msg = decode(&ber).unwrap();
    assert_eq!(msg.header().transaction_id.0, "TXID-ABCDEF");
    assert_eq!(
        msg.open(&ra.ra()).unwrap().content,
        MessageContent::CertReq { csr_der: csr }
    );
}

#[test]
fn renewal_signer_is_the_cert_matching_the_signer_info() {
    // The SignedData may carry extra certificates; the signer is the one
    // named by issuerAndSerialNumber, not the first one.
    let (client, ra, other) = (
        self_signed("client"),
        self_signed("ra"),
        self_signed("other"),
    );
    let nids = scep_nids().unwrap();
    let attrs = [
        AttrSpec {
            nid: nids.transaction_id,
            kind: AttrKind::PrintableString,
            value: b"T2",
        },
        AttrSpec {
            nid: nids.message_type,
            kind: AttrKind::PrintableString,
            value: b"17",
        },
        AttrSpec {
            nid: nids.sender_nonce,
            kind: AttrKind::OctetString,
            value: &[2; 16],
        },
    ];
    let key = client.key.clone();
    let env = crate::wire::envelope::encrypt(
        b"\x30\x00",
        &ra.cert,
        ContentCipher::Aes128Cbc,
        KeyTransport::RsaPkcs1v15,
    )
    .unwrap();
    let der = sign_with_attributes(
        &client.cert,
        &key,
        MessageDigest::sha256(),
        &[&other.cert],
        &attrs,
        &env,
    )
    .unwrap();
    let msg = decode(&der).unwrap();
    assert_eq!(
        msg.signer_cert().der().to_vec(),
        client.cert.to_der().unwrap()
    );
    assert_eq!(msg.header().message_type, MessageType::RenewalReq);
    assert!(msg.open(&ra.ra()).is_ok());
}

/// Found by the `pki_operation_signed` harness (its DSA-signer seed): a GetCRL signed with a
/// DSA key passed `open`, and the SUCCESS reply then failed to envelope to
/// the DSA certificate (CMS has no recipient type for it): HTTP 500.
#[test]
fn signer_whose_key_cannot_receive_an_envelope_is_bad_alg() {
    let ra = self_signed("ra");
    let key = openssl::pkey::PKey::from_dsa(openssl::dsa::Dsa::generate(2048).unwrap()).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "dsa device").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let client = Identity {
        cert: b.build(),
        key,
    };
    let issuer = ra.cert.subject_name().to_der().unwrap();
    let mut req = request(
        &client,
        &ra,
        ClientContent::IssuerAndSerial {
            issuer_der: &issuer,
            serial: &[1],
        },
    );
    req.message_type = MessageType::GetCrl;
    let msg = decode(&build_request(&req).unwrap()).unwrap();
    let err = msg.open(&ra.ra()).unwrap_err();
    assert!(matches!(err, WireError::UnsupportedAlgorithm(_)), "{err:?}");
    assert_eq!(err.fail_info(), FailInfo::BadAlg);
}

/// Found with the `pki_operation_signed` harness: a transactionID with a
/// NUL decoded, and the CertPoll lookup then failed in PostgreSQL (HTTP 500).
#[test]
fn transaction_id_with_control_characters_is_malformed() {
    let (client, ra) = (self_signed("client"), self_signed("ra"));
    let csr = csr_der(&client);
    for txid in ["A\0B", "A\nB", "\u{7f}"] {
        let mut req = request(&client, &ra, ClientContent::Csr(&csr));
        req.transaction_id = TransactionId(txid.into());
        let err = decode(&build_request(&req).unwrap()).err().unwrap();
        assert!(matches!(err, WireError::Malformed(_)), "{txid:?}: {err:?}");
    }
}

/// Found by the `pki_operation_signed` fuzz target: a GetCert signed with
/// a P-256 key and enveloped with single DES opened, and the SUCCESS reply
/// then failed in CMS (an 8-byte DES key cannot be AES-key-wrapped for
/// key agreement): HTTP 500. Refused at open, signed and badAlg.
#[test]
fn single_des_from_an_ec_signer_is_bad_alg() {
    let ra = self_signed("ra");
    let key = crate::ca::generate_key(crate::ca::KeySpec::EcP256).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "ec device").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let client = Identity {
        cert: b.build(),
        key,
    };
    let issuer = ra.cert.subject_name().to_der().unwrap();
    for (cipher, refused) in [
        (ContentCipher::DesCbc, true),
        (ContentCipher::Des3Cbc, false),
        (ContentCipher::Aes128Cbc, false),
    ] {
        let mut req = request(
            &client,
            &ra,
            ClientContent::IssuerAndSerial {
                issuer_der: &issuer,
                serial: &[1],
            },
        );
        req.message_type = MessageType::GetCert;
        req.cipher = cipher;
        let msg = decode(&build_request(&req).unwrap()).unwrap();
        match msg.open(&ra.ra()) {
            Err(e) if refused => {
                assert!(matches!(e, WireError::UnsupportedAlgorithm(_)), "{e:?}");
                assert_eq!(e.fail_info(), FailInfo::BadAlg);
            }
            Ok(_) if !refused => {}
            other => panic!("{cipher:?}: {other:?}"),
        }
    }
}

//! Hostile input against a real scepd (issue 7): oversized bodies, deep and
//! indefinite BER nesting, truncated messages and envelopes, envelopes for
//! another recipient, replays raced against each other, expired signers.
//! Every one is answered with HTTP 400/413 or a signed CertRep FAILURE with
//! the failInfo RFC 8894 §3.2.1.4 names — never a 500, never a certificate.
//!
//! Already covered elsewhere: a tampered signature (`protocol.rs`,
//! badMessageCheck), a self-signed signer whose key differs from the CSR's
//! (`protocol.rs`, RFC 8894 §2.3, badRequest), one retransmission.

use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use server::wire::client::parse_cert_rep;
use server::wire::pkcs7_ffi::{scep_nids, sign_with_attributes, AttrKind, AttrSpec};
use server::wire::{ContentCipher, FailInfo, MessageType, Nonce, PkiStatus, TransactionId};

use crate::device::{post, self_signed_with, Device};
use crate::support::Scepd;

/// A PKCSReq-shaped PKIMessage, validly signed by `dev`, whose
/// encapsulated content is `content` verbatim (any bytes, not necessarily
/// an EnvelopedData).
fn signed_with_content(dev: &Device, txid: &TransactionId, content: &[u8]) -> Vec<u8> {
    let nids = scep_nids().unwrap();
    let nonce = Nonce::random().unwrap();
    let attrs = [
        AttrSpec {
            nid: nids.transaction_id,
            kind: AttrKind::PrintableString,
            value: txid.0.as_bytes(),
        },
        AttrSpec {
            nid: nids.message_type,
            kind: AttrKind::PrintableString,
            value: MessageType::PkcsReq.code().as_bytes(),
        },
        AttrSpec {
            nid: nids.sender_nonce,
            kind: AttrKind::OctetString,
            value: &nonce.0,
        },
    ];
    sign_with_attributes(
        &dev.signer,
        &dev.key,
        openssl::hash::MessageDigest::sha256(),
        &[],
        &attrs,
        content,
    )
    .unwrap()
}

/// An EnvelopedData (DER) of `plain` for `recipient`, made by OpenSSL.
fn envelope(plain: &[u8], recipient: &openssl::x509::X509) -> Vec<u8> {
    let mut certs = Stack::new().unwrap();
    certs.push(recipient.clone()).unwrap();
    Pkcs7::encrypt(&certs, plain, Cipher::aes_128_cbc(), Pkcs7Flags::BINARY)
        .unwrap()
        .to_der()
        .unwrap()
}

/// RFC 8894 §4.3: the HTTP layer refuses what is not a PKIMessage before
/// any cryptography or database work.
mod rfc8894_4_3_http_body {
    use super::*;

    #[test]
    fn oversized_body_is_413_and_the_server_keeps_serving() {
        let s = Scepd::start();
        for size in [257 * 1024, 4 * 1024 * 1024] {
            let big = vec![0x30u8; size];
            assert_eq!(post(&s, "default", &big).unwrap_err().0, 413, "{size}");
        }
        let dev = Device::new("after-413", 2048);
        let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
        assert_eq!(rep.status, PkiStatus::Success);
    }

    #[test]
    fn deep_indefinite_ber_nesting_is_400_fast() {
        let s = Scepd::start();
        // 100,000 nested indefinite-length SEQUENCEs (200 kB, under the body
        // limit), bare and inside a ContentInfo for SignedData.
        let bare: Vec<u8> = [0x30u8, 0x80].repeat(100_000);
        let mut wrapped = vec![0x30, 0x80, 0x06, 0x09];
        wrapped.extend_from_slice(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]);
        wrapped.extend_from_slice(&[0xa0, 0x80]);
        wrapped.extend_from_slice(&[0x30u8, 0x80].repeat(100_000));
        // Definite lengths nested as deep as fits, each one consistent.
        let mut definite = vec![0x05, 0x00];
        for _ in 0..20_000 {
            let len = definite.len();
            let mut outer = vec![0x30, 0x84];
            outer.extend_from_slice(&(len as u32).to_be_bytes());
            outer.extend_from_slice(&definite);
            definite = outer;
            if definite.len() > 200 * 1024 {
                break;
            }
        }
        for (what, body) in [("bare", bare), ("wrapped", wrapped), ("definite", definite)] {
            let t = Instant::now();
            let err = post(&s, "default", &body).unwrap_err();
            assert_eq!(err.0, 400, "{what}: {err:?}");
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{what} took {:?}",
                t.elapsed()
            );
        }
    }

    #[test]
    fn truncated_messages_are_400() {
        let s = Scepd::start();
        let dev = Device::new("truncated", 2048);
        let csr = dev.csr(Some(&s.mint("default")));
        let msg = dev.pkcs_req_message(&s, &csr, ContentCipher::Aes128Cbc);
        for cut in [1, 2, 16, 100, msg.len() / 2, msg.len() - 300, msg.len() - 1] {
            let err = post(&s, "default", &msg[..cut]).unwrap_err();
            assert_eq!(err.0, 400, "cut at {cut}: {err:?}");
        }
        assert_eq!(s.count("enrollment_requests"), 0);
        // The intact message still enrolls: nothing was half-consumed.
        let rep = dev.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    }
}

/// RFC 8894 §3.2.2: the pkcsPKIEnvelope must open with the RA's key; when
/// it does not, the signed message is answered with a signed FAILURE.
mod rfc8894_3_2_2_envelope {
    use super::*;

    #[test]
    fn truncated_envelope_inside_a_signed_message_is_a_signed_failure() {
        let s = Scepd::start();
        let dev = Device::new("trunc-env", 2048);
        let csr = dev.csr(Some(&s.mint("default")));
        let env = envelope(&csr, &s.ra_cert());
        for cut in [env.len() / 2, env.len() - 5] {
            let msg = signed_with_content(&dev, &dev.txid(), &env[..cut]);
            // The signature is good, so the refusal is signed to the
            // requester: scepd answers badRequest (a malformed envelope),
            // badMessageCheck would do as well.
            let rep = dev.send(&s, "default", &msg);
            assert_eq!(rep.status, PkiStatus::Failure, "cut {cut}: {rep:?}");
            assert!(
                matches!(
                    rep.fail_info,
                    Some(FailInfo::BadMessageCheck | FailInfo::BadRequest)
                ),
                "cut {cut}: {rep:?}"
            );
            assert_eq!(rep.transaction_id, dev.txid());
        }
        // Random bytes where the envelope belongs.
        let msg = signed_with_content(&dev, &dev.txid(), &[0x30, 0x03, 0x02, 0x01, 0x00]);
        let rep = dev.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
        assert_eq!(s.count("certificates"), 0);
        assert_eq!(s.count("challenges WHERE used_at IS NOT NULL"), 0);
    }

    #[test]
    fn envelope_for_another_recipient_is_bad_message_check() {
        let s = Scepd::start();
        let dev = Device::new("wrong-recipient", 2048);
        let stranger = Device::new("not the RA", 2048);
        let csr = dev.csr(Some(&s.mint("default")));
        let env = envelope(&csr, &stranger.signer);
        let msg = signed_with_content(&dev, &dev.txid(), &env);
        let rep = dev.send(&s, "default", &msg);
        assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
        assert_eq!(rep.fail_info, Some(FailInfo::BadMessageCheck));
        assert_eq!(s.count("certificates"), 0);
        assert_eq!(s.count("challenges WHERE used_at IS NOT NULL"), 0);
    }
}

/// RFC 8894 §3.3.1: a replayed message gets the stored answer — even when
/// the copies race each other — and never a second certificate.
mod rfc8894_3_3_1_replay {
    use super::*;

    #[test]
    fn concurrent_replays_of_one_message_get_one_certificate() {
        let s = Scepd::start();
        let dev = Device::new("replayed", 2048);
        let csr = dev.csr(Some(&s.mint("default")));
        let msg = dev.pkcs_req_message(&s, &csr, ContentCipher::Aes128Cbc);
        let answers: Vec<Result<Vec<u8>, (u16, String)>> = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| post(&s, "default", &msg)))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut ders = vec![];
        for a in answers {
            let body = a.unwrap_or_else(|e| panic!("{e:?}\n{}", s.log()));
            let rep = parse_cert_rep(&body, &s.ra_cert(), &dev.signer, &dev.key).unwrap();
            // A racing copy may lose the unique (transactionID, key) insert;
            // it must then answer from the winner's row, not fail.
            assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
            ders.push(rep.certs[0].to_der().unwrap());
        }
        ders.dedup();
        assert_eq!(ders.len(), 1, "every replay got the same certificate");
        assert_eq!(s.count("certificates"), 1);
        assert_eq!(s.count("enrollment_requests"), 1);
        // Later, the same bytes again: the same answer.
        let again = dev.send(&s, "default", &msg);
        assert_eq!(again.certs[0].to_der().unwrap(), ders[0]);
    }
}

/// Expired signer certificates. RFC 8894 §2.3: before enrollment the
/// requester signs with a self-signed certificate that only carries its
/// key, so its validity period means nothing (scepclient and Apple devices
/// make them valid for a short while; clocks on new devices are often
/// wrong). §3.3.1.2: renewal is authenticated by the certificate we issued,
/// which must still be valid.
mod rfc8894_expired_signers {
    use super::*;
    use openssl::asn1::Asn1Time;

    #[test]
    fn expired_self_signed_signer_with_a_valid_challenge_enrolls() {
        let s = Scepd::start();
        let mut dev = Device::new("expired-self-signed", 2048);
        // Valid from 2001 to 2004.
        dev.signer = self_signed_with(
            &dev.key,
            "expired-self-signed",
            7,
            &Asn1Time::from_unix(1_000_000_000).unwrap(),
            &Asn1Time::from_unix(1_100_000_000).unwrap(),
        );
        let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
        // And without a valid challenge it is refused as any other.
        let other = Device::new("expired-no-challenge", 2048);
        let rep = other.pkcs_req(&s, "default", Some("wrong"));
        assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    }

    #[test]
    fn renewal_signed_by_an_expired_issued_certificate_is_bad_request() {
        let s = Scepd::start();
        // A window wider than the validity, so expiry is the only reason.
        s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
        let dev = Device::enrolled(&s, "renew", "expired-renewal");
        // Let the issued certificate expire (the store's copy is what the
        // renewal check trusts; the bytes keep their notAfter).
        diesel::sql_query("UPDATE certificates SET not_after = now() - interval '1 day'")
            .execute(&mut s.pg())
            .unwrap();
        let renewed = Device::new("expired-renewal", 2048);
        let csr = renewed.csr(None);
        let msg = dev.csr_request(
            &s,
            MessageType::RenewalReq,
            &renewed.txid(),
            &csr,
            ContentCipher::Aes128Cbc,
        );
        let rep = dev.send(&s, "renew", &msg);
        assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
        assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
        assert_eq!(s.count("certificates"), 1);
        assert!(
            s.log().contains("expired"),
            "refused for expiry:\n{}",
            s.log()
        );
    }
}

/// Writes the fuzz seed corpus (docs/FUZZING.md): real PKIMessages from
/// the project's client, enveloped to the fuzzing RA in `fuzz/fixtures/`,
/// in every cipher, key transport and message type; their CSRs; and the
/// encapsulated envelopes for the `open_signed` target. Run by hand:
/// `cargo test --test it -- --ignored write_fuzz_seed_corpus`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_fuzz_seed_corpus() {
    use server::wire::client::ClientContent;
    use server::wire::{DigestAlg, KeyTransport};

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let ra = openssl::x509::X509::from_pem(&std::fs::read(root.join("fixtures/ra.crt")).unwrap())
        .unwrap();
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let dev = Device::new("fuzz seed", 2048);
    let csr = dev.csr(Some("seed-challenge"));
    let csr_sans = dev.csr_with(
        Some("seed-challenge"),
        &[("O", "Example"), ("serialNumber", "X1")],
        &["DNS:a.example", "IP:192.0.2.1", "email:a@example.org"],
    );
    write("csr", "openssl-req.der", &csr);
    write("csr", "openssl-req-sans.der", &csr_sans);
    // Signed with the fixture device key, which the `csr` target hands
    // over as the known signer key: the seed reaches the reuse path.
    let device_key = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(root.join("fixtures/device.key")).unwrap(),
    )
    .unwrap();
    let known = Device::with_key("fuzz known key", device_key).csr_with(
        Some("seed-challenge"),
        &[("serialNumber", "K1")],
        &["DNS:known.example"],
    );
    write("csr", "device-key-signed.der", &known);
    let issuer = dev.signer.subject_name().to_der().unwrap();
    let serial = [0x01u8, 0x02, 0x03];
    // ClientContent is not Copy: make it afresh for every combination.
    let content = |mt: MessageType| match mt {
        MessageType::PkcsReq => ClientContent::Csr(&csr),
        MessageType::RenewalReq => ClientContent::Csr(&csr_sans),
        MessageType::CertPoll => ClientContent::IssuerAndSubject {
            issuer_der: &issuer,
            subject_der: &issuer,
        },
        _ => ClientContent::IssuerAndSerial {
            issuer_der: &issuer,
            serial: &serial,
        },
    };
    let contents = [
        ("pkcsreq", MessageType::PkcsReq),
        ("renewalreq", MessageType::RenewalReq),
        ("certpoll", MessageType::CertPoll),
        ("getcert", MessageType::GetCert),
        ("getcrl", MessageType::GetCrl),
    ];
    let ciphers = [
        ("aes128", ContentCipher::Aes128Cbc),
        ("aes256", ContentCipher::Aes256Cbc),
        ("des3", ContentCipher::Des3Cbc),
    ];
    for (name, mt) in contents {
        for (cname, cipher) in &ciphers {
            for (kname, kt) in [
                ("v15", KeyTransport::RsaPkcs1v15),
                ("oaep", KeyTransport::RsaOaep),
            ] {
                let msg = dev.request_to(
                    &ra,
                    mt,
                    &dev.txid(),
                    content(mt),
                    *cipher,
                    kt,
                    DigestAlg::Sha256,
                );
                write(
                    "decode",
                    &format!("client-{name}-{cname}-{kname}.der"),
                    &msg,
                );
            }
        }
    }
    // open_signed: first byte = message type index (PKCSReq 0, RenewalReq 1,
    // CertPoll 2, GetCert 3, GetCRL 4), then the envelope to the RA.
    for (i, (name, body)) in [("pkcsreq", &csr), ("renewalreq", &csr_sans)]
        .into_iter()
        .enumerate()
    {
        let mut seed = vec![i as u8];
        seed.extend(envelope(body, &ra));
        write("open_signed", &format!("envelope-{name}-aes128.der"), &seed);
    }
    let mut seed = vec![2u8];
    let mut name_pair = issuer.clone();
    name_pair.extend_from_slice(&issuer);
    let mut seq = vec![0x30, 0x82];
    seq.extend_from_slice(&(name_pair.len() as u16).to_be_bytes());
    seq.extend(name_pair);
    seed.extend(envelope(&seq, &ra));
    write("open_signed", "envelope-certpoll-aes128.der", &seed);
}

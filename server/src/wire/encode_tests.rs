//! CertRep and degenerate PKCS#7 tests, read back with the client parser
//! and with the `openssl` command line.

use super::*;
use crate::wire::client::{parse_cert_rep, parse_certs_only, parse_signed_next_ca};
use crate::wire::pkcs7_ffi::SignedData;
use crate::wire::testutil::{assert_strict_der, empty_crl, self_signed};
use crate::wire::{DigestAlg, TransactionId};
use openssl::x509::{X509Ref, X509};

fn request_header(digest: DigestAlg) -> Header {
    Header {
        message_type: MessageType::PkcsReq,
        transaction_id: TransactionId("TX-ENCODE-1".into()),
        sender_nonce: Nonce(vec![7; 16]),
        digest,
    }
}

#[test]
fn success_cert_rep_roundtrips_with_the_request_cipher_and_nonces() {
    let (ra, client, issued) = (
        self_signed("ra"),
        self_signed("client"),
        self_signed("issued cert"),
    );
    for cipher in [
        ContentCipher::Des3Cbc,
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes192Cbc,
        ContentCipher::Aes256Cbc,
    ] {
        let req = request_header(DigestAlg::Sha512);
        let content = certs_only(&[&issued.cert]).unwrap();
        let der = cert_rep(
            &ra.ra(),
            &req,
            Reply::Success {
                content,
                recipient: &crate::wire::SignerCert::from_der(&client.cert.to_der().unwrap())
                    .unwrap(),
                cipher,
            },
        )
        .unwrap();
        let rep = parse_cert_rep(&der, &ra.cert, &client.cert, &client.key).unwrap();
        assert_eq!(rep.status, PkiStatus::Success);
        assert_eq!(rep.fail_info, None);
        assert_eq!(rep.transaction_id, req.transaction_id);
        assert_eq!(rep.recipient_nonce, req.sender_nonce);
        assert_eq!(rep.sender_nonce.0.len(), 16);
        assert_ne!(rep.sender_nonce, req.sender_nonce);
        assert_eq!(rep.digest, DigestAlg::Sha512);
        assert_eq!(rep.cipher, Some(cipher));
        assert_eq!(rep.certs.len(), 1);
        assert_eq!(
            rep.certs[0].to_der().unwrap(),
            issued.cert.to_der().unwrap()
        );
        assert_strict_der(&der);
        let sd = SignedData::from_der(&der).unwrap();
        assert_eq!(
            sd.certificates_der().unwrap(),
            vec![ra.cert.to_der().unwrap()]
        );
    }
}

#[test]
fn pending_and_failure_cert_reps_carry_status_and_fail_info() {
    let (ra, client) = (self_signed("ra"), self_signed("client"));
    let req = request_header(DigestAlg::Sha1);
    let pending = cert_rep(&ra.ra(), &req, Reply::Pending).unwrap();
    let rep = parse_cert_rep(&pending, &ra.cert, &client.cert, &client.key).unwrap();
    assert_eq!(
        (rep.status, rep.fail_info, rep.digest),
        (PkiStatus::Pending, None, DigestAlg::Sha1)
    );
    assert_eq!(rep.recipient_nonce, req.sender_nonce);
    assert!(rep.certs.is_empty() && rep.cipher.is_none());

    for info in [
        FailInfo::BadAlg,
        FailInfo::BadMessageCheck,
        FailInfo::BadRequest,
        FailInfo::BadTime,
        FailInfo::BadCertId,
    ] {
        let der = cert_rep(&ra.ra(), &req, Reply::Failure(info)).unwrap();
        let rep = parse_cert_rep(&der, &ra.cert, &client.cert, &client.key).unwrap();
        assert_eq!(
            (rep.status, rep.fail_info),
            (PkiStatus::Failure, Some(info))
        );
        assert_eq!(rep.transaction_id, req.transaction_id);
    }
}

#[test]
fn cert_rep_signed_by_someone_else_is_rejected() {
    let (ra, client, other) = (
        self_signed("ra"),
        self_signed("client"),
        self_signed("other"),
    );
    let der = cert_rep(&ra.ra(), &request_header(DigestAlg::Sha256), Reply::Pending).unwrap();
    let err = parse_cert_rep(&der, &other.cert, &client.cert, &client.key).unwrap_err();
    assert!(matches!(err, WireError::BadSignature), "{err:?}");
}

#[test]
fn certs_only_and_crl_only_parse_back() {
    let (ca, ra) = (self_signed("ca"), self_signed("ra"));
    let der = certs_only(&[&ca.cert, &ra.cert]).unwrap();
    assert_strict_der(&der);
    let certs = parse_certs_only(&der).unwrap();
    let ders: Vec<_> = certs.iter().map(|c| c.to_der().unwrap()).collect();
    assert_eq!(
        ders,
        vec![ca.cert.to_der().unwrap(), ra.cert.to_der().unwrap()]
    );
    // A bare certificate is also a valid GetCACert body.
    assert_eq!(
        parse_certs_only(&ders[0]).unwrap()[0].to_der().unwrap(),
        ders[0]
    );
    assert!(matches!(
        parse_certs_only(b"nope"),
        Err(WireError::Malformed(_))
    ));

    let crl = empty_crl(&ca);
    let der = crl_only(&crl).unwrap();
    let sd = SignedData::from_der(&der).unwrap();
    assert_eq!(sd.crls_der().unwrap(), vec![crl]);
    assert!(sd.certificates_der().unwrap().is_empty());
    assert!(crl_only(b"not a crl").is_err());
}

#[test]
fn certs_only_der_writes_the_bytes_openssl_writes() {
    let (ca, ra) = (self_signed("ca"), self_signed("ra"));
    let (a, b) = (ca.cert.to_der().unwrap(), ra.cert.to_der().unwrap());
    for set in [vec![&a[..]], vec![&a[..], &b[..]], vec![&b[..], &a[..]]] {
        let x509s: Vec<X509> = set.iter().map(|d| X509::from_der(d).unwrap()).collect();
        let refs: Vec<&X509Ref> = x509s.iter().map(|x| x.as_ref()).collect();
        assert_eq!(certs_only_der(&set), certs_only(&refs).unwrap());
    }
}

#[test]
fn crl_reply_reaches_the_client() {
    let (ra, client, ca) = (self_signed("ra"), self_signed("client"), self_signed("ca"));
    let crl = empty_crl(&ca);
    let reply = Reply::Success {
        content: crl_only(&crl).unwrap(),
        recipient: &crate::wire::SignerCert::from_der(&client.cert.to_der().unwrap()).unwrap(),
        cipher: ContentCipher::Aes128Cbc,
    };
    let der = cert_rep(&ra.ra(), &request_header(DigestAlg::Sha256), reply).unwrap();
    let rep = parse_cert_rep(&der, &ra.cert, &client.cert, &client.key).unwrap();
    assert_eq!(rep.crls, vec![crl]);
    assert!(rep.certs.is_empty());
}

#[test]
fn signed_next_ca_verifies_with_the_current_ca() {
    let (ca, next, other) = (
        self_signed("ca"),
        self_signed("next ca"),
        self_signed("other"),
    );
    let content = certs_only(&[&next.cert]).unwrap();
    let der = signed_next_ca(&ca.cert, &ca.key, &content).unwrap();
    assert_strict_der(&der);
    let certs = parse_signed_next_ca(&der, &ca.cert).unwrap();
    assert_eq!(certs[0].to_der().unwrap(), next.cert.to_der().unwrap());
    assert!(matches!(
        parse_signed_next_ca(&der, &other.cert),
        Err(WireError::BadSignature)
    ));
}

fn openssl_cli(args: &[&str], input: &[u8]) -> (bool, Vec<u8>, String) {
    let dir = std::env::temp_dir().join(format!(
        "scepd-wire-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let inp = dir.join("in.der");
    std::fs::write(&inp, input).unwrap();
    let out = std::process::Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(&inp)
        .current_dir(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rand_suffix() -> String {
    let mut b = [0u8; 6];
    openssl::rand::rand_bytes(&mut b).unwrap();
    hex::encode(b)
}

#[test]
fn openssl_cms_verifies_our_cert_rep() {
    let (ra, client, issued) = (
        self_signed("ra"),
        self_signed("client"),
        self_signed("issued cert"),
    );
    let reply = Reply::Success {
        content: certs_only(&[&issued.cert]).unwrap(),
        recipient: &crate::wire::SignerCert::from_der(&client.cert.to_der().unwrap()).unwrap(),
        cipher: ContentCipher::Aes256Cbc,
    };
    let der = cert_rep(&ra.ra(), &request_header(DigestAlg::Sha256), reply).unwrap();
    let (ok, out, err) = openssl_cli(
        &["cms", "-verify", "-noverify", "-inform", "DER", "-binary"],
        &der,
    );
    assert!(ok, "openssl cms -verify failed: {err}");
    assert_eq!(out, SignedData::from_der(&der).unwrap().content().unwrap());

    // Tampering must be caught by OpenSSL as well.
    let mut bad = der.clone();
    let n = bad.len();
    bad[n / 2] ^= 0x40;
    let (ok, _, _) = openssl_cli(
        &["cms", "-verify", "-noverify", "-inform", "DER", "-binary"],
        &bad,
    );
    assert!(!ok);

    // And asn1parse finds no indefinite lengths in the whole reply.
    let (ok, out, err) = openssl_cli(&["asn1parse", "-inform", "DER", "-i"], &der);
    assert!(ok, "{err}");
    assert!(
        !String::from_utf8_lossy(&out).contains("inf"),
        "indefinite length in output"
    );
}

//! Cisco. IOS routers (`crypto pki trustpoint` with `enrollment url`) send
//! the trustpoint's name as the `message` of GetCACert and GetCACaps, use
//! `/cgi-bin/pkiclient.exe` when the URL has no path, and send
//! PKIOperation by GET whatever GetCACaps says, with the base64 not
//! percent-escaped (raw `+`, `/` and `=`) and broken into 64-character
//! lines (`%0A`), signed with SHA-1 and enveloped with 3DES (as in the
//! request logged in smallstep/certificates#2100). The ASA signs its
//! PKCSReq with a certificate whose key is not the one in the CSR (noted in
//! OpenXPKI's documentation): the request carries a challenge, so it must
//! enroll, and RFC 8894 §3.3.2 envelopes the reply to the signer.

use base64::Engine;
use server::wire::client::ClientContent;
use server::wire::{ContentCipher, DigestAlg, MessageType, Nonce, TransactionId};

use super::messages::{assert_issued, get, Ra, Requester};
use crate::support::Scepd;

/// The trustpoint name IOS sends as `message`.
const TRUSTPOINT: &str = "SCEPD-TP";

#[test]
fn cisco_ios_get_ca_cert_and_get_ca_caps_with_the_trustpoint_as_message_answer_normally() {
    let s = Scepd::start();
    let plain = get(&format!("{}?operation=GetCACert", s.scep_url("default"))).unwrap();

    let url = format!(
        "{}/cgi-bin/pkiclient.exe?operation=GetCACert&message={TRUSTPOINT}",
        s.url
    );
    let r = ureq::get(&url).call().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_type(), "application/x-x509-ca-ra-cert");
    let mut body = vec![];
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    assert_eq!(body, plain, "the trustpoint name changes nothing");
    let ra = Ra::from_get_ca_cert(&s, &body);
    assert!(!ra.ras.is_empty());

    let url = format!("{}/scep?operation=GetCACaps&message={TRUSTPOINT}", s.url);
    let r = ureq::get(&url).call().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_type(), "text/plain");
    let caps = r.into_string().unwrap();
    let caps: Vec<&str> = caps.lines().collect();
    for cap in ["POSTPKIOperation", "DES3"] {
        assert!(caps.contains(&cap), "{cap} in {caps:?}");
    }
}

#[test]
fn cisco_ios_pki_operation_by_get_with_raw_base64_and_line_breaks_enrolls() {
    let s = Scepd::start();
    let caps = get(&format!(
        "{}/scep?operation=GetCACaps&message={TRUSTPOINT}",
        s.url
    ))
    .unwrap();
    assert!(
        String::from_utf8(caps)
            .unwrap()
            .contains("POSTPKIOperation"),
        "IOS uses GET even though POST is advertised"
    );
    let ra = Ra::from_get_ca_cert(
        &s,
        &get(&format!(
            "{}/cgi-bin/pkiclient.exe?operation=GetCACert&message={TRUSTPOINT}",
            s.url
        ))
        .unwrap(),
    );
    let router = Requester::fresh("r1.example.com");
    let csr = router.csr(
        "r1.example.com",
        Some(&s.mint("default")),
        &[
            ("unstructuredName", "r1.example.com"),
            ("serialNumber", "FTX1234A5BC"),
        ],
    );
    // A message whose base64 holds '+', '/' and '=' padding, so each is
    // sent raw: a fresh senderNonce changes the signature's bytes, a
    // transactionID one character longer the message's length.
    let (txid, nonce, b64) = (0..64)
        .find_map(|i| {
            let txid = TransactionId(format!(
                "7B0C6A2D1E4F8A9B3C5D7E0F1A2B3C4D{}",
                &"AB"[..i % 3]
            ));
            let nonce = Nonce::random().unwrap();
            let msg = router.request(
                &ra,
                MessageType::PkcsReq,
                &txid,
                &nonce,
                ClientContent::Csr(&csr),
                ContentCipher::Des3Cbc,
                DigestAlg::Sha1,
            );
            let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
            (b64.contains('+') && b64.contains('/') && b64.ends_with('='))
                .then_some((txid, nonce, b64))
        })
        .expect("a message whose base64 has '+', '/' and '='");
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    // Each line ends with a line break, the last one too.
    let message: String = lines.iter().map(|l| format!("{l}%0A")).collect();
    assert!(message.contains('+') && message.contains('/') && message.contains("=%0A"));
    let url = format!(
        "{}/cgi-bin/pkiclient.exe?operation=PKIOperation&message={message}",
        s.url
    );
    let body = get(&url).unwrap_or_else(|e| panic!("{e:?}\n{}", s.log()));
    let rep = router.read_reply(&ra, &body).unwrap();
    assert_issued(&s, &rep, &txid, &nonce, &router.key);
    assert_eq!(rep.cipher, Some(ContentCipher::Des3Cbc), "answered in kind");
    assert_eq!(rep.digest, DigestAlg::Sha1, "answered in kind");
    assert_eq!(s.count("certificates"), 1);
}

#[test]
fn cisco_asa_signer_key_other_than_the_csr_key_enrolls_and_the_reply_is_enveloped_to_the_signer() {
    let s = Scepd::start();
    let ra = Ra::fetch(&s);
    // The ASA's signing identity, and the key pair it asks a certificate for.
    let signer = Requester::fresh("asa.example.com");
    let subject = Requester::fresh("asa.example.com");
    let csr = subject.csr("asa.example.com", Some(&s.mint("default")), &[]);
    let txid = TransactionId("ASA-5F1E2D3C4B5A69788796A5B4C3D2E1F0".into());
    let nonce = Nonce::random().unwrap();
    let msg = signer.pkcs_req(&ra, &txid, &nonce, &csr);
    let body =
        crate::device::post(&s, "default", &msg).unwrap_or_else(|e| panic!("{e:?}\n{}", s.log()));

    // Opened with the signer's key: the certificate is for the CSR's key.
    let rep = signer.read_reply(&ra, &body).unwrap();
    assert_issued(&s, &rep, &txid, &nonce, &subject.key);
    assert_eq!(s.count("certificates"), 1);
    // The CSR's key cannot open it: the envelope is to the signer only.
    assert!(
        subject.read_reply(&ra, &body).is_err(),
        "the SUCCESS opened with the CSR's key"
    );
}

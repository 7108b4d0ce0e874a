//! Self-signed signer certificates (RFC 8894 §2.3: before enrollment the
//! requester signs with a throwaway certificate that only carries its key)
//! in the shapes clients really write them, each a static fixture in
//! `tests/data/interop/` (provenance in `tests/data/README.md`):
//! X.509 v1 without extensions, validity in GeneralizedTime before 2050
//! (RFC 5280 §4.1.2.5 wants UTCTime there), and serial numbers longer than
//! RFC 5280's 20 octets — 33 (certmonger) and 32 (the ASCII of the
//! transactionID). The signer is not checked as a certificate, only its
//! key: each one must enroll.

use server::wire::{Nonce, TransactionId};

use super::messages::{assert_issued, Ra, Requester};
use crate::support::Scepd;

/// Enrolls with the signer fixture `name` under `txid` and checks the
/// issued certificate.
fn enrolls_with(fixture: &str, cn: &str, txid: &TransactionId) {
    let s = Scepd::start();
    let ra = Ra::fetch(&s);
    let dev = Requester::fixture(fixture);
    let csr = dev.csr(cn, Some(&s.mint("default")), &[]);
    let nonce = Nonce::random().unwrap();
    let msg = dev.pkcs_req(&ra, txid, &nonce, &csr);
    let rep = dev.send(&s, &ra, &msg).rep(&s);
    assert_issued(&s, &rep, txid, &nonce, &dev.key);
    assert_eq!(s.count("certificates"), 1);
    assert_eq!(s.count("enrollment_requests"), 1);
}

/// The serialNumber INTEGER's content octets.
fn serial_octets(dev: &Requester) -> usize {
    let der = dev.cert.to_der().unwrap();
    // Certificate { tbsCertificate { [0] version?, serialNumber, ... } }
    let (cert, _) = super::messages::read(&der);
    let tbs = super::messages::children(&cert)[0];
    let fields = super::messages::children(&tbs);
    let serial = if fields[0].tag == 0xa0 {
        fields[1]
    } else {
        fields[0]
    };
    assert_eq!(serial.tag, 0x02);
    serial.content.len()
}

#[test]
fn x509_v1_signer_without_extensions_enrolls() {
    let dev = Requester::fixture("v1-no-extensions.pem");
    assert_eq!(dev.cert.version(), 0, "X.509 v1");
    let text = crate::support::openssl_text(&dev.cert);
    assert!(!text.contains("X509v3 extensions"), "{text}");
    enrolls_with(
        "v1-no-extensions.pem",
        "v1 signer",
        &TransactionId("v1-signer-0001".into()),
    );
}

#[test]
fn signer_with_generalized_time_validity_before_2050_enrolls() {
    let dev = Requester::fixture("generalized-time-before-2050.pem");
    let der = dev.cert.to_der().unwrap();
    // GeneralizedTime 20250101000000Z and 20491231235959Z.
    for t in [&b"\x18\x0f20250101000000Z"[..], b"\x18\x0f20491231235959Z"] {
        assert!(der.windows(t.len()).any(|w| w == t), "GeneralizedTime");
    }
    enrolls_with(
        "generalized-time-before-2050.pem",
        "generalized time signer",
        &TransactionId("generalized-time-0001".into()),
    );
}

#[test]
fn certmonger_signer_with_a_33_octet_serial_enrolls() {
    let dev = Requester::fixture("certmonger-serial-33-octets.pem");
    assert_eq!(serial_octets(&dev), 33);
    enrolls_with(
        "certmonger-serial-33-octets.pem",
        "certmonger signer",
        &TransactionId("certmonger-33-0001".into()),
    );
}

#[test]
fn signer_whose_serial_is_the_32_octet_ascii_transaction_id_enrolls() {
    let dev = Requester::fixture("txid-serial-32-octets.pem");
    assert_eq!(serial_octets(&dev), 32);
    // The client's transactionID is what it wrote into the serial.
    let serial = dev.cert.serial_number().to_bn().unwrap().to_vec();
    let txid = String::from_utf8(serial).unwrap();
    assert_eq!(txid, "3F2504E04F8911D39A0C0305E82C3301");
    enrolls_with(
        "txid-serial-32-octets.pem",
        "txid serial signer",
        &TransactionId(txid),
    );
}

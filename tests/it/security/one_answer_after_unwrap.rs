//! No padding oracle on the RA key: past the PKCS#1 v1.5 key unwrap every
//! failure gets one answer, badMessageCheck, whether the content key did
//! not unwrap, the content did not decrypt, or what it decrypted to is no
//! PKCS#10. A client that could tell these apart would learn whether its
//! forged key block had valid padding, which is Bleichenbacher's oracle on
//! the key that also signs every CertRep.

use openssl::x509::X509;
use server::wire::client::ClientContent;
use server::wire::{ContentCipher, DigestAlg, FailInfo, KeyTransport, MessageType, PkiStatus};

use crate::device::Device;
use crate::support::{last_refusal, Scepd};

/// A certificate with the RA's issuer and serial but the attacker's key:
/// an envelope to it names the RA, and its key block does not unwrap with
/// the RA's key.
fn impostor_of(ra: &X509, key: &openssl::pkey::PKey<openssl::pkey::Private>) -> X509 {
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(ra.serial_number()).unwrap();
    b.set_issuer_name(ra.issuer_name()).unwrap();
    b.set_subject_name(ra.subject_name()).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(ra.not_before()).unwrap();
    b.set_not_after(ra.not_after()).unwrap();
    b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
    b.build()
}

fn send(s: &Scepd, dev: &Device, to: &X509, content: &[u8]) -> (PkiStatus, Option<FailInfo>) {
    let msg = dev.request_to(
        to,
        MessageType::PkcsReq,
        &dev.txid(),
        ClientContent::Csr(content),
        ContentCipher::Aes128Cbc,
        KeyTransport::RsaPkcs1v15,
        DigestAlg::Sha256,
    );
    let rep = dev.send(s, "default", &msg);
    (rep.status, rep.fail_info)
}

#[test]
fn every_failure_past_the_key_unwrap_is_bad_message_check() {
    let s = Scepd::start();
    let ra = s.ra_cert();
    let dev = Device::new("oracle", 2048);
    let csr = dev.csr(Some(&s.mint("default")));
    let cases: [(&str, X509, &[u8]); 4] = [
        (
            "key block that does not unwrap",
            impostor_of(&ra, &dev.key),
            &csr,
        ),
        ("content that is no DER", ra.clone(), b"not DER at all"),
        (
            "DER that is no PKCS#10",
            ra.clone(),
            b"\x30\x03\x02\x01\x00",
        ),
        ("PKCS#10 with a broken signature", ra.clone(), &{
            let mut bad = csr.clone();
            let n = bad.len();
            bad[n - 1] ^= 1;
            bad
        }),
    ];
    for (i, (what, to, content)) in cases.into_iter().enumerate() {
        let got = send(&s, &dev, &to, content);
        assert_eq!(
            got,
            (PkiStatus::Failure, Some(FailInfo::BadMessageCheck)),
            "{what}"
        );
        // The administrator still learns which it was.
        assert_eq!(
            s.count("audit_log WHERE event = 'request.refused'"),
            i as i64 + 1,
            "{what}: refusal audited"
        );
        assert!(!last_refusal(&s).is_empty(), "{what}");
    }
    assert_eq!(s.count("enrollment_requests"), 0);
    assert_eq!(s.count("challenges WHERE used_at IS NOT NULL"), 0);
    // The intact request still enrolls.
    assert_eq!(send(&s, &dev, &ra, &csr).0, PkiStatus::Success);
}

//! Long requests, as Intune sends them: its challenges run to kilobytes, so
//! a PKIOperation by GET (RFC 8894 §4.1, the request base64 in `message`)
//! has a URL well over 8 KB. actix-web reads a request head of up to
//! 128 KiB; these tests send such requests over real HTTP and check that
//! they reach the challenge check, enroll when the secret is good, and
//! leave the secret out of the access log.

use std::process::Command;

use base64::Engine;
use server::store::audit::AuditKind;
use server::wire::client::{parse_cert_rep, CertRepMsg};
use server::wire::{ContentCipher, FailInfo, PkiStatus};

use crate::challenges::audit_of;
use crate::device::Device;
use crate::handmade_csr;
use crate::support::{Scepd, BIN};

/// A secret of `n` base64 characters, as Intune's encoded challenges look.
fn long_secret(n: usize) -> String {
    let mut raw = vec![0u8; n];
    openssl::rand::rand_bytes(&mut raw).unwrap();
    let mut s = base64::engine::general_purpose::STANDARD.encode(raw);
    s.truncate(n);
    s
}

/// GET a PKIOperation with the message percent-encoded as a careful
/// client does; the URL and the HTTP status with the CertRep.
fn get_pki_operation(
    s: &Scepd,
    dev: &Device,
    challenge: &str,
) -> (String, u16, Option<CertRepMsg>) {
    let csr = handmade_csr::csr(dev, &[handmade_csr::challenge_password(challenge)]);
    let msg = dev.pkcs_req_message(s, &csr, ContentCipher::Aes256Cbc);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
    let escaped = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let url = format!(
        "{}?operation=PKIOperation&message={escaped}",
        s.scep_url("default")
    );
    let resp = match ureq::get(&url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error {e}"),
    };
    let status = resp.status();
    let mut body = vec![];
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    let rep = (status == 200)
        .then(|| parse_cert_rep(&body, &s.ra_cert(), &dev.signer, &dev.key).unwrap());
    (url, status, rep)
}

#[test]
fn a_get_pkioperation_over_8_kb_with_a_4_kb_access_code_enrolls() {
    let s = Scepd::start();
    // An access code accepts a secret of any length: the honest way to
    // have a 4 KB challenge that is valid.
    let code = long_secret(4096);
    let out = Command::new(BIN)
        .args([
            "access-code",
            "create",
            "--org",
            "Default",
            "--profile",
            "default",
            "--label",
            "intune-like",
        ])
        .envs(s.cli_env())
        .env("SCEPD_ACCESS_CODE", &code)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dev = Device::new("intune-device-1", 4096);
    let (url, status, rep) = get_pki_operation(&s, &dev, &code);
    assert!(url.len() > 10 * 1024, "URL of {} bytes", url.len());
    assert_eq!(status, 200, "{}", s.log());
    let rep = rep.unwrap();
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}\n{}", s.log());
    assert_eq!(
        rep.certs[0]
            .public_key()
            .unwrap()
            .public_key_to_der()
            .unwrap(),
        dev.key.public_key_to_der().unwrap()
    );
    // Parsed and stored: the request row keeps the CSR whole.
    assert_eq!(
        s.count("enrollment_requests WHERE status = 'issued' AND length(csr_der) > 4096"),
        1
    );
    assert_eq!(s.count("certificates"), 1);
    assert_eq!(audit_of(&s, AuditKind::AccessCodeUsed).len(), 1);

    // The access log has the request line, but not the message or the code.
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("GET /scep/default?operation=PKIOperation&message=<"))
        .unwrap_or_else(|| panic!("no access log line:\n{log}"));
    assert!(line.len() < 1024, "{line}");
    assert!(!log.contains(&code[..64]));
    let message_start = &url[url.find("message=").unwrap() + 8..][..64];
    assert!(!log.contains(message_start));
}

#[test]
fn a_4_kb_unknown_challenge_by_get_reaches_the_challenge_check() {
    let s = Scepd::start();
    let dev = Device::new("intune-device-2", 4096);
    let (url, status, rep) = get_pki_operation(&s, &dev, &long_secret(4096));
    assert!(url.len() > 10 * 1024, "URL of {} bytes", url.len());
    // Not 414 or 400: a signed refusal from the challenge check.
    assert_eq!(status, 200, "{}", s.log());
    let rep = rep.unwrap();
    assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
    assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    let rejected = audit_of(&s, AuditKind::ChallengeRejected);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0].details["reason"]
            .as_str()
            .is_some_and(|r| r.contains("challenge")),
        "{:?}",
        rejected[0].details
    );
    assert_eq!(s.count("certificates"), 0);
}

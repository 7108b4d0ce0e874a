//! Long requests, as Intune sends them: its challenges run to kilobytes, so
//! a PKIOperation by GET (RFC 8894 §4.1, the request base64 in `message`)
//! has a URL well over 8 KB. actix-web reads a request head of up to
//! 128 KiB; these tests send such requests over real HTTP and check that
//! they reach the challenge check, enroll when the secret is good, and
//! leave the secret out of the access log.

use std::process::Command;

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use openssl::x509::{X509NameBuilder, X509Req};
use server::store::audit::AuditKind;
use server::wire::client::{parse_cert_rep, CertRepMsg};
use server::wire::{ContentCipher, FailInfo, PkiStatus};

use crate::challenges::audit_of;
use crate::device::Device;
use crate::support::{Scepd, BIN};

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
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

/// A PKCS#10 request (RFC 2986) whose challengePassword is `challenge`,
/// assembled by hand: `openssl req` refuses a challengePassword beyond
/// PKCS#9's 255 characters, which Intune's exceed.
fn csr_with_challenge(dev: &Device, challenge: &str) -> Vec<u8> {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", &dev.cn).unwrap();
    let name = name.build().to_der().unwrap();
    // challengePassword (1.2.840.113549.1.9.7), one UTF8String value.
    let oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07,
    ];
    let attribute = der(
        0x30,
        &[oid.to_vec(), der(0x31, &der(0x0c, challenge.as_bytes()))].concat(),
    );
    let info = der(
        0x30,
        &[
            vec![0x02, 0x01, 0x00],
            name,
            dev.key.public_key_to_der().unwrap(),
            der(0xa0, &attribute),
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
    // A well-formed request that OpenSSL verifies.
    let parsed = X509Req::from_der(&csr).unwrap();
    assert!(parsed.verify(&dev.key).unwrap());
    csr
}

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
    let csr = csr_with_challenge(dev, challenge);
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

//! RFC 6960 OCSP against a real scepd, with the `openssl ocsp` client:
//! good, revoked (reason and time), unknown, malformed and oversized
//! requests, another CA's certificate, GET and POST, the nonce, the
//! delegated responder certificate, the cache window, the profile's choice
//! of AIA and CRL DP, and the responder after a CA rollover.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use openssl::x509::X509;
use server::testdb;

use crate::device::Device;
use crate::support::Scepd;

fn start(cache_seconds: &str) -> Scepd {
    let db = testdb::test_db().expect("test database");
    let dir = tempfile::tempdir().unwrap();
    Scepd::start_with(db, dir, &[("SCEPD_OCSP_CACHE_SECONDS", cache_seconds)])
}

/// `openssl <args>` in `dir`: (success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn write_pem(dir: &Path, name: &str, cert: &X509) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, cert.to_pem().unwrap()).unwrap();
    p
}

/// `openssl ocsp` asking `url` about `cert` of `issuer`, trusting only
/// `trust`; the whole output, with the response printed.
fn ask(dir: &Path, url: &str, issuer: &Path, cert: &Path, trust: &Path) -> String {
    let (_, out) = openssl(
        dir,
        &[
            "ocsp",
            "-url",
            url,
            "-issuer",
            issuer.to_str().unwrap(),
            "-cert",
            cert.to_str().unwrap(),
            "-CAfile",
            trust.to_str().unwrap(),
            "-resp_text",
        ],
    );
    out
}

/// A certificate signed with a CA key from scepd's data directory that
/// scepd never issued (so its database does not know it).
fn signed_outside(dir: &Path, ca: &str, serial: &str) -> PathBuf {
    let ca_dir = dir.join("ca");
    let (ok, out) = openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "outside.key",
            "-subj",
            "/CN=outside",
            "-out",
            "outside.csr",
        ],
    );
    assert!(ok, "{out}");
    let name = format!("outside-{ca}.pem");
    // The CA key is encrypted at rest under the data directory's passphrase.
    let passin = format!("file:{}", dir.join("key-passphrase").display());
    let (ok, out) = openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "outside.csr",
            "-CA",
            ca_dir.join(format!("{ca}.crt")).to_str().unwrap(),
            "-CAkey",
            ca_dir.join(format!("{ca}.key")).to_str().unwrap(),
            "-passin",
            &passin,
            "-set_serial",
            serial,
            "-days",
            "2",
            "-out",
            &name,
        ],
    );
    assert!(ok, "{out}");
    dir.join(name)
}

fn enrolled(s: &Scepd, cn: &str) -> X509 {
    Device::enrolled(s, "default", cn).signer
}

fn serial_of(cert: &X509) -> String {
    hex::encode_upper(cert.serial_number().to_bn().unwrap().to_vec())
}

/// The OCSP URL of the certificate's authorityInfoAccess (OpenSSL reports
/// a certificate without one as an error).
fn ocsp_url(cert: &X509) -> Option<String> {
    let r = cert.ocsp_responders().ok()?;
    r.iter().next().map(|u| u.to_string())
}

/// RFC 6960 §2.2: good, then revoked with its reason and time, and
/// unknown for a serial the database does not hold; POST by `openssl
/// ocsp` to the URL the certificate carries, the nonce echoed.
#[test]
fn good_revoked_and_unknown_as_openssl_ocsp_reads_them() {
    let s = start("0");
    let dir = s.dir.path();
    let ca = s.ca_pem_path();
    let cert = enrolled(&s, "ocsp-good");
    let url = ocsp_url(&cert).expect("the certificate names its OCSP responder");
    assert_eq!(url, format!("{}/ocsp", s.url));
    let leaf = write_pem(dir, "leaf.pem", &cert);

    let out = ask(dir, &url, &ca, &leaf, &ca);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("leaf.pem: good"), "{out}");
    // openssl ocsp sends a nonce and checks it comes back (RFC 8954).
    assert!(out.contains("OCSP Nonce"), "{out}");
    assert!(!out.to_lowercase().contains("nonce verify error"), "{out}");
    assert!(!out.contains("WARNING: no nonce in response"), "{out}");
    // No cache: no nextUpdate.
    assert!(!out.contains("Next Update"), "{out}");

    s.cli_ok(&[
        "cert",
        "revoke",
        &serial_of(&cert),
        "--reason",
        "keyCompromise",
    ]);
    let out = ask(dir, &url, &ca, &leaf, &ca);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("leaf.pem: revoked"), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    let revoked_at: chrono::DateTime<chrono::Utc> = {
        use diesel::prelude::*;
        use server::store::schema::{certificates, revocations};
        revocations::table
            .inner_join(certificates::table)
            .filter(certificates::serial.eq(serial_of(&cert)))
            .select(revocations::revoked_at)
            .first(&mut s.pg())
            .unwrap()
    };
    let when = revoked_at.format("%b %e %H:%M:%S %Y GMT").to_string();
    assert!(
        out.contains(&format!("Revocation Time: {when}")),
        "{when}: {out}"
    );

    let outside = signed_outside(dir, "ca", "0x5A5A5A5A5A5A");
    let out = ask(dir, &url, &ca, &outside, &ca);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(": unknown"), "{out}");
}

/// The answer is signed by a delegated responder (RFC 6960 §4.2.2.2)
/// carried in the response: issued by the CA, id-kp-OCSPSigning, and
/// id-pkix-ocsp-nocheck; the CA key itself signs no OCSP answer.
#[test]
fn the_responder_is_delegated_with_ocsp_signing_and_nocheck() {
    let s = start("0");
    let dir = s.dir.path();
    let ca = s.ca_pem_path();
    let leaf = write_pem(dir, "leaf.pem", &enrolled(&s, "ocsp-responder"));
    let out = ask(dir, &format!("{}/ocsp", s.url), &ca, &leaf, &ca);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("OCSP Signing"), "{out}");
    assert!(out.contains("OCSP No Check"), "{out}");
    assert!(
        out.contains("Subject: O=scepd, CN=scepd CA OCSP responder"),
        "{out}"
    );
    assert!(out.contains("Issuer: O=scepd, CN=scepd CA"), "{out}");
    // Issued for this CA, by this CA: not the CA certificate itself.
    assert!(!out.contains("Subject: O=scepd, CN=scepd CA\n"), "{out}");
}

/// RFC 6960 Appendix A.1: GET with the base64 request URL-encoded in the
/// path answers as POST does, cacheable for the cache time.
#[test]
fn get_and_post_give_the_same_status() {
    let s = start("30");
    let dir = s.dir.path();
    let ca = s.ca_pem_path();
    write_pem(dir, "leaf.pem", &enrolled(&s, "ocsp-get"));
    let (ok, out) = openssl(
        dir,
        &[
            "ocsp",
            "-issuer",
            ca.to_str().unwrap(),
            "-cert",
            "leaf.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    );
    assert!(ok, "{out}");
    let req = std::fs::read(dir.join("req.der")).unwrap();
    let b64 = base64_std(&req);
    let escaped: String = b64
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_string(),
            '/' => "%2F".to_string(),
            '=' => "%3D".to_string(),
            c => c.to_string(),
        })
        .collect();
    for path in [escaped, b64] {
        let r = ureq::get(&format!("{}/ocsp/{path}", s.url)).call().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.content_type(), "application/ocsp-response");
        let cc = r.header("Cache-Control").unwrap_or_default().to_string();
        assert!(cc.contains("max-age=30"), "{cc}");
        let out = read_answer(dir, r, &ca);
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains("leaf.pem: good"), "{out}");
    }
    // And by POST, from the same request.
    let r = ureq::post(&format!("{}/ocsp", s.url))
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(&req)
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = read_answer(dir, r, &ca);
    assert!(out.contains("leaf.pem: good"), "{out}");
}

/// `openssl ocsp`'s reading of the answer in `r` about `leaf.pem`,
/// verified against `ca`.
fn read_answer(dir: &Path, r: ureq::Response, ca: &Path) -> String {
    let mut body = vec![];
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    std::fs::write(dir.join("resp.der"), &body).unwrap();
    let ca = ca.to_str().unwrap();
    let args = [
        "ocsp", "-respin", "resp.der", "-issuer", ca, "-cert", "leaf.pem", "-CAfile", ca,
    ];
    openssl(dir, &args).1
}

fn base64_std(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// What cannot be read is an HTTP 200 `malformedRequest` (RFC 6960 §2.3),
/// by POST and GET alike; a body past the limit is refused with 413.
#[test]
fn malformed_requests_get_malformed_request_and_oversized_413() {
    let s = start("0");
    let dir = s.dir.path();
    let bodies: [&[u8]; 3] = [b"not DER at all", b"", b"\x30\x03\x02\x01\x00"];
    for body in bodies {
        let r = ureq::post(&format!("{}/ocsp", s.url))
            .set("Content-Type", "application/ocsp-request")
            .send_bytes(body)
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut resp = vec![];
        std::io::Read::read_to_end(&mut r.into_reader(), &mut resp).unwrap();
        std::fs::write(dir.join("bad.der"), &resp).unwrap();
        let (_, out) = openssl(
            dir,
            &["ocsp", "-respin", "bad.der", "-resp_text", "-noverify"],
        );
        assert!(out.contains("malformedrequest (1)"), "{out}");
    }
    for path in ["%%%%", "AAAA", ""] {
        let r = ureq::get(&format!("{}/ocsp/{path}", s.url)).call().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let mut resp = vec![];
        std::io::Read::read_to_end(&mut r.into_reader(), &mut resp).unwrap();
        // OCSPResponse { responseStatus malformedRequest }.
        assert_eq!(resp, [0x30, 0x03, 0x0a, 0x01, 0x01], "{path}");
    }
    let big = vec![0x30u8; 64 * 1024];
    match ureq::post(&format!("{}/ocsp", s.url)).send_bytes(&big) {
        Err(ureq::Error::Status(413, _)) => {}
        other => panic!("expected 413, got {other:?}"),
    }
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

/// RFC 6960 §2.3: a certificate of a CA this responder does not serve
/// (issuerNameHash/issuerKeyHash of another CA) is answered `unauthorized`;
/// a CA with our CA's very name but another key is another CA.
#[test]
fn another_cas_certificate_is_unauthorized() {
    let s = start("0");
    let dir = s.dir.path();
    let ca = s.ca_pem_path();
    let (ok, out) = openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-subj",
            "/O=scepd/CN=scepd CA",
            "-days",
            "2",
            "-out",
            "other.crt",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "o.key",
            "-subj",
            "/CN=theirs",
            "-out",
            "o.csr",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "o.csr",
            "-CA",
            "other.crt",
            "-CAkey",
            "other.key",
            "-set_serial",
            "7",
            "-days",
            "2",
            "-out",
            "theirs.pem",
        ],
    );
    assert!(ok, "{out}");
    let other = dir.join("other.crt");
    let out = ask(
        dir,
        &format!("{}/ocsp", s.url),
        &other,
        &dir.join("theirs.pem"),
        &ca,
    );
    assert!(out.contains("Responder Error: unauthorized (6)"), "{out}");
}

/// With a cache of N seconds an answer read before a revocation may be
/// served until N seconds after it was read (nextUpdate says so), and
/// never later: then the revocation is answered.
#[test]
fn a_revocation_is_answered_once_the_cache_time_has_passed() {
    let s = start("8");
    let dir = s.dir.path();
    let ca = s.ca_pem_path();
    let cert = enrolled(&s, "ocsp-cache");
    let leaf = write_pem(dir, "leaf.pem", &cert);
    let url = format!("{}/ocsp", s.url);
    let first = Instant::now();
    let out = ask(dir, &url, &ca, &leaf, &ca);
    assert!(out.contains("leaf.pem: good"), "{out}");
    let update = |name: &str| -> chrono::DateTime<chrono::Utc> {
        let line = out
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {out}"));
        chrono::NaiveDateTime::parse_from_str(line.trim(), "%b %e %H:%M:%S %Y GMT")
            .unwrap()
            .and_utc()
    };
    assert_eq!(
        update("Next Update:") - update("This Update:"),
        chrono::Duration::seconds(8)
    );

    s.cli_ok(&[
        "cert",
        "revoke",
        &serial_of(&cert),
        "--reason",
        "superseded",
    ]);
    let out = ask(dir, &url, &ca, &leaf, &ca);
    if first.elapsed() < Duration::from_secs(7) {
        // Still inside the window: the cached status, as nextUpdate promised.
        assert!(out.contains("leaf.pem: good"), "{out}");
    }
    std::thread::sleep(
        Duration::from_secs(8).saturating_sub(first.elapsed()) + Duration::from_millis(1200),
    );
    let out = ask(dir, &url, &ca, &leaf, &ca);
    assert!(out.contains("leaf.pem: revoked"), "{out}");
    assert!(out.contains("Reason: superseded"), "{out}");
}

/// The profile decides whether its certificates carry the OCSP URL (AIA)
/// and the CRL DP; set by the CLI and the API, audited.
#[test]
fn the_profile_chooses_aia_and_crl_dp() {
    let s = start("0");
    let show = s.cli_ok(&["ca", "show"]);
    assert!(
        show.contains(&format!("OCSP URL: {}/ocsp", s.url)),
        "{show}"
    );
    let both = enrolled(&s, "both");
    assert_eq!(ocsp_url(&both), Some(format!("{}/ocsp", s.url)));
    assert!(both.crl_distribution_points().is_some());

    s.cli_ok(&["profile", "set", "default", "--ocsp-url=false"]);
    let crl_only = enrolled(&s, "crl-only");
    assert_eq!(ocsp_url(&crl_only), None);
    assert!(crl_only.crl_distribution_points().is_some());

    let key = s
        .cli_ok(&["api-key", "create", "--name", "mdm", "--org", "Default"])
        .trim()
        .to_string();
    let (status, body) = crate::api::call(
        "PATCH",
        &format!("{}/api/v1/profiles/default", s.url),
        Some(&key),
        Some(serde_json::json!({ "include_ocsp_url": true, "include_crl_dp": false })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["include_ocsp_url"], true, "{body}");
    assert_eq!(body["include_crl_dp"], false, "{body}");
    let ocsp_only = enrolled(&s, "ocsp-only");
    assert_eq!(ocsp_url(&ocsp_only), Some(format!("{}/ocsp", s.url)));
    assert!(ocsp_only.crl_distribution_points().is_none());

    // Each change is audited with what it changed.
    let details: Vec<serde_json::Value> = {
        use diesel::prelude::*;
        use server::store::schema::audit_log;
        audit_log::table
            .filter(audit_log::event.eq("profile.updated"))
            .order(audit_log::id)
            .select(audit_log::details)
            .load(&mut s.pg())
            .unwrap()
    };
    assert_eq!(details.len(), 2, "{details:?}");
    assert_eq!(details[0]["changed"]["include_ocsp_url"]["to"], false);
    assert_eq!(details[1]["changed"]["include_ocsp_url"]["to"], true);
    assert_eq!(details[1]["changed"]["include_crl_dp"]["to"], false);
}

/// After `scepd ca rollover` the next CA's certificates are answered by a
/// responder the next CA issued; the current CA's still by its own.
#[test]
fn after_a_rollover_the_new_ca_has_its_own_responder() {
    let s = start("0");
    let cert = enrolled(&s, "before-rollover");
    s.cli_ok(&["ca", "rollover", "--common-name", "scepd CA 2"]);
    let s = s.restart();
    let dir = s.dir.path();
    let url = format!("{}/ocsp", s.url);
    let next = dir.join("ca/next-ca.crt");
    let outside = signed_outside(dir, "next-ca", "0x1234");

    let out = ask(dir, &url, &next, &outside, &next);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(": unknown"), "{out}");
    assert!(out.contains("Issuer: O=scepd, CN=scepd CA 2"), "{out}");
    assert!(
        out.contains("Subject: O=scepd, CN=scepd CA 2 OCSP responder"),
        "{out}"
    );
    // Not signed under the old CA.
    let old = s.ca_pem_path();
    let out_old_trust = ask(dir, &url, &next, &outside, &old);
    assert!(
        !out_old_trust.contains("Response verify OK"),
        "{out_old_trust}"
    );

    // The current CA's certificates are still answered, under it.
    let leaf = write_pem(dir, "leaf.pem", &cert);
    let out = ask(dir, &url, &old, &leaf, &old);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("leaf.pem: good"), "{out}");
    assert!(
        out.contains("Subject: O=scepd, CN=scepd CA OCSP responder"),
        "{out}"
    );
}

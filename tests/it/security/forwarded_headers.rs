//! `X-Forwarded-For` and `Forwarded` are written by the client unless a
//! proxy scepd trusts (`SCEPD_TRUSTED_PROXIES`) wrote them. The failed
//! challenge limit (RFC 8894 §2.3 challengePassword guessing), the console's
//! login throttle and every recorded client address must therefore follow
//! the TCP peer, and the forwarded address only behind a trusted proxy.
//! The forged addresses below are documentation ranges, never contacted.

use std::collections::HashMap;

use server::store::audit::{self, AuditKind};
use server::wire::client::{parse_cert_rep, CertRepMsg};
use server::wire::{ContentCipher, FailInfo, PkiStatus};

use crate::challenges::sql_count;
use crate::console::{csrf_in, ADMIN_PW};
use crate::device::Device;
use crate::support::Scepd;

const LIMIT: usize = 3;
const LOCKED_OUT: &str = "too many failed challenge attempts from this client";

fn start(env: &[(&str, &str)]) -> Scepd {
    let limit = LIMIT.to_string();
    let env: Vec<(&str, &str)> = [("SCEPD_CHALLENGE_FAILURE_LIMIT", limit.as_str())]
        .into_iter()
        .chain(env.iter().copied())
        .collect();
    Scepd::start_with(
        server::testdb::test_db().unwrap(),
        tempfile::tempdir().unwrap(),
        &env,
    )
}

/// A PKCSReq from `dev` with `challenge`, POSTed with extra `headers`:
/// the CertRep, or the HTTP status and body of a refusal without one.
fn pkcs_req_with(
    s: &Scepd,
    dev: &Device,
    challenge: &str,
    headers: &[(&str, &str)],
) -> Result<CertRepMsg, (u16, String)> {
    let msg = dev.pkcs_req_message(s, &dev.csr(Some(challenge)), ContentCipher::Aes256Cbc);
    let mut req = ureq::post(&format!("{}?operation=PKIOperation", s.scep_url("default")))
        .set("Content-Type", "application/x-pki-message");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.send_bytes(&msg) {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => return Err((code, r.into_string().unwrap())),
        Err(e) => panic!("{e}\nlog:\n{}", s.log()),
    };
    let mut body = vec![];
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    Ok(parse_cert_rep(&body, &s.ra_cert(), &dev.signer, &dev.key).unwrap())
}

/// A signed FAILURE (badRequest): the challenge was examined and refused.
fn assert_refused(rep: &Result<CertRepMsg, (u16, String)>) {
    let rep = rep.as_ref().expect("a CertRep");
    assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
    assert_eq!(rep.fail_info, Some(FailInfo::BadRequest), "{rep:?}");
}

/// Refused unexamined: HTTP 429 naming the lockout.
fn assert_locked_out(rep: &Result<CertRepMsg, (u16, String)>) {
    match rep {
        Err((429, body)) => assert!(body.starts_with(LOCKED_OUT), "{body}"),
        other => panic!("expected HTTP 429, got {other:?}"),
    }
}

/// `(client_ip, reason)` of every refused challenge, newest first.
fn rejections(s: &Scepd) -> Vec<(Option<String>, String)> {
    audit::recent(&mut s.pg(), Some(AuditKind::ChallengeRejected), 500)
        .unwrap()
        .into_iter()
        .map(|e| {
            let reason = e.details["reason"].as_str().unwrap_or_default().to_string();
            (e.client_ip, reason)
        })
        .collect()
}

fn failures_of(s: &Scepd, ip: &str) -> i64 {
    sql_count(
        s,
        &format!(
            "SELECT coalesce(sum(count), 0)::bigint AS n FROM challenge_failures \
             WHERE client_ip = '{ip}'"
        ),
    )
}

#[test]
fn a_new_forged_forwarded_for_per_guess_does_not_escape_the_lockout() {
    let s = start(&[]);
    for i in 0..LIMIT {
        let forged = format!("198.51.100.{}", 10 + i);
        let rep = pkcs_req_with(
            &s,
            &Device::new(&format!("guess-{i}"), 2048),
            "WRONGWRONGWRONG",
            &[
                ("X-Forwarded-For", forged.as_str()),
                ("Forwarded", &format!("for={forged}")),
            ],
        );
        assert_refused(&rep);
    }
    let good = s.mint("default");
    let rep = pkcs_req_with(
        &s,
        &Device::new("late-good", 2048),
        &good,
        &[
            ("X-Forwarded-For", "198.51.100.99"),
            ("Forwarded", "for=198.51.100.99"),
        ],
    );
    assert_locked_out(&rep);
    let (ip, reason) = &rejections(&s)[0];
    assert_eq!(reason, LOCKED_OUT);
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(failures_of(&s, "127.0.0.1"), LIMIT as i64);
}

#[test]
fn a_forged_forwarded_for_cannot_lock_out_another_address() {
    let s = start(&[]);
    // Someone who knows an MDM's address pretends to be it.
    let mdm = "203.0.113.9";
    for i in 0..LIMIT {
        assert_refused(&pkcs_req_with(
            &s,
            &Device::new(&format!("framer-{i}"), 2048),
            "WRONGWRONGWRONG",
            &[("X-Forwarded-For", mdm), ("Forwarded", "for=203.0.113.9")],
        ));
    }
    assert_eq!(failures_of(&s, mdm), 0, "the MDM's address was charged");
    assert_eq!(failures_of(&s, "127.0.0.1"), LIMIT as i64);
    let recorded = rejections(&s);
    assert_eq!(recorded.len(), LIMIT);
    for (ip, _) in &recorded {
        assert_eq!(ip.as_deref(), Some("127.0.0.1"), "{recorded:?}");
    }
    assert_eq!(
        sql_count(
            &s,
            "SELECT count(*) AS n FROM audit_log WHERE client_ip LIKE '203.0.113.%'"
        ),
        0
    );
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_client_is_recorded_and_limited() {
    let s = start(&[("SCEPD_TRUSTED_PROXIES", "127.0.0.1,::1")]);
    // The client claimed 192.0.2.66; the proxy appended the address it saw.
    let guesser = "192.0.2.66, 198.51.100.23";
    for i in 0..LIMIT {
        assert_refused(&pkcs_req_with(
            &s,
            &Device::new(&format!("guess-{i}"), 2048),
            "WRONGWRONGWRONG",
            &[("X-Forwarded-For", guesser)],
        ));
    }
    assert_eq!(failures_of(&s, "198.51.100.23"), LIMIT as i64);
    assert_eq!(failures_of(&s, "192.0.2.66"), 0);
    assert_eq!(failures_of(&s, "127.0.0.1"), 0, "the proxy was charged");
    for (ip, _) in rejections(&s) {
        assert_eq!(ip.as_deref(), Some("198.51.100.23"));
    }
    // The guesser is locked out, whatever it writes to the left ...
    assert_locked_out(&pkcs_req_with(
        &s,
        &Device::new("guesser-good", 2048),
        &s.mint("default"),
        &[("X-Forwarded-For", "192.0.2.1, 198.51.100.23")],
    ));
    assert_eq!(rejections(&s)[0].1, LOCKED_OUT);
    // ... while another client behind the same proxy is not.
    let other = Device::new("other-good", 2048);
    let rep = pkcs_req_with(
        &s,
        &other,
        &s.mint("default"),
        &[("X-Forwarded-For", "198.51.100.24")],
    );
    let rep = rep.unwrap_or_else(|e| panic!("{e:?}\n{}", s.log()));
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}\n{}", s.log());
    assert_eq!(
        sql_count(
            &s,
            "SELECT count(*) AS n FROM enrollment_requests WHERE client_ip = '198.51.100.24'"
        ),
        1
    );
}

/// A console login with extra headers on both the form and the POST.
/// Returns the status of the POST.
fn login_with(s: &Scepd, user: &str, password: &str, headers: &[(&str, &str)]) -> u16 {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let send = |req: ureq::Request, cookies: &HashMap<String, String>| {
        let mut req = req.set(
            "Cookie",
            &cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        );
        for (k, v) in headers {
            req = req.set(k, v);
        }
        req
    };
    let mut cookies = HashMap::new();
    let form = send(agent.get(&format!("{}/login", s.url)), &cookies)
        .call()
        .unwrap();
    for c in form.all("set-cookie") {
        let (k, v) = c.split(';').next().unwrap().split_once('=').unwrap();
        cookies.insert(k.to_string(), v.to_string());
    }
    let token = csrf_in(&form.into_string().unwrap());
    match send(agent.post(&format!("{}/login", s.url)), &cookies).send_form(&[
        ("csrf", &token),
        ("username", user),
        ("password", password),
    ]) {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("transport error: {e}"),
    }
}

/// `client_ip` of every console login audit entry (success or failure).
fn login_audit_ips(s: &Scepd) -> Vec<Option<String>> {
    let mut all = audit::recent(&mut s.pg(), Some(AuditKind::ConsoleLoginFailed), 500).unwrap();
    all.extend(audit::recent(&mut s.pg(), Some(AuditKind::ConsoleLogin), 500).unwrap());
    all.into_iter().map(|e| e.client_ip).collect()
}

#[test]
fn console_login_throttle_and_audit_follow_the_peer_not_a_forged_header() {
    let s = start(&[]);
    // The per-address limit (20 failures in the window) across usernames,
    // so the per-account limit never applies.
    for i in 0..web_max_per_address() {
        let forged = format!("198.51.100.{i}");
        let status = login_with(
            &s,
            &format!("nobody-{i}"),
            "nope-nope-nope",
            &[
                ("X-Forwarded-For", &forged),
                ("Forwarded", &format!("for={forged}")),
            ],
        );
        assert_eq!(status, 401);
    }
    let status = login_with(
        &s,
        "admin",
        ADMIN_PW,
        &[("X-Forwarded-For", "198.51.100.200")],
    );
    assert_eq!(status, 429, "a fresh forged address escaped the throttle");
    let ips = login_audit_ips(&s);
    assert_eq!(ips.len(), web_max_per_address() + 1);
    assert!(
        ips.iter().all(|ip| ip.as_deref() == Some("127.0.0.1")),
        "{ips:?}"
    );
    assert_eq!(
        sql_count(
            &s,
            "SELECT count(*) AS n FROM login_failures WHERE client_ip <> '127.0.0.1'"
        ),
        0
    );
}

#[test]
fn console_behind_a_trusted_proxy_records_and_throttles_the_forwarded_client() {
    let s = start(&[("SCEPD_TRUSTED_PROXIES", "127.0.0.0/8")]);
    for i in 0..web_max_per_address() {
        let status = login_with(
            &s,
            &format!("nobody-{i}"),
            "nope-nope-nope",
            &[("X-Forwarded-For", "192.0.2.7, 198.51.100.5, 127.0.0.1")],
        );
        assert_eq!(status, 401);
    }
    // The throttled client is 198.51.100.5, not the proxy: another client
    // behind it still logs in, and its login is recorded under its address.
    assert_eq!(
        login_with(
            &s,
            "admin",
            ADMIN_PW,
            &[("X-Forwarded-For", "198.51.100.5")]
        ),
        429
    );
    assert_eq!(
        login_with(
            &s,
            "admin",
            ADMIN_PW,
            &[("X-Forwarded-For", "198.51.100.6")]
        ),
        303
    );
    let ok = audit::recent(&mut s.pg(), Some(AuditKind::ConsoleLogin), 10).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].client_ip.as_deref(), Some("198.51.100.6"));
    assert_eq!(
        sql_count(
            &s,
            "SELECT count(*) AS n FROM login_failures WHERE client_ip = '198.51.100.5'"
        ),
        web_max_per_address() as i64
    );
}

/// The console's failed logins allowed per address in its window
/// (`MAX_PER_ADDRESS` in web/src/auth.rs).
fn web_max_per_address() -> usize {
    20
}

//! Issue 3: one-time challenges (RFC 8894 §2.3 challengePassword) and
//! access codes against a real scepd and PostgreSQL: single use, expiry and
//! purge, device binding, a 50-way race across two processes, the
//! failed-attempt limit, the unused cap, and the audit trail of each.

use std::sync::{Arc, Barrier};

use diesel::RunQueryDsl;
use server::store::audit::{self, AuditEntry, AuditKind};
use server::wire::client::parse_cert_rep;
use server::wire::{ContentCipher, FailInfo, PkiStatus};

use crate::device::Device;
use crate::support::{scepclient, Scepd};

pub fn sql_count(s: &Scepd, query: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let r: N = diesel::sql_query(query).get_result(&mut s.pg()).unwrap();
    r.n
}

pub fn audit_of(s: &Scepd, kind: AuditKind) -> Vec<AuditEntry> {
    audit::recent(&mut s.pg(), Some(kind), 500).unwrap()
}

fn rejections(s: &Scepd) -> Vec<String> {
    audit_of(s, AuditKind::ChallengeRejected)
        .into_iter()
        .map(|e| e.details["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn assert_refused(rep: &server::wire::client::CertRepMsg) {
    assert_eq!(rep.status, PkiStatus::Failure);
    assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
}

#[test]
fn cli_challenges_feed_scepclient_once_each_and_reuse_is_refused() {
    let s = Scepd::start();
    let out = s.cli_ok(&["challenge", "mint", "--count", "2", "--ttl", "60m"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "one challenge per line: {out:?}");
    for l in &lines {
        assert!(
            l.len() >= 26 && !l.contains(' '),
            "printable, >=128 bits: {l:?}"
        );
    }
    let a = tempfile::tempdir().unwrap();
    let run = scepclient(a.path(), &s.scep_url("default"), lines[0], "cli-dev-a");
    assert!(run.ok, "{}\n{}", run.output, s.log());
    let b = tempfile::tempdir().unwrap();
    let reuse = scepclient(b.path(), &s.scep_url("default"), lines[0], "cli-dev-b");
    assert!(!reuse.ok && reuse.cert.is_none());
    assert!(reuse.output.contains("badRequest"), "{}", reuse.output);
    let c = tempfile::tempdir().unwrap();
    assert!(scepclient(c.path(), &s.scep_url("default"), lines[1], "cli-dev-c").ok);

    assert_eq!(audit_of(&s, AuditKind::ChallengeMinted).len(), 2);
    assert_eq!(audit_of(&s, AuditKind::ChallengeUsed).len(), 2);
    assert_eq!(rejections(&s), vec!["challenge already used".to_string()]);
    // The audit log never holds a secret.
    let all = audit::recent(&mut s.pg(), None, 1000).unwrap();
    for e in all {
        let text = format!("{} {:?}", e.details, e.target);
        assert!(
            !text.contains(lines[0]) && !text.contains(lines[1]),
            "{text}"
        );
    }
}

#[test]
fn expired_challenge_is_refused_and_audited() {
    let s = Scepd::start();
    let ch = s
        .cli_ok(&["challenge", "mint", "--ttl", "1s"])
        .trim()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let rep = Device::new("late-dev", 2048).pkcs_req(&s, "default", Some(&ch));
    assert_refused(&rep);
    assert_eq!(rejections(&s), vec!["challenge expired".to_string()]);
}

#[test]
fn expired_unused_challenges_are_purged_and_audited() {
    let db = server::testdb::test_db().unwrap();
    let s = Scepd::start_with(
        db,
        tempfile::tempdir().unwrap(),
        &[("SCEPD_CHALLENGE_PURGE_INTERVAL_SECONDS", "1")],
    );
    s.cli_ok(&["challenge", "mint", "--ttl", "1s", "--count", "3"]);
    let long = s.mint("default");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while sql_count(&s, "SELECT count(*) AS n FROM challenges") > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "not purged:\n{}",
            s.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let purged: i64 = audit_of(&s, AuditKind::ChallengesExpired)
        .iter()
        .map(|e| e.details["count"].as_i64().unwrap())
        .sum();
    assert_eq!(purged, 3);
    // The unexpired one survives and works.
    let rep = Device::new("survivor", 2048).pkcs_req(&s, "default", Some(&long));
    assert_eq!(rep.status, PkiStatus::Success);
}

#[test]
fn challenge_bound_to_a_device_refuses_another_identity() {
    let s = Scepd::start();
    let ch = s
        .cli_ok(&["challenge", "mint", "--device", "bound-dev"])
        .trim()
        .to_string();
    assert_refused(&Device::new("other-dev", 2048).pkcs_req(&s, "default", Some(&ch)));
    assert_eq!(
        rejections(&s),
        vec!["challenge is bound to another device".to_string()]
    );
    let ok = Device::new("bound-dev", 2048).pkcs_req(&s, "default", Some(&ch));
    assert_eq!(ok.status, PkiStatus::Success);
}

#[test]
fn challenge_for_another_profile_is_refused() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "wifi"]);
    let ch = s.mint("wifi");
    assert_refused(&Device::new("x-dev", 2048).pkcs_req(&s, "default", Some(&ch)));
    assert_eq!(
        rejections(&s),
        vec!["challenge is for another profile".to_string()]
    );
    // Still unused: the right profile accepts it.
    let ok = Device::new("x-dev", 2048).pkcs_req(&s, "wifi", Some(&ch));
    assert_eq!(ok.status, PkiStatus::Success);
}

#[test]
fn fifty_requests_racing_one_challenge_on_two_processes_yield_one_certificate() {
    let s = Scepd::start();
    let s2 = s.second();
    let ch = s.mint("default");
    // Keys, CSRs and messages first, so the requests really race.
    let prepared: Vec<(Device, Vec<u8>)> = std::thread::scope(|t| {
        let hs: Vec<_> = (0..50)
            .map(|i| {
                let (s, ch) = (&s, &ch);
                t.spawn(move || {
                    let d = Device::new(&format!("racer-{i}"), 2048);
                    let csr = d.csr(Some(ch));
                    let msg = d.pkcs_req_message(s, &csr, ContentCipher::Aes256Cbc);
                    (d, msg)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let urls = [s.scep_url("default"), format!("{}/scep/default", s2.url)];
    let barrier = Arc::new(Barrier::new(prepared.len()));
    let ra = s.ra_cert();
    let statuses: Vec<PkiStatus> = std::thread::scope(|t| {
        let hs: Vec<_> = prepared
            .iter()
            .enumerate()
            .map(|(i, (d, msg))| {
                let url = format!("{}?operation=PKIOperation", urls[i % 2]);
                let (barrier, ra) = (barrier.clone(), &ra);
                t.spawn(move || {
                    barrier.wait();
                    let r = match ureq::post(&url)
                        .set("Content-Type", "application/x-pki-message")
                        .send_bytes(msg)
                    {
                        Ok(r) => r,
                        // The losers' failed attempts lock the shared
                        // address out: refused unsigned from then on.
                        Err(ureq::Error::Status(429, _)) => return PkiStatus::Failure,
                        Err(e) => panic!("{e}"),
                    };
                    let mut body = vec![];
                    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
                    parse_cert_rep(&body, ra, &d.signer, &d.key).unwrap().status
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses
        .iter()
        .filter(|st| **st == PkiStatus::Success)
        .count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert_eq!(statuses.len() - ok, 49);
    assert_eq!(sql_count(&s, "SELECT count(*) AS n FROM certificates"), 1);
    assert_eq!(audit_of(&s, AuditKind::ChallengeUsed).len(), 1);
    assert_eq!(audit_of(&s, AuditKind::ChallengeRejected).len(), 49);
}

#[test]
fn failed_attempts_lock_the_client_out_before_its_secret_is_checked() {
    let db = server::testdb::test_db().unwrap();
    let s = Scepd::start_with(
        db,
        tempfile::tempdir().unwrap(),
        &[("SCEPD_CHALLENGE_FAILURE_LIMIT", "3")],
    );
    for i in 0..3 {
        let rep = Device::new(&format!("guess-{i}"), 2048).pkcs_req(
            &s,
            "default",
            Some("WRONGWRONGWRONG"),
        );
        assert_refused(&rep);
    }
    // Refused with HTTP 429 and Retry-After: no CertRep, so a locked-out
    // client costs no signature.
    let good = s.mint("default");
    let late = Device::new("late-good", 2048);
    let msg = late.pkcs_req_message(&s, &late.csr(Some(&good)), ContentCipher::Aes128Cbc);
    let r = ureq::post(&format!("{}?operation=PKIOperation", s.scep_url("default")))
        .set("Content-Type", "application/x-pki-message")
        .send_bytes(&msg);
    let Err(ureq::Error::Status(429, r)) = r else {
        panic!("expected HTTP 429, got {r:?}");
    };
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(r
        .into_string()
        .unwrap()
        .starts_with("too many failed challenge attempts from this client"));
    let reasons = rejections(&s);
    assert_eq!(
        reasons[0], "too many failed challenge attempts from this client",
        "{reasons:?}"
    );
    assert_eq!(
        reasons.iter().filter(|r| *r == "unknown challenge").count(),
        3
    );
    // Refused unexamined: the valid challenge was not used up.
    assert_eq!(
        sql_count(
            &s,
            "SELECT count(*) AS n FROM challenges WHERE used_at IS NULL"
        ),
        1
    );
    assert_eq!(
        sql_count(&s, "SELECT sum(count)::bigint AS n FROM challenge_failures"),
        3
    );
}

#[test]
fn minting_beyond_the_unused_cap_is_refused() {
    let s = Scepd::start();
    let cap = ["--challenge-max-unused", "3"];
    s.cli_ok(&[&["challenge", "mint", "--count", "2"][..], &cap].concat());
    let out = s.cli(&[&["challenge", "mint", "--count", "2"][..], &cap].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the limit is 3"), "{err}");
    // Using one frees a slot.
    let ch = s
        .cli_ok(&[&["challenge", "mint"][..], &cap].concat())
        .trim()
        .to_string();
    assert_eq!(
        Device::new("cap-dev", 2048)
            .pkcs_req(&s, "default", Some(&ch))
            .status,
        PkiStatus::Success
    );
    s.cli_ok(&[&["challenge", "mint"][..], &cap].concat());
    assert!(!s
        .cli(&[&["challenge", "mint"][..], &cap].concat())
        .status
        .success());
}

#[test]
fn access_code_enrolls_repeatedly_for_its_organization_until_disabled() {
    let s = Scepd::start();
    let acme = s.cli_ok(&["org", "create", "Acme"]).trim().to_string();
    s.cli_ok(&["org", "create", "Other"]);
    s.cli_ok(&["profile", "create", "acme-wifi", "--org", "Acme"]);
    let code = "acme-shared-access-code";
    let id = s
        .cli_ok(&[
            "access-code",
            "create",
            "--org",
            "Acme",
            "--label",
            "fleet",
            "--code",
            code,
        ])
        .trim()
        .to_string();
    // A code of an organization the profile is not enabled for does not count.
    s.cli_ok(&[
        "access-code",
        "create",
        "--org",
        "Other",
        "--label",
        "o",
        "--code",
        "other-org-access-code",
    ]);
    assert_refused(&Device::new("o-dev", 2048).pkcs_req(
        &s,
        "acme-wifi",
        Some("other-org-access-code"),
    ));

    for cn in ["ac-1", "ac-2", "ac-3"] {
        let rep = Device::new(cn, 2048).pkcs_req(&s, "acme-wifi", Some(code));
        assert_eq!(rep.status, PkiStatus::Success, "{}", s.log());
    }
    assert_eq!(
        sql_count(
            &s,
            &format!("SELECT count(*) AS n FROM certificates WHERE organization_id = {acme}")
        ),
        3
    );
    assert_eq!(audit_of(&s, AuditKind::AccessCodeUsed).len(), 3);
    assert_refused(&Device::new("ac-bad", 2048).pkcs_req(
        &s,
        "acme-wifi",
        Some("acme-shared-access-codX"),
    ));

    // Disabling takes effect at once, despite the verification cache.
    s.cli_ok(&["access-code", "disable", &id]);
    assert_refused(&Device::new("ac-4", 2048).pkcs_req(&s, "acme-wifi", Some(code)));
    assert_eq!(audit_of(&s, AuditKind::AccessCodeDisabled).len(), 1);
    // Stored only as argon2id.
    assert_eq!(
        sql_count(
            &s,
            "SELECT count(*) AS n FROM access_codes WHERE code_hash LIKE '$argon2id$%'"
        ),
        2
    );
    let short = s.cli(&[
        "access-code",
        "create",
        "--org",
        "Acme",
        "--label",
        "s",
        "--code",
        "short",
    ]);
    assert!(!short.status.success());
}

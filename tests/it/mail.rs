//! Issue 6, email notifications: a real SMTP server (Debian's
//! python3-aiosmtpd, via `tests/it/smtp_sink.py`) started by each test,
//! real `scepd serve` processes and real PostgreSQL.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diesel::prelude::*;
use server::wire::PkiStatus;

use crate::console::request_id_of;
use crate::device::Device;
use crate::mail_sink::{poll_until, settle, Smtp};
use crate::support::free_port;
use crate::support::{Scepd, BIN};

fn start_scepd(smtp: &Smtp, extra: &[(&str, &str)]) -> Scepd {
    let env = smtp.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    Scepd::start_with(
        server::testdb::test_db().unwrap(),
        tempfile::tempdir().unwrap(),
        &all,
    )
}

fn serial_of(s: &Scepd, request_id: i64) -> String {
    use server::store::schema::certificates::dsl;
    dsl::certificates
        .filter(dsl::request_id.eq(request_id))
        .select(dsl::serial)
        .first(&mut s.pg())
        .unwrap()
}

fn outbox_statuses(s: &Scepd) -> HashMap<String, i64> {
    use server::store::schema::outbox::dsl;
    dsl::outbox
        .group_by(dsl::status)
        .select((dsl::status, diesel::dsl::count_star()))
        .load::<(String, i64)>(&mut s.pg())
        .unwrap()
        .into_iter()
        .collect()
}

fn enroll_default(s: &Scepd, cn: &str) -> i64 {
    let dev = Device::new(cn, 2048);
    let rep = dev.pkcs_req(s, "default", Some(&s.mint("default")));
    assert_eq!(rep.status, PkiStatus::Success);
    request_id_of(s, &dev)
}

fn admin(s: &Scepd, name: &str, role: &str, org: &str, dept: Option<&str>, email: &str) {
    let mut args = vec![
        "admin",
        "create",
        name,
        "--role",
        role,
        "--org",
        org,
        "--email",
        email,
        "--password-env",
        "SCEPD_ADMIN_PASSWORD",
    ];
    if let Some(d) = dept {
        args.extend(["--department", d]);
    }
    s.cli_ok(&args);
}

/// `scepd notify contact add`, arguments in the order an operator types them.
fn contact(s: &Scepd, org: &str, profile: Option<&str>, email: &str, events: &str) {
    let mut args = vec!["notify", "contact", "add", "--org", org];
    if let Some(p) = profile {
        args.extend(["--profile", p]);
    }
    args.extend(["--email", email, "--events", events]);
    s.cli_ok(&args);
}

#[test]
fn pending_requests_reach_scoped_officers_as_one_digest_each_and_decisions_reach_contacts() {
    let smtp = Smtp::start();
    let s = start_scepd(
        &smtp,
        &[
            ("SCEPD_NOTIFY_DIGEST_SECONDS", "4"),
            ("SCEPD_NOTIFY_MAX_ATTEMPTS", "2"),
        ],
    );
    s.cli_ok(&["org", "create", "Acme"]);
    s.cli_ok(&["org", "add-department", "Acme", "Sales"]);
    s.cli_ok(&["org", "add-department", "Acme", "Ops"]);
    s.cli_ok(&["org", "create", "Other"]);
    s.cli_ok(&[
        "profile",
        "create",
        "manual",
        "--approval",
        "manual",
        "--org",
        "Acme",
    ]);
    admin(
        &s,
        "sales",
        "drao",
        "Acme",
        Some("Sales"),
        "sales@acme.test",
    );
    admin(&s, "ops", "drao", "Acme", Some("Ops"), "ops@acme.test");
    admin(&s, "acme-rao", "rao", "Acme", None, "rao@acme.test");
    admin(&s, "muted", "rao", "Acme", None, "muted@acme.test");
    admin(&s, "other-rao", "rao", "Other", None, "other@other.test");
    s.cli_ok(&["notify", "officer-mail", "muted", "off"]);
    contact(
        &s,
        "Acme",
        None,
        "contact@acme.test",
        "issued,declined,revoked",
    );
    contact(&s, "Acme", Some("manual"), "reject-me@acme.test", "issued");
    contact(&s, "Acme", None, "later@acme.test", "expiring");

    let mint = |dept: &str| {
        s.cli_ok(&[
            "challenge",
            "mint",
            "--profile",
            "manual",
            "--org",
            "Acme",
            "--department",
            dept,
        ])
        .trim()
        .to_string()
    };
    let secrets = [mint("Sales"), mint("Sales"), mint("Sales"), mint("Ops")];
    let devs: Vec<Device> = (0..4)
        .map(|i| Device::new(&format!("device-{i}"), 2048))
        .collect();
    for (d, c) in devs.iter().zip(&secrets) {
        assert_eq!(d.pkcs_req(&s, "manual", Some(c)).status, PkiStatus::Pending);
    }
    let ids: Vec<i64> = devs.iter().map(|d| request_id_of(&s, d)).collect();

    let mails = smtp.wait_for(3, Duration::from_secs(30));
    assert_eq!(
        mails.len(),
        3,
        "one digest per officer in scope: {mails:#?}"
    );
    let link = |id: i64| format!("{}/requests/{id}", s.url);
    let sales = smtp.to("sales@acme.test");
    assert_eq!(sales.len(), 1);
    assert_eq!(sales[0].subject, "3 enrollment requests await approval");
    for id in &ids[..3] {
        assert!(sales[0].data.contains(&link(*id)), "{}", sales[0].data);
    }
    assert!(!sales[0].data.contains(&link(ids[3])));
    let ops = smtp.to("ops@acme.test");
    assert_eq!(ops.len(), 1);
    assert!(ops[0]
        .subject
        .starts_with("Enrollment request awaits approval: "));
    assert!(ops[0].data.contains(&link(ids[3])));
    let rao = smtp.to("rao@acme.test");
    assert_eq!(rao.len(), 1);
    assert_eq!(rao[0].subject, "4 enrollment requests await approval");
    assert!(ids.iter().all(|id| rao[0].data.contains(&link(*id))));
    assert!(rao[0].data.contains("Content-Type: text/html"));
    assert!(rao[0].data.contains("Content-Type: text/plain"));

    // Decisions go to the organization's contacts that want them.
    s.cli_ok(&["request", "approve", &ids[0].to_string()]);
    s.cli_ok(&[
        "request",
        "decline",
        &ids[1].to_string(),
        "--reason",
        "unknown device",
    ]);
    let serial = serial_of(&s, ids[0]);
    s.cli_ok(&["cert", "revoke", &serial, "--reason", "keyCompromise"]);
    smtp.wait_for(6, Duration::from_secs(30));
    let contact = smtp.to("contact@acme.test");
    assert_eq!(contact.len(), 3, "{contact:#?}");
    let by_subject = |p: &str| {
        contact
            .iter()
            .find(|m| m.subject.starts_with(p))
            .unwrap_or_else(|| panic!("no {p:?} mail in {contact:#?}"))
    };
    let issued = by_subject("Certificate issued: ");
    assert!(issued.subject.contains("CN=device-0"), "{}", issued.subject);
    assert!(issued.data.contains(&link(ids[0])) && issued.data.contains(&serial));
    let declined = by_subject("Enrollment request declined: ");
    assert!(declined.data.contains(&link(ids[1])));
    assert!(declined.data.contains("unknown device"));
    let revoked = by_subject("Certificate revoked: ");
    assert!(revoked.data.contains(&serial) && revoked.data.contains("keyCompromise"));
    assert!(smtp.to("later@acme.test").is_empty());
    assert!(smtp.to("other@other.test").is_empty());
    assert!(smtp.to("muted@acme.test").is_empty());

    // The SMTP server refuses reject-me@ for good: after two attempts the
    // mail is marked failed and listed by `scepd notify outbox`.
    let out = poll_until(Duration::from_secs(30), Duration::from_millis(500), || {
        let out = s.cli_ok(&["notify", "outbox"]);
        out.contains("failed\tissued\treject-me@acme.test\tattempts 2")
            .then_some(out)
    })
    .unwrap_or_else(|| panic!("not failed: {}", s.cli_ok(&["notify", "outbox"])));
    assert!(out.contains("550"), "{out}");

    // The test mail goes out at once, outside the outbox.
    let out = Command::new(BIN)
        .args(["notify", "test", "--to", "ops@acme.test"])
        .envs(smtp.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ops = smtp.to("ops@acme.test");
    assert!(
        ops.iter().any(|m| m.subject == "scepd test mail"),
        "{ops:#?}"
    );
}

#[test]
fn mails_wait_in_the_outbox_while_smtp_is_down_and_all_arrive_once_it_is_back() {
    let mut smtp = Smtp::unstarted();
    let s = start_scepd(&smtp, &[]);
    contact(&s, "Default", None, "ops@example.test", "issued");
    let ids: Vec<i64> = (0..3)
        .map(|i| enroll_default(&s, &format!("down-{i}")))
        .collect();
    settle();
    let st = outbox_statuses(&s);
    assert_eq!(st.get("pending"), Some(&3), "{st:?}");
    let out = s.cli_ok(&["notify", "outbox"]);
    assert!(
        out.contains("Connection refused") || out.contains("connection"),
        "{out}"
    );
    assert!(smtp.mails().is_empty());

    smtp.up();
    let mails = smtp.wait_for(3, Duration::from_secs(60));
    assert_eq!(mails.len(), 3, "{mails:#?}");
    for id in ids {
        let link = format!("{}/requests/{id}", s.url);
        assert_eq!(mails.iter().filter(|m| m.data.contains(&link)).count(), 1);
    }
    assert_eq!(outbox_statuses(&s).get("sent"), Some(&3));
}

/// A second `scepd serve` on the same database and data directory, with
/// the same SMTP settings.
fn second(s: &Scepd, smtp: &Smtp) -> Child {
    let port = free_port();
    let log = s.dir.path().join("scepd-second.log");
    let child = Command::new(BIN)
        .arg("serve")
        .env("SCEPD_DATA_DIR", s.dir.path())
        .env("SCEPD_LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &s.db.as_ref().unwrap().url)
        .env("SCEPD_DB_POOL_SIZE", "4")
        .env("SCEPD_WORKERS", "1")
        .env("SCEPD_ADMIN_PASSWORD", "test-admin-password")
        .envs(smtp.env())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let ready = poll_until(Duration::from_secs(60), Duration::from_millis(100), || {
        ureq::get(&format!("http://127.0.0.1:{port}/readyz"))
            .call()
            .ok()
    });
    assert!(
        ready.is_some(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    child
}

#[test]
fn two_processes_deliver_each_mail_exactly_once() {
    let smtp = Smtp::start();
    let s = start_scepd(&smtp, &[]);
    let mut other = second(&s, &smtp);
    contact(&s, "Default", None, "ops@example.test", "issued");
    for i in 0..4 {
        enroll_default(&s, &format!("twice-{i}"));
    }
    // And a burst both senders race for, committed at once.
    diesel::sql_query(
        "INSERT INTO outbox (kind, recipient) \
         SELECT 'test', 'r' || g || '@example.test' FROM generate_series(1, 60) g",
    )
    .execute(&mut s.pg())
    .unwrap();
    let mails = smtp.wait_for(64, Duration::from_secs(60));
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(mails.len(), 64);
    let mut per: HashMap<String, usize> = HashMap::new();
    for m in &mails {
        *per.entry(m.to.join(",")).or_default() += 1;
    }
    assert_eq!(per.get("ops@example.test"), Some(&4));
    assert!(
        (1..=60).all(|g| per.get(&format!("r{g}@example.test")) == Some(&1)),
        "{per:?}"
    );
    assert_eq!(outbox_statuses(&s).get("sent"), Some(&64));
}

#[test]
fn expiry_reminder_fires_once_per_threshold_and_not_for_renewed_certificates() {
    let smtp = Smtp::start();
    let s = start_scepd(&smtp, &[("SCEPD_EXPIRY_REMINDER_DAYS", "30,7,1")]);
    contact(&s, "Default", None, "ops@example.test", "expiring");
    let id = enroll_default(&s, "expiring-soon");
    let serial = serial_of(&s, id);
    let set_expiry = |interval: &str| {
        diesel::sql_query(format!(
            "UPDATE certificates SET not_after = now() + interval '{interval}' WHERE serial = '{serial}'"
        ))
        .execute(&mut s.pg())
        .unwrap();
    };
    // Far from expiry: nothing.
    settle();
    assert!(smtp.mails().is_empty(), "{:#?}", smtp.mails());

    set_expiry("5 days");
    let mails = smtp.wait_for(1, Duration::from_secs(20));
    // Several scan cycles later, still one: the 7-day reminder only (the
    // 30-day band was never entered while scepd watched).
    settle();
    let mails_after = smtp.mails();
    assert_eq!(mails_after.len(), 1, "{mails_after:#?}");
    assert!(
        mails[0]
            .subject
            .starts_with("Certificate expires within 7 days: "),
        "{}",
        mails[0].subject
    );
    assert!(mails[0].data.contains(&format!("{}/requests/{id}", s.url)));

    set_expiry("12 hours");
    smtp.wait_for(2, Duration::from_secs(20));
    settle();
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert!(mails[1]
        .subject
        .starts_with("Certificate expires within 1 day: "));

    // A certificate replaced by a valid renewal is not reminded.
    let old = enroll_default(&s, "renewed");
    let new = enroll_default(&s, "renewed-2");
    diesel::sql_query(format!(
        "UPDATE certificates SET replaces_id = (SELECT id FROM certificates WHERE request_id = {old}) \
         WHERE request_id = {new}"
    ))
    .execute(&mut s.pg())
    .unwrap();
    diesel::sql_query(format!(
        "UPDATE certificates SET not_after = now() + interval '12 hours' WHERE request_id = {old}"
    ))
    .execute(&mut s.pg())
    .unwrap();
    settle();
    assert_eq!(smtp.mails().len(), 2, "{:#?}", smtp.mails());
}

/// The console's mail page: an MRAO sends a test mail and sees mails that
/// wait while SMTP is down; an officer turns their own mails off.
#[test]
fn console_sends_a_test_mail_shows_waiting_mails_and_toggles_own_mail() {
    use crate::console::{Client, ADMIN_PW};
    let mut smtp = Smtp::unstarted();
    let s = start_scepd(&smtp, &[]);
    contact(&s, "Default", None, "pki@acme.test", "issued");
    enroll_default(&s, "waiting-mail");
    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", ADMIN_PW).status, 303);
    // SMTP is down: the issued mail waits, with the connection error shown.
    poll_until(Duration::from_secs(20), Duration::from_millis(500), || {
        let page = c.get("/mail");
        assert_eq!(page.status, 200);
        (page.body.contains("pki@acme.test") && page.body.contains("pending")).then_some(())
    })
    .unwrap_or_else(|| panic!("waiting mail not listed:\n{}", c.get("/mail").body));
    // With SMTP up, a test mail goes out at once and the page says so.
    smtp.up();
    let token = c.csrf();
    let sent = c.post("/mail/test", &[("csrf", &token), ("to", "ops@acme.test")]);
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(
        sent.body.contains("Test mail sent to ops@acme.test"),
        "{}",
        sent.body
    );
    assert!(smtp
        .wait_for(1, Duration::from_secs(20))
        .iter()
        .any(|m| m.to.iter().any(|t| t == "ops@acme.test")));
    // Own notifications off, audited.
    let off = c.post("/mail/me", &[("csrf", &token), ("mail", "off")]);
    assert_eq!(off.status, 303);
    assert!(c.get("/mail").body.contains("id=\"my-mail\">off"));
    assert_eq!(crate::console::audit_count(&s, "officer.preference"), 1);
    assert_eq!(crate::console::audit_count(&s, "mail.test"), 1);
    // An RAO may not send test mails, even by forging the form.
    admin(&s, "rao-mail", "rao", "Default", None, "rao@acme.test");
    let mut r = Client::new(&s);
    assert_eq!(r.login("rao-mail", ADMIN_PW).status, 303);
    let token = r.csrf();
    let refused = r.post("/mail/test", &[("csrf", &token), ("to", "x@acme.test")]);
    assert_eq!(refused.status, 403);
    assert_eq!(crate::console::audit_count(&s, "mail.test"), 1);
}

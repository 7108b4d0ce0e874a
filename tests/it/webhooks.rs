//! Profile webhooks (docs/webhooks.md) against a real HTTP server started
//! here (`webhook_sink`): the challenge-validation webhook asked about
//! challenge passwords scepd does not know, and notification webhooks
//! delivered from the outbox by every `scepd serve`.

use std::time::{Duration, Instant};

use base64::Engine;
use server::testdb;
use server::wire::PkiStatus;

use crate::device::Device;
use crate::support::{last_refusal, Scepd};
use crate::webhook_sink::{Answer, Sink};

const SECRET: &str = "shared-secret-of-the-mdm-0123";

fn set_hook(s: &Scepd, purpose: &str, url: &str, extra: &[&str]) {
    let f = s.dir.path().join("hook-secret");
    std::fs::write(&f, SECRET).unwrap();
    let mut args = vec![
        "webhook",
        "set",
        "default",
        purpose,
        "--url",
        url,
        "--secret-file",
        f.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    s.cli_ok(&args);
}

fn sql(s: &Scepd, q: &str) {
    use diesel::RunQueryDsl;
    diesel::sql_query(q).execute(&mut s.pg()).unwrap();
}

fn allow(json: &str) -> Answer {
    Answer::Json(200, json.to_string())
}

fn audits(s: &Scepd, event: &str) -> i64 {
    s.count(&format!("audit_log WHERE event = '{event}'"))
}

/// The last error the CLI shows for the profile's `purpose` webhook.
fn last_error(s: &Scepd, purpose: &str) -> (Option<String>, bool) {
    let out = s.cli_ok(&["webhook", "show", "default"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let h = v
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["purpose"] == purpose)
        .unwrap()
        .clone();
    (
        h["last_error"].as_str().map(str::to_string),
        !h["last_error_at"].is_null(),
    )
}

mod challenge_webhook {
    use super::*;

    #[test]
    fn an_allow_issues_under_the_place_it_names_and_the_request_is_signed() {
        let s = Scepd::start();
        let sink = Sink::start(allow(r#"{"allow": true, "reason": "known device"}"#));
        set_hook(&s, "challenge", &format!("{}/scep-check", sink.url), &[]);

        let dev = Device::new("laptop-17", 2048);
        let rep = dev.pkcs_req(&s, "default", Some("mdm-made-secret-1"));
        assert_eq!(rep.status, PkiStatus::Success, "{}", last_refusal(&s));

        let got = sink.received();
        assert_eq!(got.len(), 1);
        let q = &got[0];
        assert_eq!(q.path, "/scep-check");
        assert!(q.signature_valid(SECRET.as_bytes()), "{q:?}");
        assert!(!q.signature_valid(b"another secret of the same length"));
        assert_eq!(q.header("X-Scepd-Event"), Some("challenge"));
        let body = q.json();
        assert_eq!(body["challenge"], "mdm-made-secret-1");
        assert_eq!(body["transaction_id"], dev.txid().0);
        assert_eq!(body["profile"], "default");
        assert_eq!(body["organizations"], serde_json::json!(["Default"]));
        assert_eq!(body["subject"], "CN=laptop-17");
        assert_eq!(body["client_ip"], "127.0.0.1");
        let csr = base64::engine::general_purpose::STANDARD
            .decode(body["csr"].as_str().unwrap())
            .unwrap();
        assert!(openssl::x509::X509Req::from_der(&csr).is_ok());
        assert_eq!(audits(&s, "webhook.allowed"), 1);
        assert_eq!(
            s.count("certificates c JOIN organizations o ON o.id = c.organization_id WHERE o.name = 'Default'"),
            1
        );

        // An allow may name the organization and department.
        s.cli_ok(&["org", "create", "Acme"]);
        s.cli_ok(&["org", "add-department", "Acme", "Sales"]);
        s.cli_ok(&["org", "create", "Elsewhere"]);
        sql(
            &s,
            "INSERT INTO profile_scopes (profile_id, organization_id) \
             SELECT p.id, o.id FROM device_profiles p, organizations o \
             WHERE p.profile_id = 'default' AND o.name = 'Acme'",
        );
        sink.answer(allow(
            r#"{"allow": true, "organization": "Acme", "department": "Sales"}"#,
        ));
        let dev = Device::new("laptop-18", 2048);
        let rep = dev.pkcs_req(&s, "default", Some("mdm-made-secret-2"));
        assert_eq!(rep.status, PkiStatus::Success, "{}", last_refusal(&s));
        assert_eq!(
            s.count(
                "certificates c JOIN organizations o ON o.id = c.organization_id \
                 JOIN departments d ON d.id = c.department_id \
                 WHERE o.name = 'Acme' AND d.name = 'Sales' AND c.subject = 'CN=laptop-18'"
            ),
            1
        );

        // Places that do not exist, or where the profile is not enabled,
        // are a bad reply: FAILURE, nothing issued.
        for (reply, why) in [
            (
                r#"{"allow": true, "organization": "Default", "department": "Sales"}"#,
                "no department",
            ),
            (
                r#"{"allow": true, "organization": "Nowhere"}"#,
                "unknown organization",
            ),
            (
                r#"{"allow": true, "organization": "Elsewhere"}"#,
                "not enabled",
            ),
            // Two places now: an allow must say which.
            (r#"{"allow": true}"#, "no organization named"),
        ] {
            sink.answer(allow(reply));
            let dev = Device::new("laptop-19", 2048);
            let rep = dev.pkcs_req(&s, "default", Some("mdm-made-secret-3"));
            assert_eq!(rep.status, PkiStatus::Failure, "{reply}");
            let refusal = last_refusal(&s);
            assert!(
                refusal.starts_with("bad challenge webhook reply"),
                "{refusal}"
            );
            assert!(refusal.contains(why), "{reply}: {refusal}");
        }
        assert_eq!(s.count("certificates WHERE subject = 'CN=laptop-19'"), 0);
        assert_eq!(audits(&s, "webhook.failed"), 4);
    }

    /// Nothing is signed with the CA or RA key while the webhook decides:
    /// the signatures come after its allow.
    #[test]
    fn no_private_key_is_used_before_the_webhook_allows() {
        let s = Scepd::start();
        let sink = Sink::start(Answer::Slow(
            Duration::from_millis(1500),
            200,
            r#"{"allow": true}"#.into(),
        ));
        set_hook(&s, "challenge", &sink.url, &[]);
        let sigs = |s: &Scepd| {
            let m = crate::metrics::scrape(s);
            (
                m["scepd_signatures_total{key=\"ca\"}"],
                m["scepd_signatures_total{key=\"ra\"}"],
            )
        };
        let before = sigs(&s);
        let rep = std::thread::scope(|t| {
            let enrolling = t.spawn(|| {
                Device::new("patient", 2048).pkcs_req(&s, "default", Some("mdm-made-secret"))
            });
            sink.wait_for(1, 10);
            assert_eq!(sigs(&s), before, "signed while the webhook decides");
            enrolling.join().unwrap()
        });
        assert_eq!(rep.status, PkiStatus::Success);
        assert_eq!(sigs(&s), (before.0 + 1.0, before.1 + 1.0));
    }

    #[test]
    fn denials_timeouts_errors_and_bad_replies_answer_failure_and_are_audited() {
        let s = Scepd::start();
        let sink = Sink::start(allow(
            r#"{"allow": false, "reason": "device not in inventory"}"#,
        ));
        set_hook(&s, "challenge", &sink.url, &["--timeout-ms", "700"]);
        let try_enroll = |cn: &str| -> (PkiStatus, String, Duration) {
            let dev = Device::new(cn, 2048);
            let t = Instant::now();
            let rep = dev.pkcs_req(&s, "default", Some("not-a-known-secret"));
            (rep.status, last_refusal(&s), t.elapsed())
        };

        let (status, why, _) = try_enroll("denied");
        assert_eq!(status, PkiStatus::Failure);
        assert_eq!(why, "challenge denied by webhook: device not in inventory");
        assert_eq!(audits(&s, "webhook.denied"), 1);

        sink.answer(Answer::Json(503, "{}".into()));
        let (status, why, _) = try_enroll("unavailable");
        assert_eq!(status, PkiStatus::Failure);
        assert_eq!(why, "challenge webhook unavailable: HTTP 503");

        sink.answer(Answer::Json(200, "{allow: yes".into()));
        let (status, why, _) = try_enroll("malformed");
        assert_eq!(status, PkiStatus::Failure);
        assert!(
            why.starts_with("bad challenge webhook reply: malformed JSON"),
            "{why}"
        );

        // A redirect is not followed.
        let elsewhere = Sink::start(allow(r#"{"allow": true}"#));
        sink.answer(Answer::Redirect(elsewhere.url.clone()));
        let (status, why, _) = try_enroll("redirected");
        assert_eq!(status, PkiStatus::Failure);
        assert!(why.contains("redirect (not followed)"), "{why}");
        assert!(elsewhere.received().is_empty());

        // A 30 MB reply is cut at 64 KiB.
        sink.answer(Answer::Huge(30 * 1024 * 1024));
        let (status, why, _) = try_enroll("huge");
        assert_eq!(status, PkiStatus::Failure);
        assert_eq!(why, "bad challenge webhook reply: reply larger than 64 KiB");

        // A slow webhook: the device waits the timeout, not the webhook.
        sink.answer(Answer::Slow(
            Duration::from_secs(4),
            200,
            r#"{"allow": true}"#.into(),
        ));
        let (status, why, took) = try_enroll("slow");
        assert_eq!(status, PkiStatus::Failure);
        assert!(why.starts_with("challenge webhook unavailable"), "{why}");
        assert!(took < Duration::from_millis(2500), "{took:?}");

        assert_eq!(s.count("certificates"), 0);
        assert_eq!(s.count("enrollment_requests"), 0);
        assert_eq!(audits(&s, "webhook.failed"), 5);
        let (err, when) = last_error(&s, "challenge");
        assert!(err.unwrap().contains("unavailable"));
        assert!(when);

        // A known one-time challenge never reaches the webhook.
        let asked = sink.received().len();
        let dev = Device::new("known", 2048);
        let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
        assert_eq!(rep.status, PkiStatus::Success);
        assert_eq!(sink.received().len(), asked);

        // The profile may answer PENDING instead, for an officer to decide.
        set_hook(&s, "challenge", &sink.url, &["--pending-on-error", "true"]);
        let dev = Device::new("waiting", 2048);
        let t = Instant::now();
        let rep = dev.pkcs_req(&s, "default", Some("not-a-known-secret"));
        assert_eq!(rep.status, PkiStatus::Pending, "{}", last_refusal(&s));
        assert!(t.elapsed() < Duration::from_millis(2500));
        assert_eq!(
            s.count("enrollment_requests WHERE status = 'requested' AND subject = 'CN=waiting'"),
            1
        );
        assert_eq!(audits(&s, "webhook.failed"), 6);
        // The same device polling is told PENDING until an officer decides.
        let rep = dev.poll(&s, "default", &dev.txid());
        assert_eq!(rep.status, PkiStatus::Pending);
    }

    #[test]
    fn setting_a_webhook_is_audited_and_never_stores_or_shows_the_secret() {
        let s = Scepd::start();
        set_hook(&s, "challenge", "https://mdm.example/check", &[]);
        let out = s.cli_ok(&["webhook", "show", "default"]);
        assert!(out.contains("https://mdm.example/check"));
        assert!(!out.contains(SECRET));
        assert_eq!(s.count("profile_webhooks"), 1);
        assert_eq!(
            s.count(&format!(
                "profile_webhooks WHERE position('{SECRET}'::bytea IN secret_sealed) > 0"
            )),
            0
        );
        assert_eq!(audits(&s, "webhook.updated"), 1);
        assert_eq!(
            s.count(&format!("audit_log WHERE details::text LIKE '%{SECRET}%'")),
            0
        );
        assert!(!s.log().contains(SECRET));
        // Bad settings are refused, nothing changed.
        let f = s.dir.path().join("short");
        std::fs::write(&f, "short").unwrap();
        let out = s.cli(&[
            "webhook",
            "set",
            "default",
            "notify",
            "--url",
            "ftp://x",
            "--secret-file",
            f.to_str().unwrap(),
            "--events",
            "issued,exploded",
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        for what in ["url", "secret", "events"] {
            assert!(err.contains(what), "{err}");
        }
        assert_eq!(s.count("profile_webhooks"), 1);
        s.cli_ok(&["webhook", "remove", "default", "challenge"]);
        assert_eq!(s.count("profile_webhooks"), 0);
        assert_eq!(audits(&s, "webhook.removed"), 1);
    }
}

mod notification_webhook {
    use super::*;

    const FAST: &[(&str, &str)] = &[
        ("SCEPD_NOTIFY_POLL_SECONDS", "1"),
        ("SCEPD_NOTIFY_RETRY_BASE_SECONDS", "2"),
    ];

    fn start() -> Scepd {
        Scepd::start_with(
            testdb::test_db().unwrap(),
            tempfile::tempdir().unwrap(),
            FAST,
        )
    }

    fn serial_of(s: &Scepd, cn: &str) -> String {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct R {
            #[diesel(sql_type = diesel::sql_types::Text)]
            serial: String,
        }
        let r: R = diesel::sql_query(format!(
            "SELECT serial FROM certificates WHERE subject = 'CN={cn}'"
        ))
        .get_result(&mut s.pg())
        .unwrap();
        r.serial
    }

    #[test]
    fn issued_declined_revoked_and_failed_events_arrive_signed() {
        let s = start();
        let sink = Sink::start(allow("{}"));
        set_hook(&s, "notify", &sink.url, &[]);

        // Issued (the one-statement path) and revoked.
        let dev = Device::new("phone-1", 2048);
        let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
        assert_eq!(rep.status, PkiStatus::Success);
        let serial = serial_of(&s, "phone-1");
        s.cli_ok(&["cert", "revoke", &serial, "--reason", "keyCompromise"]);
        // Failed: an unknown challenge.
        let bad = Device::new("phone-2", 2048);
        let rep = bad.pkcs_req(&s, "default", Some("wrong"));
        assert_eq!(rep.status, PkiStatus::Failure);
        // Declined: a manual profile's request.
        sql(&s, "UPDATE device_profiles SET approval_mode = 'manual'");
        let manual = Device::new("phone-3", 2048);
        let rep = manual.pkcs_req(&s, "default", Some(&s.mint("default")));
        assert_eq!(rep.status, PkiStatus::Pending);
        let id = s.cli_ok(&["request", "list"]);
        let id = id.split_whitespace().next().unwrap().to_string();
        s.cli_ok(&["request", "decline", &id, "--reason", "not ours"]);

        let got = sink.wait_for(4, 30);
        std::thread::sleep(Duration::from_secs(2));
        let got_later = sink.received();
        assert_eq!(got_later.len(), 4, "{got_later:?}");
        let mut events: Vec<String> = vec![];
        for r in &got {
            assert!(r.signature_valid(SECRET.as_bytes()), "{r:?}");
            let b = r.json();
            assert_eq!(
                Some(b["event"].as_str().unwrap()),
                r.header("X-Scepd-Event")
            );
            assert_eq!(b["profile"], "default");
            assert_eq!(
                Some(b["delivery"].as_str().unwrap()),
                r.header("X-Scepd-Delivery")
            );
            events.push(b["event"].as_str().unwrap().to_string());
            match b["event"].as_str().unwrap() {
                "issued" => {
                    assert_eq!(b["serial"], serial.as_str());
                    assert_eq!(b["subject"], "CN=phone-1");
                    assert_eq!(b["organization"], "Default");
                }
                "revoked" => {
                    assert_eq!(b["serial"], serial.as_str());
                    assert_eq!(b["reason"], "keyCompromise");
                }
                "failed" => {
                    assert_eq!(b["transaction_id"], bad.txid().0);
                    assert_eq!(b["reason"], "unknown challenge");
                }
                "declined" => {
                    assert_eq!(b["reason"], "not ours");
                    assert_eq!(b["subject"], "CN=phone-3");
                }
                e => panic!("unexpected event {e}"),
            }
        }
        events.sort();
        assert_eq!(events, ["declined", "failed", "issued", "revoked"]);
        assert_eq!(s.count("webhook_outbox WHERE status = 'sent'"), 4);
    }

    #[test]
    fn a_failed_delivery_is_retried_later_and_sent_once_after_success() {
        let s = start();
        let sink = Sink::start(Answer::Json(500, "{}".into()));
        sink.answers(vec![Answer::Json(500, "{}".into()), allow("{}")]);
        set_hook(&s, "notify", &sink.url, &["--events", "issued"]);
        let dev = Device::new("tablet-1", 2048);
        let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
        assert_eq!(rep.status, PkiStatus::Success);
        // Not among the webhook's events: never queued.
        let bad = Device::new("tablet-2", 2048);
        assert_eq!(
            bad.pkcs_req(&s, "default", Some("wrong")).status,
            PkiStatus::Failure
        );
        assert_eq!(s.count("webhook_outbox"), 1);

        let got = sink.wait_for(2, 30);
        let (first, second) = (&got[0], &got[1]);
        assert_eq!(first.header("X-Scepd-Event"), Some("issued"));
        assert_eq!(
            first.header("X-Scepd-Delivery"),
            second.header("X-Scepd-Delivery")
        );
        assert_eq!(first.body, second.body);
        let t = |r: &crate::webhook_sink::Received| -> i64 {
            r.header("X-Scepd-Timestamp").unwrap().parse().unwrap()
        };
        // Backoff: the retry waited the first delay (2 s).
        assert!(t(second) - t(first) >= 1, "{} {}", t(first), t(second));
        std::thread::sleep(Duration::from_secs(5));
        assert_eq!(sink.received().len(), 2);
        assert_eq!(
            s.count("webhook_outbox WHERE status = 'sent' AND attempts = 1"),
            1
        );
        let (err, when) = last_error(&s, "notify");
        assert_eq!(err.as_deref(), Some("webhook unavailable: HTTP 500"));
        assert!(when);
    }

    #[test]
    fn two_processes_on_one_database_deliver_each_event_once() {
        let s = start();
        let _other = s.second();
        let sink = Sink::start(Answer::Slow(Duration::from_millis(50), 200, "{}".into()));
        set_hook(&s, "notify", &sink.url, &["--events", "issued"]);
        let n = 12;
        for i in 0..n {
            let dev = Device::new(&format!("fleet-{i}"), 2048);
            let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
            assert_eq!(rep.status, PkiStatus::Success);
        }
        sink.wait_for(n, 60);
        std::thread::sleep(Duration::from_secs(4));
        let got = sink.received();
        let mut ids: Vec<&str> = got
            .iter()
            .map(|r| r.header("X-Scepd-Delivery").unwrap())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(got.len(), n, "{ids:?}");
        assert_eq!(ids.len(), n);
        assert_eq!(s.count("webhook_outbox WHERE status = 'sent'"), n as i64);
    }
}

mod api {
    use super::*;
    use crate::api::call;
    use serde_json::json;

    #[test]
    fn a_key_sets_shows_and_removes_its_profiles_webhooks_and_the_secret_stays_hidden() {
        let s = Scepd::start();
        let sink = Sink::start(allow(r#"{"allow": true}"#));
        let key = s
            .cli_ok(&["api-key", "create", "--name", "mdm", "--org", "Default"])
            .trim()
            .to_string();
        s.cli_ok(&["org", "create", "Other"]);
        let other = s
            .cli_ok(&["api-key", "create", "--name", "other", "--org", "Other"])
            .trim()
            .to_string();
        let url = format!("{}/api/v1/profiles/default/webhooks", s.url);

        let bad = call(
            "PUT",
            &format!("{url}/challenge"),
            Some(&key),
            Some(json!({ "url": "gopher://x", "secret": "short" })),
        );
        assert_eq!(bad.0, 400, "{}", bad.1);
        assert_eq!(bad.1["error"]["code"], "invalid_request");
        assert_eq!(s.count("profile_webhooks"), 0);

        let put = call(
            "PUT",
            &format!("{url}/challenge"),
            Some(&key),
            Some(json!({ "url": sink.url, "secret": SECRET, "timeout_ms": 2000 })),
        );
        assert_eq!(put.0, 200, "{}", put.1);
        assert!(!put.1.to_string().contains(SECRET));
        assert_eq!(put.1["timeout_ms"], 2000);
        let list = call("GET", &url, Some(&key), None);
        assert_eq!(list.0, 200);
        assert_eq!(list.1["webhooks"][0]["url"], sink.url.as_str());
        assert!(!list.1.to_string().contains(SECRET));
        assert_eq!(
            s.count("audit_log WHERE event = 'webhook.updated' AND actor LIKE 'api-key:%'"),
            1
        );
        // Another organization's key does not see the profile.
        let denied = call("GET", &url, Some(&other), None);
        assert_eq!(denied.0, 404, "{}", denied.1);

        // Set through the API, it is asked, signed with the secret given.
        let dev = Device::new("api-set", 2048);
        let rep = dev.pkcs_req(&s, "default", Some("mdm-made-secret"));
        assert_eq!(rep.status, PkiStatus::Success, "{}", last_refusal(&s));
        assert!(sink.received()[0].signature_valid(SECRET.as_bytes()));

        let del = ureq::delete(&format!("{url}/challenge"))
            .set("Authorization", &format!("Bearer {key}"))
            .call()
            .unwrap();
        assert_eq!(del.status(), 204);
        assert_eq!(s.count("profile_webhooks"), 0);
        let doc = call("GET", &format!("{}/api/v1/openapi.json", s.url), None, None).1;
        assert!(doc["paths"]["/profiles/{id}/webhooks/{purpose}"]["put"].is_object());
    }
}

mod console {
    use super::*;
    use crate::console::{acme_with_sales_drao, Client, ADMIN_PW};

    #[test]
    fn an_officer_sets_webhooks_with_csrf_and_sees_the_last_error_and_when() {
        let s = Scepd::start_with(
            testdb::test_db().unwrap(),
            tempfile::tempdir().unwrap(),
            &[
                ("SCEPD_NOTIFY_POLL_SECONDS", "1"),
                ("SCEPD_NOTIFY_RETRY_BASE_SECONDS", "60"),
            ],
        );
        acme_with_sales_drao(&s, "manual");
        let sink = Sink::start(Answer::Json(500, "{}".into()));
        let mut c = Client::new(&s);
        assert_eq!(c.login("admin", ADMIN_PW).status, 303);
        let page = c.get("/profiles/default/webhooks");
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Challenge validation"));
        let csrf = c.csrf();
        let path = "/profiles/default/webhooks/notify";

        // No CSRF token: refused, nothing stored.
        let forged = c.post(path, &[("url", &sink.url), ("secret", SECRET)]);
        assert_eq!(forged.status, 403);
        // A refused form names the field and keeps nothing.
        let short = c.post(
            path,
            &[
                ("csrf", &csrf),
                ("url", &sink.url),
                ("secret", "short"),
                ("enabled", "on"),
            ],
        );
        assert_eq!(short.status, 422);
        assert!(
            short.body.contains("at least 16 characters"),
            "{}",
            short.body
        );
        assert_eq!(s.count("profile_webhooks"), 0);

        let saved = c.post(
            path,
            &[
                ("csrf", &csrf),
                ("url", &sink.url),
                ("secret", SECRET),
                ("events", "issued"),
                ("enabled", "on"),
            ],
        );
        assert_eq!(saved.status, 303, "{}", saved.body);
        let page = c.get("/profiles/default/webhooks");
        assert!(page.body.contains(&sink.url));
        assert!(!page.body.contains(SECRET));
        assert_eq!(audits(&s, "webhook.updated"), 1);

        // A failed delivery shows as the last error, with its time.
        let dev = Device::new("console-device", 2048);
        let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
        assert_eq!(rep.status, PkiStatus::Success);
        sink.wait_for(1, 30);
        let deadline = Instant::now() + Duration::from_secs(10);
        let page = loop {
            let p = c.get("/profiles/default/webhooks");
            if p.body.contains("webhook unavailable: HTTP 500") || Instant::now() > deadline {
                break p;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            page.body.contains("webhook unavailable: HTTP 500"),
            "{}",
            page.body
        );
        assert!(page.body.contains(" UTC"));

        // An officer out of the profile's reach cannot see or change it.
        let mut drao = Client::new(&s);
        assert_eq!(drao.login("sales-officer", ADMIN_PW).status, 303);
        let token = drao.csrf();
        assert_eq!(drao.get("/profiles/default/webhooks").status, 404);
        let r = drao.post(
            "/profiles/default/webhooks/notify/remove",
            &[("csrf", &token)],
        );
        assert_eq!(r.status, 404);
        assert_eq!(s.count("profile_webhooks"), 1);

        let r = c.post(
            "/profiles/default/webhooks/notify/remove",
            &[("csrf", &csrf)],
        );
        assert_eq!(r.status, 303);
        assert_eq!(s.count("profile_webhooks"), 0);
    }
}

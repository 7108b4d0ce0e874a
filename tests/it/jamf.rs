//! Jamf Pro's dynamic SCEP challenge: Jamf Pro POSTs its `SCEPChallenge`
//! webhook to `/api/v1/jamf/scep-challenge` and puts the plain-text answer
//! into the SCEP payload it sends the device. Against a real scepd and
//! PostgreSQL, with the body Jamf Pro sends (docs/jamf.md).

use base64::Engine;
use serde_json::{json, Value};

use crate::challenges::audit_of;
use crate::support::{scepclient, Scepd};
use server::store::audit::AuditKind;

/// The body of Jamf Pro's SCEPChallenge webhook (JSON content type).
fn jamf_body(s: &Scepd, profile: &str) -> String {
    json!({
        "webhook": {
            "id": 7,
            "name": "scepd dynamic challenge",
            "webhookEvent": "SCEPChallenge",
            "eventTimestamp": 1_765_150_000_000_i64
        },
        "event": {
            "scepServerUrl": s.scep_url(profile),
            "payloadIdentifier": "6C1E2D3A-9B8F-4E7D-A1C2-3B4D5E6F7081",
            "payloadTypes": ["com.apple.security.scep"]
        }
    })
    .to_string()
}

enum Auth<'a> {
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

/// (status, content type, Cache-Control, body) of a webhook delivery.
fn deliver(
    s: &Scepd,
    query: &str,
    auth: Option<Auth<'_>>,
    body: &str,
) -> (u16, String, String, String) {
    let mut req = ureq::post(&format!("{}/api/v1/jamf/scep-challenge?{query}", s.url))
        .set("Content-Type", "application/json");
    match auth {
        Some(Auth::Bearer(t)) => req = req.set("Authorization", &format!("Bearer {t}")),
        Some(Auth::Basic(u, p)) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req = req.set("Authorization", &format!("Basic {b64}"));
        }
        None => {}
    }
    let resp = match req.send_string(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error {e}"),
    };
    (
        resp.status(),
        resp.content_type().to_string(),
        resp.header("cache-control").unwrap_or_default().to_string(),
        resp.into_string().unwrap(),
    )
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

fn key(s: &Scepd, extra: &[&str]) -> String {
    let mut args = vec!["api-key", "create", "--name", "jamf", "--org", "Default"];
    args.extend_from_slice(extra);
    s.cli_ok(&args).trim().to_string()
}

#[test]
fn jamf_webhook_gets_a_plain_text_one_time_challenge_that_enrolls() {
    let s = Scepd::start();
    let k = key(&s, &[]);

    // Header authentication, as Jamf Pro sends it.
    let (status, ct, cache, challenge) = deliver(
        &s,
        "profile=default",
        Some(Auth::Bearer(&k)),
        &jamf_body(&s, "default"),
    );
    assert_eq!(status, 200, "{challenge}\n{}", s.log());
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(cache, "no-store");
    // Nothing but the challenge: Jamf Pro puts the whole body in the payload.
    assert_eq!(challenge.len(), 32, "{challenge:?}");
    assert!(challenge.chars().all(|c| c.is_ascii_alphanumeric()));

    // It is a one-time challenge of the default profile: it enrolls once.
    let work = tempfile::tempdir().unwrap();
    let run = scepclient(
        work.path(),
        &s.scep_url("default"),
        &challenge,
        "mac-jamf-1",
    );
    assert!(run.ok, "{}\n{}", run.output, s.log());
    let again = tempfile::tempdir().unwrap();
    let run = scepclient(
        again.path(),
        &s.scep_url("default"),
        &challenge,
        "mac-jamf-2",
    );
    assert!(!run.ok, "a used challenge enrolled again");

    // Basic authentication with the key as password works too, and each
    // delivery mints a fresh challenge.
    let (status, _, _, second) = deliver(
        &s,
        "profile=default&ttl_minutes=15",
        Some(Auth::Basic("jamf", &k)),
        &jamf_body(&s, "default"),
    );
    assert_eq!(status, 200, "{second}");
    assert_ne!(second, challenge);

    // Minted by the API's own path: audited under the key, with no secret.
    let minted = audit_of(&s, AuditKind::ChallengeMinted);
    assert_eq!(minted.len(), 2, "{minted:?}");
    for e in &minted {
        assert!(e.actor.starts_with("api-key:"), "{}", e.actor);
        assert_eq!(e.details["profile"], "default");
        let text = e.details.to_string();
        assert!(!text.contains(&challenge) && !text.contains(&second));
    }
    assert_eq!(s.count("challenges"), 2);
}

#[test]
fn jamf_webhook_refuses_wrong_expired_revoked_out_of_scope_and_rate_limited_keys() {
    let s = Scepd::start();
    s.cli_ok(&["org", "create", "Other"]);
    s.cli_ok(&["profile", "create", "laptops", "--org", "Default"]);
    let body = jamf_body(&s, "default");
    let good = key(&s, &[]);

    // Missing or wrong key, or another scheme: 401.
    for auth in [
        None,
        Some(Auth::Bearer("scepd_notakeyatall")),
        Some(Auth::Basic("jamf", "wrong")),
        Some(Auth::Bearer(&good[..good.len() - 1])),
    ] {
        let r = deliver(&s, "profile=default", auth, &body);
        assert_eq!(r.0, 401, "{}", r.3);
        assert_eq!(error_code(&r.3), "unauthorized");
    }

    // Expired: 401.
    let expiring = key(&s, &["--expires-in-days", "30"]);
    {
        use diesel::RunQueryDsl;
        diesel::sql_query(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL",
        )
        .execute(&mut s.pg())
        .unwrap();
    }
    let r = deliver(&s, "profile=default", Some(Auth::Bearer(&expiring)), &body);
    assert_eq!(r.0, 401, "{}", r.3);

    // Revoked: 401.
    let revoked = key(&s, &[]);
    let id = s
        .cli_ok(&["api-key", "list"])
        .lines()
        .last()
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string();
    s.cli_ok(&["api-key", "revoke", &id]);
    let r = deliver(&s, "profile=default", Some(Auth::Bearer(&revoked)), &body);
    assert_eq!(r.0, 401, "{}", r.3);

    // Out of scope: another organization's key names Default; a key
    // limited to laptops asks for default.
    let other_org = s
        .cli_ok(&["api-key", "create", "--name", "other", "--org", "Other"])
        .trim()
        .to_string();
    let default_org = s
        .cli_ok(&["org", "list"])
        .lines()
        .find(|l| l.ends_with("Default"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string();
    let r = deliver(
        &s,
        &format!("profile=default&organization_id={default_org}"),
        Some(Auth::Bearer(&other_org)),
        &body,
    );
    assert_eq!(r.0, 403, "{}", r.3);
    assert_eq!(error_code(&r.3), "forbidden");
    let laptops_only = key(&s, &["--profile", "laptops"]);
    let r = deliver(
        &s,
        "profile=default",
        Some(Auth::Bearer(&laptops_only)),
        &body,
    );
    assert_eq!(r.0, 403, "{}", r.3);
    // ... which still gets its own profile's challenge.
    let r = deliver(
        &s,
        "profile=laptops",
        Some(Auth::Bearer(&laptops_only)),
        &body,
    );
    assert_eq!(r.0, 200, "{}", r.3);

    // The key's rate limit holds here as on the JSON API.
    let limited = key(&s, &["--requests-per-minute", "1"]);
    let r = deliver(&s, "profile=default", Some(Auth::Bearer(&limited)), &body);
    assert_eq!(r.0, 200, "{}", r.3);
    let r = deliver(&s, "profile=default", Some(Auth::Bearer(&limited)), &body);
    assert_eq!(r.0, 429, "{}", r.3);
    assert_eq!(error_code(&r.3), "rate_limited");

    // Only the two challenges answered exist.
    assert_eq!(s.count("challenges"), 2);
    assert_eq!(audit_of(&s, AuditKind::ChallengeMinted).len(), 2);
}

#[test]
fn jamf_webhook_answers_bad_input_with_400_and_mints_nothing() {
    let s = Scepd::start();
    s.cli_ok(&["org", "create", "Other"]);
    let k = key(&s, &[]);
    let auth = || Some(Auth::Bearer(&k));
    let body = jamf_body(&s, "default");
    let other_event = body.replace("SCEPChallenge", "ComputerAdded");
    let xml = "<JSSEvent><webhook><webhookEvent>SCEPChallenge</webhookEvent></webhook></JSSEvent>";
    for (query, body, why) in [
        ("profile=default", "", "empty body"),
        ("profile=default", xml, "XML content type in Jamf Pro"),
        (
            "profile=default",
            other_event.as_str(),
            "another webhook event",
        ),
        ("profile=default", "{\"event\": {}}", "no webhook object"),
        ("", body.as_str(), "no profile"),
        (
            "profile=default&organization_id=abc",
            body.as_str(),
            "organization_id not a number",
        ),
        (
            "profile=default&colour=blue",
            body.as_str(),
            "unknown parameter",
        ),
    ] {
        let r = deliver(&s, query, auth(), body);
        assert_eq!(r.0, 400, "{why}: {}", r.3);
        assert_eq!(error_code(&r.3), "invalid_request", "{why}");
    }
    // A key for two organizations must say which one.
    let two = s
        .cli_ok(&[
            "api-key", "create", "--name", "two", "--org", "Default", "--org", "Other",
        ])
        .trim()
        .to_string();
    let r = deliver(&s, "profile=default", Some(Auth::Bearer(&two)), &body);
    assert_eq!(r.0, 400, "{}", r.3);
    assert!(r.3.contains("organization_id"), "{}", r.3);
    // An unknown profile is not found; a lifetime beyond 30 days out of range.
    let r = deliver(&s, "profile=nope", auth(), &body);
    assert_eq!(r.0, 404, "{}", r.3);
    let r = deliver(&s, "profile=default&ttl_minutes=99999999", auth(), &body);
    assert_eq!(r.0, 422, "{}", r.3);
    assert_eq!(s.count("challenges"), 0);
}

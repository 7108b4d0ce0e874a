//! API keys beyond their organizations: limited to some profiles, expiring,
//! limited in requests per minute across every scepd process, and showing
//! when they were last used. Set from the CLI and the console alike.

use serde_json::json;

use crate::api::call;
use crate::console::{csrf_in, Client};
use crate::support::Scepd;

fn default_org(s: &Scepd) -> i64 {
    s.cli_ok(&["org", "list"])
        .lines()
        .find(|l| l.ends_with("Default"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .parse()
        .unwrap()
}

fn key(s: &Scepd, extra: &[&str]) -> String {
    let mut args = vec!["api-key", "create", "--name", "mdm", "--org", "Default"];
    args.extend_from_slice(extra);
    s.cli_ok(&args).trim().to_string()
}

#[test]
fn a_key_limited_to_a_profile_mints_and_lists_only_that_profile() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "laptops", "--org", "Default"]);
    s.cli_ok(&["profile", "create", "phones", "--org", "Default"]);
    let org = default_org(&s);
    let k = key(&s, &["--profile", "laptops"]);
    let api = format!("{}/api/v1", s.url);
    let mint = |profile: &str| {
        call(
            "POST",
            &format!("{api}/challenges"),
            Some(&k),
            Some(json!({ "profile": profile, "organization_id": org })),
        )
    };
    assert_eq!(mint("laptops").0, 201);
    let r = mint("phones");
    assert_eq!(r.0, 403, "{}", r.1);
    assert_eq!(r.1["error"]["code"], "forbidden");
    let r = call("GET", &format!("{api}/profiles"), Some(&k), None);
    let ids: Vec<&str> = r.1["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["laptops"], "{}", r.1);
    // A key without the limit sees every profile of its organization.
    let all = key(&s, &[]);
    let r = call("GET", &format!("{api}/profiles"), Some(&all), None);
    assert!(r.1["profiles"].as_array().unwrap().len() >= 3, "{}", r.1);
}

#[test]
fn an_expired_key_is_refused_and_an_expiry_in_the_past_cannot_be_set() {
    let s = Scepd::start();
    let k = key(&s, &["--expires-in-days", "30"]);
    let api = format!("{}/api/v1/profiles", s.url);
    assert_eq!(call("GET", &api, Some(&k), None).0, 200);
    use diesel::RunQueryDsl;
    diesel::sql_query("UPDATE api_keys SET expires_at = now() - interval '1 second'")
        .execute(&mut s.pg())
        .unwrap();
    let r = call("GET", &api, Some(&k), None);
    assert_eq!(r.0, 401, "{}", r.1);
    assert_eq!(r.1["error"]["code"], "unauthorized");
    let out = s.cli(&[
        "api-key",
        "create",
        "--name",
        "x",
        "--org",
        "Default",
        "--expires-in-days",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the expiry must lie in the future"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_rate_limit_holds_across_processes_and_says_when_to_retry() {
    let s = Scepd::start();
    let other = s.second();
    let k = key(&s, &["--requests-per-minute", "3"]);
    // The limit counts per minute: start well inside one.
    let second = chrono::Timelike::second(&chrono::Utc::now());
    if second > 50 {
        std::thread::sleep(std::time::Duration::from_secs(u64::from(61 - second)));
    }
    let urls = [
        format!("{}/api/v1/profiles", s.url),
        format!("{}/api/v1/profiles", other.url),
    ];
    for n in 0..3 {
        let r = call("GET", &urls[n % 2], Some(&k), None);
        assert_eq!(r.0, 200, "request {n}: {}", r.1);
    }
    let resp = ureq::get(&urls[1])
        .set("Authorization", &format!("Bearer {k}"))
        .call();
    let Err(ureq::Error::Status(429, resp)) = resp else {
        panic!("the fourth request in a minute was not refused");
    };
    let retry: u64 = resp.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: serde_json::Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another key is not affected.
    let free = key(&s, &[]);
    assert_eq!(call("GET", &urls[0], Some(&free), None).0, 200);
}

#[test]
fn the_console_creates_limited_keys_and_shows_when_they_were_last_used() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "laptops", "--org", "Default"]);
    let org = default_org(&s).to_string();
    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", "test-admin-password").status, 303);
    let token = csrf_in(&c.get("/api-keys").body);
    let base = [
        ("csrf", token.as_str()),
        ("name", "jamf"),
        ("organizations", org.as_str()),
        ("profiles", "laptops"),
    ];
    // A bad expiry is refused on its field, and nothing is created.
    let mut bad = base.to_vec();
    bad.push(("expires_days", "0"));
    let r = c.post("/api-keys", &bad);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("whole days from 1 to 3650"), "{}", r.body);
    assert_eq!(s.count("api_keys"), 0);

    let mut good = base.to_vec();
    good.extend([("expires_days", "30"), ("requests_per_minute", "60")]);
    let r = c.post("/api-keys", &good);
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = r
        .body
        .split("id=\"api-key-token\">")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap()
        .to_string();
    let row = |body: &str| {
        body.split("<td>jamf</td>")
            .nth(1)
            .and_then(|t| t.split("</tr>").next())
            .unwrap()
            .to_string()
    };
    let listed = row(&c.get("/api-keys").body);
    assert!(listed.contains("laptops"), "{listed}");
    assert!(listed.contains("60/min"), "{listed}");
    assert!(
        listed.contains("<td class=\"last-used\">never</td>"),
        "{listed}"
    );
    assert_eq!(
        call(
            "GET",
            &format!("{}/api/v1/profiles", s.url),
            Some(&shown),
            None
        )
        .0,
        200
    );
    let listed = row(&c.get("/api-keys").body);
    assert!(
        !listed.contains("<td class=\"last-used\">never</td>"),
        "{listed}"
    );
}

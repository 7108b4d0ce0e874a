//! Officers' second factor (RFC 6238 TOTP) and re-authentication: set-up
//! with a QR code and recovery codes shown once, a login that needs the
//! code, each code accepted once, the installation's requirement for
//! MRAOs, and a fresh login before credential changes.

use diesel::RunQueryDsl;
use totp_rs::{Secret, Totp};

use crate::console::{audit_count, csrf_in, Client};
use crate::support::Scepd;

const PW: &str = "test-admin-password";

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    body.split(start)
        .nth(1)
        .and_then(|t| t.split(end).next())
        .unwrap_or_else(|| panic!("no {start:?} in\n{body}"))
}

fn totp(secret_b32: &str) -> Totp {
    let secret = Secret::try_from_base32(secret_b32).unwrap();
    totp_rs::Builder::new().with_secret(secret).build().unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sets up the second factor for the logged-in `c`; returns the TOTP and
/// the recovery codes.
fn set_up(s: &Scepd, c: &mut Client) -> (Totp, Vec<String>) {
    let page = c.get("/account/second-factor");
    assert!(page.body.contains("Off: a password alone"), "{}", page.body);
    let token = csrf_in(&page.body);
    let r = c.post("/account/second-factor/begin", &[("csrf", &token)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let secret = between(&r.body, "id=\"totp-secret\">", "<").to_string();
    let qr = c.get("/account/second-factor/qr.svg");
    assert_eq!(qr.status, 200);
    assert_eq!(
        qr.headers.get("content-type").map(String::as_str),
        Some("image/svg+xml")
    );
    assert!(qr.body.contains("<svg"), "{}", qr.body);
    // Stored sealed: the secret's bytes are nowhere in the row.
    let raw = Secret::try_from_base32(&secret).unwrap();
    let stored: Vec<u8> = server::store::admins::by_username(&mut s.pg(), "admin")
        .unwrap()
        .unwrap()
        .totp_secret
        .unwrap();
    assert!(!stored
        .windows(raw.as_bytes().len())
        .any(|w| w == raw.as_bytes()));

    let t = totp(&secret);
    let r = c.post(
        "/account/second-factor/confirm",
        &[("csrf", &token), ("code", "12345x")],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let code = t.generate(now()).to_string();
    let r = c.post(
        "/account/second-factor/confirm",
        &[("csrf", &token), ("code", &code)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let list = between(&r.body, "id=\"recovery-codes\">", "</ul>");
    let codes: Vec<String> = list
        .split("<code>")
        .skip(1)
        .map(|c| c.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{list}");
    assert_eq!(audit_count(s, "officer.second_factor_enabled"), 1);
    // Shown once: the page does not show them again.
    assert!(!c
        .get("/account/second-factor")
        .body
        .contains("id=\"recovery-codes\""));
    (t, codes)
}

#[test]
fn a_login_needs_the_code_and_each_code_counts_once() {
    let s = Scepd::start();
    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", PW).status, 303);
    let (t, recovery) = set_up(&s, &mut c);

    let mut d = Client::new(&s);
    let r = d.login("admin", PW);
    assert_eq!(r.location.as_deref(), Some("/login/second-factor"));
    // Nothing else is open until the code is given.
    let r = d.get("/requests");
    assert_eq!(r.location.as_deref(), Some("/login/second-factor"));
    let form = d.get("/login/second-factor");
    let token = csrf_in(&form.body);
    let r = d.post(
        "/login/second-factor",
        &[("csrf", &token), ("code", "000000")],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    // The next step's code (the set-up spent this step's).
    let code = t.generate(now() + 30).to_string();
    let r = d.post("/login/second-factor", &[("csrf", &token), ("code", &code)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(d.get("/requests").status, 200);

    // The same code again, in another login: refused (RFC 6238 §5.2).
    let mut e = Client::new(&s);
    e.login("admin", PW);
    let token = csrf_in(&e.get("/login/second-factor").body);
    let r = e.post("/login/second-factor", &[("csrf", &token), ("code", &code)]);
    assert_eq!(r.status, 401, "a code was accepted twice");
    // A recovery code works, once.
    let r = e.post(
        "/login/second-factor",
        &[("csrf", &token), ("code", &recovery[0])],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let mut f = Client::new(&s);
    f.login("admin", PW);
    let token = csrf_in(&f.get("/login/second-factor").body);
    let r = f.post(
        "/login/second-factor",
        &[("csrf", &token), ("code", &recovery[0])],
    );
    assert_eq!(r.status, 401);
    assert!(audit_count(&s, "console.second_factor_failed") >= 3);

    // Five wrong codes end the session.
    for _ in 0..4 {
        f.post(
            "/login/second-factor",
            &[("csrf", &token), ("code", "999999")],
        );
    }
    assert_eq!(f.get("/").location.as_deref(), Some("/login"));
}

#[test]
fn an_installation_can_require_it_of_mraos() {
    let db = server::testdb::test_db().unwrap();
    let s = Scepd::start_with(
        db,
        tempfile::tempdir().unwrap(),
        &[("SCEPD_REQUIRE_MRAO_SECOND_FACTOR", "true")],
    );
    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", PW).status, 303);
    for path in ["/", "/requests", "/api-keys"] {
        let r = c.get(path);
        assert_eq!(
            r.location.as_deref(),
            Some("/account/second-factor?msg=required"),
            "{path}"
        );
    }
    let (_, _) = set_up(&s, &mut c);
    assert_eq!(c.get("/requests").status, 200);
    let page = c.get("/account/second-factor");
    assert!(page.body.contains("cannot be removed"), "{}", page.body);
    let token = csrf_in(&page.body);
    let r = c.post("/account/second-factor/remove", &[("csrf", &token)]);
    assert_eq!(r.status, 409, "{}", r.body);
}

#[test]
fn credential_changes_need_a_recent_login() {
    let s = Scepd::start();
    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", PW).status, 303);
    diesel::sql_query(
        "UPDATE console_sessions SET authenticated_at = now() - interval '10 minutes'",
    )
    .execute(&mut s.pg())
    .unwrap();
    let token = csrf_in(&c.get("/api-keys").body);
    let org = s
        .cli_ok(&["org", "list"])
        .lines()
        .next()
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string();
    let form = [
        ("csrf", token.as_str()),
        ("name", "mdm"),
        ("organizations", org.as_str()),
    ];
    let r = c.post("/api-keys", &form);
    assert_eq!(
        r.location.as_deref(),
        Some("/reauth?next=/api-keys"),
        "{}",
        r.body
    );
    assert_eq!(s.count("api_keys"), 0);
    // Other pages stay open.
    assert_eq!(c.get("/requests").status, 200);

    let page = c.get("/reauth?next=/api-keys");
    assert!(page.body.contains("name=\"password\""));
    let r = c.post(
        "/reauth",
        &[
            ("csrf", &token),
            ("next", "/api-keys"),
            ("password", "wrong"),
        ],
    );
    assert_eq!(r.status, 401);
    let r = c.post(
        "/reauth",
        &[
            ("csrf", &token),
            ("next", "https://evil.example/"),
            ("password", PW),
        ],
    );
    assert_eq!(r.location.as_deref(), Some("/"), "left the console");
    let r = c.post("/api-keys", &form);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.count("api_keys"), 1);
    assert_eq!(audit_count(&s, "console.reauthenticated"), 1);
}

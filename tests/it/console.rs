//! RA console over real HTTP against a real `scepd serve`: login, session
//! cookie attributes, logout, idle timeout, login throttling, CSRF refusal,
//! security headers, and a DRAO confined to its department (also when it
//! forges the POST).

use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use server::store::requests;
use server::wire::PkiStatus;

use crate::device::Device;
use crate::support::Scepd;

pub const ADMIN_PW: &str = "test-admin-password";

/// A browser-like HTTP client: keeps cookies, does not follow redirects.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    pub cookies: HashMap<String, String>,
}

pub struct Answer {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: HashMap<String, String>,
}

impl Client {
    pub fn new(s: &Scepd) -> Client {
        Client {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            base: s.url.clone(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn finish(&mut self, r: Result<ureq::Response, ureq::Error>) -> Answer {
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let set_cookies: Vec<String> = resp
            .all("set-cookie")
            .iter()
            .map(|s| s.to_string())
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|h| (h.clone(), resp.header(&h).unwrap_or_default().to_string()))
            .collect();
        Answer {
            status: resp.status(),
            location: resp.header("location").map(str::to_string),
            set_cookies,
            headers,
            body: resp.into_string().unwrap_or_default(),
        }
    }

    pub fn get(&mut self, path: &str) -> Answer {
        let r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie_header())
            .call();
        self.finish(r)
    }

    /// GET a download: status, content type and the raw body.
    pub fn get_bytes(&mut self, path: &str) -> (u16, String, Vec<u8>) {
        let r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie_header())
            .call();
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = resp.status();
        let ct = resp.content_type().to_string();
        let mut body = vec![];
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
        (status, ct, body)
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie_header())
            .send_form(form);
        self.finish(r)
    }

    /// GET the login form, then submit it with its CSRF token.
    /// A session cookie the browser still holds is sent with the POST (the
    /// console must replace it), not with the GET (which would redirect a
    /// logged-in officer to the dashboard).
    pub fn login(&mut self, user: &str, password: &str) -> Answer {
        let held = self.cookies.remove("scepd_session");
        let form = self.get("/login");
        if let Some(h) = held {
            self.cookies.insert("scepd_session".into(), h);
        }
        let token = csrf_in(&form.body);
        self.post(
            "/login",
            &[("csrf", &token), ("username", user), ("password", password)],
        )
    }

    /// The CSRF token of the session (from any logged-in page).
    pub fn csrf(&mut self) -> String {
        csrf_in(&self.get("/").body)
    }
}

/// Organization Acme with departments Sales and Ops, a profile named after
/// its approval mode (`auto` or `manual`) enabled for Acme, and the DRAO
/// `sales-officer` for Sales. The CLI reads the officer's password from a
/// named variable; the harness already exports the bootstrap admin's.
pub fn acme_with_sales_drao(s: &Scepd, approval: &str) {
    s.cli_ok(&["org", "create", "Acme"]);
    s.cli_ok(&["org", "add-department", "Acme", "Sales"]);
    s.cli_ok(&["org", "add-department", "Acme", "Ops"]);
    s.cli_ok(&[
        "profile",
        "create",
        approval,
        "--approval",
        approval,
        "--org",
        "Acme",
    ]);
    s.cli_ok(&[
        "admin",
        "create",
        "sales-officer",
        "--role",
        "drao",
        "--org",
        "Acme",
        "--department",
        "Sales",
        "--password-env",
        "SCEPD_ADMIN_PASSWORD",
    ]);
}

/// The value of the first hidden `csrf` field on a page.
/// An RAO of the organization `org`, with the console password `ADMIN_PW`.
pub fn create_rao(s: &Scepd, name: &str, org: &str) {
    s.cli_ok(&[
        "admin",
        "create",
        name,
        "--role",
        "rao",
        "--org",
        org,
        "--password-env",
        "SCEPD_ADMIN_PASSWORD",
    ]);
}

pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

pub fn audit_count(s: &Scepd, event: &str) -> i64 {
    use diesel::dsl::count_star;
    use server::store::schema::audit_log;
    audit_log::table
        .filter(audit_log::event.eq(event))
        .select(count_star())
        .first(&mut s.pg())
        .unwrap()
}

pub fn request_id_of(s: &Scepd, dev: &Device) -> i64 {
    let spki = dev.key.public_key_to_der().unwrap();
    requests::by_transaction(
        &mut s.pg(),
        &dev.txid().0,
        &openssl::sha::sha256(&spki),
        None,
    )
    .unwrap()
    .expect("request stored")
    .id
}

#[test]
fn login_sets_a_strict_httponly_session_and_logout_ends_it() {
    let s = Scepd::start();
    let mut c = Client::new(&s);

    let r = c.get("/");
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/login"));

    let r = c.login("admin", "wrong-password");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong username or password"));

    let r = c.login("admin", ADMIN_PW);
    assert_eq!(r.status, 303, "{}", r.body);
    let session = r
        .set_cookies
        .iter()
        .find(|c| c.starts_with("scepd_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Path=/"), "{session}");
    // http:// public URL: no Secure flag (the browser would drop it), no
    // __Host- name (it needs Secure) and no HSTS (plain HTTP; docs/tls.md).
    assert!(!session.contains("Secure"), "{session}");
    assert!(!r
        .headers
        .iter()
        .any(|(h, _)| h.eq_ignore_ascii_case("strict-transport-security")));
    let first_id = c.cookies["scepd_session"].clone();
    assert_eq!(first_id.len(), 64, "256-bit id, hex");

    let r = c.get("/");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Dashboard"));
    assert_eq!(
        r.headers["content-security-policy"],
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    );
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    assert!(!r.body.contains("<script"), "no inline script");

    // A second login gets a new session id; the old one is gone.
    let r = c.login("admin", ADMIN_PW);
    assert_eq!(r.status, 303);
    assert_ne!(c.cookies["scepd_session"], first_id);
    let mut stale = Client::new(&s);
    stale
        .cookies
        .insert("scepd_session".into(), first_id.clone());
    assert_eq!(stale.get("/").status, 303);

    // Only the hash of the id is stored.
    let ids: Vec<Vec<u8>> = server::store::schema::console_sessions::table
        .select(server::store::schema::console_sessions::id_hash)
        .load(&mut s.pg())
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert!(!ids
        .iter()
        .any(|h| hex::encode(h) == c.cookies["scepd_session"]));

    let copied = c.cookies["scepd_session"].clone();
    let token = c.csrf();
    let r = c.post("/logout", &[("csrf", &token)]);
    assert_eq!(r.status, 303);
    assert_eq!(c.get("/").status, 303);
    // The copied cookie is worthless after logout.
    // Logging out again with the dead session just leads to the login page.
    let r = c.post("/logout", &[("csrf", &token)]);
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/login"));
    let mut thief = Client::new(&s);
    thief.cookies.insert("scepd_session".into(), copied);
    assert_eq!(thief.get("/").status, 303);

    assert_eq!(audit_count(&s, "console.login"), 2);
    assert_eq!(audit_count(&s, "console.login_failed"), 1);
    assert_eq!(audit_count(&s, "console.logout"), 1);
    assert!(!s.log().contains(ADMIN_PW), "password never logged");
}

#[test]
fn posts_without_the_csrf_token_are_refused() {
    let s = Scepd::start();
    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", ADMIN_PW).status, 303);

    let r = c.post("/logout", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    let r = c.post("/logout", &[("csrf", "00")]);
    assert_eq!(r.status, 403);
    // Still logged in: the refused logout did nothing.
    assert_eq!(c.get("/").status, 200);

    // The login form, without its double-submit cookie, is refused too.
    let mut fresh = Client::new(&s);
    let token = csrf_in(&fresh.get("/login").body);
    fresh.cookies.clear();
    let r = fresh.post(
        "/login",
        &[
            ("csrf", &token),
            ("username", "admin"),
            ("password", ADMIN_PW),
        ],
    );
    assert_eq!(r.status, 403);
}

#[test]
fn failed_logins_are_throttled_and_idle_sessions_expire() {
    let db = server::testdb::test_db().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = Scepd::start_with(db, dir, &[("SCEPD_CONSOLE_IDLE_SECONDS", "2")]);

    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", ADMIN_PW).status, 303);
    assert_eq!(c.get("/").status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(c.get("/").status, 303, "idle session expired");

    for _ in 0..5 {
        assert_eq!(c.login("admin", "nope-nope-nope").status, 401);
    }
    // Even the right password is refused while the account is throttled.
    let r = c.login("admin", ADMIN_PW);
    assert_eq!(r.status, 429);
    assert!(r.body.contains("Too many failed logins"));
    assert!(!r
        .set_cookies
        .iter()
        .any(|c| c.starts_with("scepd_session=")));
}

#[test]
fn a_drao_sees_and_decides_only_its_departments_requests() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "manual");

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
    let sales = Device::new("sales-laptop-1", 2048);
    let ops = Device::new("ops-server-1", 2048);
    assert_eq!(
        sales.pkcs_req(&s, "manual", Some(&mint("Sales"))).status,
        PkiStatus::Pending
    );
    assert_eq!(
        ops.pkcs_req(&s, "manual", Some(&mint("Ops"))).status,
        PkiStatus::Pending
    );
    let sales_id = request_id_of(&s, &sales);
    let ops_id = request_id_of(&s, &ops);

    let mut c = Client::new(&s);
    assert_eq!(c.login("sales-officer", ADMIN_PW).status, 303);
    let q = c.get("/requests?status=requested");
    assert_eq!(q.status, 200);
    assert!(q.body.contains("sales-laptop-1"), "{}", q.body);
    assert!(!q.body.contains("ops-server-1"), "{}", q.body);
    assert_eq!(c.get(&format!("/requests/{ops_id}")).status, 404);

    // A forged approve/decline for the other department, with a valid
    // token, is refused and changes nothing.
    let token = c.csrf();
    let r = c.post(&format!("/requests/{ops_id}/approve"), &[("csrf", &token)]);
    assert_eq!(r.status, 404);
    let r = c.post(
        &format!("/requests/{ops_id}/decline"),
        &[("csrf", &token), ("reason", "forged")],
    );
    assert_eq!(r.status, 404);
    let ops_req = requests::by_id(&mut s.pg(), ops_id).unwrap();
    assert_eq!(ops_req.status, "requested");

    // A decline without a reason comes back on the detail page with the
    // typed text kept and the message at the field; nothing changes. The
    // other department's request stays out of reach on that path too.
    let r = c.post(
        &format!("/requests/{sales_id}/decline"),
        &[("csrf", &token), ("reason", "   ")],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("a decline needs a reason"), "{}", r.body);
    assert!(r.body.contains("aria-invalid=\"true\""), "{}", r.body);
    let long = "x".repeat(501);
    let r = c.post(
        &format!("/requests/{sales_id}/decline"),
        &[("csrf", &token), ("reason", &long)],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains(&long), "the typed reason is kept");
    let r = c.post(
        &format!("/requests/{ops_id}/decline"),
        &[("csrf", &token), ("reason", "")],
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        requests::by_id(&mut s.pg(), sales_id).unwrap().status,
        "requested"
    );

    // Its own department's request: approve works, the device gets it.
    let page = c.get(&format!("/requests/{sales_id}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("passes"), "{}", page.body);
    let r = c.post(
        &format!("/requests/{sales_id}/approve"),
        &[("csrf", &token)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let poll = sales.poll(&s, "manual", &sales.txid());
    assert_eq!(poll.status, PkiStatus::Success);
    let history: Vec<String> = requests::events(&mut s.pg(), sales_id)
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{}", e.to_status, e.actor))
        .collect();
    assert!(
        history.contains(&"applied:sales-officer".to_string()),
        "{history:?}"
    );

    // The MRAO sees both.
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let all = m.get("/requests?status=all");
    assert!(all.body.contains("sales-laptop-1") && all.body.contains("ops-server-1"));
}

/// The queue's store queries on a real database: keyset pages that neither
/// skip nor repeat rows (even with equal timestamps) and scope filtering.
mod queue_store {
    use diesel::prelude::*;
    use server::store::queue::{self, Cursor, Filter, Scope};
    use server::store::requests::{self, NewRequest, Status};
    use server::store::{orgs, profiles};

    #[test]
    fn keyset_pages_cover_every_row_once_within_scope() {
        let db = server::testdb::test_db().unwrap();
        let mut conn = PgConnection::establish(&db.url).unwrap();
        let org = orgs::create_org(&mut conn, "Acme").unwrap();
        let other = orgs::create_org(&mut conn, "Other").unwrap();
        let sales = orgs::create_department(&mut conn, org.id, "Sales").unwrap();
        let p =
            profiles::create(&mut conn, &profiles::NewProfile::with_defaults("p", "p")).unwrap();
        let mut ids = vec![];
        for i in 0..7u8 {
            let (o, d) = match i % 3 {
                0 => (org.id, Some(sales.id)),
                1 => (org.id, None),
                _ => (other.id, None),
            };
            let txid = format!("tx-{i}");
            let r = requests::insert(
                &mut conn,
                &NewRequest {
                    transaction_id: &txid,
                    public_key_sha256: &[i; 32],
                    message_type: "PKCSReq",
                    profile_id: p.id,
                    organization_id: o,
                    department_id: d,
                    status: Status::Requested.as_str(),
                    subject: &format!("CN=dev-{i}"),
                    common_name: Some(&format!("dev-{i}")),
                    sans: vec![],
                    key_desc: "RSA 2048",
                    csr_der: &[0],
                    challenge_id: None,
                    renewal_of: None,
                    client_ip: None,
                    signer_key_sha256: None,
                },
                "test",
            )
            .unwrap();
            ids.push(r.id);
        }
        // Equal timestamps: only the id orders them.
        diesel::sql_query("UPDATE enrollment_requests SET created_at = '2026-01-01T00:00:00Z'")
            .execute(&mut conn)
            .unwrap();

        let filter = Filter {
            status: Some(Status::Requested),
            text: None,
        };
        let mut seen = vec![];
        let mut after: Option<Cursor> = None;
        loop {
            let page = queue::list(&mut conn, &Scope::All, &filter, after, 3).unwrap();
            assert!(page.rows.len() <= 3);
            seen.extend(page.rows.iter().map(|r| r.id));
            match page.next {
                Some(c) => after = Some(Cursor::decode(&c.encode()).unwrap()),
                None => break,
            }
        }
        let mut expected = ids.clone();
        expected.reverse();
        assert_eq!(seen, expected, "newest first, each row once");

        let drao = Scope::Limited {
            organizations: vec![],
            departments: vec![sales.id],
        };
        let rows = queue::list(&mut conn, &drao, &filter, None, 50)
            .unwrap()
            .rows;
        assert!(rows.iter().all(|r| r.department_id == Some(sales.id)));
        assert_eq!(rows.len(), 3);
        let rao = Scope::Limited {
            organizations: vec![org.id],
            departments: vec![],
        };
        let rows = queue::list(&mut conn, &rao, &filter, None, 50)
            .unwrap()
            .rows;
        assert!(rows.iter().all(|r| r.organization_id == org.id));
        assert_eq!(rows.len(), 5);
        // Out of scope is indistinguishable from absent.
        let outside = ids[2];
        assert!(matches!(
            queue::request(&mut conn, &drao, outside),
            Err(server::store::StoreError::NotFound)
        ));
        // Text filter: LIKE metacharacters are literal.
        let f = Filter {
            status: None,
            text: Some("dev-1".into()),
        };
        assert_eq!(
            queue::list(&mut conn, &Scope::All, &f, None, 50)
                .unwrap()
                .rows
                .len(),
            1
        );
        let f = Filter {
            status: None,
            text: Some("dev_".into()),
        };
        assert!(queue::list(&mut conn, &Scope::All, &f, None, 50)
            .unwrap()
            .rows
            .is_empty());
        let counts = queue::counts(&mut conn, &rao).unwrap();
        assert_eq!(counts[0], (Status::Requested, 5));
    }
}

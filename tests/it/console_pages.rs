//! RA console pages beyond the queue, over real HTTP against a real
//! `scepd serve`: certificates (search, filters, CSV, downloads, revocation
//! reflected in the CRL), each checked for a DRAO confined to its
//! department, including forged POSTs.

use std::process::Command;

use diesel::prelude::*;
use server::store::certificates::{self, Certificate};
use server::store::schema::certificates as certs;
use server::wire::PkiStatus;

use crate::console::{acme_with_sales_drao, audit_count, Client, ADMIN_PW};
use crate::device::Device;
use crate::support::Scepd;

/// An org with two departments, an auto-approve profile, a DRAO for Sales,
/// and one issued certificate in each department.
pub struct World {
    pub s: Scepd,
    pub sales: Certificate,
    pub ops: Certificate,
}

pub fn world() -> World {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    let issue = |cn: &str, dept: &str| {
        let ch = s
            .cli_ok(&[
                "challenge",
                "mint",
                "--profile",
                "auto",
                "--org",
                "Acme",
                "--department",
                dept,
            ])
            .trim()
            .to_string();
        let dev = Device::new(cn, 2048);
        let rep = dev.pkcs_req(&s, "auto", Some(&ch));
        assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
        certs::table
            .filter(certs::common_name.eq(cn))
            .select(Certificate::as_select())
            .first(&mut s.pg())
            .unwrap()
    };
    let sales = issue("sales-laptop-1", "Sales");
    let ops = issue("ops-server-1", "Ops");
    World { s, sales, ops }
}

/// Fetch a CRL and return `openssl crl -text`, uppercased.
pub fn fetch_crl_text(url: &str) -> String {
    let crl = ureq::get(url).call().unwrap();
    let mut der = vec![];
    std::io::Read::read_to_end(&mut crl.into_reader(), &mut der).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.crl");
    std::fs::write(&path, &der).unwrap();
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).to_uppercase()
}

fn href_containing(html: &str, needle: &str) -> String {
    let at = html.find(needle).expect("link present");
    let start = html[..at].rfind("href=\"").unwrap() + 6;
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_string()
}

#[test]
fn certificates_are_searchable_exportable_downloadable_and_revocable_in_scope() {
    let World { s, sales, ops } = world();
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);

    let all = m.get("/certificates");
    assert_eq!(all.status, 200);
    assert!(all.body.contains("sales-laptop-1") && all.body.contains("ops-server-1"));
    // Search by CN substring, by serial (with colons, any case), by SHA-256.
    let by_cn = m.get("/certificates?q=laptop");
    assert!(by_cn.body.contains("sales-laptop-1") && !by_cn.body.contains("ops-server-1"));
    let colons = sales
        .serial
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_lowercase())
        .collect::<Vec<_>>()
        .join(":");
    let by_serial = m.get(&format!("/certificates?q={colons}"));
    assert!(
        by_serial.body.contains("sales-laptop-1"),
        "{}",
        by_serial.body
    );
    assert!(!by_serial.body.contains("ops-server-1"));
    let by_fp = m.get(&format!(
        "/certificates?q={}",
        hex::encode(&ops.fingerprint_sha256)
    ));
    assert!(by_fp.body.contains("ops-server-1") && !by_fp.body.contains("sales-laptop-1"));
    // Filters: nothing revoked yet; both expire within ten years, none
    // within a day; unknown state is a 400.
    assert!(m
        .get("/certificates?state=revoked")
        .body
        .contains("No certificates."));
    let soon = m.get("/certificates?expiring=3650&state=valid");
    assert!(soon.body.contains("sales-laptop-1") && soon.body.contains("ops-server-1"));
    assert!(m
        .get("/certificates?expiring=1")
        .body
        .contains("No certificates."));
    assert_eq!(m.get("/certificates?state=bogus").status, 400);
    assert_eq!(m.get("/certificates?profile=x").status, 400);

    // CSV export of the filtered list, parsed back with a CSV reader.
    let (st, ct, body) = m.get_bytes("/certificates.csv?q=&state=valid");
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let mut rd = csv::Reader::from_reader(body.as_slice());
    assert_eq!(&rd.headers().unwrap()[1], "serial");
    let recs: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(recs.len(), 2);
    let rec = recs.iter().find(|r| r[1] == sales.serial).unwrap();
    assert_eq!(&rec[2], sales.subject, "subject survives quoting");
    assert_eq!(&rec[7], "valid");

    // The DRAO of Sales: only its department's certificate, everywhere.
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    let list = d.get("/certificates");
    assert!(list.body.contains("sales-laptop-1") && !list.body.contains("ops-server-1"));
    let (_, _, body) = d.get_bytes("/certificates.csv");
    assert!(!String::from_utf8(body).unwrap().contains("ops-server-1"));
    for path in ["", "/pem", "/der"] {
        assert_eq!(
            d.get(&format!("/certificates/{}{path}", ops.id)).status,
            404
        );
    }
    let token = d.csrf();
    let r = d.post(
        &format!("/certificates/{}/revoke", ops.id),
        &[("csrf", &token), ("reason", "keyCompromise")],
    );
    assert_eq!(r.status, 404, "forged revoke outside scope");
    assert_eq!(
        certificates::by_id(&mut s.pg(), ops.id).unwrap().status,
        "valid"
    );

    // Detail and downloads of its own.
    let page = d.get(&format!("/certificates/{}", sales.id));
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&sales.serial));
    assert!(page.body.contains("Sales"));
    let (st, ct, pem) = d.get_bytes(&format!("/certificates/{}/pem", sales.id));
    assert_eq!((st, ct.as_str()), (200, "application/x-pem-file"));
    let x = openssl::x509::X509::from_pem(&pem).unwrap();
    assert_eq!(x.to_der().unwrap(), sales.der);
    let (st, ct, der) = d.get_bytes(&format!("/certificates/{}/der", sales.id));
    assert_eq!((st, ct.as_str()), (200, "application/pkix-cert"));
    assert_eq!(der, sales.der);

    // Revoke: a bad reason is refused; keyCompromise goes through Enroll,
    // is audited and appears in the CRL (parsed by openssl).
    let r = d.post(
        &format!("/certificates/{}/revoke", sales.id),
        &[("csrf", &token), ("reason", "removeFromCRL")],
    );
    assert_eq!(r.status, 400);
    let r = d.post(
        &format!("/certificates/{}/revoke", sales.id),
        &[("csrf", &token), ("reason", "keyCompromise")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = d.get(r.location.as_deref().unwrap());
    assert!(page.body.contains("Revoked: the next CRL"), "{}", page.body);
    assert!(page.body.contains("keyCompromise") && page.body.contains("sales-officer"));
    assert_eq!(audit_count(&s, "certificate.revoked"), 1);
    let r = d.post(
        &format!("/certificates/{}/revoke", sales.id),
        &[("csrf", &token), ("reason", "keyCompromise")],
    );
    assert_eq!(r.status, 409, "already revoked");
    assert!(d
        .get("/certificates?state=revoked")
        .body
        .contains("sales-laptop-1"));

    let text = fetch_crl_text(&href_containing(&page.body, ".crl"));
    assert!(text.contains(&sales.serial), "{text}");
    assert!(text.contains("KEY COMPROMISE"), "{text}");
    assert!(!text.contains(&ops.serial));
}

fn department_id(s: &Scepd, name: &str) -> i64 {
    use server::store::schema::departments;
    departments::table
        .filter(departments::name.eq(name))
        .select(departments::id)
        .first(&mut s.pg())
        .unwrap()
}

fn challenge_count(s: &Scepd) -> i64 {
    use server::store::schema::challenges;
    challenges::table.count().get_result(&mut s.pg()).unwrap()
}

/// The values in `<code class="secret">` on a page.
fn secrets_in(html: &str) -> Vec<String> {
    html.split("<code class=\"secret\">")
        .skip(1)
        .map(|p| p[..p.find('<').unwrap()].to_string())
        .collect()
}

#[test]
fn challenges_are_minted_once_listed_without_values_and_revoked_in_scope() {
    let World { s, .. } = world();
    let org = {
        use server::store::orgs;
        orgs::org_by_name(&mut s.pg(), "Acme").unwrap().unwrap().id
    };
    let (sales, ops) = (department_id(&s, "Sales"), department_id(&s, "Ops"));
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    let page = d.get("/challenges");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Acme / Sales") && !page.body.contains("Acme / Ops"));
    assert!(page.body.contains("<script src=\"/static/console.js\">"));
    let js = d.get("/static/console.js");
    assert_eq!(js.status, 200);
    assert!(js.body.contains("clipboard"));
    let token = d.csrf();

    // Forged places outside the DRAO's department: refused, nothing minted.
    let before = challenge_count(&s);
    for place in [format!("{org}:{ops}"), format!("{org}")] {
        let r = d.post(
            "/challenges",
            &[("csrf", &token), ("profile", "auto"), ("place", &place)],
        );
        assert_eq!(r.status, 403, "{place}");
    }
    let r = d.post(
        "/challenges",
        &[("profile", "auto"), ("place", &format!("{org}:{sales}"))],
    );
    assert_eq!(r.status, 403, "no CSRF token");
    assert_eq!(challenge_count(&s), before);

    // Mint two: shown once, not cached, usable by a device.
    let r = d.post(
        "/challenges",
        &[
            ("csrf", &token),
            ("profile", "auto"),
            ("place", &format!("{org}:{sales}")),
            ("count", "2"),
            ("ttl", "2h"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let minted = secrets_in(&r.body);
    assert_eq!(minted.len(), 2, "{}", r.body);
    assert!(r.body.contains(&format!("data-copy=\"{}\"", minted[0])));
    assert!(!s.log().contains(&minted[0]), "never logged");
    let dev = Device::new("sales-phone-9", 2048);
    assert_eq!(
        dev.pkcs_req(&s, "auto", Some(&minted[0])).status,
        PkiStatus::Success
    );
    let page = d.get("/challenges");
    assert!(minted.iter().all(|m| !page.body.contains(m.as_str())));
    assert!(secrets_in(&page.body).is_empty());

    // Outstanding: the unused one (the used one is gone from the list).
    use server::store::schema::challenges as ch;
    let unused: Vec<i64> = ch::table
        .filter(ch::department_id.eq(sales))
        .filter(ch::used_at.is_null())
        .select(ch::id)
        .load(&mut s.pg())
        .unwrap();
    assert!(page
        .body
        .contains(&format!("/challenges/{}/revoke", unused[0])));

    // Another department's challenge: not listed, forged revoke is a 404.
    s.cli_ok(&[
        "challenge",
        "mint",
        "--profile",
        "auto",
        "--org",
        "Acme",
        "--department",
        "Ops",
    ]);
    let ops_ch: i64 = ch::table
        .filter(ch::department_id.eq(ops))
        .filter(ch::used_at.is_null())
        .select(ch::id)
        .first(&mut s.pg())
        .unwrap();
    assert!(!d
        .get("/challenges")
        .body
        .contains(&format!("/challenges/{ops_ch}/revoke")));
    let r = d.post(&format!("/challenges/{ops_ch}/revoke"), &[("csrf", &token)]);
    assert_eq!(r.status, 404);
    let revoked_at: Option<chrono::DateTime<chrono::Utc>> = ch::table
        .find(ops_ch)
        .select(ch::revoked_at)
        .first(&mut s.pg())
        .unwrap();
    assert!(revoked_at.is_none());

    // Its own: revoked, audited, and then useless to a device.
    let r = d.post(
        &format!("/challenges/{}/revoke", unused[0]),
        &[("csrf", &token)],
    );
    assert_eq!(r.status, 303);
    assert!(d
        .get(r.location.as_deref().unwrap())
        .body
        .contains("Revoked: the challenge"));
    assert_eq!(audit_count(&s, "challenge.revoked"), 1);
    let r = d.post(
        &format!("/challenges/{}/revoke", unused[0]),
        &[("csrf", &token)],
    );
    assert_eq!(r.status, 409);
    let late = Device::new("sales-phone-10", 2048);
    assert_eq!(
        late.pkcs_req(&s, "auto", Some(&minted[1])).status,
        PkiStatus::Failure
    );
}

#[test]
fn audit_page_filters_and_shows_officers_below_mrao_their_scope_and_own_entries() {
    let World { s, sales, ops } = world();
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);

    let all = m.get("/audit");
    assert_eq!(all.status, 200);
    assert!(all.body.contains("certificate.issued"));
    assert!(all.body.contains("<td>sales-officer</td>"));
    let logins = m.get("/audit?event=console.login&actor=admin");
    assert!(logins.body.contains("<td>admin</td>"));
    assert!(!logins.body.contains("<td>sales-officer</td>"));
    assert!(!logins.body.contains("certificate.issued</code>"));
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    assert!(m
        .get(&format!("/audit?from={tomorrow}"))
        .body
        .contains("No entries."));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(m
        .get(&format!("/audit?from={today}&to={today}"))
        .body
        .contains("console.login"));
    assert_eq!(m.get("/audit?from=yesterday").status, 400);

    let own = d.get("/audit");
    assert_eq!(own.status, 200);
    assert!(own
        .body
        .contains("You see the entries of the organizations and departments"));
    assert!(own.body.contains(&format!("certificate:{}", sales.serial)));
    assert!(!own.body.contains(&format!("certificate:{}", ops.serial)));
    assert!(own.body.contains("<td>sales-officer</td>"));
    assert!(!own.body.contains("<td>admin</td>"));
    assert!(!d.get("/audit?actor=admin").body.contains("<td>admin</td>"));
}

#[test]
fn dashboard_charts_issuance_and_counts_expiry_in_scope() {
    let World { s, .. } = world();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let page = m.get("/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"issued-chart\""));
    assert_eq!(page.body.matches("<rect class=\"bar\"").count(), 30);
    assert!(page.body.contains(&format!("<title>{today}: 2</title>")));
    assert!(page.body.contains("Recent refusals"));
    assert!(!page.body.contains("style="), "no inline style (CSP)");
    // Certificates are valid for the profile's default term: none within 90 days.
    assert!(page
        .body
        .contains("<span class=\"n\">0</span> within 90 days"));

    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    let page = d.get("/");
    assert!(page.body.contains(&format!("<title>{today}: 1</title>")));
    // Refusals in its scope only (`console_audit` tests which).
    assert!(page.body.contains("Recent refusals"));
}

#[test]
fn signed_mobileconfig_downloads_mint_a_challenge_in_scope() {
    let World { s, sales, ops } = world();
    let org = {
        use server::store::orgs;
        orgs::org_by_name(&mut s.pg(), "Acme").unwrap().unwrap().id
    };
    let sales_dept = department_id(&s, "Sales");
    let ops_dept = department_id(&s, "Ops");
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    let token = d.csrf();
    let minted = audit_count(&s, "challenge.minted");

    let check = |st: u16, ct: &str, body: &[u8]| {
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(body));
        assert_eq!(ct, "application/x-apple-aspen-config");
        let p7 = openssl::pkcs7::Pkcs7::from_der(body).expect("signed CMS");
        assert!(p7.signed().is_some());
        let text = String::from_utf8_lossy(body);
        assert!(
            text.contains("com.apple.security.scep"),
            "SCEP payload inside"
        );
    };
    let post = |c: &mut Client, path: &str, form: &[(&str, &str)]| {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let cookie = c
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let r = match agent
            .post(&format!("{}{path}", s.url))
            .set("Cookie", &cookie)
            .send_form(form)
        {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let st = r.status();
        let ct = r.content_type().to_string();
        let mut body = vec![];
        std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
        (st, ct, body)
    };

    let (st, ct, body) = post(
        &mut d,
        "/challenges/mobileconfig",
        &[
            ("csrf", &token),
            ("profile", "auto"),
            ("place", &format!("{org}:{sales_dept}")),
            ("device", "ipad-7"),
        ],
    );
    check(st, &ct, &body);
    assert!(String::from_utf8_lossy(&body).contains("ipad-7"));
    let (st, _, _) = post(
        &mut d,
        "/challenges/mobileconfig",
        &[
            ("csrf", &token),
            ("profile", "auto"),
            ("place", &format!("{org}:{ops_dept}")),
        ],
    );
    assert_eq!(st, 403, "outside scope");

    // From a request's page: its profile, place and CN.
    let own = format!("/requests/{}/mobileconfig", sales.request_id.unwrap());
    let page = d.get(&format!("/requests/{}", sales.request_id.unwrap()));
    assert!(page.body.contains(&format!("action=\"{own}\"")));
    let (st, ct, body) = post(&mut d, &own, &[("csrf", &token)]);
    check(st, &ct, &body);
    assert!(String::from_utf8_lossy(&body).contains("sales-laptop-1"));
    let other = format!("/requests/{}/mobileconfig", ops.request_id.unwrap());
    assert_eq!(post(&mut d, &other, &[("csrf", &token)]).0, 404);
    assert_eq!(post(&mut d, &own, &[]).0, 403, "no CSRF token");
    assert_eq!(audit_count(&s, "challenge.minted"), minted + 2);
}

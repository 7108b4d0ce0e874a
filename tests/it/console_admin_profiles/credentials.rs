//! Access codes and API keys made, used, disabled and revoked in the
//! console, within the officer's scope.

use diesel::prelude::*;
use server::wire::PkiStatus;

use super::{dept_id, last_audit, org_id};
use crate::console::{acme_with_sales_drao, audit_count, csrf_in, Client, ADMIN_PW};
use crate::device::Device;
use crate::support::Scepd;

#[test]
fn an_access_code_made_in_the_console_enrolls_until_it_is_disabled() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    let acme = org_id(&s, "Acme");
    let (sales, ops) = (dept_id(&s, acme, "Sales"), dept_id(&s, acme, "Ops"));
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    let page = d.get("/access-codes");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Acme / Sales") && !page.body.contains("Acme / Ops"));
    let token = csrf_in(&page.body);
    let sales_place = format!("{acme}:{sales}");
    let code = "sales-shared-code-7";

    // Refused: too short. The label is kept, the code never sent back.
    let r = d.post(
        "/access-codes",
        &[
            ("csrf", &token),
            ("place", &sales_place),
            ("profile", "auto"),
            ("label", "lobby kiosk"),
            ("code", "tiny-secret"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("value=\"lobby kiosk\""));
    assert!(r.body.contains("at least 12 characters"));
    assert!(r.body.contains("id=\"code-error\""));
    assert!(!r.body.contains("tiny-secret"));
    // Forged: a place outside the DRAO's department.
    let r = d.post(
        "/access-codes",
        &[
            ("csrf", &token),
            ("place", &acme.to_string()),
            ("label", "forged"),
            ("code", code),
        ],
    );
    assert_eq!(r.status, 403);
    assert_eq!(audit_count(&s, "access_code.created"), 0);

    let r = d.post(
        "/access-codes",
        &[
            ("csrf", &token),
            ("place", &sales_place),
            ("profile", "auto"),
            ("label", "lobby kiosk"),
            ("code", code),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let list = d.get(&r.location.unwrap());
    assert!(list.body.contains("Access code created"));
    assert!(list.body.contains("lobby kiosk") && !list.body.contains(code));
    assert_eq!(audit_count(&s, "access_code.created"), 1);
    assert!(!last_audit(&s, "access_code.created")
        .2
        .to_string()
        .contains(code));
    use server::store::schema::access_codes as ac;
    let id: i64 = ac::table
        .filter(ac::label.eq("lobby kiosk"))
        .select(ac::id)
        .first(&mut s.pg())
        .unwrap();

    // It works: in a configuration profile and for an enrollment.
    let mc = [
        ("csrf", token.as_str()),
        ("profile", "auto"),
        ("place", sales_place.as_str()),
        ("device", "kiosk-1"),
        ("access_code", code),
    ];
    assert_eq!(d.post("/challenges/mobileconfig", &mc).status, 200);
    let dev = Device::new("kiosk-1", 2048);
    assert_eq!(
        dev.pkcs_req(&s, "auto", Some(code)).status,
        PkiStatus::Success
    );

    // Another department's code cannot be disabled by this DRAO.
    let out = std::process::Command::new(crate::support::BIN)
        .args([
            "access-code",
            "create",
            "--org",
            "Acme",
            "--department",
            "Ops",
            "--label",
            "ops-code",
            "--code",
            "ops-shared-code-99",
        ])
        .envs(s.cli_env())
        .output()
        .unwrap();
    assert!(out.status.success());
    let ops_id: i64 = ac::table
        .filter(ac::department_id.eq(ops))
        .select(ac::id)
        .first(&mut s.pg())
        .unwrap();
    let r = d.post(
        &format!("/access-codes/{ops_id}/disable"),
        &[("csrf", &token)],
    );
    assert_eq!(r.status, 404);
    assert!(ac::table
        .find(ops_id)
        .select(ac::enabled)
        .first::<bool>(&mut s.pg())
        .unwrap());

    // Disabled: refused at once, in profiles and enrollments.
    let r = d.post(&format!("/access-codes/{id}/disable"), &[("csrf", &token)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(d
        .get(&r.location.unwrap())
        .body
        .contains("Access code disabled"));
    assert_eq!(audit_count(&s, "access_code.disabled"), 1);
    assert_eq!(last_audit(&s, "access_code.disabled").0, "sales-officer");
    let dev = Device::new("kiosk-2", 2048);
    assert_eq!(
        dev.pkcs_req(&s, "auto", Some(code)).status,
        PkiStatus::Failure
    );
    assert_eq!(d.post("/challenges/mobileconfig", &mc).status, 400);
    // Without the token, enabling it again is refused.
    let r = d.post(&format!("/access-codes/{id}/enable"), &[]);
    assert_eq!(r.status, 403);
    assert_eq!(audit_count(&s, "access_code.enabled"), 0);
}

#[test]
fn an_api_key_made_in_the_console_is_shown_once_and_revoked_there() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    s.cli_ok(&["org", "create", "Beta"]);
    s.cli_ok(&[
        "admin",
        "create",
        "beta-rao",
        "--role",
        "rao",
        "--org",
        "Beta",
        "--password-env",
        "SCEPD_ADMIN_PASSWORD",
    ]);
    let acme = org_id(&s, "Acme");
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let token = m.csrf();

    // Refused: no name, no organization.
    let r = m.post("/api-keys", &[("csrf", &token), ("name", " ")]);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("id=\"name-error\""));
    assert!(r.body.contains("choose at least one organization"));

    let r = m.post(
        "/api-keys",
        &[
            ("csrf", &token),
            ("name", "acme-mdm"),
            ("organizations", &acme.to_string()),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let marker = "id=\"api-key-token\">";
    let at = r.body.find(marker).expect("token shown") + marker.len();
    let key = r.body[at..at + r.body[at..].find('<').unwrap()].to_string();
    assert!(key.starts_with("scepd_"), "{key}");
    assert!(!m.get("/api-keys").body.contains(&key), "shown once");
    assert!(!s.log().contains(&key), "never logged");
    use server::store::schema::api_keys as ak;
    let (id, hash): (i64, Vec<u8>) = ak::table
        .filter(ak::name.eq("acme-mdm"))
        .select((ak::id, ak::token_hash))
        .first(&mut s.pg())
        .unwrap();
    assert_eq!(hash, openssl::sha::sha256(key.as_bytes()).to_vec());
    assert_eq!(audit_count(&s, "api_key.created"), 1);

    let api = |k: &str| match ureq::get(&format!("{}/api/v1/profiles", s.url))
        .set("Authorization", &format!("Bearer {k}"))
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(c, _)) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(api(&key), 200);

    // Beta's RAO neither sees nor revokes it, nor makes one for Acme; a
    // DRAO makes none.
    let mut b = Client::new(&s);
    assert_eq!(b.login("beta-rao", ADMIN_PW).status, 303);
    assert!(!b.get("/api-keys").body.contains("acme-mdm"));
    let bt = b.csrf();
    assert_eq!(
        b.post(&format!("/api-keys/{id}/revoke"), &[("csrf", &bt)])
            .status,
        404
    );
    let r = b.post(
        "/api-keys",
        &[
            ("csrf", &bt),
            ("name", "forged"),
            ("organizations", &acme.to_string()),
        ],
    );
    assert_eq!(r.status, 403);
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    assert!(!d.get("/api-keys").body.contains("id=\"create-key\""));
    let dt = d.csrf();
    let r = d.post(
        "/api-keys",
        &[
            ("csrf", &dt),
            ("name", "drao"),
            ("organizations", &acme.to_string()),
        ],
    );
    assert_eq!(r.status, 403);
    assert_eq!(audit_count(&s, "api_key.created"), 1);
    assert_eq!(api(&key), 200);

    // Revoke without the token: refused. With it: the API answers 401.
    assert_eq!(m.post(&format!("/api-keys/{id}/revoke"), &[]).status, 403);
    assert_eq!(api(&key), 200);
    let r = m.post(&format!("/api-keys/{id}/revoke"), &[("csrf", &token)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(m.get(&r.location.unwrap()).body.contains("API key revoked"));
    assert_eq!(api(&key), 401);
    assert_eq!(audit_count(&s, "api_key.revoked"), 1);
    assert_eq!(last_audit(&s, "api_key.revoked").0, "admin");
}

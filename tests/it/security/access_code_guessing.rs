//! An organization's access code is a shared secret every device of the
//! organization may present; the console's configuration-profile download
//! checks one typed by an officer. That check must not become a guessing
//! oracle: it is counted per officer against the failed-attempt limit
//! (kept in PostgreSQL, as the SCEP challenge limit is), audited every
//! time, and open only for a place the officer holds, a department
//! counting only inside its own organization.

use crate::console::{acme_with_sales_drao, audit_count, Client, ADMIN_PW};
use crate::support::{Scepd, BIN};

const LIMIT: usize = 3;
const ACME_CODE: &str = "acme-shared-code-1";
const GLOBEX_CODE: &str = "globex-shared-code-1";

fn start() -> Scepd {
    let limit = LIMIT.to_string();
    Scepd::start_with(
        server::testdb::test_db().unwrap(),
        tempfile::tempdir().unwrap(),
        &[("SCEPD_CHALLENGE_FAILURE_LIMIT", limit.as_str())],
    )
}

fn access_code(s: &Scepd, org: &str, profile: &str, code: &str) {
    let out = std::process::Command::new(BIN)
        .args([
            "access-code",
            "create",
            "--org",
            org,
            "--profile",
            profile,
            "--label",
            "shared",
            "--code",
            code,
        ])
        .envs(s.cli_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Acme (Sales, Ops) with profile `auto` and DRAO `sales-officer`; Globex
/// with profile `globex`; an access code for each organization.
fn two_tenants() -> (Scepd, i64, i64, i64) {
    let s = start();
    acme_with_sales_drao(&s, "auto");
    s.cli_ok(&["org", "create", "Globex"]);
    s.cli_ok(&["profile", "create", "globex", "--org", "Globex"]);
    access_code(&s, "Acme", "auto", ACME_CODE);
    access_code(&s, "Globex", "globex", GLOBEX_CODE);
    let org = |n: &str| {
        server::store::orgs::org_by_name(&mut s.pg(), n)
            .unwrap()
            .unwrap()
            .id
    };
    let (acme, globex) = (org("Acme"), org("Globex"));
    let sales = server::store::orgs::departments_of(&mut s.pg(), acme)
        .unwrap()
        .into_iter()
        .find(|d| d.name == "Sales")
        .unwrap()
        .id;
    (s, acme, globex, sales)
}

fn download(c: &mut Client, profile: &str, place: &str, code: &str) -> (u16, String) {
    let token = c.csrf();
    let r = c.post(
        "/challenges/mobileconfig",
        &[
            ("csrf", &token),
            ("profile", profile),
            ("place", place),
            ("device", "lobby-ipad"),
            ("access_code", code),
        ],
    );
    (r.status, r.body)
}

#[test]
fn a_department_in_scope_opens_no_other_organization() {
    let (s, _acme, globex, sales) = two_tenants();
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    let forged = format!("{globex}:{sales}");
    // Right code or wrong, the answer is the same refusal: nothing about
    // Globex's code is learnt, and no file carries it.
    let (right, body) = download(&mut d, "globex", &forged, GLOBEX_CODE);
    assert_eq!(right, 403, "{body}");
    assert!(!body.contains(GLOBEX_CODE));
    let (wrong, _) = download(&mut d, "globex", &forged, "not-globex-code");
    assert_eq!(wrong, 403);
    // Its own department still works.
    let acme = server::store::orgs::org_by_name(&mut s.pg(), "Acme")
        .unwrap()
        .unwrap()
        .id;
    let (ok, body) = download(&mut d, "auto", &format!("{acme}:{sales}"), ACME_CODE);
    assert_eq!(ok, 200, "{body}");
}

#[test]
fn wrong_access_codes_are_throttled_per_officer_and_every_attempt_audited() {
    let (s, acme, _globex, sales) = two_tenants();
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let place = acme.to_string();
    for i in 0..LIMIT {
        let (st, body) = download(&mut m, "auto", &place, &format!("guess-number-{i}"));
        assert_eq!(st, 400, "{body}");
    }
    // The limit is used up: even the right code is not examined.
    let (st, body) = download(&mut m, "auto", &place, ACME_CODE);
    assert_eq!(st, 429, "{body}");
    assert!(!body.contains(ACME_CODE));
    assert_eq!(audit_count(&s, "access_code.checked"), LIMIT as i64 + 1);
    let outcomes: Vec<String> = {
        use diesel::prelude::*;
        use server::store::schema::audit_log;
        audit_log::table
            .filter(audit_log::event.eq("access_code.checked"))
            .order(audit_log::id)
            .select(audit_log::details)
            .load::<serde_json::Value>(&mut s.pg())
            .unwrap()
            .into_iter()
            .map(|d| d["outcome"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        outcomes,
        ["no match", "no match", "no match", "throttled"]
            .map(String::from)
            .to_vec()
    );
    // Another officer is not locked out by the admin's guesses.
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    let (st, body) = download(&mut d, "auto", &format!("{acme}:{sales}"), ACME_CODE);
    assert_eq!(st, 200, "{body}");
    assert_eq!(audit_count(&s, "access_code.checked"), LIMIT as i64 + 2);
}

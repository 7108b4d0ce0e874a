//! Issue 4: the audit log through an officer's scope, over real HTTP
//! against a real `scepd serve`. Entries carry the organization and
//! department they concern; an MRAO sees every entry, an RAO those of its
//! organizations, a DRAO those of its departments (each also its own), on
//! the audit page and in the dashboard's refusals, and no query parameter
//! widens that view.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use server::store::console_audit::{self, AuditFilter, Viewer};
use server::store::queue::{Cursor, Scope};
use server::store::schema::audit_log;
use server::store::{orgs, requests};
use server::wire::PkiStatus;

use crate::console::{acme_with_sales_drao, request_id_of, Client, ADMIN_PW};
use crate::device::Device;
use crate::support::Scepd;

/// Acme (Sales, Ops) and Globex, a manual profile for each, the Sales DRAO
/// `sales-officer` and the Acme RAO `acme-rao`; one pending request from a
/// device in each of Sales, Ops and Globex, decided by the MRAO.
struct World {
    s: Scepd,
    acme: i64,
    sales_dept: i64,
    ops_dept: i64,
    globex: i64,
    sales_req: i64,
    ops_req: i64,
    globex_req: i64,
}

fn serial_of(s: &Scepd, request_id: i64) -> String {
    use server::store::schema::certificates;
    certificates::table
        .filter(certificates::request_id.eq(request_id))
        .select(certificates::serial)
        .first(&mut s.pg())
        .unwrap()
}

fn world() -> World {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "manual");
    s.cli_ok(&["org", "create", "Globex"]);
    s.cli_ok(&[
        "profile",
        "create",
        "globex",
        "--approval",
        "manual",
        "--org",
        "Globex",
    ]);
    crate::console::create_rao(&s, "acme-rao", "Acme");
    let pending = |cn: &str, profile: &str, org: &str, dept: Option<&str>| {
        let mut args = vec!["challenge", "mint", "--profile", profile, "--org", org];
        if let Some(d) = dept {
            args.extend(["--department", d]);
        }
        let ch = s.cli_ok(&args).trim().to_string();
        let dev = Device::new(cn, 2048);
        assert_eq!(
            dev.pkcs_req(&s, profile, Some(&ch)).status,
            PkiStatus::Pending
        );
        request_id_of(&s, &dev)
    };
    let sales_req = pending("sales-laptop-1", "manual", "Acme", Some("Sales"));
    let ops_req = pending("ops-server-1", "manual", "Acme", Some("Ops"));
    let globex_req = pending("globex-phone-1", "globex", "Globex", None);
    let decide = |args: &[&str]| {
        s.cli_ok(args);
    };
    decide(&[
        "request",
        "approve",
        &sales_req.to_string(),
        "--actor",
        "admin",
    ]);
    decide(&[
        "request",
        "approve",
        &ops_req.to_string(),
        "--actor",
        "admin",
    ]);
    decide(&[
        "request",
        "decline",
        &globex_req.to_string(),
        "--reason",
        "not ours",
        "--actor",
        "admin",
    ]);
    let org = |name: &str| orgs::org_by_name(&mut s.pg(), name).unwrap().unwrap().id;
    let (acme, globex) = (org("Acme"), org("Globex"));
    let dept = |name: &str| {
        orgs::departments_of(&mut s.pg(), acme)
            .unwrap()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap()
            .id
    };
    let (sales_dept, ops_dept) = (dept("Sales"), dept("Ops"));
    World {
        s,
        acme,
        sales_dept,
        ops_dept,
        globex,
        sales_req,
        ops_req,
        globex_req,
    }
}

fn login(s: &Scepd, user: &str) -> Client {
    let mut c = Client::new(s);
    assert_eq!(c.login(user, ADMIN_PW).status, 303);
    c
}

/// The cell a request's entries show as their target.
fn req(id: i64) -> String {
    format!("<td>request:{id}</td>")
}

fn cert(serial: &str) -> String {
    format!("<td>certificate:{serial}</td>")
}

#[test]
fn decisions_and_issuance_are_filed_under_their_organization_and_department() {
    let w = world();
    let scope_of = |target: String| -> Vec<(String, Option<i64>, Option<i64>)> {
        audit_log::table
            .filter(audit_log::target.eq(target))
            .order(audit_log::id)
            .select((
                audit_log::event,
                audit_log::organization_id,
                audit_log::department_id,
            ))
            .load(&mut w.s.pg())
            .unwrap()
    };
    let sales = (Some(w.acme), Some(w.sales_dept));
    let events = scope_of(format!("request:{}", w.sales_req));
    assert_eq!(
        events,
        vec![
            ("request.pending".to_string(), sales.0, sales.1),
            ("request.approved".to_string(), sales.0, sales.1),
        ]
    );
    let issued = scope_of(format!("certificate:{}", serial_of(&w.s, w.sales_req)));
    assert_eq!(
        issued,
        vec![("certificate.issued".into(), sales.0, sales.1)]
    );
    let declined = scope_of(format!("request:{}", w.globex_req));
    assert_eq!(
        declined[1],
        ("request.declined".into(), Some(w.globex), None)
    );
    // The challenge was minted for, and used in, Ops.
    let challenge = requests::by_id(&mut w.s.pg(), w.ops_req)
        .unwrap()
        .challenge_id
        .unwrap();
    let ops = (Some(w.acme), Some(w.ops_dept));
    assert_eq!(
        scope_of(format!("challenge:{challenge}")),
        vec![
            ("challenge.minted".into(), ops.0, ops.1),
            ("challenge.used".into(), ops.0, ops.1),
        ]
    );
    // A login concerns no organization.
    let logins: Vec<Option<i64>> = audit_log::table
        .filter(audit_log::event.eq("console.login"))
        .select(audit_log::organization_id)
        .load(&mut w.s.pg())
        .unwrap();
    assert!(logins.iter().all(Option::is_none));
}

#[test]
fn an_rao_sees_its_organizations_entries_and_not_another_organizations() {
    let w = world();
    let (sales_cert, ops_cert) = (serial_of(&w.s, w.sales_req), serial_of(&w.s, w.ops_req));
    login(&w.s, "admin");
    let mut rao = login(&w.s, "acme-rao");
    let page = rao.get("/audit");
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains("organizations and departments you are assigned to"));
    for seen in [
        req(w.sales_req),
        req(w.ops_req),
        cert(&sales_cert),
        cert(&ops_cert),
    ] {
        assert!(page.body.contains(&seen), "{seen} missing:\n{}", page.body);
    }
    assert!(!page.body.contains(&req(w.globex_req)), "{}", page.body);
    // Its own login, though it concerns no organization; not the MRAO's.
    assert!(page.body.contains("<td>acme-rao</td>"));
    assert!(page.body.contains("<td>admin:acme-rao</td>"));
    assert!(!page.body.contains("<td>admin:admin</td>"));
    // Filters narrow within the scope.
    let declined = rao.get("/audit?event=request.declined");
    assert!(declined.body.contains("No entries."), "{}", declined.body);
    let issued = rao.get("/audit?event=certificate.issued&actor=admin");
    assert!(issued.body.contains(&cert(&ops_cert)));
    assert!(!issued.body.contains(&req(w.ops_req)));
}

#[test]
fn a_drao_sees_its_departments_entries_and_not_the_sibling_departments() {
    let w = world();
    let mut d = login(&w.s, "sales-officer");
    let page = d.get("/audit");
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&req(w.sales_req)), "{}", page.body);
    assert!(page.body.contains(&cert(&serial_of(&w.s, w.sales_req))));
    for hidden in [
        req(w.ops_req),
        cert(&serial_of(&w.s, w.ops_req)),
        req(w.globex_req),
    ] {
        assert!(
            !page.body.contains(&hidden),
            "{hidden} shown:\n{}",
            page.body
        );
    }
    // The MRAO's decision about Sales is Sales' news; its login is not.
    let by_admin = d.get("/audit?actor=admin");
    assert!(by_admin.body.contains(&req(w.sales_req)));
    assert!(!by_admin.body.contains("console.login</code>"));
}

#[test]
fn the_mrao_sees_every_organizations_entries() {
    let w = world();
    let mut m = login(&w.s, "admin");
    let page = m.get("/audit");
    assert!(!page.body.contains("you are assigned to"));
    for seen in [req(w.sales_req), req(w.ops_req), req(w.globex_req)] {
        assert!(page.body.contains(&seen), "{seen} missing");
    }
}

#[test]
fn query_parameters_cannot_widen_an_officers_view() {
    let w = world();
    let mut d = login(&w.s, "sales-officer");
    // Parameters the page does not know are ignored, not obeyed.
    for q in [
        format!("/audit?organization_id={}", w.globex),
        format!("/audit?department_id={}", w.ops_dept),
        "/audit?scope=all&role=mrao&only_actor=".to_string(),
        "/audit?actor=scep&event=request.pending".to_string(),
    ] {
        let page = d.get(&q);
        assert_eq!(page.status, 200, "{q}");
        assert!(!page.body.contains(&req(w.ops_req)), "{q}");
        assert!(!page.body.contains(&req(w.globex_req)), "{q}");
    }
    // A cursor from anywhere only moves the page; it pages the same scope.
    let far_future = Cursor {
        created_at: chrono::Utc::now() + chrono::Duration::days(1),
        id: i64::MAX,
    };
    let page = d.get(&format!("/audit?after={}", far_future.encode()));
    assert!(page.body.contains(&req(w.sales_req)));
    assert!(!page.body.contains(&req(w.ops_req)));
    assert_eq!(d.get("/audit?after=1.2.3").status, 400);
}

#[test]
fn dashboard_refusals_are_those_in_the_officers_scope() {
    let w = world();
    // A refusal before the client proved anything: no organization.
    let stranger = Device::new("stranger-1", 2048);
    assert_eq!(
        stranger
            .pkcs_req(&w.s, "manual", Some("not-a-challenge"))
            .status,
        PkiStatus::Failure
    );
    let mut m = login(&w.s, "admin");
    let page = m.get("/");
    assert!(page.body.contains("Recent refusals"));
    let txid = format!("transaction:{}", stranger.txid().0);
    assert!(page.body.contains(&txid), "{}", page.body);
    let mut d = login(&w.s, "sales-officer");
    let page = d.get("/");
    assert!(page.body.contains("Recent refusals"));
    assert!(!page.body.contains(&txid));
}

/// Walk every page of `viewer`'s view with a small page size.
fn all_pages(s: &Scepd, viewer: Viewer<'_>, f: &AuditFilter) -> Vec<i64> {
    let mut seen = vec![];
    let mut after = None;
    loop {
        let page = console_audit::list(&mut s.pg(), viewer, f, after, 2).unwrap();
        assert!(page.rows.len() <= 2);
        seen.extend(page.rows.iter().map(|r| r.id));
        match page.next {
            Some(c) => after = Some(c),
            None => return seen,
        }
    }
}

#[test]
fn scoped_keyset_pages_cover_the_scope_once_newest_first() {
    let w = world();
    let scope = Scope::Limited {
        organizations: vec![w.globex],
        departments: vec![w.sales_dept],
    };
    let admin = server::store::admins::by_username(&mut w.s.pg(), "admin")
        .unwrap()
        .unwrap()
        .id;
    let viewer = Viewer {
        scope: &scope,
        officer_id: Some(admin),
    };
    let f = AuditFilter::default();
    let paged = all_pages(&w.s, viewer, &f);
    let expected: Vec<i64> = audit_log::table
        .filter(
            audit_log::organization_id
                .eq(w.globex)
                .or(audit_log::department_id.eq(w.sales_dept))
                .or(audit_log::actor_officer_id.eq(admin)),
        )
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .select(audit_log::id)
        .load(&mut w.s.pg())
        .unwrap();
    assert!(expected.len() > 6, "{expected:?}");
    assert_eq!(paged, expected);
    // Nothing assigned: only one's own entries.
    let nothing = Scope::Limited {
        organizations: vec![],
        departments: vec![],
    };
    let own = all_pages(
        &w.s,
        Viewer {
            scope: &nothing,
            officer_id: None,
        },
        &f,
    );
    assert!(own.is_empty());
}

#[test]
fn the_migration_backfills_scope_from_what_entries_name() {
    let w = world();
    let mut conn = w.s.pg();
    let scoped = |conn: &mut PgConnection| -> Vec<(i64, Option<i64>, Option<i64>)> {
        // An officer's creation names its organization by what the CLI
        // was given (name or id): not backfilled.
        audit_log::table
            .filter(audit_log::organization_id.is_not_null())
            .filter(audit_log::target.not_like("admin:%"))
            .order(audit_log::id)
            .select((
                audit_log::id,
                audit_log::organization_id,
                audit_log::department_id,
            ))
            .load(conn)
            .unwrap()
    };
    let recorded = scoped(&mut conn);
    conn.batch_execute(include_str!(
        "../../migrations/2026-11-24-000008_audit_scope/down.sql"
    ))
    .unwrap();
    conn.batch_execute(include_str!(
        "../../migrations/2026-11-24-000008_audit_scope/up.sql"
    ))
    .unwrap();
    // Every other entry recorded with a scope names a request, certificate,
    // challenge, organization or single-organization profile, so the
    // backfill finds the same scope.
    assert_eq!(scoped(&mut conn), recorded);
}

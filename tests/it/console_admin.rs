//! Organizations, departments and officers managed in the console (issue
//! 4), over real HTTP against a real `scepd serve`: an MRAO builds an
//! organization and its RAO; the RAO and a DRAO stay inside their scope,
//! also with forged POSTs; disabled officers lose their sessions; refused
//! forms keep what was typed; the last MRAO stays; every change is audited;
//! a disabled organization or department mints and enrolls nothing.

use server::store::{admins, orgs};
use server::wire::PkiStatus;

use crate::console::{acme_with_sales_drao, audit_count, csrf_in, Client, ADMIN_PW};
use crate::device::Device;
use crate::support::Scepd;

const NEW_PW: &str = "a-long-initial-password";

fn org_id(s: &Scepd, name: &str) -> i64 {
    orgs::org_by_name(&mut s.pg(), name)
        .unwrap()
        .expect("organization exists")
        .id
}

fn dept_id(s: &Scepd, org: &str, name: &str) -> i64 {
    orgs::departments_of(&mut s.pg(), org_id(s, org))
        .unwrap()
        .into_iter()
        .find(|d| d.name == name)
        .expect("department exists")
        .id
}

fn officer(s: &Scepd, username: &str) -> Option<admins::Admin> {
    admins::by_username(&mut s.pg(), username).unwrap()
}

fn logged_in(s: &Scepd, user: &str, password: &str) -> Client {
    let mut c = Client::new(s);
    let r = c.login(user, password);
    assert_eq!(r.status, 303, "login of {user}: {}", r.body);
    c
}

/// The id at the end of a redirect such as `/officers/7?msg=created`.
fn id_in(location: &Option<String>) -> i64 {
    let l = location.as_deref().expect("a redirect");
    let path = l.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().parse().unwrap()
}

#[test]
fn an_mrao_builds_an_organization_whose_rao_stays_inside_it() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "manual");
    let acme = org_id(&s, "Acme");
    let sales_officer = officer(&s, "sales-officer").unwrap();
    let mut m = logged_in(&s, "admin", ADMIN_PW);
    let token = m.csrf();
    let before = (
        audit_count(&s, "organization.created"),
        audit_count(&s, "department.created"),
        audit_count(&s, "admin.created"),
    );

    let r = m.post("/organizations", &[("csrf", &token), ("name", "Globex")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let globex = id_in(&r.location);
    assert_eq!(globex, org_id(&s, "Globex"));
    let page = m.get(r.location.as_deref().unwrap());
    assert!(page.body.contains("Organization created."), "{}", page.body);
    let r = m.post(
        &format!("/organizations/{globex}/departments"),
        &[("csrf", &token), ("department", "Labs")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let labs = dept_id(&s, "Globex", "Labs");
    assert_eq!(id_in(&r.location), labs);
    assert!(m
        .get(r.location.as_deref().unwrap())
        .body
        .contains("Department created."));
    let r = m.post(
        "/officers",
        &[
            ("csrf", &token),
            ("username", "globex-rao"),
            ("password", NEW_PW),
            ("role", "rao"),
            ("email", "ra@globex.example"),
            ("scope", &globex.to_string()),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let created = m.get(r.location.as_deref().unwrap());
    assert!(
        created.body.contains("Officer created."),
        "{}",
        created.body
    );
    assert!(!created.body.contains(NEW_PW));
    let rao = officer(&s, "globex-rao").unwrap();
    assert_eq!(
        (rao.role.as_str(), rao.email.as_deref()),
        ("rao", Some("ra@globex.example"))
    );
    assert_eq!(
        (
            audit_count(&s, "organization.created"),
            audit_count(&s, "department.created"),
            audit_count(&s, "admin.created"),
        ),
        (before.0 + 1, before.1 + 1, before.2 + 1)
    );

    // The RAO sees its organization and no other, and only officers it
    // may manage (itself here).
    let mut r_ = logged_in(&s, "globex-rao", NEW_PW);
    let t = r_.csrf();
    let list = r_.get("/organizations");
    assert!(
        list.body.contains("Globex") && !list.body.contains("Acme"),
        "{}",
        list.body
    );
    assert!(!list.body.contains("New organization"));
    let officers = r_.get("/officers");
    assert!(officers.body.contains("globex-rao"), "{}", officers.body);
    assert!(!officers.body.contains("sales-officer") && !officers.body.contains(">admin<"));
    assert_eq!(r_.get(&format!("/organizations/{acme}")).status, 404);

    // Departments of its organization are its to manage; the
    // organization itself is the MRAO's.
    let r = r_.post(
        &format!("/organizations/{globex}/departments"),
        &[("csrf", &t), ("department", "Research")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let research = dept_id(&s, "Globex", "Research");
    let r = r_.post(&format!("/departments/{research}/disable"), &[("csrf", &t)]);
    assert_eq!(r.status, 303);
    assert!(
        !orgs::department_by_id(&mut s.pg(), research)
            .unwrap()
            .enabled
    );
    assert_eq!(audit_count(&s, "department.disabled"), 1);
    let r = r_.post(
        &format!("/organizations/{globex}"),
        &[("csrf", &t), ("name", "Mine")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r_.post("/organizations", &[("csrf", &t), ("name", "Rogue")])
            .status,
        403
    );
    assert!(orgs::org_by_name(&mut s.pg(), "Rogue").unwrap().is_none());

    // It creates a DRAO for its department ...
    let r = r_.post(
        "/officers",
        &[
            ("csrf", &t),
            ("username", "labs-drao"),
            ("password", NEW_PW),
            ("role", "drao"),
            ("scope", &format!("{globex}:{labs}")),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(officer(&s, "labs-drao").unwrap().role, "drao");
    // ... but never an MRAO, nor an officer for another organization.
    let r = r_.post(
        "/officers",
        &[
            ("csrf", &t),
            ("username", "boss"),
            ("password", NEW_PW),
            ("role", "mrao"),
        ],
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(r.body.contains("above your own role"), "{}", r.body);
    assert!(officer(&s, "boss").is_none());
    let r = r_.post(
        "/officers",
        &[
            ("csrf", &t),
            ("username", "spy"),
            ("password", NEW_PW),
            ("role", "rao"),
            ("scope", &acme.to_string()),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("outside your scope"), "{}", r.body);
    assert!(officer(&s, "spy").is_none());

    // Forged POSTs at another organization and at officers out of reach
    // are refused and change nothing.
    let depts_before = orgs::departments_of(&mut s.pg(), acme).unwrap().len();
    let r = r_.post(
        &format!("/organizations/{acme}/departments"),
        &[("csrf", &t), ("department", "Forged")],
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        orgs::departments_of(&mut s.pg(), acme).unwrap().len(),
        depts_before
    );
    let sales = dept_id(&s, "Acme", "Sales");
    assert_eq!(
        r_.post(&format!("/departments/{sales}/disable"), &[("csrf", &t)])
            .status,
        404
    );
    assert!(orgs::department_by_id(&mut s.pg(), sales).unwrap().enabled);
    let r = r_.post(
        &format!("/officers/{}/disable", sales_officer.id),
        &[("csrf", &t)],
    );
    assert_eq!(r.status, 404);
    assert!(officer(&s, "sales-officer").unwrap().enabled);
    let admin = officer(&s, "admin").unwrap();
    let r = r_.post(
        &format!("/officers/{}", admin.id),
        &[
            ("csrf", &t),
            ("role", "rao"),
            ("scope", &globex.to_string()),
        ],
    );
    assert_eq!(r.status, 404);
    assert_eq!(officer(&s, "admin").unwrap().role, "mrao");
    let r = r_.post(
        &format!("/officers/{}/password", admin.id),
        &[("csrf", &t), ("password", "taken-over-password")],
    );
    assert_eq!(r.status, 404);
    assert_eq!(logged_in(&s, "admin", ADMIN_PW).get("/").status, 200);
}

#[test]
fn a_drao_sees_its_departments_read_only_and_manages_draos_there() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "manual");
    let (acme, sales, ops) = (
        org_id(&s, "Acme"),
        dept_id(&s, "Acme", "Sales"),
        dept_id(&s, "Acme", "Ops"),
    );
    let mut d = logged_in(&s, "sales-officer", ADMIN_PW);
    let t = d.csrf();
    let page = d.get(&format!("/organizations/{acme}"));
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Sales") && !page.body.contains("Ops"),
        "{}",
        page.body
    );
    assert!(page.body.contains("read-only") && !page.body.contains("Add department"));
    assert_eq!(d.get(&format!("/departments/{ops}")).status, 404);
    let r = d.post(
        &format!("/organizations/{acme}/departments"),
        &[("csrf", &t), ("department", "Mine")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        d.post(&format!("/departments/{sales}/disable"), &[("csrf", &t)])
            .status,
        403
    );
    assert!(orgs::department_by_id(&mut s.pg(), sales).unwrap().enabled);

    let create = |c: &mut Client, user: &str, role: &str, scope: &str| {
        c.post(
            "/officers",
            &[
                ("csrf", &t),
                ("username", user),
                ("password", NEW_PW),
                ("role", role),
                ("scope", scope),
            ],
        )
    };
    let r = create(&mut d, "sales-2", "drao", &format!("{acme}:{sales}"));
    assert_eq!(r.status, 303, "{}", r.body);
    let r = create(&mut d, "ops-2", "drao", &format!("{acme}:{ops}"));
    assert_eq!(r.status, 422);
    assert!(r.body.contains("outside your scope"));
    let r = create(&mut d, "acme-rao", "rao", &acme.to_string());
    assert_eq!(r.status, 422);
    assert!(r.body.contains("above your own role"));
    assert!(officer(&s, "ops-2").is_none() && officer(&s, "acme-rao").is_none());

    // The new DRAO is the DRAO's to edit; the MRAO is not even visible.
    let sales2 = officer(&s, "sales-2").unwrap();
    let r = d.post(
        &format!("/officers/{}", sales2.id),
        &[
            ("csrf", &t),
            ("role", "drao"),
            ("email", "s2@acme.example"),
            ("scope", &format!("{acme}:{sales}")),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        officer(&s, "sales-2").unwrap().email.as_deref(),
        Some("s2@acme.example")
    );
    assert_eq!(audit_count(&s, "admin.updated"), 1);
    let admin = officer(&s, "admin").unwrap();
    assert_eq!(d.get(&format!("/officers/{}", admin.id)).status, 404);
}

#[test]
fn a_disabled_officer_cannot_log_in_and_its_live_session_is_cut() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "manual");
    let target = officer(&s, "sales-officer").unwrap();
    let mut victim = logged_in(&s, "sales-officer", ADMIN_PW);
    assert_eq!(victim.get("/").status, 200);

    let mut m = logged_in(&s, "admin", ADMIN_PW);
    let t = m.csrf();
    let r = m.post(&format!("/officers/{}/disable", target.id), &[("csrf", &t)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(m
        .get(r.location.as_deref().unwrap())
        .body
        .contains("Officer disabled"));
    assert_eq!(audit_count(&s, "admin.disabled"), 1);
    assert!(!officer(&s, "sales-officer").unwrap().enabled);
    let cut = victim.get("/");
    assert_eq!((cut.status, cut.location.as_deref()), (303, Some("/login")));
    assert_eq!(Client::new(&s).login("sales-officer", ADMIN_PW).status, 401);

    let r = m.post(&format!("/officers/{}/enable", target.id), &[("csrf", &t)]);
    assert_eq!(r.status, 303);
    assert_eq!(audit_count(&s, "admin.enabled"), 1);
    let mut again = logged_in(&s, "sales-officer", ADMIN_PW);

    // A password reset ends the officer's sessions too; the old password
    // is gone, the new one works.
    let r = m.post(
        &format!("/officers/{}/password", target.id),
        &[("csrf", &t), ("password", "short")],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("at least 12 characters") && !r.body.contains("value=\"short\""));
    let r = m.post(
        &format!("/officers/{}/password", target.id),
        &[("csrf", &t), ("password", NEW_PW)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(audit_count(&s, "admin.password_reset"), 1);
    assert_eq!(again.get("/").status, 303);
    assert_eq!(Client::new(&s).login("sales-officer", ADMIN_PW).status, 401);
    logged_in(&s, "sales-officer", NEW_PW);
}

#[test]
fn refused_forms_keep_what_was_typed_and_mark_each_bad_field() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "manual");
    let acme = org_id(&s, "Acme");
    let mut m = logged_in(&s, "admin", ADMIN_PW);
    let t = m.csrf();
    let admins_before = admins::list(&mut s.pg()).unwrap().len();

    let r = m.post(
        "/officers",
        &[
            ("csrf", &t),
            ("username", "sales-officer"),
            ("password", "typed-secret-password"),
            ("role", "rao"),
            ("email", "not-an-email"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let b = &r.body;
    assert!(
        b.contains("value=\"sales-officer\"") && b.contains("value=\"not-an-email\""),
        "{b}"
    );
    assert!(b.contains("<option value=\"rao\" selected>"), "{b}");
    assert!(b.contains("id=\"username-error\">already exists"), "{b}");
    assert!(b.contains("id=\"email-error\">not an email address"), "{b}");
    assert!(
        b.contains("id=\"scope-error\">choose at least one organization"),
        "{b}"
    );
    assert!(
        b.contains("aria-invalid=\"true\" aria-describedby=\"email-error\""),
        "{b}"
    );
    assert!(b.contains("class=\"form-errors\""));
    assert!(
        !b.contains("typed-secret-password"),
        "the password is never shown again"
    );
    assert_eq!(admins::list(&mut s.pg()).unwrap().len(), admins_before);
    // The form still carries a working CSRF token.
    assert_eq!(csrf_in(b), t);

    let r = m.post("/organizations", &[("csrf", &t), ("name", "   ")]);
    assert_eq!(r.status, 422);
    assert!(r.body.contains("id=\"name-error\">required"), "{}", r.body);
    let r = m.post("/organizations", &[("csrf", &t), ("name", "Acme")]);
    assert_eq!(r.status, 422);
    assert!(r.body.contains("value=\"Acme\"") && r.body.contains("already exists"));
    let r = m.post(
        &format!("/organizations/{acme}/departments"),
        &[("csrf", &t), ("department", "Sales")],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("id=\"department-error\">already exists"),
        "{}",
        r.body
    );
    assert!(r.body.contains("aria-describedby=\"department-error\""));
    assert_eq!(orgs::departments_of(&mut s.pg(), acme).unwrap().len(), 2);

    // Without the CSRF token nothing happens at all.
    let r = m.post("/organizations", &[("name", "NoToken")]);
    assert_eq!(r.status, 403);
    let r = m.post(&format!("/organizations/{acme}/disable"), &[]);
    assert_eq!(r.status, 403);
    assert!(orgs::org_by_name(&mut s.pg(), "NoToken").unwrap().is_none());
    assert!(orgs::org_by_id(&mut s.pg(), acme).unwrap().enabled);
}

#[test]
fn the_last_enabled_mrao_is_neither_disabled_nor_demoted() {
    let s = Scepd::start();
    let admin = officer(&s, "admin").unwrap();
    let mut m = logged_in(&s, "admin", ADMIN_PW);
    let t = m.csrf();
    let r = m.post(&format!("/officers/{}/disable", admin.id), &[("csrf", &t)]);
    assert_eq!(r.status, 409);
    assert!(r.body.contains("last enabled MRAO"), "{}", r.body);
    let r = m.post(
        &format!("/officers/{}", admin.id),
        &[("csrf", &t), ("role", "rao"), ("scope", "1")],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("must stay an MRAO"), "{}", r.body);
    let a = officer(&s, "admin").unwrap();
    assert_eq!((a.role.as_str(), a.enabled), ("mrao", true));
    assert_eq!(
        audit_count(&s, "admin.disabled") + audit_count(&s, "admin.updated"),
        0
    );

    // With a second MRAO, one may disable the other.
    let r = m.post(
        "/officers",
        &[
            ("csrf", &t),
            ("username", "boss-2"),
            ("password", NEW_PW),
            ("role", "mrao"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let boss = officer(&s, "boss-2").unwrap();
    let r = m.post(&format!("/officers/{}/disable", boss.id), &[("csrf", &t)]);
    assert_eq!(r.status, 303);
    assert!(!officer(&s, "boss-2").unwrap().enabled);
}

#[test]
fn a_disabled_organization_or_department_mints_and_enrolls_nothing() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "manual");
    let (acme, sales) = (org_id(&s, "Acme"), dept_id(&s, "Acme", "Sales"));
    let minted_before_disable = s
        .cli_ok(&["challenge", "mint", "--profile", "manual", "--org", "Acme"])
        .trim()
        .to_string();
    let mut m = logged_in(&s, "admin", ADMIN_PW);
    let t = m.csrf();
    let mint = |c: &mut Client, place: &str| {
        c.post(
            "/challenges",
            &[
                ("csrf", &t),
                ("profile", "manual"),
                ("place", place),
                ("count", "1"),
                ("ttl", "1h"),
            ],
        )
    };

    let r = m.post(&format!("/departments/{sales}/disable"), &[("csrf", &t)]);
    assert_eq!(r.status, 303);
    assert!(m
        .get(&format!("/organizations/{acme}"))
        .body
        .contains("disabled"));
    let r = mint(&mut m, &format!("{acme}:{sales}"));
    assert_eq!(r.status, 422);
    assert!(r.body.contains("is disabled"), "{}", r.body);
    assert_eq!(mint(&mut m, &acme.to_string()).status, 200);

    let r = m.post(&format!("/organizations/{acme}/disable"), &[("csrf", &t)]);
    assert_eq!(r.status, 303);
    assert_eq!(audit_count(&s, "organization.disabled"), 1);
    assert_eq!(mint(&mut m, &acme.to_string()).status, 422);
    // A challenge minted earlier no longer enrolls, and stays unused.
    let dev = Device::new("acme-laptop", 2048);
    assert_eq!(
        dev.pkcs_req(&s, "manual", Some(&minted_before_disable))
            .status,
        PkiStatus::Failure
    );
    // Enabled again, the same challenge works.
    let r = m.post(&format!("/organizations/{acme}/enable"), &[("csrf", &t)]);
    assert_eq!(r.status, 303);
    let dev = Device::new("acme-laptop-2", 2048);
    assert_eq!(
        dev.pkcs_req(&s, "manual", Some(&minted_before_disable))
            .status,
        PkiStatus::Pending
    );
}

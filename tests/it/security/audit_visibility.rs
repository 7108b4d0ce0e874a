//! The audit log never shows one tenant another's devices. Device events
//! are written under fixed actor names (`scep`, `auto-approve`, `purge`,
//! ...); no officer may take such a name, and an officer sees its own
//! actions by who it is (the officer's id recorded with each action), not
//! by an entry's actor name, plus the entries filed under its
//! organizations and departments.

use diesel::prelude::*;
use server::store::admins::{self, Role};
use server::wire::PkiStatus;

use crate::console::{acme_with_sales_drao, csrf_in, Client, ADMIN_PW};
use crate::device::Device;
use crate::support::Scepd;

const SYSTEM_NAMES: &[&str] = &[
    "scep",
    "auto-approve",
    "purge",
    "system",
    "cli",
    "api",
    "bootstrap",
    "AUTO-APPROVE",
];

fn officer_id(s: &Scepd, name: &str) -> Option<i64> {
    admins::by_username(&mut s.pg(), name)
        .unwrap()
        .map(|a| a.id)
}

#[test]
fn no_officer_takes_a_system_actor_name_in_the_cli_or_the_console() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    for name in SYSTEM_NAMES {
        let out = s.cli(&[
            "admin",
            "create",
            name,
            "--role",
            "drao",
            "--org",
            "Acme",
            "--department",
            "Sales",
            "--password-env",
            "SCEPD_ADMIN_PASSWORD",
        ]);
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("reserved"), "{name}: {err}");
        assert!(officer_id(&s, name).is_none(), "{name}");
    }
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let token = csrf_in(&m.get("/officers/new").body);
    for name in SYSTEM_NAMES {
        let r = m.post(
            "/officers",
            &[
                ("csrf", &token),
                ("username", name),
                ("password", "a-long-initial-password"),
                ("role", "mrao"),
                ("email", ""),
            ],
        );
        assert_eq!(r.status, 422, "{name}: {}", r.body);
        assert!(r.body.contains("reserved"), "{name}: {}", r.body);
        assert!(officer_id(&s, name).is_none(), "{name}");
    }
}

/// Acme's auto-approve profile issues a certificate to `cn`.
fn issue_in_acme(s: &Scepd, cn: &str) {
    let ch = s
        .cli_ok(&["challenge", "mint", "--profile", "auto", "--org", "Acme"])
        .trim()
        .to_string();
    assert_eq!(
        Device::new(cn, 2048).pkcs_req(s, "auto", Some(&ch)).status,
        PkiStatus::Success
    );
}

#[test]
fn an_officer_named_like_a_system_actor_sees_no_other_tenants_devices() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    s.cli_ok(&["org", "create", "Globex"]);
    s.cli_ok(&["org", "add-department", "Globex", "Labs"]);
    let globex = server::store::orgs::org_by_name(&mut s.pg(), "Globex")
        .unwrap()
        .unwrap()
        .id;
    let labs = server::store::orgs::departments_of(&mut s.pg(), globex).unwrap()[0].id;
    // An officer that got the name before names were reserved.
    let hash = server::bootstrap::hash_password(ADMIN_PW).unwrap();
    let mut conn = s.pg();
    let squatter = admins::create(&mut conn, "auto-approve", &hash, Role::Drao, None).unwrap();
    admins::add_scope(&mut conn, squatter.id, globex, Some(labs)).unwrap();
    drop(conn);

    issue_in_acme(&s, "acme-secret-laptop");
    let mut c = Client::new(&s);
    assert_eq!(c.login("auto-approve", ADMIN_PW).status, 303);
    let page = c.get("/audit");
    assert_eq!(page.status, 200);
    for shown in [
        "<code>certificate.issued</code>",
        "<code>challenge.used</code>",
        "acme-secret-laptop",
    ] {
        assert!(!page.body.contains(shown), "{shown}: {}", page.body);
    }
    let filtered = c.get("/audit?actor=auto-approve&event=certificate.issued");
    assert_eq!(filtered.status, 200);
    assert!(!filtered.body.contains("certificate:"), "{}", filtered.body);
    // Its dashboard shows no other tenant's refusals either.
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn an_officer_sees_its_own_actions_by_identity_not_by_name() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    let sales_officer = officer_id(&s, "sales-officer").unwrap();
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    use server::store::schema::audit_log;
    #[derive(QueryableByName)]
    struct Who {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        actor_officer_id: Option<i64>,
    }
    let login: Who = diesel::sql_query(
        "SELECT actor_officer_id FROM audit_log \
         WHERE event = 'console.login' AND actor = 'sales-officer' ORDER BY id DESC LIMIT 1",
    )
    .get_result(&mut s.pg())
    .unwrap();
    assert_eq!(login.actor_officer_id, Some(sales_officer));
    // An entry that merely carries the officer's name, written by no
    // officer and filed under no place, is not the officer's.
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor.eq("sales-officer"),
            audit_log::event.eq("certificate.issued"),
            audit_log::target.eq("certificate:NOT-MINE"),
            audit_log::details.eq(serde_json::json!({})),
        ))
        .execute(&mut s.pg())
        .unwrap();
    let page = d.get("/audit");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<code>console.login</code>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("NOT-MINE"), "{}", page.body);
}

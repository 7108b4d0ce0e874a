//! Bulk approve/decline of selected queue rows over real HTTP: each row is
//! decided through `Enroll` within the officer's scope; rows outside it are
//! counted as failed and left untouched.

use diesel::prelude::*;
use server::wire::PkiStatus;

use crate::console::{acme_with_sales_drao, audit_count, Client, ADMIN_PW};
use crate::device::Device;
use crate::support::Scepd;

#[test]
fn bulk_decisions_apply_only_within_scope() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "manual");
    let pending = |cn: &str, dept: &str| {
        let ch = s
            .cli_ok(&[
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
            .to_string();
        let dev = Device::new(cn, 2048);
        assert_eq!(
            dev.pkcs_req(&s, "manual", Some(&ch)).status,
            PkiStatus::Pending
        );
        use server::store::schema::enrollment_requests as er;
        er::table
            .filter(er::common_name.eq(cn))
            .select(er::id)
            .first::<i64>(&mut s.pg())
            .unwrap()
    };
    let a = pending("sales-a", "Sales");
    let b = pending("sales-b", "Sales");
    let c = pending("sales-c", "Sales");
    let ops = pending("ops-a", "Ops");
    let status = |id| {
        server::store::requests::by_id(&mut s.pg(), id)
            .unwrap()
            .status
    };

    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    let q = d.get("/requests?status=requested");
    assert!(q.body.contains(&format!("name=\"ids\" value=\"{a}\"")));
    let token = d.csrf();
    let (a_s, b_s, ops_s) = (a.to_string(), b.to_string(), ops.to_string());
    let r = d.post(
        "/requests/bulk",
        &[
            ("csrf", &token),
            ("ids", &a_s),
            ("ids", &b_s),
            ("ids", &ops_s),
            ("action", "approve"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = d.get(r.location.as_deref().unwrap());
    assert!(page.body.contains("2 request(s) decided; 1 could not be"));
    assert_eq!(status(a), "issued");
    assert_eq!(status(b), "issued");
    assert_eq!(status(ops), "requested", "outside scope: untouched");

    // Decline needs a reason; then declines.
    let c_s = c.to_string();
    let r = d.post(
        "/requests/bulk",
        &[("csrf", &token), ("ids", &c_s), ("action", "decline")],
    );
    assert_eq!(r.status, 400);
    let r = d.post(
        "/requests/bulk",
        &[
            ("csrf", &token),
            ("ids", &c_s),
            ("ids", &ops_s),
            ("action", "decline"),
            ("reason", "not ours"),
        ],
    );
    assert_eq!(r.status, 303);
    assert_eq!(status(c), "declined");
    assert_eq!(status(ops), "requested");
    assert_eq!(audit_count(&s, "request.approved"), 2);
    assert_eq!(audit_count(&s, "request.declined"), 1);
    // Without the token nothing happens.
    let r = d.post("/requests/bulk", &[("ids", &ops_s), ("action", "approve")]);
    assert_eq!(r.status, 403);
}

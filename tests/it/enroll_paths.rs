//! The one-statement enrollment (`store::issue_tx`, taken by a first
//! PKCSReq with a one-time challenge on an auto-approve profile) must write
//! exactly what the general path writes: the same request, history, audit
//! and mail rows. Both paths run here side by side and their rows are
//! compared field by field, IDs and values that differ per request aside.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text};
use server::wire::PkiStatus;

use crate::device::Device;
use crate::support::Scepd;

#[derive(QueryableByName, Debug)]
struct RequestRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    challenge_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    certificate_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    cert_request_id: Option<i64>,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    serial: String,
    #[diesel(sql_type = Text)]
    events: String,
}

#[derive(QueryableByName, Debug)]
struct AuditRow {
    #[diesel(sql_type = Text)]
    actor: String,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Nullable<Text>)]
    target: Option<String>,
    #[diesel(sql_type = Jsonb)]
    details: serde_json::Value,
    #[diesel(sql_type = Nullable<Text>)]
    client_ip: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    organization_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    department_id: Option<i64>,
}

#[derive(QueryableByName, Debug)]
struct MailRow {
    #[diesel(sql_type = Text)]
    recipient: String,
    #[diesel(sql_type = Jsonb)]
    payload: serde_json::Value,
}

struct Written {
    request: RequestRow,
    audit: Vec<AuditRow>,
    mails: Vec<MailRow>,
}

fn written(s: &Scepd, dev: &Device) -> Written {
    let mut pg = s.pg();
    let txid = dev.txid().0;
    let request: RequestRow = diesel::sql_query(
        "SELECT r.id, r.status, r.challenge_id, r.certificate_id, c.request_id AS cert_request_id, \
           c.serial, (SELECT string_agg(coalesce(e.from_status, '-') || '>' || e.to_status || '@' || e.actor, ',' ORDER BY e.id) \
                      FROM request_events e WHERE e.request_id = r.id) AS events \
         FROM enrollment_requests r JOIN certificates c ON c.id = r.certificate_id \
         WHERE r.transaction_id = $1",
    )
    .bind::<Text, _>(&txid)
    .get_result(&mut pg)
    .unwrap();
    let audit: Vec<AuditRow> = diesel::sql_query(
        "SELECT actor, event, target, details, client_ip, organization_id, department_id \
         FROM audit_log \
         WHERE details->>'transaction_id' = $1 ORDER BY id",
    )
    .bind::<Text, _>(&txid)
    .load(&mut pg)
    .unwrap();
    let mails: Vec<MailRow> = diesel::sql_query(
        "SELECT recipient, payload FROM outbox WHERE kind = 'issued' \
         AND (payload->>'request_id')::bigint = $1 ORDER BY recipient",
    )
    .bind::<BigInt, _>(request.id)
    .load(&mut pg)
    .unwrap();
    Written {
        request,
        audit,
        mails,
    }
}

/// JSON object keys, sorted: values differ per request, the shape must not.
fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn one_statement_enrollment_writes_what_the_general_path_writes() {
    let db = server::testdb::test_db().expect("test database");
    let dir = tempfile::tempdir().unwrap();
    let s = Scepd::start_with(db, dir, &[("RUST_LOG", "info,server::enroll::fast=debug")]);
    // Same policy, but a per-device cap sends "capped" down the general path.
    s.cli_ok(&["profile", "create", "capped", "--max-active", "5"]);
    for (email, events) in [
        ("ops@example.com", "issued"),
        ("audit@example.com", "issued,revoked"),
    ] {
        s.cli_ok(&[
            "notify", "contact", "add", "--org", "Default", "--email", email, "--events", events,
        ]);
    }
    s.cli_ok(&[
        "notify",
        "contact",
        "add",
        "--org",
        "Default",
        "--email",
        "no@example.com",
        "--events",
        "revoked",
    ]);

    let fast = Device::new("fast-device", 2048);
    let fast_challenge = s.mint("default");
    let rep = fast.pkcs_req(&s, "default", Some(&fast_challenge));
    assert_eq!(rep.status, PkiStatus::Success, "{}", s.log());
    assert_eq!(
        s.log().matches("issued in one statement").count(),
        1,
        "fast path taken"
    );
    let general = Device::new("general-device", 2048);
    let rep = general.pkcs_req(&s, "capped", Some(&s.mint("capped")));
    assert_eq!(rep.status, PkiStatus::Success, "{}", s.log());
    assert_eq!(
        s.log().matches("issued in one statement").count(),
        1,
        "general path taken"
    );

    let (f, g) = (written(&s, &fast), written(&s, &general));
    for w in [&f, &g] {
        assert_eq!(w.request.status, "issued");
        assert!(w.request.challenge_id.is_some());
        assert_eq!(w.request.cert_request_id, Some(w.request.id));
        assert!(w.request.certificate_id.is_some());
    }
    assert_eq!(
        f.request.events,
        "->applied@auto-approve,applied>issued@auto-approve"
    );
    assert_eq!(f.request.events, g.request.events);

    assert_eq!(f.audit.len(), 2, "{:?}", f.audit);
    assert_eq!(f.audit.len(), g.audit.len());
    for (a, b) in f.audit.iter().zip(&g.audit) {
        assert_eq!(
            (&a.actor, &a.event, &a.client_ip, a.department_id),
            (&b.actor, &b.event, &b.client_ip, b.department_id)
        );
        assert_eq!(a.organization_id, b.organization_id);
        assert!(
            a.organization_id.is_some(),
            "{} is filed under its organization",
            a.event
        );
        assert_eq!(keys(&a.details), keys(&b.details), "{} details", a.event);
    }
    let ch = f.request.challenge_id.unwrap();
    assert_eq!(f.audit[0].event, "challenge.used");
    assert_eq!(
        f.audit[0].target.as_deref(),
        Some(format!("challenge:{ch}").as_str())
    );
    assert_eq!(f.audit[1].event, "certificate.issued");
    assert_eq!(
        f.audit[1].target.as_deref(),
        Some(format!("certificate:{}", f.request.serial).as_str())
    );
    assert_eq!(f.audit[1].details["request_id"], f.request.id);

    let recipients = |w: &Written| {
        w.mails
            .iter()
            .map(|m| m.recipient.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(recipients(&f), ["audit@example.com", "ops@example.com"]);
    assert_eq!(recipients(&f), recipients(&g));
    for (a, b) in f.mails.iter().zip(&g.mails) {
        assert_eq!(keys(&a.payload), keys(&b.payload));
    }
    assert_eq!(
        f.mails[0].payload["certificate_id"],
        f.request.certificate_id.unwrap()
    );
    assert_eq!(f.mails[0].payload["serial"], f.request.serial.as_str());

    // A retransmission gets the same certificate; the used challenge
    // enrolls nobody else.
    let again = fast.pkcs_req(&s, "default", Some(&fast_challenge));
    assert_eq!(again.status, PkiStatus::Success, "{}", s.log());
    let serial = again.certs[0]
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap();
    assert_eq!(serial.to_string(), f.request.serial);
    let thief = Device::new("other-device", 2048);
    let stolen = thief.pkcs_req(&s, "default", Some(&fast_challenge));
    assert_eq!(stolen.status, PkiStatus::Failure);
    assert_eq!(s.log().matches("issued in one statement").count(), 1);
}

#[test]
fn the_one_statement_path_files_nothing_under_a_disabled_organization() {
    let db = server::testdb::test_db().expect("test database");
    let dir = tempfile::tempdir().unwrap();
    let s = Scepd::start_with(db, dir, &[("RUST_LOG", "info,server::enroll::fast=debug")]);
    let challenge = s.mint("default");
    let set_enabled = |on: bool| {
        diesel::sql_query("UPDATE organizations SET enabled = $1 WHERE name = 'Default'")
            .bind::<diesel::sql_types::Bool, _>(on)
            .execute(&mut s.pg())
            .unwrap();
    };
    let unused = || -> i64 {
        use diesel::dsl::count_star;
        use server::store::schema::challenges;
        challenges::table
            .filter(challenges::used_at.is_null())
            .select(count_star())
            .first(&mut s.pg())
            .unwrap()
    };
    set_enabled(false);
    let dev = Device::new("parked-device", 2048);
    assert_eq!(
        dev.pkcs_req(&s, "default", Some(&challenge)).status,
        PkiStatus::Failure
    );
    assert_eq!(unused(), 1, "the refused request left the challenge unused");
    assert!(!s.log().contains("issued in one statement"));
    set_enabled(true);
    let dev = Device::new("parked-device-2", 2048);
    assert_eq!(
        dev.pkcs_req(&s, "default", Some(&challenge)).status,
        PkiStatus::Success
    );
    assert_eq!(unused(), 0);
    assert_eq!(s.log().matches("issued in one statement").count(), 1);
}

/// scepd keeps the profile in memory for the one-statement path; a change
/// made meanwhile (here straight in the database, as another scepd
/// process would) must apply to the very next enrollment, and a profile
/// disabled meanwhile must serve nobody.
#[test]
fn a_profile_changed_meanwhile_applies_to_the_next_enrollment() {
    let db = server::testdb::test_db().expect("test database");
    let dir = tempfile::tempdir().unwrap();
    let s = Scepd::start_with(db, dir, &[("RUST_LOG", "info,server::enroll::fast=debug")]);
    let validity_days = |rep: &server::wire::client::CertRepMsg| {
        let c = &rep.certs[0];
        let diff = c.not_before().diff(c.not_after()).unwrap();
        diff.days
    };
    let first = Device::new("cached-1", 2048).pkcs_req(&s, "default", Some(&s.mint("default")));
    assert_eq!(first.status, PkiStatus::Success, "{}", s.log());
    assert_eq!(validity_days(&first), 365);
    assert_eq!(s.log().matches("issued in one statement").count(), 1);

    diesel::sql_query("UPDATE device_profiles SET validity_days = 10 WHERE profile_id = 'default'")
        .execute(&mut s.pg())
        .unwrap();
    let second = Device::new("cached-2", 2048).pkcs_req(&s, "default", Some(&s.mint("default")));
    assert_eq!(second.status, PkiStatus::Success, "{}", s.log());
    assert_eq!(
        validity_days(&second),
        10,
        "the new validity, not the cached one"
    );
    let third = Device::new("cached-3", 2048).pkcs_req(&s, "default", Some(&s.mint("default")));
    assert_eq!(validity_days(&third), 10);
    assert_eq!(
        s.log().matches("issued in one statement").count(),
        2,
        "the refreshed copy serves the one-statement path again"
    );

    let challenge = s.mint("default");
    diesel::sql_query("UPDATE device_profiles SET enabled = false WHERE profile_id = 'default'")
        .execute(&mut s.pg())
        .unwrap();
    let dev = Device::new("cached-4", 2048);
    let csr = dev.csr(Some(&challenge));
    let msg = dev.pkcs_req_message(&s, &csr, server::wire::ContentCipher::Aes256Cbc);
    let res = crate::device::post(&s, "default", &msg);
    assert!(matches!(res, Err((404, _))), "{res:?}");
    let used: i64 = {
        use diesel::dsl::count_star;
        use server::store::schema::challenges;
        challenges::table
            .filter(challenges::used_at.is_not_null())
            .select(count_star())
            .first(&mut s.pg())
            .unwrap()
    };
    assert_eq!(used, 3, "the disabled profile used no challenge");
}

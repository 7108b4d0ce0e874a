//! The validity a client asks for: Windows' SCEP client sends the
//! ClientCertificateInstall CSP's ValidPeriod/ValidPeriodUnits as
//! Microsoft's enrollment name-value pairs `ValidityPeriod` and
//! `ValidityPeriodUnits` (MS-WCCE §2.2.2.7.10). A profile that honours
//! them issues what is asked for up to its own validity; one that does
//! not (the default) ignores them. Set in the console, the CLI and the
//! API, audited.

use chrono::{DateTime, Duration, Utc};
use openssl::asn1::Asn1Time;
use serde_json::json;
use server::store::profiles;
use server::wire::{ContentCipher, PkiStatus};

use crate::api::call;
use crate::console::{csrf_in, Client, ADMIN_PW};
use crate::device::Device;
use crate::handmade_csr;
use crate::support::Scepd;

/// Enroll a new device on `profile` asking for `count` `unit`s; the
/// certificate's validity, from issuance to notAfter.
fn enroll_asking(s: &Scepd, profile: &str, cn: &str, ask: Option<(&str, &str)>) -> Duration {
    let dev = Device::new(cn, 2048);
    let mut attrs = vec![handmade_csr::challenge_password(&s.mint(profile))];
    if let Some((unit, count)) = ask {
        attrs.push(handmade_csr::name_value_pairs(&[
            ("ValidityPeriod", unit),
            ("ValidityPeriodUnits", count),
        ]));
    }
    let csr = handmade_csr::csr(&dev, &attrs);
    let before = Utc::now();
    let msg = dev.pkcs_req_message(s, &csr, ContentCipher::Aes256Cbc);
    let rep = dev.send(s, profile, &msg);
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}\n{}", s.log());
    let epoch = Asn1Time::from_unix(0).unwrap();
    let d = epoch.diff(rep.certs[0].not_after()).unwrap();
    let not_after =
        DateTime::<Utc>::from_timestamp(i64::from(d.days) * 86_400 + i64::from(d.secs), 0).unwrap();
    not_after - before
}

fn assert_about(got: Duration, want: Duration) {
    let off = (got - want).num_seconds().abs();
    assert!(off < 120, "validity {got} where {want} was expected");
}

#[test]
fn a_request_for_less_gets_less_and_for_more_gets_the_profiles_validity() {
    let s = Scepd::start();
    s.cli_ok(&[
        "profile",
        "create",
        "windows",
        "--org",
        "Default",
        "--validity-days",
        "30",
        "--honor-requested-validity",
    ]);
    let p = profiles::by_profile_id(&mut s.pg(), "windows")
        .unwrap()
        .unwrap();
    assert!(p.honor_requested_validity);

    assert_about(
        enroll_asking(&s, "windows", "win-1", Some(("Days", "7"))),
        Duration::days(7),
    );
    assert_about(
        enroll_asking(&s, "windows", "win-2", Some(("Weeks", "2"))),
        Duration::days(14),
    );
    assert_about(
        enroll_asking(&s, "windows", "win-3", Some(("Hours", "12"))),
        Duration::hours(12),
    );
    // More than the profile allows: the profile's validity.
    assert_about(
        enroll_asking(&s, "windows", "win-4", Some(("Years", "2"))),
        Duration::days(30),
    );
    assert_about(
        enroll_asking(&s, "windows", "win-5", Some(("Days", "45"))),
        Duration::days(30),
    );
    // Nothing asked, or nonsense asked: the profile's validity.
    assert_about(
        enroll_asking(&s, "windows", "win-6", None),
        Duration::days(30),
    );
    assert_about(
        enroll_asking(&s, "windows", "win-7", Some(("Fortnights", "1"))),
        Duration::days(30),
    );
    assert_about(
        enroll_asking(&s, "windows", "win-8", Some(("Days", "0"))),
        Duration::days(30),
    );
}

#[test]
fn off_ignores_the_request_and_the_switch_is_audited_in_the_api_and_cli() {
    let s = Scepd::start();
    // The default profile: 365 days, the setting off.
    let p = profiles::by_profile_id(&mut s.pg(), "default")
        .unwrap()
        .unwrap();
    assert!(!p.honor_requested_validity);
    assert_about(
        enroll_asking(&s, "default", "off-1", Some(("Days", "7"))),
        Duration::days(365),
    );

    // Turned on through the API, by a key of the profile's organization.
    let k = s
        .cli_ok(&["api-key", "create", "--name", "mdm", "--org", "Default"])
        .trim()
        .to_string();
    let r = call(
        "PATCH",
        &format!("{}/api/v1/profiles/default", s.url),
        Some(&k),
        Some(json!({ "honor_requested_validity": true })),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["honor_requested_validity"], true);
    let r = call("GET", &format!("{}/api/v1/profiles", s.url), Some(&k), None);
    assert_eq!(
        r.1["profiles"][0]["honor_requested_validity"], true,
        "{}",
        r.1
    );
    assert_about(
        enroll_asking(&s, "default", "on-1", Some(("Days", "7"))),
        Duration::days(7),
    );
    let updates = crate::challenges::audit_of(&s, server::store::audit::AuditKind::ProfileUpdated);
    let last = &updates[0];
    assert!(last.actor.starts_with("api-key:"), "{}", last.actor);
    assert_eq!(
        last.details["changed"]["honor_requested_validity"],
        json!({ "from": false, "to": true }),
        "{}",
        last.details
    );

    // And off again with the CLI.
    s.cli_ok(&[
        "profile",
        "set",
        "default",
        "--honor-requested-validity=false",
    ]);
    assert_about(
        enroll_asking(&s, "default", "off-2", Some(("Days", "7"))),
        Duration::days(365),
    );
    let updates = crate::challenges::audit_of(&s, server::store::audit::AuditKind::ProfileUpdated);
    assert_eq!(updates[0].actor, "cli");
    assert_eq!(
        updates[0].details["changed"]["honor_requested_validity"],
        json!({ "from": true, "to": false })
    );
}

#[test]
fn the_console_profile_form_sets_it() {
    let s = Scepd::start();
    let org = s
        .cli_ok(&["org", "list"])
        .lines()
        .find(|l| l.ends_with("Default"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string();
    let mut c = Client::new(&s);
    assert_eq!(c.login("admin", ADMIN_PW).status, 303);
    let page = c.get("/profiles/new");
    assert!(
        page.body.contains("name=\"honor_requested_validity\""),
        "{}",
        page.body
    );
    let token = csrf_in(&page.body);
    let form = [
        ("csrf", token.as_str()),
        ("profile_id", "win"),
        ("name", "Windows"),
        ("cert_type", "device"),
        ("validity_days", "20"),
        ("key_usage", "digitalSignature"),
        ("key_usage", "keyEncipherment"),
        ("extended_key_usage", "clientAuth"),
        ("subject_template", "CN={{CommonName}}"),
        ("san_types", "dns"),
        ("san_pattern", ""),
        ("min_rsa_bits", "2048"),
        ("hash_alg", "sha256"),
        ("approval_mode", "auto"),
        ("renewal_window_days", "10"),
        ("max_active_per_device", "0"),
        ("allow_post", "on"),
        ("honor_requested_validity", "on"),
        ("enabled", "on"),
        ("places", org.as_str()),
    ];
    let r = c.post("/profiles", &form);
    assert_eq!(r.status, 303, "{}", r.body);
    let p = profiles::by_profile_id(&mut s.pg(), "win")
        .unwrap()
        .unwrap();
    assert!(p.honor_requested_validity);
    let created = crate::challenges::audit_of(&s, server::store::audit::AuditKind::ProfileCreated);
    assert_eq!(
        created[0].details["honor_requested_validity"], true,
        "{}",
        created[0].details
    );
    // The edit form shows it checked.
    let edit = c.get("/profiles/win/edit").body;
    let input = edit
        .split("name=\"honor_requested_validity\"")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap();
    assert!(input.contains("checked"), "{input}");
    assert_about(
        enroll_asking(&s, "win", "console-1", Some(("Days", "3"))),
        Duration::days(3),
    );
}

//! A profile's policy refuses what it does not allow, with FAILURE
//! badRequest and the reason in the audit log, and nothing issued or used
//! (issue: "every policy refusal").

use diesel::RunQueryDsl;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use server::wire::{ContentCipher, FailInfo, PkiStatus};

use crate::device::Device;
use crate::support::Scepd;

/// Send `csr` from `dev` and expect a policy refusal mentioning `reason`.
fn assert_refused(s: &Scepd, profile: &str, dev: &Device, csr: &[u8], reason: &str) {
    let msg = dev.pkcs_req_message(s, csr, ContentCipher::Aes128Cbc);
    let rep = dev.send(s, profile, &msg);
    assert_eq!(rep.status, PkiStatus::Failure, "{rep:?}");
    assert_eq!(rep.fail_info, Some(FailInfo::BadRequest));
    let got = crate::support::last_refusal(s);
    assert!(
        got.contains(reason),
        "expected {reason:?} in audit, got {got:?}"
    );
}

fn sql(s: &Scepd, q: &str) {
    diesel::sql_query(q).execute(&mut s.pg()).unwrap();
}

fn no_certificates(s: &Scepd) {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM certificates")
        .get_result(&mut s.pg())
        .unwrap();
    assert_eq!(n.n, 0);
    let u: N = diesel::sql_query("SELECT count(*) AS n FROM challenges WHERE used_at IS NOT NULL")
        .get_result(&mut s.pg())
        .unwrap();
    assert_eq!(u.n, 0, "a refused request must not use up its challenge");
}

#[test]
fn every_policy_violation_is_refused_with_its_reason() {
    let s = Scepd::start();

    // RSA key below the minimum.
    let weak = Device::new("weak", 1024);
    assert_refused(
        &s,
        "default",
        &weak,
        &weak.csr(Some(&s.mint("default"))),
        "below the profile's minimum",
    );

    // EC key when the profile allows no curve.
    let ec = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    let ecdev = Device::with_key("ec-device", PKey::from_ec_key(ec).unwrap());
    assert_refused(
        &s,
        "default",
        &ecdev,
        &ecdev.csr(Some(&s.mint("default"))),
        "EC curve P-256 is not allowed",
    );

    // A SAN type the profile does not allow.
    sql(
        &s,
        "UPDATE device_profiles SET san_types = '{dns}' WHERE profile_id = 'default'",
    );
    let dev = Device::new("san-type", 2048);
    let csr = dev.csr_with(
        Some(&s.mint("default")),
        &[],
        &["email:someone@example.com"],
    );
    assert_refused(
        &s,
        "default",
        &dev,
        &csr,
        "subjectAltName type email is not allowed",
    );

    // A SAN value outside the profile's pattern.
    sql(&s, "UPDATE device_profiles SET san_pattern = '[a-z0-9-]+\\.corp\\.example' WHERE profile_id = 'default'");
    let dev = Device::new("san-value", 2048);
    let csr = dev.csr_with(Some(&s.mint("default")), &[], &["DNS:evil.attacker.test"]);
    assert_refused(
        &s,
        "default",
        &dev,
        &csr,
        "does not match the profile's pattern",
    );

    // The subject template needs a value the request lacks.
    sql(&s, "UPDATE device_profiles SET subject_template = 'CN={{CommonName}},serialNumber={{SerialNumber}}' WHERE profile_id = 'default'");
    let dev = Device::new("no-serial", 2048);
    assert_refused(
        &s,
        "default",
        &dev,
        &dev.csr(Some(&s.mint("default"))),
        "no SerialNumber",
    );

    no_certificates(&s);

    // The same profile issues a compliant request, with the templated subject.
    let ok = Device::new("host-1", 2048);
    let csr = ok.csr_with(
        Some(&s.mint("default")),
        &[("serialNumber", "C02XYZ")],
        &["DNS:host-1.corp.example"],
    );
    let msg = ok.pkcs_req_message(&s, &csr, ContentCipher::Aes128Cbc);
    let rep = ok.send(&s, "default", &msg);
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    let text = crate::support::openssl_text(&rep.certs[0]);
    assert!(
        text.contains("serialNumber = C02XYZ") || text.contains("serialNumber=C02XYZ"),
        "{text}"
    );
    assert!(text.contains("DNS:host-1.corp.example"), "{text}");
}

#[test]
fn active_certificates_per_device_are_capped_or_replaced() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "one-per-device", "--max-active", "1"]);
    s.cli_ok(&[
        "profile",
        "create",
        "replace",
        "--max-active",
        "1",
        "--revoke-on-replace",
    ]);

    let first = Device::new("laptop-7", 2048);
    assert_eq!(
        first
            .pkcs_req(&s, "one-per-device", Some(&s.mint("one-per-device")))
            .status,
        PkiStatus::Success
    );
    let second = Device::new("laptop-7", 2048);
    assert_refused(
        &s,
        "one-per-device",
        &second,
        &second.csr(Some(&s.mint("one-per-device"))),
        "already has 1 active",
    );

    let a = Device::new("phone-3", 2048);
    let old = a
        .pkcs_req(&s, "replace", Some(&s.mint("replace")))
        .certs
        .remove(0);
    let b = Device::new("phone-3", 2048);
    assert_eq!(
        b.pkcs_req(&s, "replace", Some(&s.mint("replace"))).status,
        PkiStatus::Success
    );
    let serial = hex::encode_upper(old.serial_number().to_bn().unwrap().to_vec());
    let stored = server::store::certificates::by_serial(&mut s.pg(), &serial)
        .unwrap()
        .unwrap();
    assert!(stored.is_revoked(), "the older certificate was superseded");
}

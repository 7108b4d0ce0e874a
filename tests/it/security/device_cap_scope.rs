//! A profile's cap on active certificates per device counts the devices
//! of one organization (and department): a device that shares a CN with
//! another organization's device must never revoke that one's
//! certificate as "superseded", nor be refused because of it.

use openssl::x509::X509;
use server::store::certificates::{self, Certificate};
use server::wire::PkiStatus;

use crate::device::Device;
use crate::support::Scepd;

fn stored(s: &Scepd, cert: &X509) -> Certificate {
    let serial = hex::encode_upper(cert.serial_number().to_bn().unwrap().to_vec());
    certificates::by_serial(&mut s.pg(), &serial)
        .unwrap()
        .unwrap()
}

fn enroll(s: &Scepd, org: &str, dept: Option<&str>) -> X509 {
    let mut args = vec!["challenge", "mint", "--profile", "shared", "--org", org];
    if let Some(d) = dept {
        args.extend(["--department", d]);
    }
    let ch = s.cli_ok(&args).trim().to_string();
    let rep = Device::new("printer-7", 2048).pkcs_req(s, "shared", Some(&ch));
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}\n{}", s.log());
    rep.certs[0].clone()
}

#[test]
fn the_per_device_cap_replaces_only_within_one_organization_and_department() {
    let s = Scepd::start();
    s.cli_ok(&["org", "create", "OrgA"]);
    s.cli_ok(&["org", "create", "OrgB"]);
    s.cli_ok(&["org", "add-department", "OrgA", "Lab"]);
    s.cli_ok(&[
        "profile",
        "create",
        "shared",
        "--org",
        "OrgA",
        "--org",
        "OrgB",
        "--max-active",
        "1",
        "--revoke-on-replace",
    ]);

    let a = enroll(&s, "OrgA", None);
    // Another organization's printer-7 is another device.
    let b = enroll(&s, "OrgB", None);
    assert!(
        !stored(&s, &a).is_revoked(),
        "OrgB revoked OrgA's certificate"
    );
    // So is the printer-7 of a department.
    let lab = enroll(&s, "OrgA", Some("Lab"));
    assert!(
        !stored(&s, &a).is_revoked(),
        "the Lab revoked OrgA's certificate"
    );

    // Within OrgA (outside the Lab) the cap still replaces the older one.
    let a2 = enroll(&s, "OrgA", None);
    assert!(stored(&s, &a).is_revoked());
    for other in [&b, &lab, &a2] {
        assert!(!stored(&s, other).is_revoked());
    }
}

//! One CA signs for every tenant, so the purposes a profile puts in its
//! certificates (RFC 5280 §4.2.1.12) are not every officer's to choose:
//! an RAO may give only device purposes (clientAuth, emailProtection,
//! ipsecIKE, eapOverLAN); serverAuth, codeSigning, smartcardLogon,
//! anyExtendedKeyUsage and other OIDs stay the MRAO's. And no new profile
//! accepts RSA keys below 2048 bits, whoever makes it.

use server::store::profiles;

use crate::console::{acme_with_sales_drao, csrf_in, Client, ADMIN_PW};
use crate::support::Scepd;

/// Acme with the RAO `acme-rao`; the officer's logged-in client.
fn acme_rao(s: &Scepd) -> Client {
    acme_with_sales_drao(s, "auto");
    crate::console::create_rao(s, "acme-rao", "Acme");
    let mut c = Client::new(s);
    assert_eq!(c.login("acme-rao", ADMIN_PW).status, 303);
    c
}

fn acme(s: &Scepd) -> i64 {
    server::store::orgs::org_by_name(&mut s.pg(), "Acme")
        .unwrap()
        .unwrap()
        .id
}

/// Post a complete new-profile form; the answer's status and body.
fn create(c: &mut Client, id: &str, place: i64, eku: &str, min_rsa_bits: &str) -> (u16, String) {
    let token = csrf_in(&c.get("/profiles/new").body);
    let place = place.to_string();
    let r = c.post(
        "/profiles",
        &[
            ("csrf", &token),
            ("profile_id", id),
            ("name", id),
            ("cert_type", "device"),
            ("validity_days", "30"),
            ("key_usage", "digitalSignature"),
            ("extended_key_usage", eku),
            ("subject_template", "CN={{CommonName}}"),
            ("san_types", "dns"),
            ("san_pattern", ""),
            ("min_rsa_bits", min_rsa_bits),
            ("hash_alg", "sha256"),
            ("approval_mode", "auto"),
            ("renewal_window_days", "10"),
            ("max_active_per_device", "0"),
            ("enabled", "on"),
            ("places", &place),
        ],
    );
    (r.status, r.body)
}

fn exists(s: &Scepd, id: &str) -> bool {
    profiles::by_profile_id(&mut s.pg(), id).unwrap().is_some()
}

#[test]
fn an_rao_cannot_give_a_profile_purposes_other_tenants_trust() {
    let s = Scepd::start();
    let mut r = acme_rao(&s);
    let acme = acme(&s);
    for (i, eku) in [
        "serverAuth",
        "clientAuth, codeSigning",
        "1.3.6.1.4.1.311.20.2.2",
        "2.5.29.37.0",
        "1.3.6.1.5.5.7.3.1",
        "1.3.6.1.5.5.7.3.9",
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("rao-bad-{i}");
        let (status, body) = create(&mut r, &id, acme, eku, "2048");
        assert_eq!(status, 422, "{eku}: {body}");
        assert!(
            body.contains("id=\"extended_key_usage-error\""),
            "{eku}: {body}"
        );
        assert!(body.contains("only an MRAO may set"), "{eku}: {body}");
        assert!(!exists(&s, &id), "{eku}");
    }
    let (status, body) = create(
        &mut r,
        "rao-devices",
        acme,
        "clientAuth, emailProtection, ipsecIKE, 1.3.6.1.5.5.7.3.14",
        "2048",
    );
    assert_eq!(status, 303, "{body}");
    assert!(exists(&s, "rao-devices"));
}

#[test]
fn an_mrao_may_give_any_purpose() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    let acme = acme(&s);
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let (status, body) = create(
        &mut m,
        "web-servers",
        acme,
        "serverAuth, 1.3.6.1.4.1.311.20.2.2, 2.5.29.37.0",
        "2048",
    );
    assert_eq!(status, 303, "{body}");
    let p = profiles::by_profile_id(&mut s.pg(), "web-servers")
        .unwrap()
        .unwrap();
    assert_eq!(
        p.extended_key_usage,
        vec!["serverAuth", "1.3.6.1.4.1.311.20.2.2", "2.5.29.37.0"]
    );
}

#[test]
fn an_rao_editing_an_mrao_profile_keeps_its_purposes_but_adds_none() {
    let s = Scepd::start();
    let mut r = acme_rao(&s);
    s.cli_ok(&[
        "profile",
        "create",
        "vpn",
        "--org",
        "Acme",
        "--eku",
        "serverAuth",
    ]);
    let page = r.get("/profiles/vpn/edit");
    assert_eq!(page.status, 200, "{}", page.body);
    let token = csrf_in(&page.body);
    let acme = acme(&s).to_string();
    let form = |eku: &'static str| -> Vec<(&'static str, String)> {
        [
            ("csrf", token.as_str()),
            ("profile_id", "vpn"),
            ("name", "vpn"),
            ("cert_type", "device"),
            ("validity_days", "90"),
            ("key_usage", "digitalSignature"),
            ("extended_key_usage", eku),
            ("subject_template", "CN={{CommonName}}"),
            ("san_types", "dns"),
            ("min_rsa_bits", "2048"),
            ("hash_alg", "sha256"),
            ("approval_mode", "auto"),
            ("renewal_window_days", "10"),
            ("max_active_per_device", "0"),
            ("enabled", "on"),
            ("places", acme.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    };
    let post = |r: &mut Client, f: &[(&'static str, String)]| {
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        r.post("/profiles/vpn/edit", &f)
    };
    let added = post(&mut r, &form("serverAuth, codeSigning"));
    assert_eq!(added.status, 422, "{}", added.body);
    assert!(added.body.contains("only an MRAO may set codeSigning"));
    let kept = post(&mut r, &form("serverAuth, clientAuth"));
    assert_eq!(kept.status, 303, "{}", kept.body);
    let p = profiles::by_profile_id(&mut s.pg(), "vpn")
        .unwrap()
        .unwrap();
    assert_eq!(p.extended_key_usage, vec!["serverAuth", "clientAuth"]);
    assert_eq!(p.validity_days, 90);
}

#[test]
fn no_new_profile_accepts_rsa_keys_below_2048_bits() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    let acme = acme(&s);
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let (status, body) = create(&mut m, "weak", acme, "clientAuth", "1024");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("id=\"min_rsa_bits-error\""), "{body}");
    assert!(body.contains("at least 2048 bits"), "{body}");
    assert!(!exists(&s, "weak"));

    let out = s.cli(&[
        "profile",
        "create",
        "weak-cli",
        "--org",
        "Acme",
        "--min-rsa-bits",
        "1536",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 2048 bits"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!exists(&s, "weak-cli"));
    let (status, body) = create(&mut m, "strong", acme, "clientAuth", "2048");
    assert_eq!(status, 303, "{body}");
}

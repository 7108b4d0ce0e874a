//! Issue 4, RA console administration over real HTTP against a real
//! `scepd serve`: device certificate profiles created, edited and disabled
//! in the console and obeyed by the SCEP endpoint; access codes and API
//! keys created and disabled/revoked there and honoured by enrollment and
//! `/api/v1`; refused forms that keep what was typed; officers confined to
//! their scope even when they forge the POST; every change audited.

use diesel::prelude::*;
use server::store::profiles::{self, Profile};
use server::store::schema::{audit_log, device_profiles};
use server::wire::PkiStatus;

use crate::console::{acme_with_sales_drao, audit_count, csrf_in, Client, ADMIN_PW};
use crate::device::{post, Device};
use crate::support::Scepd;

/// Access codes and API keys.
mod credentials;
/// The CertRep chain and signer key switches.
mod reply_settings;
/// Which revocation pointers (OCSP URL, CRL DP) certificates carry.
mod revocation_pointers;

fn org_id(s: &Scepd, name: &str) -> i64 {
    server::store::orgs::org_by_name(&mut s.pg(), name)
        .unwrap()
        .unwrap()
        .id
}

fn dept_id(s: &Scepd, org: i64, name: &str) -> i64 {
    server::store::orgs::departments_of(&mut s.pg(), org)
        .unwrap()
        .into_iter()
        .find(|d| d.name == name)
        .unwrap()
        .id
}

fn profile(s: &Scepd, id: &str) -> Profile {
    profiles::by_profile_id(&mut s.pg(), id).unwrap().unwrap()
}

fn profile_count(s: &Scepd) -> i64 {
    device_profiles::table
        .count()
        .get_result(&mut s.pg())
        .unwrap()
}

/// The newest audit entry of `event`: (actor, target, details).
fn last_audit(s: &Scepd, event: &str) -> (String, Option<String>, serde_json::Value) {
    audit_log::table
        .filter(audit_log::event.eq(event))
        .order(audit_log::id.desc())
        .select((audit_log::actor, audit_log::target, audit_log::details))
        .first(&mut s.pg())
        .unwrap()
}

fn mint(s: &Scepd, profile: &str, org: &str, dept: Option<&str>) -> String {
    let mut args = vec!["challenge", "mint", "--profile", profile, "--org", org];
    if let Some(d) = dept {
        args.extend(["--department", d]);
    }
    s.cli_ok(&args).trim().to_string()
}

/// A complete profile form, as the console's page submits it.
fn profile_form(token: &str, places: &str) -> Vec<(&'static str, String)> {
    [
        ("csrf", token),
        ("profile_id", "laptops"),
        ("name", "Acme laptops"),
        ("cert_type", "device"),
        ("validity_days", "30"),
        ("key_usage", "digitalSignature"),
        ("key_usage", "keyEncipherment"),
        ("extended_key_usage", "clientAuth, serverAuth"),
        ("subject_template", "CN={{CommonName}},O=Acme"),
        ("san_types", "dns"),
        ("san_pattern", ""),
        ("min_rsa_bits", "3072"),
        ("hash_alg", "sha384"),
        ("approval_mode", "auto"),
        ("renewal_window_days", "10"),
        ("max_active_per_device", "0"),
        ("allow_post", "on"),
        ("enabled", "on"),
        ("places", places),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

/// `form` with `name` set to `value` (every other field kept).
fn with(form: &[(&'static str, String)], name: &str, value: &str) -> Vec<(&'static str, String)> {
    form.iter()
        .map(|(k, v)| {
            (
                *k,
                if *k == name {
                    value.to_string()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

fn refs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn a_profile_made_in_the_console_is_obeyed_edited_and_disabled() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    let acme = org_id(&s, "Acme");
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let page = m.get("/profiles/new");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("name=\"validity_days\""),
        "{}",
        page.body
    );
    let token = csrf_in(&page.body);
    let created_before = audit_count(&s, "profile.created");

    // Enabled for Acme and (redundantly, but allowed) its Sales department.
    let sales = dept_id(&s, acme, "Sales");
    let mut form = profile_form(&token, &acme.to_string());
    form.push(("places", format!("{acme}:{sales}")));
    let r = m.post("/profiles", &refs(&form));
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.location.unwrap();
    assert!(m.get(&to).body.contains("Created laptops."));
    let p = profile(&s, "laptops");
    assert_eq!(
        (p.validity_days, p.min_rsa_bits, p.hash_alg.as_str()),
        (30, 3072, "sha384")
    );
    assert_eq!(p.extended_key_usage, vec!["clientAuth", "serverAuth"]);
    assert_eq!(p.renewal_window_days, 10);
    let mut places = profiles::places_of(&mut s.pg(), p.id).unwrap();
    places.sort();
    assert_eq!(places, vec![(acme, None), (acme, Some(sales))]);
    assert_eq!(audit_count(&s, "profile.created"), created_before + 1);
    let (actor, target, details) = last_audit(&s, "profile.created");
    assert_eq!(
        (actor.as_str(), target.as_deref()),
        ("admin", Some("profile:laptops"))
    );
    assert_eq!(details["validity_days"], 30);

    // The form's policy is the SCEP endpoint's: a 2048-bit key is refused,
    // a 3072-bit one gets 30 days, O=Acme, serverAuth and SHA-384.
    let small = Device::new("laptop-small", 2048);
    let rep = small.pkcs_req(&s, "laptops", Some(&mint(&s, "laptops", "Acme", None)));
    assert_eq!(rep.status, PkiStatus::Failure);
    let dev = Device::new("laptop-1", 3072);
    let rep = dev.pkcs_req(&s, "laptops", Some(&mint(&s, "laptops", "Acme", None)));
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    let cert = &rep.certs[0];
    let lifetime = cert.not_before().diff(cert.not_after()).unwrap();
    assert_eq!(lifetime.days, 30, "{lifetime:?}");
    let text = crate::support::openssl_text(cert);
    assert!(
        text.contains("O = Acme") || text.contains("O=Acme"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(text.contains("sha384WithRSAEncryption"), "{text}");

    // Edit: the form shows the stored settings; auto → manual makes the
    // next request wait for an officer.
    let edit = m.get("/profiles/laptops/edit");
    assert_eq!(edit.status, 200);
    assert!(
        edit.body.contains("value=\"Acme laptops\""),
        "{}",
        edit.body
    );
    assert!(edit.body.contains("value=\"30\""));
    let r = m.post(
        "/profiles/laptops/edit",
        &refs(&with(&form, "approval_mode", "manual")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(m.get(&r.location.unwrap()).body.contains("Saved laptops."));
    assert_eq!(profile(&s, "laptops").approval_mode, "manual");
    let (_, _, details) = last_audit(&s, "profile.updated");
    assert_eq!(details["changed"]["approval_mode"]["from"], "auto");
    assert_eq!(details["changed"]["approval_mode"]["to"], "manual");
    for same in ["validity_days", "places"] {
        assert!(details["changed"].get(same).is_none(), "{details}");
    }
    let next = Device::new("laptop-2", 3072);
    let rep = next.pkcs_req(&s, "laptops", Some(&mint(&s, "laptops", "Acme", None)));
    assert_eq!(rep.status, PkiStatus::Pending);

    // Disable: the SCEP URL no longer serves the profile.
    let r = m.post("/profiles/laptops/disable", &[("csrf", &token)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(m
        .get(&r.location.unwrap())
        .body
        .contains("Disabled laptops"));
    assert!(!profile(&s, "laptops").enabled);
    assert_eq!(audit_count(&s, "profile.disabled"), 1);
    let late = Device::new("laptop-3", 3072);
    let csr = late.csr(Some("whatever-challenge"));
    let msg = late.pkcs_req_message(&s, &csr, server::wire::ContentCipher::Aes256Cbc);
    assert_eq!(post(&s, "laptops", &msg).unwrap_err().0, 404);
    let caps = ureq::get(&format!("{}?operation=GetCACaps", s.scep_url("laptops"))).call();
    assert!(matches!(caps, Err(ureq::Error::Status(404, _))));
    // Disabling twice is refused; enabling brings it back.
    assert_eq!(
        m.post("/profiles/laptops/disable", &[("csrf", &token)])
            .status,
        409
    );
    assert_eq!(
        m.post("/profiles/laptops/enable", &[("csrf", &token)])
            .status,
        303
    );
    assert!(profile(&s, "laptops").enabled);
    assert_eq!(audit_count(&s, "profile.enabled"), 1);
}

#[test]
fn refused_forms_keep_what_was_typed_and_say_what_is_wrong() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    let acme = org_id(&s, "Acme");
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let token = m.csrf();
    let before = (profile_count(&s), audit_count(&s, "profile.created"));

    let mut bad = profile_form(&token, &acme.to_string());
    bad = with(&bad, "profile_id", "auto");
    bad = with(&bad, "name", "Kept name");
    bad = with(&bad, "validity_days", "0");
    bad = with(&bad, "extended_key_usage", "clientAuth, fooAuth");
    bad = with(&bad, "san_pattern", "(unclosed");
    let r = m.post("/profiles", &refs(&bad));
    assert_eq!(r.status, 422, "{}", r.body);
    for expected in [
        "value=\"Kept name\"",
        "value=\"clientAuth, fooAuth\"",
        "value=\"(unclosed\"",
        "value=\"0\"",
        "validity must be 1–3650 days",
        "unknown extended key usage",
        "fooAuth",
        "invalid SAN pattern: ",
        "profile ID already exists",
        "class=\"field-error\" id=\"validity_days-error\"",
        "aria-invalid=\"true\"",
        "class=\"form-errors\"",
    ] {
        assert!(r.body.contains(expected), "{expected}\n{}", r.body);
    }
    // Checked boxes stay checked, unchecked ones unchecked.
    assert!(r
        .body
        .contains(&format!("name=\"places\" value=\"{acme}\" checked")));
    assert!(r.body.contains("name=\"san_types\" value=\"dns\" checked"));
    assert!(!r.body.contains("name=\"san_types\" value=\"ip\" checked"));
    assert_eq!(
        (profile_count(&s), audit_count(&s, "profile.created")),
        before
    );

    // An edit that does not parse changes nothing.
    let edit = with(
        &with(
            &profile_form(&token, &acme.to_string()),
            "profile_id",
            "auto",
        ),
        "validity_days",
        "ten",
    );
    let r = m.post("/profiles/auto/edit", &refs(&edit));
    assert_eq!(r.status, 422);
    assert!(r.body.contains("validity must be a whole number"));
    assert!(r.body.contains("value=\"ten\""));
    assert_eq!(profile(&s, "auto").validity_days, 365);
    assert_eq!(audit_count(&s, "profile.updated"), 0);

    // Without the CSRF token nothing is created.
    let full = profile_form(&token, &acme.to_string());
    let no_csrf: Vec<_> = refs(&full)
        .into_iter()
        .filter(|(k, _)| *k != "csrf")
        .collect();
    assert_eq!(m.post("/profiles", &no_csrf).status, 403);
    assert!(profiles::by_profile_id(&mut s.pg(), "laptops")
        .unwrap()
        .is_none());

    // The challenge mint form keeps its input too.
    let r = m.post(
        "/challenges",
        &[
            ("csrf", &token),
            ("profile", "auto"),
            ("place", &acme.to_string()),
            ("device", "kept-device"),
            ("count", "0"),
            ("ttl", "forever"),
        ],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    for expected in [
        "value=\"kept-device\"",
        "value=\"0\"",
        "value=\"forever\"",
        "count must be between 1 and 100",
        "id=\"ttl-error\"",
        "id=\"count-error\"",
    ] {
        assert!(r.body.contains(expected), "{expected}\n{}", r.body);
    }
    assert_eq!(audit_count(&s, "challenge.minted"), 0);
}

#[test]
fn an_rao_manages_only_profiles_enabled_only_for_its_organizations() {
    let s = Scepd::start();
    acme_with_sales_drao(&s, "auto");
    s.cli_ok(&["org", "create", "Beta"]);
    s.cli_ok(&["profile", "create", "acme-only", "--org", "Acme"]);
    s.cli_ok(&[
        "profile", "create", "shared", "--org", "Acme", "--org", "Beta",
    ]);
    s.cli_ok(&["profile", "create", "beta-only", "--org", "Beta"]);
    crate::console::create_rao(&s, "acme-rao", "Acme");
    let (acme, beta) = (org_id(&s, "Acme"), org_id(&s, "Beta"));
    let mut r = Client::new(&s);
    assert_eq!(r.login("acme-rao", ADMIN_PW).status, 303);
    let list = r.get("/profiles");
    assert!(
        list.body.contains("/profiles/acme-only/edit"),
        "{}",
        list.body
    );
    assert!(list.body.contains("(shared,") && !list.body.contains("/profiles/shared/edit"));
    assert!(!list.body.contains("beta-only"));
    let token = r.csrf();

    // Its own profile: edited (with device purposes only: serverAuth is
    // the MRAO's to give).
    let rao_form = with(
        &profile_form(&token, &acme.to_string()),
        "extended_key_usage",
        "clientAuth",
    );
    let form = with(&rao_form, "profile_id", "acme-only");
    let ok = r.post("/profiles/acme-only/edit", &refs(&form));
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(profile(&s, "acme-only").validity_days, 30);
    assert_eq!(last_audit(&s, "profile.updated").0, "acme-rao");

    // Forged edits and disables of profiles used by Beta: refused, unchanged.
    for (path, status) in [
        ("/profiles/shared/edit", 403),
        ("/profiles/beta-only/edit", 404),
    ] {
        let form = with(&form, "profile_id", path.split('/').nth(2).unwrap());
        assert_eq!(r.post(path, &refs(&form)).status, status, "{path}");
    }
    assert_eq!(r.get("/profiles/shared/edit").status, 403);
    assert_eq!(
        r.post("/profiles/shared/disable", &[("csrf", &token)])
            .status,
        403
    );
    assert_eq!(
        r.post("/profiles/beta-only/disable", &[("csrf", &token)])
            .status,
        404
    );
    for id in ["shared", "beta-only"] {
        let p = profile(&s, id);
        assert_eq!((p.validity_days, p.enabled), (365, true), "{id}");
    }
    // Nor may it widen its own profile to Beta, or create one for Beta.
    let widen = with(&form, "places", &beta.to_string());
    assert_eq!(
        r.post("/profiles/acme-only/edit", &refs(&widen)).status,
        403
    );
    assert_eq!(
        profiles::places_of(&mut s.pg(), profile(&s, "acme-only").id).unwrap(),
        vec![(acme, None)]
    );
    let for_beta = with(
        &with(&rao_form, "places", &beta.to_string()),
        "profile_id",
        "rao-made",
    );
    assert_eq!(r.post("/profiles", &refs(&for_beta)).status, 403);
    let for_acme = with(&for_beta, "places", &acme.to_string());
    assert_eq!(r.post("/profiles", &refs(&for_acme)).status, 303);
    assert!(profile(&s, "rao-made").enabled);
    assert_eq!(audit_count(&s, "profile.updated"), 1);

    // A DRAO only reads.
    let mut d = Client::new(&s);
    assert_eq!(d.login("sales-officer", ADMIN_PW).status, 303);
    assert_eq!(d.get("/profiles/new").status, 403);
    let dt = d.csrf();
    assert_eq!(
        d.post("/profiles/acme-only/disable", &[("csrf", &dt)])
            .status,
        403
    );
    assert!(profile(&s, "acme-only").enabled);
}

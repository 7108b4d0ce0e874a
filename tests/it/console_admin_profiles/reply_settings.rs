//! The two per-profile switches for clients in the field,
//! `certrep_includes_chain` and `signer_key_must_match`: shown and set in
//! the console's profile form, by `scepd profile create` and `scepd
//! profile set`, listed by `/api/v1/profiles`; every change goes through
//! `server::admin`, is audited and raises the profile's revision.

use super::{last_audit, profile, profile_form, refs, with};
use crate::console::{audit_count, csrf_in, Client, ADMIN_PW};
use crate::support::Scepd;

#[test]
fn the_console_form_shows_sets_and_clears_both_switches() {
    let s = Scepd::start();
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let page = m.get("/profiles/new");
    assert_eq!(page.status, 200);
    for name in ["certrep_includes_chain", "signer_key_must_match"] {
        let field = format!("name=\"{name}\" value=\"on\"");
        assert!(page.body.contains(&field), "{name} offered: {}", page.body);
        assert!(
            !page.body.contains(&format!("{field} checked")),
            "{name} off for a new profile"
        );
    }
    let token = csrf_in(&page.body);

    // Without the CSRF token nothing is created.
    let mut form = profile_form(&token, "1");
    form.push(("certrep_includes_chain", "on".into()));
    form.push(("signer_key_must_match", "on".into()));
    let forged: Vec<_> = form.iter().filter(|(k, _)| *k != "csrf").cloned().collect();
    assert_eq!(m.post("/profiles", &refs(&forged)).status, 403);
    assert!(
        server::store::profiles::by_profile_id(&mut s.pg(), "laptops")
            .unwrap()
            .is_none()
    );

    let r = m.post("/profiles", &refs(&form));
    assert_eq!(r.status, 303, "{}", r.body);
    let p = profile(&s, "laptops");
    assert!(p.certrep_includes_chain && p.signer_key_must_match);
    let (_, _, created) = last_audit(&s, "profile.created");
    assert_eq!(created["certrep_includes_chain"], true, "{created}");
    assert_eq!(created["signer_key_must_match"], true, "{created}");
    let listing = m.get("/profiles").body;
    assert!(listing.contains("signer key must match"), "{listing}");
    assert!(listing.contains("CA chain in replies"), "{listing}");

    let edit = m.get("/profiles/laptops/edit");
    for name in ["certrep_includes_chain", "signer_key_must_match"] {
        assert!(
            edit.body
                .contains(&format!("name=\"{name}\" value=\"on\" checked")),
            "{name} shown as stored: {}",
            edit.body
        );
    }
    // Unchecked boxes are absent from the POST: both switch off.
    let cleared: Vec<_> = form
        .iter()
        .filter(|(k, _)| !matches!(*k, "certrep_includes_chain" | "signer_key_must_match"))
        .cloned()
        .collect();
    let r = m.post("/profiles/laptops/edit", &refs(&cleared));
    assert_eq!(r.status, 303, "{}", r.body);
    let after = profile(&s, "laptops");
    assert!(!after.certrep_includes_chain && !after.signer_key_must_match);
    assert!(after.revision > p.revision, "the edit raised the revision");
    let (actor, _, details) = last_audit(&s, "profile.updated");
    assert_eq!(actor, "admin");
    for name in ["certrep_includes_chain", "signer_key_must_match"] {
        assert_eq!(details["changed"][name]["from"], true, "{details}");
        assert_eq!(details["changed"][name]["to"], false, "{details}");
    }
    assert!(details["changed"].get("validity_days").is_none());
    // Another setting changed alone leaves the switches as they are.
    let r = m.post(
        "/profiles/laptops/edit",
        &refs(&with(&cleared, "validity_days", "31")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let (_, _, details) = last_audit(&s, "profile.updated");
    assert!(details["changed"].get("certrep_includes_chain").is_none());
}

#[test]
fn the_cli_creates_and_sets_both_switches_through_the_audited_service() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "vpn", "--signer-key-must-match"]);
    let p = profile(&s, "vpn");
    assert!(p.signer_key_must_match && !p.certrep_includes_chain);
    let plain = profile(&s, "default");
    assert!(!plain.signer_key_must_match && !plain.certrep_includes_chain);

    let updated = audit_count(&s, "profile.updated");
    s.cli_ok(&[
        "profile",
        "set",
        "vpn",
        "--certrep-includes-chain=true",
        "--signer-key-must-match=false",
    ]);
    let after = profile(&s, "vpn");
    assert!(after.certrep_includes_chain && !after.signer_key_must_match);
    assert!(after.revision > p.revision);
    assert_eq!(audit_count(&s, "profile.updated"), updated + 1);
    let (actor, target, details) = last_audit(&s, "profile.updated");
    assert_eq!(
        (actor.as_str(), target.as_deref()),
        ("cli", Some("profile:vpn"))
    );
    assert_eq!(details["changed"]["certrep_includes_chain"]["to"], true);
    assert_eq!(details["changed"]["signer_key_must_match"]["to"], false);
    assert_eq!(
        details["changed"].as_object().unwrap().len(),
        2,
        "{details}"
    );

    // Only what is given changes.
    s.cli_ok(&["profile", "set", "vpn", "--signer-key-must-match"]);
    let again = profile(&s, "vpn");
    assert!(again.certrep_includes_chain && again.signer_key_must_match);

    // Refusals are clear and change nothing.
    for (args, says) in [
        (vec!["profile", "set", "vpn"], "nothing to change"),
        (
            vec!["profile", "set", "nosuch", "--certrep-includes-chain=true"],
            "no profile \"nosuch\"",
        ),
        (
            vec!["profile", "set", "vpn", "--certrep-includes-chain=maybe"],
            "invalid value 'maybe'",
        ),
    ] {
        let out = s.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(profile(&s, "vpn").revision, again.revision);
    assert_eq!(audit_count(&s, "profile.updated"), updated + 2);
}

#[test]
fn the_api_lists_both_switches_of_each_profile() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "set", "default", "--certrep-includes-chain=true"]);
    let key = s
        .cli_ok(&["api-key", "create", "--name", "mdm", "--org", "Default"])
        .trim()
        .to_string();
    let p = crate::api::listed_profile(&s, &key, "default");
    assert_eq!(p["certrep_includes_chain"], true, "{p}");
    assert_eq!(p["signer_key_must_match"], false, "{p}");
}

/// The API sets the switches of a profile its key's organizations hold
/// alone, through the same audited service; it cannot reach a profile
/// shared with another organization, and refuses what it cannot read.
#[test]
fn the_api_sets_the_switches_of_its_organizations_profiles() {
    let s = Scepd::start();
    s.cli_ok(&["org", "create", "OrgA"]);
    s.cli_ok(&["org", "create", "OrgB"]);
    s.cli_ok(&["profile", "create", "mine", "--org", "OrgA"]);
    s.cli_ok(&[
        "profile", "create", "shared", "--org", "OrgA", "--org", "OrgB",
    ]);
    let key = s
        .cli_ok(&["api-key", "create", "--name", "mdm-a", "--org", "OrgA"])
        .trim()
        .to_string();
    let api = format!("{}/api/v1/profiles", s.url);
    let patch = |id: &str, body: serde_json::Value| {
        crate::api::call("PATCH", &format!("{api}/{id}"), Some(&key), Some(body))
    };
    let updated = audit_count(&s, "profile.updated");
    let before = profile(&s, "mine").revision;

    let r = patch(
        "mine",
        serde_json::json!({ "signer_key_must_match": true, "min_cipher": "des3" }),
    );
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["signer_key_must_match"], true, "{}", r.1);
    assert_eq!(r.1["min_cipher"], "des3", "{}", r.1);
    assert_eq!(r.1["certrep_includes_chain"], false, "{}", r.1);
    let p = profile(&s, "mine");
    assert!(p.signer_key_must_match);
    assert!(p.revision > before);
    assert_eq!(audit_count(&s, "profile.updated"), updated + 1);

    // Shared with an organization the key does not hold.
    let r = patch(
        "shared",
        serde_json::json!({ "signer_key_must_match": true }),
    );
    assert_eq!(r.0, 403, "{}", r.1);
    assert!(!profile(&s, "shared").signer_key_must_match);
    // Unknown profile, empty change, bad value, unknown field.
    assert_eq!(
        patch("nope", serde_json::json!({ "auto_renew": true })).0,
        404
    );
    for bad in [
        serde_json::json!({}),
        serde_json::json!({ "min_cipher": "rc2" }),
        serde_json::json!({ "enabled": false }),
    ] {
        let r = patch("mine", bad.clone());
        assert_eq!(r.0, 400, "{bad}: {}", r.1);
    }
    assert_eq!(profile(&s, "mine").min_cipher, "des3");
    assert_eq!(audit_count(&s, "profile.updated"), updated + 1);
}

//! The profile's revocation pointers in the console's form: whether its
//! certificates carry the OCSP URL (AIA) and the CRL distribution point
//! (docs/ocsp.md). Both offered and on for a new profile; unchecking one
//! is stored and audited through `server::admin`.

use super::{last_audit, profile, profile_form, refs};
use crate::console::{csrf_in, Client, ADMIN_PW};
use crate::support::Scepd;

#[test]
fn the_console_form_shows_and_sets_the_ocsp_url_and_crl_dp() {
    let s = Scepd::start();
    let mut m = Client::new(&s);
    assert_eq!(m.login("admin", ADMIN_PW).status, 303);
    let page = m.get("/profiles/new");
    assert_eq!(page.status, 200);
    for name in ["include_ocsp_url", "include_crl_dp"] {
        assert!(
            page.body
                .contains(&format!("name=\"{name}\" value=\"on\" checked")),
            "{name} offered and on for a new profile: {}",
            page.body
        );
    }
    let token = csrf_in(&page.body);
    let mut form = profile_form(&token, "1");
    form.push(("include_ocsp_url", "on".into()));
    let r = m.post("/profiles", &refs(&form));
    assert_eq!(r.status, 303, "{}", r.body);
    let p = profile(&s, "laptops");
    assert!(p.include_ocsp_url && !p.include_crl_dp);
    let (_, _, created) = last_audit(&s, "profile.created");
    assert_eq!(created["include_ocsp_url"], true, "{created}");
    assert_eq!(created["include_crl_dp"], false, "{created}");

    let edit = m.get("/profiles/laptops/edit");
    assert!(edit
        .body
        .contains("name=\"include_ocsp_url\" value=\"on\" checked"));
    assert!(!edit
        .body
        .contains("name=\"include_crl_dp\" value=\"on\" checked"));
    // Swap them: the unchecked box is absent from the POST.
    let mut swapped: Vec<_> = form
        .iter()
        .filter(|(k, _)| *k != "include_ocsp_url")
        .cloned()
        .collect();
    swapped.push(("include_crl_dp", "on".into()));
    let r = m.post("/profiles/laptops/edit", &refs(&swapped));
    assert_eq!(r.status, 303, "{}", r.body);
    let after = profile(&s, "laptops");
    assert!(!after.include_ocsp_url && after.include_crl_dp);
    let (_, _, details) = last_audit(&s, "profile.updated");
    assert_eq!(
        details["changed"]["include_ocsp_url"]["to"], false,
        "{details}"
    );
    assert_eq!(
        details["changed"]["include_crl_dp"]["to"], true,
        "{details}"
    );
}

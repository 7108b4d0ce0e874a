//! The device certificate profile form, new and edit: every setting of
//! `device_profiles` and the places of `profile_scopes`. This file only
//! turns text into numbers and lists; every rule (and the officer's right
//! to the profile and its places) is `server::admin`'s. A refused form
//! comes back (422) with what was typed and a message next to each field.

use actix_web::{web, HttpResponse};
use askama::Template;
use server::admin::profile_settings::{
    ProfileDraft, APPROVAL_MODES, CERT_TYPES, EC_CURVES, HASH_ALGS, KEY_USAGES, SAN_TYPES,
};
use server::admin::{self, AdminError, Place};
use server::enroll::policy::MIN_CIPHERS;
use server::enroll::Enroll;
use server::store::PgPooled;

use super::challenges::places;
use super::form::{self, FormState};
use super::{actor, blocking, enc, see_other, Nav};
use crate::error::WebError;
use crate::session::Officer;

const TEXT: &[&str] = &[
    "profile_id",
    "name",
    "cert_type",
    "validity_days",
    "extended_key_usage",
    "subject_template",
    "san_pattern",
    "min_rsa_bits",
    "min_cipher",
    "hash_alg",
    "approval_mode",
    "renewal_window_days",
    "max_active_per_device",
];
const LISTS: &[&str] = &["key_usage", "san_types", "allowed_ec_curves", "places"];
const FLAGS: &[&str] = &[
    "revoke_on_replace",
    "allow_post",
    "certrep_includes_chain",
    "signer_key_must_match",
    "auto_renew",
    "renewal_allows_identity_change",
    "include_crl_dp",
    "include_ocsp_url",
    "honor_requested_validity",
    "enabled",
];

#[derive(Template)]
#[template(path = "profile_form.html")]
pub struct ProfileFormView {
    pub nav: Option<Nav>,
    pub form: FormState,
    /// `None`: a new profile; the profile ID being edited otherwise.
    pub editing: Option<String>,
    /// (value, label) of the organizations/departments in scope.
    pub places: Vec<(String, String)>,
    pub cert_types: &'static [&'static str],
    pub key_usages: &'static [&'static str],
    pub san_types: &'static [&'static str],
    pub ec_curves: &'static [&'static str],
    pub hash_algs: &'static [&'static str],
    pub approval_modes: &'static [&'static str],
    pub min_ciphers: &'static [&'static str],
}

impl ProfileFormView {
    fn new(form: FormState, editing: Option<String>, places: Vec<(String, String)>) -> Self {
        Self {
            nav: None,
            form,
            editing,
            places,
            cert_types: CERT_TYPES,
            key_usages: KEY_USAGES,
            san_types: SAN_TYPES,
            ec_curves: EC_CURVES,
            hash_algs: HASH_ALGS,
            approval_modes: APPROVAL_MODES,
            min_ciphers: MIN_CIPHERS,
        }
    }

    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }

    pub fn action(&self) -> String {
        match &self.editing {
            Some(id) => format!("/profiles/{id}/edit"),
            None => "/profiles".into(),
        }
    }

    /// `aria-invalid` for a refused field.
    pub fn invalid(&self, name: &str) -> bool {
        self.form.error(name).is_some()
    }
}

fn place_value((org, dept): &Place) -> String {
    match dept {
        Some(d) => format!("{org}:{d}"),
        None => org.to_string(),
    }
}

fn parse_place(v: &str) -> Option<Place> {
    match v.split_once(':') {
        Some((o, d)) => Some((o.parse().ok()?, Some(d.parse().ok()?))),
        None => Some((v.parse().ok()?, None)),
    }
}

/// What a stored or default profile puts in the form.
fn state_of(d: &ProfileDraft) -> FormState {
    let mut f = FormState::new();
    f.keep("profile_id", d.profile_id.as_str())
        .keep("name", d.name.as_str())
        .keep("cert_type", d.cert_type.as_str())
        .keep("validity_days", d.validity_days.to_string())
        .keep("key_usage", d.key_usage.join(","))
        .keep("extended_key_usage", d.extended_key_usage.join(", "))
        .keep("subject_template", d.subject_template.as_str())
        .keep("san_types", d.san_types.join(","))
        .keep("san_pattern", d.san_pattern.clone().unwrap_or_default())
        .keep("min_rsa_bits", d.min_rsa_bits.to_string())
        .keep("min_cipher", d.min_cipher.as_str())
        .keep("allowed_ec_curves", d.allowed_ec_curves.join(","))
        .keep("hash_alg", d.hash_alg.as_str())
        .keep("approval_mode", d.approval_mode.as_str())
        .keep("renewal_window_days", d.renewal_window_days.to_string())
        .keep("max_active_per_device", d.max_active_per_device.to_string())
        .keep(
            "places",
            d.places
                .iter()
                .map(place_value)
                .collect::<Vec<_>>()
                .join(","),
        );
    for (name, on) in [
        ("revoke_on_replace", d.revoke_on_replace),
        ("allow_post", d.allow_post),
        ("certrep_includes_chain", d.certrep_includes_chain),
        ("signer_key_must_match", d.signer_key_must_match),
        ("auto_renew", d.auto_renew),
        (
            "renewal_allows_identity_change",
            d.renewal_allows_identity_change,
        ),
        ("include_crl_dp", d.include_crl_dp),
        ("include_ocsp_url", d.include_ocsp_url),
        ("honor_requested_validity", d.honor_requested_validity),
        ("enabled", d.enabled),
    ] {
        if on {
            f.keep(name, "on");
        }
    }
    f
}

fn number(f: &mut FormState, name: &str, what: &str) -> i32 {
    match server::input::parse_i32(f.value(name)) {
        Ok(n) => n,
        Err(_) => {
            f.refuse(name, format!("{what} must be a whole number"));
            0
        }
    }
}

/// The submitted form as typed, and the draft it describes (numbers that
/// do not parse are refused here, everything else by the service).
fn read(pairs: &[(String, String)]) -> (FormState, ProfileDraft) {
    let mut f = FormState::new();
    for name in TEXT {
        f.keep(name, form::one(pairs, name));
    }
    for name in LISTS {
        f.keep(name, form::all(pairs, name).collect::<Vec<_>>().join(","));
    }
    for name in FLAGS {
        if !form::one(pairs, name).is_empty() {
            f.keep(name, "on");
        }
    }
    let list = |v: &str| -> Vec<String> { v.split(',').map(str::to_string).collect() };
    let mut d = ProfileDraft::defaults(f.value("profile_id"), f.value("name"));
    d.cert_type = f.value("cert_type").into();
    d.validity_days = number(&mut f, "validity_days", "validity");
    d.key_usage = list(f.value("key_usage"));
    d.extended_key_usage = list(f.value("extended_key_usage"));
    d.subject_template = f.value("subject_template").into();
    d.san_types = list(f.value("san_types"));
    d.san_pattern = Some(f.value("san_pattern").to_string());
    d.min_rsa_bits = number(&mut f, "min_rsa_bits", "minimum RSA key size");
    // A form without the select (not the console's) keeps the default.
    if !f.value("min_cipher").is_empty() {
        d.min_cipher = f.value("min_cipher").into();
    }
    d.allowed_ec_curves = list(f.value("allowed_ec_curves"));
    d.hash_alg = f.value("hash_alg").into();
    d.approval_mode = f.value("approval_mode").into();
    d.renewal_window_days = number(&mut f, "renewal_window_days", "renewal window");
    d.max_active_per_device = number(&mut f, "max_active_per_device", "active certificates");
    d.revoke_on_replace = f.has("revoke_on_replace", "on");
    d.allow_post = f.has("allow_post", "on");
    d.certrep_includes_chain = f.has("certrep_includes_chain", "on");
    d.signer_key_must_match = f.has("signer_key_must_match", "on");
    d.auto_renew = f.has("auto_renew", "on");
    d.renewal_allows_identity_change = f.has("renewal_allows_identity_change", "on");
    d.include_crl_dp = f.has("include_crl_dp", "on");
    d.include_ocsp_url = f.has("include_ocsp_url", "on");
    d.honor_requested_validity = f.has("honor_requested_validity", "on");
    d.enabled = f.has("enabled", "on");
    let mut bad_place = false;
    d.places = form::all(pairs, "places")
        .filter_map(|v| {
            let p = parse_place(v);
            bad_place |= p.is_none();
            p
        })
        .collect();
    if bad_place {
        f.refuse("places", "unknown organization or department");
    }
    (f, d)
}

fn page(
    conn: &mut PgPooled,
    officer: &Officer,
    form: FormState,
    editing: Option<String>,
) -> Result<ProfileFormView, WebError> {
    let mut v = ProfileFormView::new(form, editing, places(conn, &officer.scope)?);
    v.nav = Some(Nav::of(officer));
    Ok(v)
}

/// GET /profiles/new
pub async fn new_form(
    officer: Officer,
    enroll: web::Data<Enroll>,
) -> Result<HttpResponse, WebError> {
    if !admin::profiles::may_create(&actor(&officer)) {
        return Err(WebError::Forbidden);
    }
    let view = blocking(&enroll, move |conn| {
        let mut f = state_of(&ProfileDraft::defaults("", ""));
        f.keep("profile_id", "").keep("name", "");
        page(conn, &officer, f, None)
    })
    .await?;
    super::html(&view)
}

/// GET /profiles/{id}/edit
pub async fn edit_form(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let view = blocking(&enroll, move |conn| {
        let seen = admin::profiles::visible(conn, &actor(&officer), &id)?;
        if !seen.manageable {
            return Err(WebError::Forbidden);
        }
        let f = state_of(&ProfileDraft::of(&seen.profile, seen.places));
        page(conn, &officer, f, Some(id))
    })
    .await?;
    super::html(&view)
}

/// Either the place to go after a change, or the form to show again.
enum Outcome {
    Done(String),
    Refused(Box<ProfileFormView>),
}

fn submit(
    conn: &mut PgPooled,
    officer: &Officer,
    editing: Option<String>,
    pairs: &[(String, String)],
) -> Result<Outcome, WebError> {
    let (mut f, d) = read(pairs);
    let who = actor(officer);
    let result = if f.is_refused() {
        // A number that did not parse: nothing is stored, but every other
        // field still gets its verdict.
        f.refuse_fields(&d.normalized().check());
        Err(AdminError::Refused(vec![]))
    } else {
        match &editing {
            Some(id) => admin::profiles::update(conn, &who, id, &d),
            None => admin::profiles::create(conn, &who, &d),
        }
    };
    match result {
        Ok(p) => {
            let msg = if editing.is_some() {
                "updated"
            } else {
                "created"
            };
            Ok(Outcome::Done(format!(
                "/profiles?msg={msg}&profile={}",
                enc(&p.profile_id)
            )))
        }
        Err(AdminError::Refused(errors)) => {
            f.refuse_fields(&errors);
            if let Some(id) = &editing {
                // The ID is not editable; show the one in the URL.
                f.keep("profile_id", id.as_str());
            }
            Ok(Outcome::Refused(Box::new(page(conn, officer, f, editing)?)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn run(
    officer: Officer,
    enroll: web::Data<Enroll>,
    editing: Option<String>,
    pairs: Vec<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let out = blocking(&enroll, move |conn| submit(conn, &officer, editing, &pairs)).await?;
    match out {
        Outcome::Done(to) => Ok(see_other(&to)),
        Outcome::Refused(view) => form::refused(view.as_ref()),
    }
}

/// POST /profiles
pub async fn create(
    officer: Officer,
    enroll: web::Data<Enroll>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    run(officer, enroll, None, body.into_inner()).await
}

/// POST /profiles/{id}/edit
pub async fn update(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    run(officer, enroll, Some(path.into_inner()), body.into_inner()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_stored_profile_round_trips_through_the_form() {
        let mut d = ProfileDraft::defaults("wifi", "Wi-Fi");
        d.places = vec![(1, None), (2, Some(5))];
        d.san_pattern = Some(".*".into());
        d.certrep_includes_chain = true;
        d.signer_key_must_match = true;
        d.auto_renew = true;
        d.renewal_allows_identity_change = true;
        d.min_cipher = "aes".into();
        // One revocation pointer off, the other on (the default).
        d.include_crl_dp = false;
        let f = state_of(&d);
        let mut submitted = vec![];
        for name in TEXT {
            submitted.push((name.to_string(), f.value(name).to_string()));
        }
        for name in LISTS {
            for v in f.value(name).split(',').filter(|v| !v.is_empty()) {
                submitted.push((name.to_string(), v.to_string()));
            }
        }
        for name in FLAGS {
            if f.has(name, "on") {
                submitted.push((name.to_string(), "on".into()));
            }
        }
        let (f2, d2) = read(&submitted);
        assert!(!f2.is_refused());
        assert_eq!(d2.normalized(), d.normalized());
    }

    #[test]
    fn min_cipher_is_a_select_with_its_recommendation() {
        let mut d = ProfileDraft::defaults("wifi", "Wi-Fi");
        d.min_cipher = "des3".into();
        let html = ProfileFormView::new(state_of(&d), None, vec![])
            .render()
            .unwrap();
        assert!(
            html.contains("<select id=\"min_cipher\" name=\"min_cipher\""),
            "{html}"
        );
        assert!(html.contains("<option value=\"des3\" selected>"), "{html}");
        assert!(html.contains("DES3 or AES recommended"), "{html}");
        // Absent (not the console's form): the default; present, as typed.
        assert_eq!(read(&pairs(&[("name", "N")])).1.min_cipher, "des");
        assert_eq!(read(&pairs(&[("min_cipher", "rc2")])).1.min_cipher, "rc2");
    }

    #[test]
    fn unparsable_numbers_and_places_are_refused_and_kept() {
        let (f, _) = read(&pairs(&[
            ("validity_days", "ten"),
            ("places", "1:x"),
            ("name", "Kept"),
        ]));
        assert_eq!(
            f.error("validity_days"),
            Some("validity must be a whole number")
        );
        assert!(f.error("places").is_some());
        assert_eq!(f.value("validity_days"), "ten");
        assert_eq!(f.value("name"), "Kept");
        assert!(!f.has("enabled", "on"), "unchecked box stays unchecked");
    }

    #[test]
    fn a_refused_field_is_marked_and_explained_next_to_itself() {
        let mut f = state_of(&ProfileDraft::defaults("wifi", "Wi-Fi"));
        f.keep("validity_days", "0");
        f.refuse("validity_days", "validity must be 1–3650 days");
        let html = ProfileFormView::new(f, None, vec![("1".into(), "Acme".into())])
            .render()
            .unwrap();
        assert!(html.contains(
            "name=\"validity_days\" value=\"0\" aria-invalid=\"true\" aria-describedby=\"validity_days-error\""
        ), "{html}");
        assert!(html.contains(
            "<p class=\"field-error\" id=\"validity_days-error\">validity must be 1–3650 days</p>"
        ));
        assert!(
            html.contains("{{CommonName}}"),
            "template hint shown literally"
        );
        assert!(html.contains("name=\"enabled\" value=\"on\" checked"));
        assert!(!html.contains("name=\"name\" value=\"Wi-Fi\" aria-invalid"));
    }
}

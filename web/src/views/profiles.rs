//! Device certificate profiles the officer sees: their SCEP URL and policy
//! at a glance, edit/disable/enable where the officer may manage them
//! (`server::admin::profiles`; the form is `profile_form`), and the
//! configuration-profile download (issue 5) with a fresh one-time challenge
//! or an organization's access code.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;
use server::admin;
use server::enroll::Enroll;
use server::store::{orgs, PgPooled, StoreError};

use super::challenges::places;
use super::{actor, enc, switch, Nav};
use crate::error::WebError;
use crate::session::Officer;

pub struct Row {
    pub id: String,
    pub name: String,
    pub url: String,
    pub approval: String,
    pub policy: String,
    pub enabled: bool,
    pub manageable: bool,
    /// Where it is enabled, as names.
    pub places: String,
}

#[derive(Template)]
#[template(path = "profiles.html")]
pub struct ProfilesView {
    pub nav: Option<Nav>,
    pub flash: Option<String>,
    pub rows: Vec<Row>,
    /// (value, label) of the organizations/departments in scope.
    pub places: Vec<(String, String)>,
    pub may_create: bool,
    pub public_url_warning: Option<String>,
}

impl ProfilesView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

/// "Acme, Beta / Sales" for a list of places.
pub(crate) fn place_names(
    conn: &mut PgPooled,
    places: &[(i64, Option<i64>)],
) -> Result<String, WebError> {
    let all = orgs::list_orgs(conn)?;
    let mut names = vec![];
    for (org, dept) in places {
        let o = all
            .iter()
            .find(|o| o.id == *org)
            .map_or_else(|| org.to_string(), |o| o.name.clone());
        names.push(match dept {
            Some(d) => format!("{o} / {}", orgs::department_by_id(conn, *d)?.name),
            None => o,
        });
    }
    Ok(names.join(", "))
}

fn load(
    conn: &mut PgPooled,
    officer: &Officer,
    public_url: &str,
) -> Result<ProfilesView, WebError> {
    let who = actor(officer);
    let mut rows = vec![];
    for l in admin::profiles::listing(conn, &who)? {
        let p = l.profile;
        rows.push(Row {
            url: format!("{public_url}/scep/{}", p.profile_id),
            approval: p.approval_mode.clone(),
            policy: format!(
                "RSA ≥ {}, {} days, {}, EKU {}{}{}{}",
                p.min_rsa_bits,
                p.validity_days,
                p.subject_template,
                p.extended_key_usage.join(", "),
                if p.signer_key_must_match {
                    ", signer key must match"
                } else {
                    ""
                },
                if p.certrep_includes_chain {
                    ", CA chain in replies"
                } else {
                    ""
                },
                match p.min_cipher.as_str() {
                    "des3" => ", envelopes DES3 or AES",
                    "aes" => ", envelopes AES only",
                    _ => "",
                }
            ),
            enabled: p.enabled,
            manageable: l.manageable,
            places: place_names(conn, &l.places)?,
            id: p.profile_id,
            name: p.name,
        });
    }
    Ok(ProfilesView {
        nav: None,
        flash: None,
        rows,
        places: places(conn, &officer.scope)?,
        may_create: admin::profiles::may_create(&who),
        public_url_warning: None,
    })
}

#[derive(Deserialize)]
pub struct PageQuery {
    msg: Option<String>,
    profile: Option<String>,
}

pub async fn page(
    officer: Officer,
    enroll: web::Data<Enroll>,
    site: web::Data<crate::SiteInfo>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let pool = enroll.pool().clone();
    let url = site.public_url.clone();
    let o = officer.clone();
    let mut page = web::block(move || -> Result<_, WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        load(&mut conn, &o, &url)
    })
    .await??;
    page.nav = Some(Nav::of(&officer));
    page.public_url_warning = site.public_url_warning.clone();
    let which = q.profile.as_deref().unwrap_or("the profile");
    page.flash = match q.msg.as_deref() {
        Some("created") => Some(format!("Created {which}.")),
        Some("updated") => Some(format!("Saved {which}.")),
        Some("disabled") => Some(format!(
            "Disabled {which}: its SCEP URL refuses enrollments."
        )),
        Some("enabled") => Some(format!("Enabled {which} again.")),
        _ => None,
    };
    super::html(&page)
}

async fn set_enabled(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<String>,
    enabled: bool,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    // The path's ID is the profile's: `set_enabled` finds it by that.
    let which = enc(&id);
    switch(
        officer,
        &enroll,
        enabled,
        move |c, a, on| admin::profiles::set_enabled(c, a, &id, on),
        |s| format!("/profiles?msg={s}&profile={which}"),
    )
    .await
}

/// POST /profiles/{id}/disable
pub async fn disable(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    set_enabled(officer, enroll, path, false).await
}

/// POST /profiles/{id}/enable
pub async fn enable(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    set_enabled(officer, enroll, path, true).await
}

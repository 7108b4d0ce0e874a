//! Device certificate profiles in the officer's scope: their SCEP URL and
//! policy at a glance, and the configuration-profile download (issue 5)
//! with a fresh one-time challenge or an organization's access code.

use actix_web::{web, HttpResponse};
use askama::Template;
use server::enroll::Enroll;
use server::store::queue::Scope;
use server::store::{profiles, PgPooled, StoreError};

use super::challenges::places;
use super::Nav;
use crate::error::WebError;
use crate::session::Officer;

pub struct Row {
    pub id: String,
    pub name: String,
    pub url: String,
    pub approval: String,
    pub policy: String,
}

#[derive(Template)]
#[template(path = "profiles.html")]
pub struct ProfilesView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub rows: Vec<Row>,
    /// (value, label) of the organizations/departments in scope.
    pub places: Vec<(String, String)>,
}

impl ProfilesView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

/// Profiles enabled for at least one organization the officer reaches.
fn load(conn: &mut PgPooled, scope: &Scope, public_url: &str) -> Result<ProfilesView, WebError> {
    let reach: Vec<i64> = super::orgs_in_scope(conn, scope)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut rows = vec![];
    for p in profiles::list(conn)? {
        let orgs = profiles::organizations_of(conn, p.id)?;
        if !p.enabled || !orgs.iter().any(|o| reach.contains(o)) {
            continue;
        }
        rows.push(Row {
            url: format!("{public_url}/scep/{}", p.profile_id),
            approval: p.approval_mode.clone(),
            policy: format!(
                "RSA ≥ {}, {} days, {}, EKU {}",
                p.min_rsa_bits,
                p.validity_days,
                p.subject_template,
                p.extended_key_usage.join(", ")
            ),
            id: p.profile_id,
            name: p.name,
        });
    }
    Ok(ProfilesView {
        nav: None,
        flash: None,
        rows,
        places: places(conn, scope)?,
    })
}

pub async fn page(
    officer: Officer,
    enroll: web::Data<Enroll>,
    site: web::Data<crate::SiteInfo>,
) -> Result<HttpResponse, WebError> {
    let scope = officer.scope.clone();
    let pool = enroll.pool().clone();
    let url = site.public_url.clone();
    let mut page = web::block(move || -> Result<_, WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        load(&mut conn, &scope, &url)
    })
    .await??;
    page.nav = Some(Nav::of(&officer));
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

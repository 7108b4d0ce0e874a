//! A profile's Microsoft Intune settings (docs/intune.md): the form, the
//! integration's last error and when, and removal. The client secret is
//! never put back in the page: an empty field keeps the stored one. Rules,
//! sealing and audit are `server::intune::settings`'s.

use actix_web::{web, HttpResponse};
use askama::Template;
use server::admin::AdminError;
use server::enroll::Enroll;
use server::intune::settings::{self, SettingsForm, Shown};
use server::store::PgPooled;

use super::challenges::places;
use super::form::{self, FormState};
use super::{actor, blocking, enc, see_other, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

const TEXT: &[&str] = &[
    "tenant",
    "client_id",
    "place",
    "authority_url",
    "graph_url",
    "intune_resource_url",
    "intune_app_id",
    "validation_url",
    "pki_connector_url",
];

#[derive(Template)]
#[template(path = "intune.html")]
pub struct IntuneView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub profile_id: String,
    pub form: FormState,
    /// (value, label) of the organizations/departments in scope.
    pub places: Vec<(String, String)>,
    /// The stored settings, if the profile uses Intune.
    pub configured: bool,
    pub secret_set: bool,
    pub last_error: Option<String>,
    pub last_error_at: String,
    pub last_success_at: String,
    pub last_revocation_sync_at: String,
}

impl IntuneView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }

    pub fn invalid(&self, name: &str) -> bool {
        self.form.error(name).is_some()
    }
}

fn place_value(org: i64, dept: Option<i64>) -> String {
    match dept {
        Some(d) => format!("{org}:{d}"),
        None => org.to_string(),
    }
}

fn state_of(s: &Shown) -> FormState {
    let mut f = FormState::new();
    f.keep("tenant", s.tenant.as_str())
        .keep("client_id", s.client_id.as_str())
        .keep("place", place_value(s.organization_id, s.department_id))
        .keep("authority_url", s.authority_url.as_str())
        .keep("graph_url", s.graph_url.as_str())
        .keep("intune_resource_url", s.intune_resource_url.as_str())
        .keep("intune_app_id", s.intune_app_id.as_str())
        .keep(
            "validation_url",
            s.validation_url.clone().unwrap_or_default(),
        )
        .keep(
            "pki_connector_url",
            s.pki_connector_url.clone().unwrap_or_default(),
        );
    if s.revocation_enabled {
        f.keep("revocation_enabled", "on");
    }
    f
}

fn view(
    conn: &mut PgPooled,
    officer: &Officer,
    profile_id: &str,
    form: Option<FormState>,
) -> Result<IntuneView, WebError> {
    let seen = server::admin::profiles::visible(conn, &actor(officer), profile_id)?;
    if !seen.manageable {
        return Err(WebError::Forbidden);
    }
    let shown = settings::show(conn, &actor(officer), profile_id)?;
    let never = || "never".to_string();
    let form = form.unwrap_or_else(|| match &shown {
        Some(s) => state_of(s),
        None => {
            let mut f = FormState::new();
            f.keep("revocation_enabled", "on");
            f
        }
    });
    Ok(IntuneView {
        nav: Some(Nav::of(officer)),
        flash: None,
        profile_id: profile_id.to_string(),
        form,
        places: places(conn, &officer.scope)?,
        configured: shown.is_some(),
        secret_set: shown.as_ref().is_some_and(|s| s.client_secret_set),
        last_error: shown.as_ref().and_then(|s| s.last_error.clone()),
        last_error_at: shown
            .as_ref()
            .and_then(|s| s.last_error_at)
            .map_or_else(never, when),
        last_success_at: shown
            .as_ref()
            .and_then(|s| s.last_success_at)
            .map_or_else(never, when),
        last_revocation_sync_at: shown
            .as_ref()
            .and_then(|s| s.last_revocation_sync_at)
            .map_or_else(never, when),
    })
}

/// Where to go after a save, or the form to show again.
enum Outcome {
    Saved(String),
    Refused(Box<IntuneView>),
}

#[derive(serde::Deserialize)]
pub struct MsgQuery {
    msg: Option<String>,
}

/// GET /profiles/{id}/intune
pub async fn page(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<String>,
    q: web::Query<MsgQuery>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let mut v = blocking(&enroll, move |conn| view(conn, &officer, &id, None)).await?;
    v.flash = match q.msg.as_deref() {
        Some("saved") => Some("Intune settings saved."),
        _ => None,
    };
    super::html_no_store(&v)
}

fn opt(f: &FormState, name: &str) -> Option<String> {
    Some(f.value(name).trim().to_string()).filter(|v| !v.is_empty())
}

/// POST /profiles/{id}/intune
pub async fn save(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let pairs = body.into_inner();
    let sealer_enroll = enroll.clone();
    let out = blocking(&enroll, move |conn| {
        let mut f = FormState::new();
        for name in TEXT {
            f.keep(name, form::one(&pairs, name));
        }
        if !form::one(&pairs, "revocation_enabled").is_empty() {
            f.keep("revocation_enabled", "on");
        }
        let secret = form::one(&pairs, "client_secret").to_string();
        let place = f.value("place").to_string();
        let (org, dept) = match place.split_once(':') {
            Some((o, d)) => (o.parse().unwrap_or(0), d.parse().ok()),
            None => (place.parse().unwrap_or(0), None),
        };
        let input = SettingsForm {
            tenant: f.value("tenant").to_string(),
            client_id: f.value("client_id").to_string(),
            client_secret: Some(secret).filter(|s| !s.is_empty()),
            organization_id: org,
            department_id: dept,
            authority_url: opt(&f, "authority_url"),
            graph_url: opt(&f, "graph_url"),
            intune_resource_url: opt(&f, "intune_resource_url"),
            intune_app_id: opt(&f, "intune_app_id"),
            validation_url: opt(&f, "validation_url"),
            pki_connector_url: opt(&f, "pki_connector_url"),
            revocation_enabled: f.has("revocation_enabled", "on"),
        };
        let sealer = sealer_enroll
            .intune()
            .ok_or_else(|| WebError::Internal("no Intune client".into()))?
            .sealer();
        match settings::set(conn, &actor(&officer), sealer, &id, &input) {
            Ok(_) => Ok(Outcome::Saved(format!(
                "/profiles/{}/intune?msg=saved",
                enc(&id)
            ))),
            Err(AdminError::Refused(errors)) => {
                // The organization field is the place select here.
                for e in &errors {
                    let field = if e.field == "organization_id" {
                        "place"
                    } else {
                        e.field
                    };
                    f.refuse(field, e.message.clone());
                }
                Ok(Outcome::Refused(Box::new(view(
                    conn,
                    &officer,
                    &id,
                    Some(f),
                )?)))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match out {
        Outcome::Saved(to) => Ok(see_other(&to)),
        Outcome::Refused(v) => form::refused(v.as_ref()),
    }
}

/// POST /profiles/{id}/intune/remove
pub async fn remove(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let to = id.clone();
    blocking(&enroll, move |conn| {
        settings::remove(conn, &actor(&officer), &id)?;
        Ok(())
    })
    .await?;
    Ok(see_other(&format!("/profiles/{}/intune", enc(&to))))
}

//! A profile's webhooks in the console (docs/webhooks.md): the
//! challenge-validation and notification webhooks with their settings and
//! each one's last error and when; set and remove them through
//! `server::webhook::settings` (scope checked there, audited). The secret
//! is typed once and never shown: the form's secret field is always empty,
//! and left empty it keeps the stored one.

use actix_web::{web, HttpResponse};
use askama::Template;
use server::admin::AdminError;
use server::enroll::Enroll;
use server::store::webhooks::EVENTS;
use server::webhook::settings::{self, Draft, Shown};

use super::{actor, blocking, see_other, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

/// One webhook's section of the page.
pub struct Section {
    pub purpose: &'static str,
    pub title: &'static str,
    pub configured: bool,
    pub url: String,
    pub timeout_ms: i32,
    pub pending_on_error: bool,
    pub events: Vec<(&'static str, bool)>,
    pub enabled: bool,
    pub last_error: String,
    pub last_error_at: String,
    pub last_success_at: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
pub struct WebhooksView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub profile_id: String,
    pub profile_name: String,
    pub manageable: bool,
    pub sections: Vec<Section>,
    /// A refused form: its purpose and the reasons.
    pub errors: Vec<(String, String)>,
}

impl WebhooksView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

fn section(purpose: &'static str, shown: Option<&Shown>) -> Section {
    let title = if purpose == "challenge" {
        "Challenge validation"
    } else {
        "Notifications"
    };
    let events = |have: &[String]| {
        EVENTS
            .iter()
            .map(|e| (*e, have.iter().any(|h| h == e)))
            .collect()
    };
    match shown {
        Some(s) => Section {
            purpose,
            title,
            configured: true,
            url: s.url.clone(),
            timeout_ms: s.timeout_ms,
            pending_on_error: s.pending_on_error,
            events: events(&s.events),
            enabled: s.enabled,
            last_error: s.last_error.clone().unwrap_or_default(),
            last_error_at: s.last_error_at.map(when).unwrap_or_default(),
            last_success_at: s.last_success_at.map(when).unwrap_or_default(),
        },
        None => Section {
            purpose,
            title,
            configured: false,
            url: String::new(),
            timeout_ms: server::webhook::DEFAULT_TIMEOUT_MS,
            pending_on_error: false,
            events: EVENTS.iter().map(|e| (*e, true)).collect(),
            enabled: true,
            last_error: String::new(),
            last_error_at: String::new(),
            last_success_at: String::new(),
        },
    }
}

async fn load(
    officer: &Officer,
    enroll: &Enroll,
    profile_id: String,
) -> Result<WebhooksView, WebError> {
    let o = officer.clone();
    let (listed, shown) = blocking(enroll, move |conn| {
        let who = actor(&o);
        let listed = server::admin::profiles::visible(conn, &who, &profile_id)?;
        let shown = settings::show(conn, &who, &profile_id)?;
        Ok((listed, shown))
    })
    .await?;
    let find = |p: &str| shown.iter().find(|s| s.purpose == p);
    Ok(WebhooksView {
        nav: Some(Nav::of(officer)),
        flash: None,
        profile_id: listed.profile.profile_id.clone(),
        profile_name: listed.profile.name.clone(),
        manageable: listed.manageable,
        sections: vec![
            section("challenge", find("challenge")),
            section("notify", find("notify")),
        ],
        errors: vec![],
    })
}

fn render(v: &WebhooksView, status: actix_web::http::StatusCode) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(v.render()?))
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    msg: Option<String>,
}

pub async fn page(
    officer: Officer,
    enroll: web::Data<Enroll>,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, WebError> {
    let mut v = load(&officer, &enroll, id.into_inner()).await?;
    v.flash = match q.msg.as_deref() {
        Some("saved") => Some("Webhook saved."),
        Some("removed") => Some("Webhook removed."),
        _ => None,
    };
    render(&v, actix_web::http::StatusCode::OK)
}

/// The form as pairs: events are repeated checkboxes.
fn draft(purpose: &str, pairs: &[(String, String)]) -> Result<Draft, WebError> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let timeout_ms = match get("timeout_ms").map(str::trim).filter(|s| !s.is_empty()) {
        Some(t) => Some(t.parse::<i32>().map_err(|_| {
            WebError::BadRequest("timeout must be a number of milliseconds".into())
        })?),
        None => None,
    };
    let challenge = purpose == "challenge";
    Ok(Draft {
        url: get("url").unwrap_or_default().to_string(),
        secret: get("secret").map(str::to_string),
        timeout_ms: if challenge { timeout_ms } else { None },
        pending_on_error: challenge.then(|| get("pending_on_error").is_some()),
        events: (!challenge).then(|| {
            pairs
                .iter()
                .filter(|(n, _)| n == "events")
                .map(|(_, v)| v.clone())
                .collect()
        }),
        enabled: Some(get("enabled").is_some()),
    })
}

pub async fn set(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, WebError> {
    let (id, purpose) = path.into_inner();
    let d = draft(&purpose, &form)?;
    let sealer = enroll.webhook_sealer().ok_or(WebError::Unavailable)?;
    let o = officer.clone();
    let (pid, purp) = (id.clone(), purpose.clone());
    let res = blocking(&enroll, move |conn| {
        Ok(settings::set(conn, &actor(&o), &sealer, &pid, &purp, &d))
    })
    .await?;
    match res {
        Ok(_) => Ok(see_other(&format!("/profiles/{id}/webhooks?msg=saved"))),
        Err(AdminError::Refused(errors)) => {
            let mut v = load(&officer, &enroll, id).await?;
            v.errors = errors
                .into_iter()
                .map(|e| (format!("{purpose}: {}", e.field), e.message))
                .collect();
            // What was typed stays, but for the secret.
            if let Some(s) = v.sections.iter_mut().find(|s| s.purpose == purpose) {
                s.url = form
                    .iter()
                    .find(|(n, _)| n == "url")
                    .map(|(_, u)| u.clone())
                    .unwrap_or_default();
            }
            render(&v, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn remove(
    officer: Officer,
    enroll: web::Data<Enroll>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let (id, purpose) = path.into_inner();
    let o = officer.clone();
    let pid = id.clone();
    blocking(&enroll, move |conn| {
        Ok(settings::remove(conn, &actor(&o), &pid, &purpose)?)
    })
    .await?;
    Ok(see_other(&format!("/profiles/{id}/webhooks?msg=removed")))
}

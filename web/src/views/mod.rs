//! Page handlers, each next to its one view struct (one per template).

use actix_web::HttpResponse;
use askama::Template;

use crate::error::WebError;
use crate::session::Officer;

pub mod access_codes;
pub mod api_keys;
pub mod audit;
pub mod certificates;
pub mod challenges;
pub mod dashboard;
pub mod form;
pub mod intune;
pub mod login;
pub mod mail;
pub mod mobileconfig;
pub mod officers;
pub mod organizations;
pub mod profile_form;
pub mod profiles;
pub mod requests;
pub mod second_factor;
pub mod webhooks;

/// Facts every page shows.
#[derive(Debug, Clone)]
pub struct SiteInfo {
    pub public_url: String,
    pub ca_fingerprint: String,
    /// Why devices cannot reach `public_url` (a loopback default): shown
    /// as a banner (`server::public_url`).
    pub public_url_warning: Option<String>,
}

/// The header of a logged-in page: who, and the logout form's token.
#[derive(Debug, Clone)]
pub struct Nav {
    pub username: String,
    pub role: &'static str,
    pub csrf: String,
}

impl Nav {
    pub fn of(o: &Officer) -> Nav {
        Nav {
            username: o.username.clone(),
            role: o.role.as_str(),
            csrf: o.csrf.clone(),
        }
    }
}

/// The acting officer as `server::admin` sees it.
pub(crate) fn actor(o: &Officer) -> server::admin::Actor<'_> {
    server::admin::Actor {
        username: &o.username,
        role: o.role,
        scope: &o.scope,
    }
}

/// Run `f` with a pooled connection on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    enroll: &server::enroll::Enroll,
    f: impl FnOnce(&mut server::store::PgPooled) -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    let pool = enroll.pool().clone();
    actix_web::web::block(move || {
        let mut conn = pool.get().map_err(server::store::StoreError::from)?;
        f(&mut conn)
    })
    .await?
}

/// An enable or disable button: `change` (a `server::admin` call, given
/// the acting officer and the new state) on the blocking pool, then 303 to
/// `to("enabled")` or `to("disabled")`, where the page's flash says so.
pub(crate) async fn switch<T: Send + 'static>(
    officer: Officer,
    enroll: &server::enroll::Enroll,
    enabled: bool,
    change: impl FnOnce(
            &mut server::store::PgPooled,
            &server::admin::Actor<'_>,
            bool,
        ) -> Result<T, server::admin::AdminError>
        + Send
        + 'static,
    to: impl FnOnce(&str) -> String,
) -> Result<HttpResponse, WebError> {
    blocking(enroll, move |conn| {
        Ok(change(conn, &actor(&officer), enabled)?)
    })
    .await?;
    Ok(see_other(&to(if enabled { "enabled" } else { "disabled" })))
}

/// Render a page as an HTML 200, never cached: for pages that show a
/// secret once (a minted challenge, a new API key).
pub fn html_no_store(page: &impl Template) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(page.render()?))
}

/// Render a page as an HTML 200.
pub fn html(page: &impl Template) -> Result<HttpResponse, WebError> {
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

/// 303 to `location` (POST/redirect/GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location.to_string()))
        .finish()
}

/// Percent-encode one query-string value.
pub fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// Timestamps as every page shows them.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An optional number from a form or query field; empty means absent.
pub fn opt_num(field: &Option<String>, what: &str) -> Result<Option<i64>, WebError> {
    match field.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| WebError::BadRequest(format!("{what} must be a number"))),
    }
}

/// The organizations an officer's scope reaches (wholly, or through one of
/// its departments), as (id, name), for filter selects.
pub fn orgs_in_scope(
    conn: &mut server::store::PgPooled,
    scope: &server::store::queue::Scope,
) -> Result<Vec<(i64, String)>, WebError> {
    let all = server::store::orgs::list_orgs(conn)?;
    let reached = scope.organizations_reached(conn)?;
    Ok(all
        .into_iter()
        .filter(|o| reached.as_ref().is_none_or(|ids| ids.contains(&o.id)))
        .map(|o| (o.id, o.name))
        .collect())
}

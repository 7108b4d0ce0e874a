//! Page handlers, each next to its one view struct (one per template).

use actix_web::HttpResponse;
use askama::Template;

use crate::error::WebError;
use crate::session::Officer;

pub mod dashboard;
pub mod login;
pub mod requests;

/// Facts every page shows.
#[derive(Debug, Clone)]
pub struct SiteInfo {
    pub public_url: String,
    pub ca_fingerprint: String,
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

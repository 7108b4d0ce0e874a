//! The dashboard: request counts per state within the officer's scope.

use actix_web::{web, HttpResponse};
use askama::Template;
use server::enroll::Enroll;
use server::store::{queue, StoreError};

use super::{html, Nav};
use crate::error::WebError;
use crate::session::Officer;

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardView {
    pub nav: Option<Nav>,
    /// (status, count) for requested, applied, issued, declined.
    pub counts: Vec<(&'static str, i64)>,
    pub scope_note: String,
}

pub async fn show(officer: Officer, enroll: web::Data<Enroll>) -> Result<HttpResponse, WebError> {
    let scope = officer.scope.clone();
    let pool = enroll.pool().clone();
    let found = web::block(move || -> Result<_, WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        Ok(queue::counts(&mut conn, &scope)?)
    })
    .await??;
    let counts = found.into_iter().map(|(s, n)| (s.as_str(), n)).collect();
    let scope_note = match &officer.scope {
        queue::Scope::All => "all organizations".to_string(),
        queue::Scope::Limited {
            organizations,
            departments,
        } => format!(
            "{} organization(s), {} department(s)",
            organizations.len(),
            departments.len()
        ),
    };
    html(&DashboardView {
        nav: Some(Nav::of(&officer)),
        counts,
        scope_note,
    })
}

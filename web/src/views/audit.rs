//! The audit log page: filter by event kind, actor and date, newest first,
//! keyset paginated. An MRAO sees every entry; an RAO the entries of its
//! organizations, a DRAO those of its departments, both also the entries
//! they made themselves (`store::console_audit`). The filters only narrow
//! that view: no query parameter names a scope.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use server::enroll::Enroll;
use server::store::admins::Role;
use server::store::console_audit::{self, AuditFilter, Viewer};
use server::store::queue::Cursor;
use server::store::StoreError;

use super::{enc, html, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

const PAGE_SIZE: i64 = 100;

/// Event kinds offered in the filter (`AuditKind::as_str`).
pub const KINDS: [&str; 43] = [
    "certificate.issued",
    "certificate.revoked",
    "request.pending",
    "request.refused",
    "request.approved",
    "request.declined",
    "challenge.minted",
    "challenge.used",
    "challenge.rejected",
    "challenge.expired",
    "challenge.revoked",
    "access_code.created",
    "access_code.used",
    "access_code.changed",
    "access_code.disabled",
    "access_code.enabled",
    "api_key.created",
    "api_key.revoked",
    "admin.created",
    "organization.created",
    "profile.created",
    "profile.updated",
    "profile.disabled",
    "profile.enabled",
    "ca.created",
    "ca.recorded",
    "ca.rollover",
    "crl.issued",
    "console.login",
    "console.login_failed",
    "console.logout",
    "console.second_factor_failed",
    "console.reauthenticated",
    "officer.second_factor_enabled",
    "officer.second_factor_disabled",
    "officer.preference",
    "mail.test",
    "tls.certificate_issued",
    "webhook.updated",
    "webhook.removed",
    "webhook.allowed",
    "webhook.denied",
    "webhook.failed",
];

#[derive(Deserialize)]
pub struct AuditQuery {
    event: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn day(s: &Option<String>) -> Result<Option<NaiveDate>, WebError> {
    non_empty(s)
        .map(|d| {
            NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .map_err(|_| WebError::BadRequest("dates are YYYY-MM-DD".into()))
        })
        .transpose()
}

fn midnight(d: NaiveDate) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN))
}

pub struct Entry {
    pub at: String,
    pub actor: String,
    pub event: String,
    pub target: String,
    pub details: String,
    pub client_ip: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditView {
    pub nav: Option<Nav>,
    pub kinds: Vec<(&'static str, bool)>,
    pub actor: String,
    pub from: String,
    pub to: String,
    /// Below MRAO: the page says whose entries are shown.
    pub limited: bool,
    pub rows: Vec<Entry>,
    pub next: Option<String>,
}

pub async fn list(
    officer: Officer,
    enroll: web::Data<Enroll>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, WebError> {
    let q = q.into_inner();
    let event = non_empty(&q.event);
    let (from, to) = (day(&q.from)?, day(&q.to)?);
    let limited = officer.role != Role::Mrao;
    let filter = AuditFilter {
        event: event.clone(),
        actor: non_empty(&q.actor),
        from: from.map(midnight),
        // The "to" day is inclusive.
        until: to.and_then(|d| d.succ_opt()).map(midnight),
    };
    let after = match non_empty(&q.after) {
        Some(a) => {
            Some(Cursor::decode(&a).ok_or_else(|| WebError::BadRequest("bad page cursor".into()))?)
        }
        None => None,
    };
    let pool = enroll.pool().clone();
    let f = filter.clone();
    let (scope, me) = (officer.scope.clone(), officer.id);
    let page = web::block(move || -> Result<_, WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        let viewer = Viewer {
            scope: &scope,
            officer_id: Some(me),
        };
        Ok(console_audit::list(
            &mut conn, viewer, &f, after, PAGE_SIZE,
        )?)
    })
    .await??;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let next = page.next.map(|c| {
        format!(
            "event={}&actor={}&from={}&to={}&after={}",
            enc(&v(&q.event)),
            enc(&v(&q.actor)),
            enc(&v(&q.from)),
            enc(&v(&q.to)),
            enc(&c.encode())
        )
    });
    let rows = page
        .rows
        .into_iter()
        .map(|e| Entry {
            at: when(e.at),
            actor: e.actor,
            event: e.event,
            target: e.target.unwrap_or_default(),
            details: e.details.to_string(),
            client_ip: e.client_ip.unwrap_or_default(),
        })
        .collect();
    html(&AuditView {
        nav: Some(Nav::of(&officer)),
        kinds: KINDS
            .into_iter()
            .map(|k| (k, event.as_deref() == Some(k)))
            .collect(),
        actor: filter.actor.unwrap_or_default(),
        from: v(&q.from),
        to: v(&q.to),
        limited,
        rows,
        next,
    })
}

//! The dashboard, within the officer's scope: request counts per state,
//! certificates issued per day over the last 30 days (an SVG bar chart
//! drawn on the server: no script), certificates expiring within 7/30/90
//! days, and the recent refusals in the audit log the officer may see
//! (`store::console_audit`: an MRAO all of them, others those of their
//! organizations and departments).

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDate, Utc};
use server::enroll::Enroll;
use server::store::audit::AuditKind;
use server::store::console_audit::{self, AuditFilter, Viewer};
use server::store::{console_certs, queue, StoreError};

use super::{html, when, Nav};
use crate::error::WebError;
use crate::session::Officer;

/// Days on the chart, today included.
const DAYS: i64 = 30;
/// Chart geometry in SVG user units.
const BAR_STEP: i64 = 20;
const BAR_WIDTH: i64 = 14;
const PLOT_HEIGHT: i64 = 120;
const FAILURES_SHOWN: i64 = 10;

/// One day's bar, positioned by the server.
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub height: i64,
    pub day: String,
    pub n: i64,
    /// A date label under every fifth bar.
    pub label: Option<String>,
}

pub struct Failure {
    pub at: String,
    pub target: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardView {
    pub nav: Option<Nav>,
    pub public_url_warning: Option<String>,
    /// (status, count) for requested, applied, issued, declined.
    pub counts: Vec<(&'static str, i64)>,
    pub scope_note: String,
    pub bars: Vec<Bar>,
    pub issued_total: i64,
    pub peak: i64,
    pub chart_width: i64,
    pub bar_width: i64,
    pub chart_height: i64,
    pub plot_height: i64,
    /// (days, certificates expiring within them)
    pub expiring: Vec<(i64, i64)>,
    pub failures: Vec<Failure>,
}

/// Lay out one bar per day from `first`, scaled to the busiest day.
pub fn bars(first: NaiveDate, per_day: &[(NaiveDate, i64)]) -> Vec<Bar> {
    let peak = per_day.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    (0..DAYS)
        .filter_map(|i| first.checked_add_signed(Duration::days(i)).map(|d| (i, d)))
        .map(|(i, d)| {
            let n = per_day
                .iter()
                .find(|(day, _)| *day == d)
                .map_or(0, |(_, n)| *n);
            // A day with issuance keeps at least one unit, so it shows.
            let height = if n == 0 {
                0
            } else {
                (n * PLOT_HEIGHT / peak).max(1)
            };
            Bar {
                x: i * BAR_STEP + 3,
                y: PLOT_HEIGHT - height,
                height,
                day: d.format("%Y-%m-%d").to_string(),
                n,
                label: (i % 5 == 0).then(|| d.format("%m-%d").to_string()),
            }
        })
        .collect()
}

pub async fn show(
    officer: Officer,
    enroll: web::Data<Enroll>,
    site: web::Data<crate::SiteInfo>,
) -> Result<HttpResponse, WebError> {
    let scope = officer.scope.clone();
    let me = officer.id;
    let pool = enroll.pool().clone();
    let now = Utc::now();
    let first = now.date_naive() - Duration::days(DAYS - 1);
    let since = first
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now - Duration::days(DAYS));
    let (found, per_day, expiring, failures) = web::block(move || -> Result<_, WebError> {
        let mut conn = pool.get().map_err(StoreError::from)?;
        let counts = queue::counts(&mut conn, &scope)?;
        let per_day = console_certs::issued_per_day(&mut conn, &scope, since)?;
        let expiring = console_certs::expiring_counts(&mut conn, &scope, now, &[7, 30, 90])?;
        let refused = AuditFilter {
            event: Some(AuditKind::RequestRefused.as_str().to_string()),
            ..AuditFilter::default()
        };
        let viewer = Viewer {
            scope: &scope,
            officer_id: Some(me),
        };
        let failures = console_audit::list(&mut conn, viewer, &refused, None, FAILURES_SHOWN)?.rows;
        Ok((counts, per_day, expiring, failures))
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
    let failures = failures
        .into_iter()
        .map(|e| Failure {
            at: when(e.at),
            target: e.target.unwrap_or_default(),
            reason: e
                .details
                .get("reason")
                .and_then(|r| r.as_str())
                .map_or_else(|| e.details.to_string(), str::to_string),
        })
        .collect();
    html(&DashboardView {
        nav: Some(Nav::of(&officer)),
        public_url_warning: site.public_url_warning.clone(),
        counts,
        scope_note,
        issued_total: per_day.iter().map(|(_, n)| n).sum(),
        peak: per_day.iter().map(|(_, n)| *n).max().unwrap_or(0),
        bars: bars(first, &per_day),
        chart_width: DAYS * BAR_STEP + 6,
        bar_width: BAR_WIDTH,
        chart_height: PLOT_HEIGHT + 20,
        plot_height: PLOT_HEIGHT,
        expiring,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_cover_thirty_days_scaled_to_the_busiest() {
        let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let d = |n| first + Duration::days(n);
        let b = bars(first, &[(d(0), 4), (d(29), 1)]);
        assert_eq!(b.len(), 30);
        assert_eq!((b[0].height, b[0].y), (PLOT_HEIGHT, 0));
        assert_eq!(b[29].height, PLOT_HEIGHT / 4);
        assert_eq!(b[1].height, 0);
        assert_eq!(b[5].label.as_deref(), Some("01-06"));
        assert!(b[1].label.is_none());
    }
}

//! `/metrics` in the Prometheus text exposition format (version 0.0.4):
//! requests by SCEP operation (RFC 8894 §4.1) and outcome, latency
//! histograms per operation, and the database-backed figures — requests
//! waiting for an officer, certificates issued and revoked.
//!
//! Counters live in process memory (lock-free atomics, a fixed label set so
//! cardinality cannot grow with client input). The queue length and the
//! certificate counts are read from PostgreSQL at scrape time instead of
//! being counted here: several scepd processes share one database, and a
//! per-process counter would be wrong as soon as there were two, or after a
//! restart.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::{web, HttpResponse};

use super::{blocking, HttpError};
use crate::enroll::Enroll;
use crate::store::StoreError;

/// The SCEP operations (RFC 8894 §4.1 `operation=`); anything else is
/// counted as `other` so a client cannot create label values.
pub const OPERATIONS: [&str; 5] = [
    "GetCACaps",
    "GetCACert",
    "GetNextCACert",
    "PKIOperation",
    "other",
];

/// How a request ended: a CertRep's pkiStatus (RFC 8894 §3.2.1.3) for
/// PKIOperation, the HTTP class otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Pending,
    /// A signed CertRep FAILURE.
    Failure,
    /// HTTP 4xx: undecodable message, unknown profile or operation.
    BadRequest,
    /// HTTP 503: the database is unreachable, the client retries.
    Unavailable,
    /// HTTP 500.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Self::Success,
        Self::Pending,
        Self::Failure,
        Self::BadRequest,
        Self::Unavailable,
        Self::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::Failure => "failure",
            Self::BadRequest => "bad_request",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The outcome an HTTP error stands for.
    pub fn of_error(e: &HttpError) -> Self {
        match e {
            HttpError::BadRequest(_)
            | HttpError::NotFound(_)
            | HttpError::Conflict(_)
            | HttpError::TooManyRequests(..) => Self::BadRequest,
            HttpError::Unavailable => Self::Unavailable,
            HttpError::Internal => Self::Error,
        }
    }
}

impl From<crate::wire::PkiStatus> for Outcome {
    fn from(s: crate::wire::PkiStatus) -> Self {
        match s {
            crate::wire::PkiStatus::Success => Self::Success,
            crate::wire::PkiStatus::Pending => Self::Pending,
            crate::wire::PkiStatus::Failure => Self::Failure,
        }
    }
}

/// Upper bounds (seconds) of the latency buckets: an enrollment costs a
/// few milliseconds of CPU, queueing under load adds up to seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf` only.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The in-process counters, shared by all workers as app data.
#[derive(Default)]
pub struct Metrics {
    requests: [[AtomicU64; 6]; OPERATIONS.len()],
    latency: [Histogram; OPERATIONS.len()],
    /// SHA-256 of the bearer token a scrape must present (None: open).
    token_sha256: Option<[u8; 32]>,
}

/// The label value for a client-supplied `operation=` (case-insensitive,
/// as the endpoint matches it).
pub fn operation_label(op: Option<&str>) -> &'static str {
    op.and_then(|op| OPERATIONS.iter().find(|o| o.eq_ignore_ascii_case(op)))
        .copied()
        .unwrap_or("other")
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Require a bearer token whose SHA-256 is `token_sha256` to scrape.
    pub fn with_token_sha256(mut self, token_sha256: Option<[u8; 32]>) -> Self {
        self.token_sha256 = token_sha256;
        self
    }

    /// Count one finished request and its latency.
    pub fn record(&self, operation: &str, outcome: Outcome, elapsed: Duration) {
        let op = OPERATIONS
            .iter()
            .position(|o| *o == operation)
            .unwrap_or(OPERATIONS.len() - 1);
        self.requests[op][outcome.index()].fetch_add(1, Ordering::Relaxed);
        self.latency[op].observe(elapsed);
    }

    /// The exposition text, with the figures read at scrape time appended.
    pub fn render(&self, db: &ScrapeFigures) -> String {
        let mut out = String::with_capacity(8 * 1024);
        out.push_str(
            "# HELP scepd_requests_total SCEP requests by operation and outcome.\n\
             # TYPE scepd_requests_total counter\n",
        );
        for (op, row) in OPERATIONS.iter().zip(&self.requests) {
            for outcome in Outcome::ALL {
                let n = row[outcome.index()].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "scepd_requests_total{{operation=\"{op}\",outcome=\"{}\"}} {n}",
                    outcome.label()
                );
            }
        }
        out.push_str(
            "# HELP scepd_request_duration_seconds Time to answer a SCEP request.\n\
             # TYPE scepd_request_duration_seconds histogram\n",
        );
        for (op, h) in OPERATIONS.iter().zip(&self.latency) {
            let mut cumulative = 0u64;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "scepd_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += h.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            // `count` is read after the buckets: a concurrent observation
            // may make it larger, never make `+Inf` exceed it by design of
            // the exposition (+Inf is defined as the count).
            let count = h.count.load(Ordering::Relaxed).max(cumulative);
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "scepd_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {count}\n\
                 scepd_request_duration_seconds_sum{{operation=\"{op}\"}} {sum}\n\
                 scepd_request_duration_seconds_count{{operation=\"{op}\"}} {count}"
            );
        }
        let _ = write!(
            out,
            "# HELP scepd_pending_requests Enrollment requests waiting for an officer (all processes).\n\
             # TYPE scepd_pending_requests gauge\n\
             scepd_pending_requests {}\n\
             # HELP scepd_certificates_issued_total Certificates issued (from the database).\n\
             # TYPE scepd_certificates_issued_total counter\n\
             scepd_certificates_issued_total {}\n\
             # HELP scepd_certificates_revoked_total Certificates revoked (from the database).\n\
             # TYPE scepd_certificates_revoked_total counter\n\
             scepd_certificates_revoked_total {}\n\
             # HELP scepd_commit_batches_total Statements that wrote one-statement enrollments (this process).\n\
             # TYPE scepd_commit_batches_total counter\n\
             scepd_commit_batches_total {}\n\
             # HELP scepd_commit_enrollments_total Enrollments those statements wrote or refused (this process).\n\
             # TYPE scepd_commit_enrollments_total counter\n\
             scepd_commit_enrollments_total {}\n\
             # HELP scepd_signatures_total Private-key signatures made (this process): certificates by the CA, CertReps by the RA.\n\
             # TYPE scepd_signatures_total counter\n\
             scepd_signatures_total{{key=\"ca\"}} {}\n\
             scepd_signatures_total{{key=\"ra\"}} {}\n",
            db.pending,
            db.issued,
            db.revoked,
            db.commit_batches,
            db.commit_enrollments,
            db.ca_signatures,
            db.ra_signatures
        );
        out
    }
}

/// The figures read at scrape time: from PostgreSQL, and this process's
/// group commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeFigures {
    pub pending: i64,
    pub issued: i64,
    pub revoked: i64,
    /// Group commit of this process (`Enroll::commit_stats`).
    pub commit_batches: u64,
    pub commit_enrollments: u64,
    /// Signatures of this process (`Enroll::signatures`).
    pub ca_signatures: u64,
    pub ra_signatures: u64,
}

/// One round trip for the three figures. Counting is exact, not the
/// planner's estimate, so the numbers agree with `scepd cert list`; the
/// status filters use the same literals the store writes.
pub fn db_figures(conn: &mut diesel::PgConnection) -> Result<ScrapeFigures, StoreError> {
    use diesel::sql_types::BigInt;
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        pending: i64,
        #[diesel(sql_type = BigInt)]
        issued: i64,
        #[diesel(sql_type = BigInt)]
        revoked: i64,
    }
    let row: Row = diesel::sql_query(
        "SELECT \
           (SELECT count(*) FROM enrollment_requests WHERE status = 'requested') AS pending, \
           (SELECT count(*) FROM certificates) AS issued, \
           (SELECT count(*) FROM certificates WHERE status = 'revoked') AS revoked",
    )
    .get_result(conn)?;
    Ok(ScrapeFigures {
        pending: row.pending,
        issued: row.issued,
        revoked: row.revoked,
        ..ScrapeFigures::default()
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

/// GET /metrics. Without a database the scrape fails with 503 rather than
/// reporting zeros that a dashboard would take for the truth.
async fn metrics(
    req: actix_web::HttpRequest,
    svc: web::Data<Enroll>,
    metrics: Option<web::Data<Metrics>>,
) -> Result<HttpResponse, HttpError> {
    if let Some(expected) = metrics.as_ref().and_then(|m| m.token_sha256) {
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| openssl::sha::sha256(t.trim().as_bytes()));
        // Compared as hashes, in constant time.
        if !presented.is_some_and(|p| openssl::memcmp::eq(&p, &expected)) {
            return Ok(HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer realm=\"scepd metrics\""))
                .body("metrics need the configured bearer token\n"));
        }
    }
    let db = blocking(&svc, |svc| {
        let mut conn = svc.pool().get().map_err(StoreError::from)?;
        let (commit_batches, commit_enrollments) = svc.commit_stats();
        let (ca_signatures, ra_signatures) = svc.signatures();
        Ok(ScrapeFigures {
            commit_batches,
            commit_enrollments,
            ca_signatures,
            ra_signatures,
            ..db_figures(&mut conn)?
        })
    })
    .await?;
    let text = match metrics {
        Some(m) => m.render(&db),
        None => Metrics::new().render(&db),
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PkiStatus;

    #[test]
    fn outcome_follows_the_cert_rep_status() {
        assert_eq!(Outcome::from(PkiStatus::Success), Outcome::Success);
        assert_eq!(Outcome::from(PkiStatus::Pending), Outcome::Pending);
        assert_eq!(Outcome::from(PkiStatus::Failure), Outcome::Failure);
    }

    #[test]
    fn render_counts_by_operation_and_outcome_with_cumulative_buckets() {
        let m = Metrics::new();
        m.record("PKIOperation", Outcome::Success, Duration::from_millis(3));
        m.record("PKIOperation", Outcome::Success, Duration::from_millis(300));
        m.record("GetCACaps", Outcome::BadRequest, Duration::from_secs(100));
        m.record(
            operation_label(Some("nonsense")),
            Outcome::BadRequest,
            Duration::ZERO,
        );
        let text = m.render(&ScrapeFigures {
            pending: 2,
            issued: 7,
            revoked: 1,
            commit_batches: 3,
            commit_enrollments: 40,
            ca_signatures: 7,
            ra_signatures: 9,
        });
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has(
            "scepd_requests_total{operation=\"PKIOperation\",outcome=\"success\"} 2"
        ));
        assert!(has(
            "scepd_requests_total{operation=\"other\",outcome=\"bad_request\"} 1"
        ));
        assert!(has(
            "scepd_request_duration_seconds_bucket{operation=\"PKIOperation\",le=\"0.005\"} 1"
        ));
        assert!(has(
            "scepd_request_duration_seconds_bucket{operation=\"PKIOperation\",le=\"0.5\"} 2"
        ));
        assert!(has(
            "scepd_request_duration_seconds_bucket{operation=\"GetCACaps\",le=\"30\"} 0"
        ));
        assert!(has(
            "scepd_request_duration_seconds_bucket{operation=\"GetCACaps\",le=\"+Inf\"} 1"
        ));
        assert!(has("scepd_pending_requests 2"));
        assert!(has("scepd_certificates_issued_total 7"));
        assert!(has("scepd_commit_batches_total 3"));
        assert!(has("scepd_commit_enrollments_total 40"));
        assert!(has("scepd_signatures_total{key=\"ca\"} 7"));
        assert!(has("scepd_signatures_total{key=\"ra\"} 9"));
        assert!(has("scepd_certificates_revoked_total 1"));
        assert_eq!(operation_label(Some("pkioperation")), "PKIOperation");
    }

    /// docs/grafana/scepd.json queries only what `/metrics` exports, so the
    /// dashboard cannot drift from the exposition.
    #[test]
    fn the_grafana_dashboard_uses_only_exported_metrics() {
        let dashboard = include_str!("../../../docs/grafana/scepd.json");
        let text = Metrics::new().render(&ScrapeFigures::default());
        let exported: std::collections::HashSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        let used: std::collections::BTreeSet<&str> = dashboard
            .match_indices("scepd_")
            .map(|(i, _)| {
                let rest = &dashboard[i..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        assert!(used.len() >= 6, "{used:?}");
        for name in &used {
            assert!(exported.contains(name), "{name} is not exported");
        }
        for label in [
            "outcome=\"error\"",
            "outcome=\"unavailable\"",
            "operation=\"PKIOperation\"",
        ] {
            assert!(text.contains(label), "{label}");
        }
    }
}

//! HTTP edge of the service core: the SCEP endpoint (RFC 8894 §4.1), CRL
//! publication, the OCSP responder (RFC 6960) and health probes. Handlers only extract, call one service
//! function on a blocking thread, and map errors to status codes.

use actix_web::http::header;
use actix_web::{web, HttpResponse, ResponseError};

use crate::enroll::{Enroll, EnrollError};

mod client_ip;
mod health;
pub mod metrics;
mod ocsp;
mod request_line;
mod scep;

pub use client_ip::{client_ip, TrustedProxies};
pub use request_line::request_line;
pub use scep::query_message;

/// Mount the SCEP, CRL, OCSP, health and metrics routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    scep::configure(cfg);
    ocsp::configure(cfg);
    health::configure(cfg);
    metrics::configure(cfg);
}

/// The error an HTTP handler answers with: one line of text, a status that
/// tells clients whether to retry, and never a secret.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// HTTP 429 with Retry-After (seconds).
    #[error("{0}")]
    TooManyRequests(String, u64),
    #[error("service unavailable, retry later")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl From<EnrollError> for HttpError {
    fn from(e: EnrollError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            return Self::Unavailable;
        }
        match e {
            EnrollError::BadRequest(m) => Self::BadRequest(m),
            EnrollError::NotFound(m) => Self::NotFound(m),
            EnrollError::Conflict(m) => Self::Conflict(m),
            e @ EnrollError::Policy(_) => Self::Conflict(e.to_string()),
            e @ EnrollError::LockedOut {
                retry_after_secs, ..
            } => Self::TooManyRequests(e.to_string(), retry_after_secs),
            other => {
                tracing::error!(error = %other, "request failed");
                Self::Internal
            }
        }
    }
}

impl From<crate::store::StoreError> for HttpError {
    fn from(e: crate::store::StoreError) -> Self {
        EnrollError::Store(e).into()
    }
}

impl From<actix_web::error::BlockingError> for HttpError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::Unavailable
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        use actix_web::http::StatusCode;
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        r.insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"));
        match self {
            Self::Unavailable => {
                r.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::TooManyRequests(_, secs) => {
                r.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            _ => {}
        }
        let mut line = self.to_string().replace(['\n', '\r'], " ");
        line.push('\n');
        r.body(line)
    }
}

/// Run blocking service work (diesel, RSA) off the async workers.
pub async fn blocking<T, F>(svc: &web::Data<Enroll>, f: F) -> Result<T, HttpError>
where
    F: FnOnce(&Enroll) -> Result<T, EnrollError> + Send + 'static,
    T: Send + 'static,
{
    let svc = svc.clone();
    Ok(web::block(move || f(&svc)).await??)
}

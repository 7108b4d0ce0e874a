//! The JSON API for MDMs under `/api/v1`: mint challenges, list profiles,
//! follow enrollment requests, list a device's certificates. Callers
//! authenticate with an API key (`Authorization: Bearer scepd_...`) scoped
//! to organizations (`keys`). Every error is JSON
//! `{"error": {"code": "...", "message": "..."}}` with a stable code.
//!
//! Handlers (`handlers`) only extract, run one service function
//! (`service`) on the blocking pool, and render.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError};

use crate::challenge::ChallengeError;
use crate::store::{PgPool, StoreError};

mod handlers;
mod intune;
mod jamf;
pub mod keys;
mod mobileconfig;
mod openapi;
pub mod service;
mod webhooks;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub pool: PgPool,
    /// For configuration-profile exports (they mint through the service).
    pub enroll: crate::enroll::Enroll,
    /// Signs exported configuration profiles; None: only unsigned ones.
    pub signer: Option<std::sync::Arc<crate::mobileconfig::ProfileSigner>>,
    /// Unused challenges allowed per profile and organization.
    pub max_unused: u32,
    /// Base URL devices use, for the SCEP URLs in profile listings.
    pub public_url: String,
}

/// Mount `/api/v1`. Malformed JSON, paths and queries answer with the same
/// JSON error shape as everything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .app_data(
                web::JsonConfig::default()
                    .limit(1 << 20)
                    .error_handler(|e, _| ApiError::Invalid(e.to_string()).into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::Invalid(e.to_string()).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::Invalid(e.to_string()).into()),
            )
            .configure(handlers::routes)
            .configure(jamf::routes)
            .configure(webhooks::routes)
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(ApiError::NotFound("no such API endpoint".into()))
            })),
    );
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing, unknown or revoked API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// Well-formed, but a value lies outside what scepd accepts (a
    /// challenge lifetime beyond 30 days).
    #[error("{0}")]
    OutOfRange(String),
    #[error("{0}")]
    ProfileNotEnabled(String),
    #[error("{0}")]
    LimitReached(String),
    /// The key's requests per minute are spent.
    #[error("this API key is limited to {limit} requests per minute; retry in {retry_after} s")]
    RateLimited { limit: i32, retry_after: u64 },
    #[error("service unavailable, retry later")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// Stable, documented codes (see `openapi`): clients switch on these.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "invalid_request",
            Self::OutOfRange(_) => "out_of_range",
            Self::ProfileNotEnabled(_) => "profile_not_enabled",
            Self::LimitReached(_) => "limit_reached",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            return Self::Unavailable;
        }
        match e {
            StoreError::NotFound => Self::NotFound("not found".into()),
            other => {
                tracing::error!(error = %other, "API request failed");
                Self::Internal
            }
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        StoreError::from(e).into()
    }
}

impl From<ChallengeError> for ApiError {
    fn from(e: ChallengeError) -> Self {
        match e {
            ChallengeError::UnknownProfile(_) | ChallengeError::UnknownOrganization(_) => {
                Self::NotFound(e.to_string())
            }
            ChallengeError::WrongDepartment(..) | ChallengeError::Invalid(_) => {
                Self::Invalid(e.to_string())
            }
            ChallengeError::ProfileNotEnabled { .. } => Self::ProfileNotEnabled(e.to_string()),
            ChallengeError::LimitReached { .. } => Self::LimitReached(e.to_string()),
            ChallengeError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "API request failed");
                Self::Internal
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::Unavailable
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::OutOfRange(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ProfileNotEnabled(_) => StatusCode::CONFLICT,
            Self::LimitReached(_) | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthorized => {
                r.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"scepd\""));
            }
            Self::Unavailable => {
                r.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::RateLimited { retry_after, .. } => {
                r.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
        }
        r.json(serde_json::json!({
            "error": { "code": self.code(), "message": self.to_string() }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn errors_render_as_json_with_stable_codes() {
        let e = ApiError::from(ChallengeError::LimitReached {
            unused: 3,
            limit: 3,
        });
        assert_eq!(e.code(), "limit_reached");
        let resp = e.error_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let body = resp.into_body().try_into_bytes().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "limit_reached");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit is 3"));
    }

    #[test]
    fn unauthorized_names_the_scheme() {
        let resp = ApiError::Unauthorized.error_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}

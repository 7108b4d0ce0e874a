//! `WebError`: the console's one error type, turned into a status and an
//! error page at the edge (`ResponseError`). Causes are logged, never shown:
//! an officer sees what to do, not a database message.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use server::challenge::ChallengeError;
use server::enroll::EnrollError;
use server::mobileconfig::MobileconfigError;
use server::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No (live) session: answered with a redirect to the login page.
    #[error("login required")]
    LoginRequired,
    /// Something must happen first (a password change, the second factor,
    /// its set-up, re-authentication): answered with a redirect there.
    #[error("first: {0}")]
    Detour(String),
    /// A state-changing request without the session's CSRF token.
    #[error("missing or wrong CSRF token")]
    Csrf,
    #[error("forbidden")]
    Forbidden,
    /// Not found, or outside the officer's scope (indistinguishable on
    /// purpose).
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many failed attempts; try again later.
    #[error("{0}")]
    TooManyAttempts(String),
    #[error("database unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(m) => Self::Conflict(m),
            e if e.is_unavailable() => Self::Unavailable,
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<EnrollError> for WebError {
    fn from(e: EnrollError) -> Self {
        match e {
            EnrollError::BadRequest(m) => Self::BadRequest(m),
            EnrollError::NotFound(_) => Self::NotFound,
            EnrollError::Conflict(m) => Self::Conflict(m),
            EnrollError::Store(s) => s.into(),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<ChallengeError> for WebError {
    fn from(e: ChallengeError) -> Self {
        match e {
            ChallengeError::Store(s) => s.into(),
            ChallengeError::LimitReached { .. } => Self::Conflict(e.to_string()),
            e @ (ChallengeError::UnknownProfile(_)
            | ChallengeError::UnknownOrganization(_)
            | ChallengeError::WrongDepartment(..)
            | ChallengeError::ProfileNotEnabled { .. }
            | ChallengeError::Invalid(_)) => Self::BadRequest(e.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<MobileconfigError> for WebError {
    fn from(e: MobileconfigError) -> Self {
        match e {
            MobileconfigError::Invalid(m) | MobileconfigError::NotFound(m) => Self::BadRequest(m),
            MobileconfigError::Challenge(c) => c.into(),
            MobileconfigError::Store(s) => s.into(),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<server::admin::AdminError> for WebError {
    fn from(e: server::admin::AdminError) -> Self {
        use server::admin::AdminError;
        match e {
            // Handlers show field errors on the form; this is the fallback.
            e @ AdminError::Refused(_) => Self::BadRequest(e.to_string()),
            AdminError::Forbidden => Self::Forbidden,
            AdminError::NotFound => Self::NotFound,
            AdminError::Conflict(m) => Self::Conflict(m),
            AdminError::Store(s) => s.into(),
            AdminError::Failed(m) => Self::Internal(m),
        }
    }
}

impl From<actix_web::error::BlockingError> for WebError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(format!("template: {e}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorView<'a> {
    nav: Option<crate::views::Nav>,
    status: u16,
    message: &'a str,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::LoginRequired | Self::Detour(_) => StatusCode::SEE_OTHER,
            Self::Csrf | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::LoginRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .finish();
        }
        if let Self::Detour(to) = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to.as_str()))
                .finish();
        }
        let status = self.status_code();
        let message = match self {
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "console request failed");
                "Something went wrong; the error is logged."
            }
            Self::Unavailable => "The database is unavailable; try again shortly.",
            Self::Csrf => "This form has expired or did not come from the console. Reload the page and try again.",
            Self::Forbidden => "You may not do this.",
            Self::NotFound => "Not found.",
            Self::BadRequest(m) | Self::Conflict(m) | Self::TooManyAttempts(m) => m.as_str(),
            Self::LoginRequired => "Login required.",
            Self::Detour(_) => "Another step comes first.",
        };
        let page = ErrorView {
            nav: None,
            status: status.as_u16(),
            message,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {message}\n", status.as_u16()));
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}

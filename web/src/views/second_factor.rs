//! The officer's second factor (TOTP, RFC 6238): set-up with a QR code and
//! the secret in base32, confirmation with a code, recovery codes shown
//! once, removal; the second step of a login; and re-authentication before
//! credential changes. Rules, sealing and audit are
//! `server::admin::second_factor`'s and `crate::auth`'s.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use server::admin::second_factor::{self as sf, SecretBox};
use server::admin::AdminError;
use server::enroll::Enroll;

use super::{actor, blocking, html_no_store, see_other, Nav};
use crate::auth::{self, CodeOutcome};
use crate::error::WebError;
use crate::session::{self, removal, Officer, SESSION_COOKIE};
use crate::ConsoleSettings;

#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SetupView {
    pub nav: Option<Nav>,
    pub flash: Option<&'static str>,
    pub error: Option<String>,
    pub enabled: bool,
    pub required: bool,
    /// The secret in base32 while a set-up waits for its code.
    pub pending_secret: Option<String>,
    /// Shown once, right after confirmation.
    pub recovery_codes: Vec<String>,
    pub recovery_codes_left: i64,
}

impl SetupView {
    pub fn nav_csrf(&self) -> &str {
        self.nav.as_ref().map_or("", |n| n.csrf.as_str())
    }
}

fn sealer(req: &HttpRequest) -> Result<web::Data<SecretBox>, WebError> {
    req.app_data::<web::Data<SecretBox>>()
        .cloned()
        .ok_or_else(|| WebError::Internal("no second-factor key".into()))
}

fn required(req: &HttpRequest, officer: &Officer) -> bool {
    req.app_data::<web::Data<ConsoleSettings>>()
        .is_some_and(|c| c.second_factor_required(officer.role))
}

fn load(
    conn: &mut server::store::PgPooled,
    officer: &Officer,
    sealer: &SecretBox,
    required: bool,
) -> Result<SetupView, WebError> {
    let pending = sf::pending(conn, &actor(officer), officer.id, sealer)?;
    let me = server::store::admins::by_id(conn, officer.id)?;
    Ok(SetupView {
        nav: Some(Nav::of(officer)),
        flash: None,
        error: None,
        enabled: me.has_second_factor(),
        required,
        pending_secret: pending.map(|p| p.secret_base32),
        recovery_codes: vec![],
        recovery_codes_left: server::store::second_factor::recovery_codes_left(conn, officer.id)?,
    })
}

#[derive(Deserialize)]
pub struct MsgQuery {
    msg: Option<String>,
}

/// GET /account/second-factor
pub async fn page(
    req: HttpRequest,
    officer: Officer,
    enroll: web::Data<Enroll>,
    q: web::Query<MsgQuery>,
) -> Result<HttpResponse, WebError> {
    let (key, required) = (sealer(&req)?, required(&req, &officer));
    let mut page = blocking(&enroll, move |conn| load(conn, &officer, &key, required)).await?;
    page.flash = match q.msg.as_deref() {
        Some("required") => {
            Some("This installation requires a second factor for MRAOs: set it up to go on.")
        }
        Some("removed") => Some("Second factor removed."),
        _ => None,
    };
    html_no_store(&page)
}

/// POST /account/second-factor/begin
pub async fn begin(
    req: HttpRequest,
    officer: Officer,
    enroll: web::Data<Enroll>,
) -> Result<HttpResponse, WebError> {
    let (key, required) = (sealer(&req)?, required(&req, &officer));
    let page = blocking(&enroll, move |conn| {
        sf::begin(conn, &actor(&officer), officer.id, &key)?;
        load(conn, &officer, &key, required)
    })
    .await?;
    html_no_store(&page)
}

/// GET /account/second-factor/qr.svg: the pending set-up's otpauth URL.
pub async fn qr(
    req: HttpRequest,
    officer: Officer,
    enroll: web::Data<Enroll>,
) -> Result<HttpResponse, WebError> {
    let key = sealer(&req)?;
    let url = blocking(&enroll, move |conn| {
        Ok(sf::pending(conn, &actor(&officer), officer.id, &key)?.map(|p| p.otpauth_url))
    })
    .await?
    .ok_or(WebError::NotFound)?;
    let code =
        qrcode::QrCode::new(url.as_bytes()).map_err(|e| WebError::Internal(e.to_string()))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "no-store"))
        .body(svg))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// POST /account/second-factor/confirm
pub async fn confirm(
    req: HttpRequest,
    officer: Officer,
    enroll: web::Data<Enroll>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, WebError> {
    let (key, required) = (sealer(&req)?, required(&req, &officer));
    let code = form.into_inner().code;
    let (page, ok) = blocking(&enroll, move |conn| {
        match sf::confirm(conn, &actor(&officer), officer.id, &code, &key) {
            Ok(codes) => {
                let mut page = load(conn, &officer, &key, required)?;
                page.flash = Some("Second factor on. Keep the recovery codes below somewhere safe: they are shown once.");
                page.recovery_codes = codes;
                Ok((page, true))
            }
            Err(AdminError::Refused(errors)) => {
                let mut page = load(conn, &officer, &key, required)?;
                page.error = errors.first().map(|e| e.message.clone());
                Ok((page, false))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if ok {
        html_no_store(&page)
    } else {
        Ok(HttpResponse::UnprocessableEntity()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(page.render()?))
    }
}

/// POST /account/second-factor/remove
pub async fn remove(
    req: HttpRequest,
    officer: Officer,
    enroll: web::Data<Enroll>,
) -> Result<HttpResponse, WebError> {
    let required = required(&req, &officer);
    blocking(&enroll, move |conn| {
        Ok(sf::remove(conn, &actor(&officer), officer.id, required)?)
    })
    .await?;
    Ok(see_other("/account/second-factor?msg=removed"))
}

#[derive(Template)]
#[template(path = "code_prompt.html")]
pub struct PromptView {
    pub nav: Option<Nav>,
    pub csrf: String,
    pub error: Option<&'static str>,
    /// Re-authentication (password too) rather than a login's second step.
    pub reauth: bool,
    pub ask_code: bool,
    pub next: String,
}

fn prompt(
    officer: &Officer,
    reauth: bool,
    next: String,
    error: Option<&'static str>,
) -> Result<HttpResponse, WebError> {
    let page = PromptView {
        // During a login's second step the rest of the console is closed.
        nav: reauth.then(|| Nav::of(officer)),
        csrf: officer.csrf.clone(),
        error,
        reauth,
        ask_code: !reauth || officer.has_second_factor,
        next,
    };
    let body = page.render()?;
    let status = if error.is_some() {
        actix_web::http::StatusCode::UNAUTHORIZED
    } else {
        actix_web::http::StatusCode::OK
    };
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

/// GET /login/second-factor
pub async fn login_step(officer: Officer) -> Result<HttpResponse, WebError> {
    if !officer.second_factor_pending {
        return Ok(see_other("/"));
    }
    prompt(&officer, false, "/".into(), None)
}

/// A path on this console to go back to (never another site).
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".into()
    }
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// The session was ended (too many wrong codes): back to the login page,
/// and the browser forgets the cookie.
fn ended(req: &HttpRequest) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/login"))
        .cookie(removal(SESSION_COOKIE, session::over_https(req)))
        .finish()
}

/// POST /login/second-factor
pub async fn login_step_submit(
    req: HttpRequest,
    officer: Officer,
    enroll: web::Data<Enroll>,
    form: web::Form<StepForm>,
) -> Result<HttpResponse, WebError> {
    submit(req, officer, enroll, form.into_inner(), false).await
}

/// The code of a login's second step, or (`reauth`) the password and code
/// of a re-authentication: on success to `/` or the form's `next`.
async fn submit(
    req: HttpRequest,
    officer: Officer,
    enroll: web::Data<Enroll>,
    form: StepForm,
    reauth: bool,
) -> Result<HttpResponse, WebError> {
    let key = sealer(&req)?;
    let ip = session::client_ip(&req);
    let pool = enroll.pool().clone();
    let o = officer.clone();
    let StepForm {
        code,
        password,
        next,
    } = form;
    let next = if reauth { safe_next(&next) } else { "/".into() };
    let outcome = web::block(move || {
        if reauth {
            auth::reauthenticate(&pool, &o, &password, &code, &key, &ip)
        } else {
            auth::second_factor(&pool, &o, &code, &key, &ip)
        }
    })
    .await??;
    match outcome {
        CodeOutcome::Accepted => Ok(see_other(&next)),
        CodeOutcome::Refused => {
            let why = if reauth {
                "Wrong password or code."
            } else {
                "That code is not valid."
            };
            prompt(&officer, reauth, next, Some(why))
        }
        CodeOutcome::Ended => Ok(ended(&req)),
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// GET /reauth
pub async fn reauth(officer: Officer, q: web::Query<NextQuery>) -> Result<HttpResponse, WebError> {
    let next = safe_next(q.next.as_deref().unwrap_or("/"));
    prompt(&officer, true, next, None)
}

/// POST /reauth
pub async fn reauth_submit(
    req: HttpRequest,
    officer: Officer,
    enroll: web::Data<Enroll>,
    form: web::Form<StepForm>,
) -> Result<HttpResponse, WebError> {
    submit(req, officer, enroll, form.into_inner(), true).await
}

//! Login and logout pages.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use server::enroll::Enroll;

use super::{see_other, Nav, SiteInfo};
use crate::auth::{self, LoginOutcome};
use crate::error::WebError;
use crate::session::{self, cookie, removal, Officer, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::ConsoleSettings;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginView {
    pub nav: Option<Nav>,
    pub site: SiteInfo,
    pub csrf: String,
    pub error: Option<&'static str>,
}

fn settings(s: Option<web::Data<ConsoleSettings>>) -> ConsoleSettings {
    s.map(|s| s.get_ref().clone()).unwrap_or_default()
}

/// The login form, with a fresh double-submit CSRF cookie.
fn login_page(
    site: &SiteInfo,
    https: bool,
    status: actix_web::http::StatusCode,
    error: Option<&'static str>,
) -> Result<HttpResponse, WebError> {
    let csrf = session::random_token(32)?;
    let page = LoginView {
        nav: None,
        site: site.clone(),
        csrf: csrf.clone(),
        error,
    };
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .cookie(cookie(LOGIN_CSRF_COOKIE, csrf, https))
        .body(page.render()?))
}

pub async fn form(
    req: HttpRequest,
    site: web::Data<SiteInfo>,
    officer: Option<Officer>,
) -> Result<HttpResponse, WebError> {
    if officer.is_some() {
        return Ok(see_other("/"));
    }
    let https = session::over_https(&req);
    login_page(&site, https, actix_web::http::StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

pub async fn submit(
    req: HttpRequest,
    enroll: web::Data<Enroll>,
    site: web::Data<SiteInfo>,
    cfg: Option<web::Data<ConsoleSettings>>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let cfg = settings(cfg);
    let https = session::over_https(&req);
    let ip = session::client_ip(&req);
    // A login always starts a new session; the one the browser had (if
    // any) is ended so an old cookie cannot ride along (session fixation).
    let old = session::read_cookie(&req, SESSION_COOKIE);
    let LoginForm { username, password } = form.into_inner();
    let pool = enroll.pool().clone();
    let idle = cfg.idle_chrono();
    let outcome = web::block(move || {
        if let Some(old) = old {
            if let Ok(mut conn) = pool.get() {
                let _ = server::store::sessions::delete(&mut conn, &session::hash_id(&old));
            }
        }
        auth::login(&pool, &username, &password, &ip, idle)
    })
    .await??;
    match outcome {
        LoginOutcome::Success {
            session_id,
            second_factor,
        } => Ok(HttpResponse::SeeOther()
            .insert_header((
                actix_web::http::header::LOCATION,
                if second_factor {
                    "/login/second-factor"
                } else {
                    "/"
                },
            ))
            .cookie(cookie(SESSION_COOKIE, session_id, https))
            .cookie(removal(LOGIN_CSRF_COOKIE, https))
            .finish()),
        LoginOutcome::Invalid => login_page(
            &site,
            https,
            actix_web::http::StatusCode::UNAUTHORIZED,
            Some("Wrong username or password."),
        ),
        LoginOutcome::Throttled => login_page(
            &site,
            https,
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed logins; try again in a few minutes."),
        ),
    }
}

pub async fn logout(
    req: HttpRequest,
    officer: Officer,
    enroll: web::Data<Enroll>,
) -> Result<HttpResponse, WebError> {
    let https = session::over_https(&req);
    let ip = session::client_ip(&req);
    let pool = enroll.pool().clone();
    web::block(move || auth::logout(&pool, &officer.session_hash, &officer.username, &ip))
        .await??;
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/login"))
        .cookie(removal(SESSION_COOKIE, https))
        .finish())
}

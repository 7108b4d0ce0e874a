//! The RA console, server-rendered with askama. Officers log in with a
//! password (argon2id) and get a server-side session; every page and action
//! is checked against the officer's role and scope (`server::store::queue`),
//! and decisions go through `server::enroll::Enroll`. Uses only `server`'s
//! public API; no queries here.

use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse, Responder};

mod auth;
mod error;
mod session;
mod views;

pub use error::WebError;
pub use views::SiteInfo;

/// Console settings from the service configuration.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// A session unused this long is gone.
    pub idle: std::time::Duration,
    /// A session is never older than this, however busy.
    pub max_age: std::time::Duration,
    /// Treat every console request as HTTPS (the public URL is https, so
    /// a TLS-terminating proxy is in front): `Secure`, `__Host-` cookies
    /// and HSTS. Requests on the TLS listener are anyway.
    pub secure_cookies: bool,
    /// MRAOs must set up a second factor before anything else.
    pub require_mrao_second_factor: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            idle: std::time::Duration::from_secs(30 * 60),
            max_age: std::time::Duration::from_secs(12 * 3600),
            secure_cookies: false,
            require_mrao_second_factor: false,
        }
    }
}

impl ConsoleSettings {
    /// Whether an officer of `role` must have a second factor here.
    pub fn second_factor_required(&self, role: server::store::admins::Role) -> bool {
        self.require_mrao_second_factor && role == server::store::admins::Role::Mrao
    }

    pub fn new(idle_seconds: u32, public_url: &str) -> Self {
        Self {
            idle: std::time::Duration::from_secs(idle_seconds.into()),
            secure_cookies: public_url.starts_with("https://"),
            ..Self::default()
        }
    }

    pub(crate) fn idle_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.idle).unwrap_or(chrono::Duration::minutes(30))
    }

    pub(crate) fn max_age_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.max_age).unwrap_or(chrono::Duration::hours(12))
    }
}

/// The identity that signs configuration profiles, loaded at start; `None`
/// when it could not be (the console then refuses profile downloads).
pub struct ProfileSigning(pub Option<std::sync::Arc<server::mobileconfig::ProfileSigner>>);

/// Mount the console routes, all behind the session/CSRF/header gate.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(from_fn(session::gate))
            .route("/", web::get().to(views::dashboard::show))
            .route("/login", web::get().to(views::login::form))
            .route("/login", web::post().to(views::login::submit))
            .route("/logout", web::post().to(views::login::logout))
            .route(
                "/login/second-factor",
                web::get().to(views::second_factor::login_step),
            )
            .route(
                "/login/second-factor",
                web::post().to(views::second_factor::login_step_submit),
            )
            .route("/reauth", web::get().to(views::second_factor::reauth))
            .route(
                "/reauth",
                web::post().to(views::second_factor::reauth_submit),
            )
            .route(
                "/account/second-factor",
                web::get().to(views::second_factor::page),
            )
            .route(
                "/account/second-factor/begin",
                web::post().to(views::second_factor::begin),
            )
            .route(
                "/account/second-factor/qr.svg",
                web::get().to(views::second_factor::qr),
            )
            .route(
                "/account/second-factor/confirm",
                web::post().to(views::second_factor::confirm),
            )
            .route(
                "/account/second-factor/remove",
                web::post().to(views::second_factor::remove),
            )
            .route("/requests", web::get().to(views::requests::queue))
            .route("/requests/bulk", web::post().to(views::requests::bulk))
            .route("/requests/{id}", web::get().to(views::requests::detail))
            .route(
                "/requests/{id}/approve",
                web::post().to(views::requests::approve),
            )
            .route(
                "/requests/{id}/decline",
                web::post().to(views::requests::decline),
            )
            .route("/certificates", web::get().to(views::certificates::list))
            .route(
                "/certificates.csv",
                web::get().to(views::certificates::export_csv),
            )
            .route(
                "/certificates/{id}",
                web::get().to(views::certificates::detail),
            )
            .route(
                "/certificates/{id}/pem",
                web::get().to(views::certificates::pem),
            )
            .route(
                "/certificates/{id}/der",
                web::get().to(views::certificates::der),
            )
            .route(
                "/certificates/{id}/revoke",
                web::post().to(views::certificates::revoke),
            )
            .route(
                "/requests/{id}/mobileconfig",
                web::post().to(views::mobileconfig::for_request),
            )
            .route("/audit", web::get().to(views::audit::list))
            .route("/profiles", web::get().to(views::profiles::page))
            .route("/profiles", web::post().to(views::profile_form::create))
            .route(
                "/profiles/new",
                web::get().to(views::profile_form::new_form),
            )
            .route(
                "/profiles/{id}/edit",
                web::get().to(views::profile_form::edit_form),
            )
            .route(
                "/profiles/{id}/edit",
                web::post().to(views::profile_form::update),
            )
            .route("/profiles/{id}/intune", web::get().to(views::intune::page))
            .route("/profiles/{id}/intune", web::post().to(views::intune::save))
            .route(
                "/profiles/{id}/intune/remove",
                web::post().to(views::intune::remove),
            )
            .route(
                "/profiles/{id}/disable",
                web::post().to(views::profiles::disable),
            )
            .route(
                "/profiles/{id}/enable",
                web::post().to(views::profiles::enable),
            )
            .configure(webhook_routes)
            .route("/access-codes", web::get().to(views::access_codes::page))
            .route("/access-codes", web::post().to(views::access_codes::create))
            .route(
                "/access-codes/{id}/disable",
                web::post().to(views::access_codes::disable),
            )
            .route(
                "/access-codes/{id}/enable",
                web::post().to(views::access_codes::enable),
            )
            .route("/api-keys", web::get().to(views::api_keys::page))
            .route("/api-keys", web::post().to(views::api_keys::create))
            .route(
                "/api-keys/{id}/revoke",
                web::post().to(views::api_keys::revoke),
            )
            .route("/mail", web::get().to(views::mail::page))
            .route("/mail/me", web::post().to(views::mail::set_mine))
            .route("/mail/test", web::post().to(views::mail::send_test))
            .route("/challenges", web::get().to(views::challenges::page))
            .route("/challenges", web::post().to(views::challenges::mint))
            .route(
                "/challenges/mobileconfig",
                web::post().to(views::mobileconfig::from_form),
            )
            .route(
                "/challenges/{id}/revoke",
                web::post().to(views::challenges::revoke),
            )
            .configure(directory_routes)
            .route("/static/style.css", web::get().to(style))
            .route("/static/console.js", web::get().to(script)),
    );
}

/// Organizations, departments and officers (issue 4).
/// A profile's webhooks (`views::webhooks`).
fn webhook_routes(cfg: &mut web::ServiceConfig) {
    use views::webhooks as wh;
    cfg.route("/profiles/{id}/webhooks", web::get().to(wh::page))
        .route("/profiles/{id}/webhooks/{purpose}", web::post().to(wh::set))
        .route(
            "/profiles/{id}/webhooks/{purpose}/remove",
            web::post().to(wh::remove),
        );
}

fn directory_routes(cfg: &mut web::ServiceConfig) {
    use views::{officers as of, organizations as org};
    cfg.route("/organizations", web::get().to(org::list))
        .route("/organizations", web::post().to(org::create))
        .route("/organizations/{id}", web::get().to(org::show))
        .route("/organizations/{id}", web::post().to(org::rename))
        .route("/organizations/{id}/disable", web::post().to(org::disable))
        .route("/organizations/{id}/enable", web::post().to(org::enable))
        .route(
            "/organizations/{id}/departments",
            web::post().to(org::add_department),
        )
        .route("/departments/{id}", web::get().to(org::department))
        .route("/departments/{id}", web::post().to(org::rename_department))
        .route(
            "/departments/{id}/disable",
            web::post().to(org::disable_department),
        )
        .route(
            "/departments/{id}/enable",
            web::post().to(org::enable_department),
        )
        .route("/officers", web::get().to(of::list))
        .route("/officers", web::post().to(of::create))
        // Before `/officers/{id}`, which would take "new" for an id.
        .route("/officers/new", web::get().to(of::new_form))
        .route("/officers/{id}", web::get().to(of::edit))
        .route("/officers/{id}", web::post().to(of::update))
        .route("/officers/{id}/disable", web::post().to(of::disable))
        .route("/officers/{id}/enable", web::post().to(of::enable))
        .route(
            "/officers/{id}/password",
            web::post().to(of::reset_password),
        );
}

async fn style() -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/css")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../static/style.css"))
}

async fn script() -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/javascript")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../static/console.js"))
}

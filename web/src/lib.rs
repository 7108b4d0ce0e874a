//! The RA console (server-rendered with askama). For now the shell: a
//! landing page that tells an operator where devices enroll, plus the
//! static assets. It uses only `server`'s public API.

use actix_web::{web, HttpResponse, Responder};
use askama::Template;

mod views;

/// Mount the console routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/static/style.css", web::get().to(style));
}

async fn index(info: web::Data<views::SiteInfo>) -> impl Responder {
    let page = views::IndexView {
        site: info.get_ref().clone(),
    };
    match page.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((
                "Content-Security-Policy",
                "default-src 'self'; frame-ancestors 'none'",
            ))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            HttpResponse::InternalServerError().body("internal error\n")
        }
    }
}

async fn style() -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/css")
        .body(include_str!("../../static/style.css"))
}

pub use views::SiteInfo;

//! `/healthz` (the process answers) and `/readyz` (the database answers).

use actix_web::{web, HttpResponse};

use super::{blocking, HttpError};
use crate::enroll::Enroll;
use crate::store::{self, StoreError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

async fn readyz(svc: web::Data<Enroll>) -> Result<HttpResponse, HttpError> {
    blocking(&svc, |svc| {
        let mut conn = svc.pool().get().map_err(StoreError::from)?;
        store::ping(&mut conn)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain")
        .body("ready\n"))
}

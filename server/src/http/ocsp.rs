//! The OCSP responder's HTTP binding (RFC 6960 Appendix A.1): `POST /ocsp`
//! with the DER request as body, or `GET /ocsp/<base64 of the DER request,
//! URL-encoded>`. Every answer the protocol can express is an HTTP 200
//! `application/ocsp-response`, errors included (malformedRequest for what
//! cannot be read); only a body over [`MAX_REQUEST_BYTES`] is refused at
//! the HTTP level (413).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;

use super::HttpError;
use crate::enroll::Enroll;

/// Largest OCSP request accepted. One CertID with a nonce is about 120
/// octets; a signed request with its certificates a few kilobytes.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/ocsp")
            .app_data(web::PayloadConfig::new(MAX_REQUEST_BYTES))
            .route(web::post().to(post)),
    )
    .service(
        web::resource(["/ocsp/", "/ocsp/{request:.*}"])
            .app_data(web::PayloadConfig::new(MAX_REQUEST_BYTES))
            .route(web::get().to(get))
            .route(web::post().to(post)),
    );
}

async fn post(body: web::Bytes, svc: web::Data<Enroll>) -> Result<HttpResponse, HttpError> {
    answer(body.to_vec(), svc, false).await
}

/// The request from the raw path, so `%2F`, `%2B` and `%3D` (and the plain
/// `/` and `+` some clients leave) all decode.
async fn get(req: HttpRequest, svc: web::Data<Enroll>) -> Result<HttpResponse, HttpError> {
    let raw = req.uri().path().strip_prefix("/ocsp/").unwrap_or_default();
    let text = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && *c != '=')
        .collect();
    // Undecodable base64 is a malformed request like any other.
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cleaned.as_bytes())
        .unwrap_or_default();
    answer(der, svc, true).await
}

async fn answer(
    der: Vec<u8>,
    svc: web::Data<Enroll>,
    cacheable: bool,
) -> Result<HttpResponse, HttpError> {
    let svc = svc.clone();
    let (body, max_age) =
        web::block(move || (svc.ocsp_answer(&der), svc.ocsp_cache_seconds())).await?;
    let mut r = HttpResponse::Ok();
    r.content_type("application/ocsp-response");
    // RFC 5019 §6.2: a GET answer may be cached by HTTP caches as long as
    // this responder would serve it from memory.
    if cacheable && max_age > 0 {
        r.insert_header((
            header::CACHE_CONTROL,
            format!("max-age={max_age}, public, no-transform, must-revalidate"),
        ));
    } else {
        r.insert_header((header::CACHE_CONTROL, "no-cache"));
    }
    Ok(r.body(body))
}

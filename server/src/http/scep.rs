//! The SCEP endpoint, RFC 8894 §4: `/scep/<profile-id>` with any further
//! path (Cisco appends `/pkiclient.exe`), `/scep` for the default profile,
//! operations GetCACaps, GetCACert, GetNextCACert and PKIOperation by GET
//! (base64 `message`) or POST (binary body). CRLs are published at
//! `/crl/<name>.crl` (the URL issued certificates carry).

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;

use super::metrics::{operation_label, Metrics, Outcome};
use super::{blocking, client_ip, HttpError, TrustedProxies};
use crate::enroll::Enroll;

/// The profile `/scep` alone (and Cisco's `/cgi-bin/pkiclient.exe`) serves.
pub const DEFAULT_PROFILE: &str = "default";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/scep", web::route().to(scep))
        .route("/scep/", web::route().to(scep))
        .route("/scep/{profile}", web::route().to(scep))
        .route("/scep/{profile}/{tail:.*}", web::route().to(scep))
        .route("/cgi-bin/pkiclient.exe", web::route().to(scep))
        .route("/crl/{name}.crl", web::get().to(crl));
}

fn profile_name(req: &HttpRequest) -> String {
    match req.match_info().get("profile") {
        // `/scep/pkiclient.exe`: a client appended its path to `/scep`.
        Some(p) if !p.is_empty() && !p.eq_ignore_ascii_case("pkiclient.exe") => p.to_string(),
        _ => DEFAULT_PROFILE.to_string(),
    }
}

/// The value of a query parameter, percent-decoded but with `+` kept as
/// `+`: base64 uses it and Apple leaves it unescaped.
fn raw_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k.eq_ignore_ascii_case(name) {
            Some(
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        } else {
            None
        }
    })
}

/// Decode the base64 `message` of a GET PKIOperation, tolerating line
/// breaks, spaces where `+` was form-decoded, URL-safe letters and missing
/// padding.
pub fn query_message(query: &str) -> Result<Vec<u8>, String> {
    let raw = raw_param(query, "message").ok_or("PKIOperation by GET needs a message parameter")?;
    let cleaned: String = raw
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\t'))
        .map(|c| match c {
            ' ' => '+',
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .filter(|c| *c != '=')
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cleaned.as_bytes())
        .map_err(|e| format!("message is not base64: {e}"))
}

/// Answer, then count the request by operation and outcome (when the app
/// carries [`Metrics`]).
async fn scep(
    req: HttpRequest,
    body: web::Bytes,
    svc: web::Data<Enroll>,
) -> Result<HttpResponse, HttpError> {
    let started = std::time::Instant::now();
    let res = answer(req.clone(), body, svc).await;
    if let Some(m) = req.app_data::<web::Data<Metrics>>() {
        let op = operation_label(raw_param(req.query_string(), "operation").as_deref());
        let outcome = match &res {
            Ok((_, o)) => *o,
            Err(e) => Outcome::of_error(e),
        };
        m.record(op, outcome, started.elapsed());
    }
    res.map(|(r, _)| r)
}

async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    svc: web::Data<Enroll>,
) -> Result<(HttpResponse, Outcome), HttpError> {
    let query = req.query_string().to_string();
    let op = raw_param(&query, "operation")
        .ok_or_else(|| HttpError::BadRequest("missing operation parameter".into()))?;
    let name = profile_name(&req);
    let method = req.method().clone();
    let client_ip = client_ip(&req, TrustedProxies::of(&req)).map(|ip| ip.to_string());
    match op.as_str() {
        o if o.eq_ignore_ascii_case("GetCACaps") => {
            let caps = blocking(&svc, move |svc| {
                let profile = svc.profile(&name)?;
                Ok(svc.caps(&profile))
            })
            .await?;
            Ok((
                HttpResponse::Ok().content_type("text/plain").body(caps),
                Outcome::Success,
            ))
        }
        o if o.eq_ignore_ascii_case("GetCACert") => {
            let body = blocking(&svc, move |svc| {
                svc.profile(&name)?;
                svc.ca_certs()
            })
            .await?;
            Ok((
                HttpResponse::Ok()
                    .content_type("application/x-x509-ca-ra-cert")
                    .body(body),
                Outcome::Success,
            ))
        }
        o if o.eq_ignore_ascii_case("GetNextCACert") => {
            let body = blocking(&svc, move |svc| {
                svc.profile(&name)?;
                svc.next_ca_certs()
            })
            .await?;
            match body {
                Some(b) => Ok((
                    HttpResponse::Ok()
                        .content_type("application/x-x509-next-ca-cert")
                        .body(b),
                    Outcome::Success,
                )),
                None => Err(HttpError::NotFound("no next CA certificate".into())),
            }
        }
        o if o.eq_ignore_ascii_case("PKIOperation") => {
            let message = if method == actix_web::http::Method::POST {
                body.to_vec()
            } else if method == actix_web::http::Method::GET {
                query_message(&query).map_err(HttpError::BadRequest)?
            } else {
                return Err(HttpError::BadRequest(
                    "PKIOperation needs GET or POST".into(),
                ));
            };
            if message.is_empty() {
                return Err(HttpError::BadRequest("empty PKIOperation message".into()));
            }
            let rep = blocking(&svc, move |svc| {
                svc.pki_operation(&name, &message, client_ip.as_deref())
            })
            .await?;
            Ok((
                HttpResponse::Ok()
                    .content_type("application/x-pki-message")
                    .body(rep.der),
                Outcome::from(rep.status),
            ))
        }
        other => Err(HttpError::BadRequest(format!(
            "unknown operation {:?}",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

async fn crl(path: web::Path<String>, svc: web::Data<Enroll>) -> Result<HttpResponse, HttpError> {
    let name = path.into_inner();
    let crl = blocking(&svc, move |svc| svc.crl_by_name(&name)).await?;
    match crl {
        Some(der) => Ok(HttpResponse::Ok()
            .content_type("application/pkix-crl")
            .body(der)),
        None => Err(HttpError::NotFound("no such CRL".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_message_keeps_unescaped_plus_and_ignores_line_breaks() {
        let data = [0xfbu8, 0xef, 0xff, 0x01, 0x02];
        let b64 = base64::engine::general_purpose::STANDARD.encode(data); // "++//AQI="
        assert!(b64.contains('+'));
        let q = format!("operation=PKIOperation&message={}", b64.replace('A', "\nA"));
        assert_eq!(query_message(&q).unwrap(), data);
        let escaped = format!(
            "operation=PKIOperation&message={}",
            b64.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
        assert_eq!(query_message(&escaped).unwrap(), data);
    }

    #[test]
    fn get_message_missing_or_garbage_is_an_error() {
        assert!(query_message("operation=PKIOperation").is_err());
        assert!(query_message("operation=PKIOperation&message=%%%%").is_err());
    }
}

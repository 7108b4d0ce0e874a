//! `/api/v1` routes: extract the bearer token and input, run one service
//! function on the blocking pool (diesel, argon2 and RSA block), render JSON.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::pg::PgConnection;
use serde::Deserialize;

use super::keys::{self, Caller};
use super::service::{self, BulkMintBody, MintBody};
use super::{openapi, ApiError, ApiState};
use crate::admin::profile_settings::SettingsPatch;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .route("/challenges", web::post().to(mint_one))
        .route("/challenges/bulk", web::post().to(mint_bulk))
        .route("/profiles", web::get().to(list_profiles))
        .route("/profiles/{id}", web::patch().to(change_profile))
        .configure(super::intune::routes)
        .route("/mobileconfig", web::post().to(super::mobileconfig::export))
        .route("/requests", web::get().to(request_by_transaction))
        .route("/requests/{id}", web::get().to(request_by_id))
        .route(
            "/devices/{identity}/certificates",
            web::get().to(device_certificates),
        );
}

/// The bearer token, or `Unauthorized` before any database work.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized);
    }
    Ok(token.trim().to_string())
}

/// Authenticate, then run `f`, off the async workers.
pub(super) async fn as_caller<T, F>(
    state: &web::Data<ApiState>,
    req: &HttpRequest,
    f: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&mut PgConnection, &Caller, &ApiState) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let token = bearer(req)?;
    let state = state.clone();
    web::block(move || {
        let mut conn = state.pool.get().map_err(crate::store::StoreError::from)?;
        let caller = keys::authenticate(&mut conn, &token)?;
        f(&mut conn, &caller, &state)
    })
    .await?
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi::document())
}

async fn mint_one(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<MintBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let out = as_caller(&state, &req, move |conn, caller, st| {
        service::mint_one(conn, caller, &body, st.max_unused)
    })
    .await?;
    Ok(HttpResponse::Created().json(out))
}

async fn mint_bulk(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<BulkMintBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let out = as_caller(&state, &req, move |conn, caller, st| {
        service::mint_bulk(conn, caller, &body, st.max_unused)
    })
    .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "challenges": out })))
}

async fn list_profiles(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let out = as_caller(&state, &req, |conn, caller, st| {
        service::list_profiles(conn, caller, &st.public_url)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "profiles": out })))
}

async fn change_profile(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<SettingsPatch>,
) -> Result<HttpResponse, ApiError> {
    let (id, patch) = (id.into_inner(), body.into_inner());
    let out = as_caller(&state, &req, move |conn, caller, st| {
        service::change_profile(conn, caller, &st.public_url, &id, &patch)
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize)]
struct ByTransaction {
    transaction_id: String,
}

async fn request_by_transaction(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<ByTransaction>,
) -> Result<HttpResponse, ApiError> {
    let txid = q.into_inner().transaction_id;
    let out = as_caller(&state, &req, move |conn, caller, _| {
        service::request_status(conn, caller, None, Some(&txid))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn request_by_id(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = as_caller(&state, &req, move |conn, caller, _| {
        service::request_status(conn, caller, Some(id), None)
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn device_certificates(
    state: web::Data<ApiState>,
    req: HttpRequest,
    identity: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let identity = identity.into_inner();
    let out = as_caller(&state, &req, move |conn, caller, _| {
        service::device_certificates(conn, caller, &identity)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "certificates": out })))
}

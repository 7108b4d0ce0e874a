//! `/api/v1/profiles/{id}/intune`: a profile's Microsoft Intune settings
//! (docs/intune.md), through `intune::settings` with the key acting as an
//! RAO of its organizations, as for any profile change. The client secret
//! is accepted, sealed, and never returned.

use actix_web::{web, HttpRequest, HttpResponse};

use super::handlers::as_caller;
use super::keys::Caller;
use super::{ApiError, ApiState};
use crate::admin::{Actor, AdminError};
use crate::intune::settings::{self, SettingsForm};
use crate::store::admins::Role;
use crate::store::queue::Scope;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/profiles/{id}/intune", web::get().to(show))
        .route("/profiles/{id}/intune", web::put().to(set))
        .route("/profiles/{id}/intune", web::delete().to(remove));
}

fn as_rao<T>(
    caller: &Caller,
    f: impl FnOnce(&Actor<'_>) -> Result<T, AdminError>,
) -> Result<T, ApiError> {
    let scope = Scope::Limited {
        organizations: caller.organizations.clone(),
        departments: vec![],
    };
    let name = caller.actor();
    let actor = Actor {
        username: &name,
        role: Role::Rao,
        scope: &scope,
    };
    f(&actor).map_err(|e| match e {
        AdminError::NotFound => ApiError::NotFound("no such profile".into()),
        AdminError::Forbidden => ApiError::Forbidden(
            "the profile is enabled for organizations outside this key's".into(),
        ),
        AdminError::Store(e) => e.into(),
        e => ApiError::Invalid(e.to_string()),
    })
}

async fn show(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = as_caller(&state, &req, move |conn, caller, _| {
        super::service::require_profile(conn, caller, &id)?;
        as_rao(caller, |who| settings::show(conn, who, &id))?
            .ok_or_else(|| ApiError::NotFound("the profile does not use Intune".into()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn set(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<SettingsForm>,
) -> Result<HttpResponse, ApiError> {
    let (id, form) = (id.into_inner(), body.into_inner());
    let out = as_caller(&state, &req, move |conn, caller, st| {
        super::service::require_profile(conn, caller, &id)?;
        let sealer = st.enroll.intune().ok_or(ApiError::Internal)?.sealer();
        as_rao(caller, |who| settings::set(conn, who, sealer, &id, &form))
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn remove(
    state: web::Data<ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    as_caller(&state, &req, move |conn, caller, _| {
        super::service::require_profile(conn, caller, &id)?;
        as_rao(caller, |who| settings::remove(conn, who, &id))
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

//! Signed Apple configuration profiles from the console: on the challenges
//! page (any profile and place in scope) and on a request's page (its
//! profile, organization, department and CN). A POST with the CSRF token,
//! because each download mints a one-time challenge (audited by
//! `challenge::mint`) that lives only inside the returned file.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::Duration;
use serde::Deserialize;
use server::admin::access_codes::{self, CodeCheck};
use server::challenge::gate::Gate;
use server::enroll::Enroll;
use server::mobileconfig::{
    export_mobileconfig, ChallengeChoice, ExportRequest, Exported, SubjectAltName,
};
use server::store::{profiles, queue, StoreError};

use super::actor;
use super::challenges::parse_place;
use crate::error::WebError;
use crate::session::Officer;
use crate::ProfileSigning;

/// How long the embedded challenge stays usable: long enough for a user to
/// install the profile, short enough that a forgotten file is harmless.
const CHALLENGE_TTL: Duration = Duration::days(7);

struct Target {
    profile: String,
    organization_id: i64,
    department_id: Option<i64>,
    device: Option<String>,
    /// Embed this (verified) access code instead of minting a challenge.
    access_code: Option<String>,
}

async fn export(
    officer: Officer,
    enroll: web::Data<Enroll>,
    signing: Option<web::Data<ProfileSigning>>,
    target: impl FnOnce(&mut server::store::PgPooled) -> Result<Target, WebError> + Send + 'static,
) -> Result<HttpResponse, WebError> {
    let signer = signing.and_then(|s| s.into_inner().0.clone());
    let exported: Exported = web::block(move || -> Result<Exported, WebError> {
        let mut conn = enroll.pool().get().map_err(StoreError::from)?;
        let t = target(&mut conn)?;
        Ok(export_mobileconfig(
            &mut conn,
            &enroll,
            signer.as_deref(),
            &ExportRequest {
                profile: &t.profile,
                organization_id: t.organization_id,
                department_id: t.department_id,
                device_identity: t.device.as_deref(),
                challenge: match &t.access_code {
                    Some(code) => ChallengeChoice::AccessCode(code),
                    None => ChallengeChoice::Mint { ttl: CHALLENGE_TTL },
                },
                subject_alt_name: SubjectAltName::default(),
                identifier_prefix: None,
                removal_date: None,
                // Unsigned profiles make iOS warn "Not Verified"; the
                // console only hands out signed ones.
                signed: true,
                actor: &officer.username,
            },
        )?)
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type(exported.content_type)
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", exported.file_name),
        ))
        .body(exported.bytes))
}

#[derive(Deserialize)]
pub struct ExportForm {
    profile: String,
    place: String,
    device: Option<String>,
    access_code: Option<String>,
}

pub async fn from_form(
    officer: Officer,
    enroll: web::Data<Enroll>,
    signing: Option<web::Data<ProfileSigning>>,
    gate: Option<web::Data<Gate>>,
    form: web::Form<ExportForm>,
) -> Result<HttpResponse, WebError> {
    let f = form.into_inner();
    let (org, dept) = parse_place(&f.place, &officer.scope)?;
    let code = f
        .access_code
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let checker = officer.clone();
    export(officer, enroll, signing, move |conn| {
        if let Some(code) = &code {
            let gate: &Gate = match &gate {
                Some(g) => g.get_ref(),
                None => default_gate(),
            };
            verify_access_code(conn, &checker, gate, &f.profile, (org, dept), code)?;
        }
        Ok(Target {
            profile: f.profile,
            organization_id: org,
            department_id: dept,
            device: f
                .device
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty()),
            access_code: code,
        })
    })
    .await
}

pub async fn for_request(
    officer: Officer,
    enroll: web::Data<Enroll>,
    signing: Option<web::Data<ProfileSigning>>,
    path: web::Path<i64>,
) -> Result<HttpResponse, WebError> {
    let id = path.into_inner();
    let scope = officer.scope.clone();
    export(officer, enroll, signing, move |conn| {
        // Through the scope: another department's request is a 404.
        let r = queue::request(conn, &scope, id)?;
        Ok(Target {
            profile: profiles::by_id(conn, r.profile_id)?.profile_id,
            organization_id: r.organization_id,
            department_id: r.department_id,
            device: r.common_name,
            access_code: None,
        })
    })
    .await
}

/// The console's limit on failed access-code checks when `serve` gave
/// none (`SCEPD_CHALLENGE_FAILURE_*` configure the one it gives).
fn default_gate() -> &'static Gate {
    static GATE: std::sync::OnceLock<Gate> = std::sync::OnceLock::new();
    GATE.get_or_init(Gate::default)
}

/// Only an enabled access code of this organization that the profile
/// accepts may go into a file: a typo would hand out a profile that fails.
/// Checked, counted and audited by `admin::access_codes::check_typed`.
fn verify_access_code(
    conn: &mut server::store::PgPooled,
    officer: &Officer,
    gate: &Gate,
    profile: &str,
    place: (i64, Option<i64>),
    code: &str,
) -> Result<(), WebError> {
    match access_codes::check_typed(
        conn,
        &actor(officer),
        officer.id,
        gate,
        profile,
        place,
        code,
    )? {
        CodeCheck::Matched => Ok(()),
        CodeCheck::NoMatch => Err(WebError::BadRequest(
            "that is not an access code of this organization for this profile".into(),
        )),
        CodeCheck::Throttled => Err(WebError::TooManyAttempts(
            "too many wrong access codes; try again later".into(),
        )),
    }
}

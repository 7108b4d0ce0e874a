//! `POST /api/v1/mobileconfig`: an MDM downloads a signed Apple
//! configuration profile for one device, with a freshly minted one-time
//! challenge inside (issue 5). POST because every call mints a challenge.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{handlers::as_caller, ApiError, ApiState};
use crate::mobileconfig::{
    self, ChallengeChoice, ExportRequest, MobileconfigError, SubjectAltName,
};

/// A profile stays useful for a week on a device waiting to be set up.
const DEFAULT_TTL_MINUTES: u64 = 7 * 24 * 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    pub profile: String,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    /// CN or serialNumber of the device: fills the subject template and
    /// binds the challenge to it.
    pub device_identity: Option<String>,
    pub ttl_minutes: Option<u64>,
    /// Default true: signed CMS; false gives the plain XML plist.
    pub signed: Option<bool>,
    #[serde(default)]
    pub san_dns: Vec<String>,
    #[serde(default)]
    pub san_email: Vec<String>,
    #[serde(default)]
    pub san_upn: Vec<String>,
}

impl From<MobileconfigError> for ApiError {
    fn from(e: MobileconfigError) -> Self {
        match e {
            MobileconfigError::NotFound(m) => Self::NotFound(m),
            MobileconfigError::Invalid(m) => Self::Invalid(m),
            MobileconfigError::Challenge(c) => c.into(),
            MobileconfigError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "mobileconfig export failed");
                Self::Internal
            }
        }
    }
}

pub async fn export(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Json<ExportBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let out = as_caller(&state, &req, move |conn, caller, st| {
        if !caller.may_act_for(body.organization_id) {
            return Err(ApiError::Forbidden(format!(
                "this API key may not act for organization {}",
                body.organization_id
            )));
        }
        super::service::require_profile(conn, caller, &body.profile)?;
        let ttl = body.ttl_minutes.unwrap_or(DEFAULT_TTL_MINUTES);
        if ttl == 0 {
            return Err(ApiError::Invalid("ttl_minutes must be positive".into()));
        }
        let actor = caller.actor();
        Ok(mobileconfig::export_mobileconfig(
            conn,
            &st.enroll,
            st.signer.as_deref(),
            &ExportRequest {
                profile: &body.profile,
                organization_id: body.organization_id,
                department_id: body.department_id,
                device_identity: body.device_identity.as_deref(),
                challenge: ChallengeChoice::Mint {
                    ttl: super::service::ttl_of(ttl)?,
                },
                subject_alt_name: SubjectAltName {
                    dns: body.san_dns,
                    rfc822: body.san_email,
                    uri: vec![],
                    nt_principal: body.san_upn,
                },
                identifier_prefix: None,
                removal_date: None,
                signed: body.signed.unwrap_or(true),
                actor: &actor,
            },
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(out.content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}\"", out.file_name),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(out.bytes))
}

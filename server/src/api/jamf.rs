//! `POST /api/v1/jamf/scep-challenge`: the target of Jamf Pro's
//! `SCEPChallenge` webhook, which Jamf Pro (10.32 and later) calls while it
//! assembles a SCEP payload whose challenge type is "Dynamic", and whose
//! plain-text response body it puts into the payload as the challenge
//! (docs/jamf.md has the sources and the Jamf-side set-up).
//!
//! Jamf's webhook settings hold no request body of ours, only a URL and an
//! authentication, so the profile and organization travel in the query
//! string, and the API key as Jamf sends it: header authentication
//! (`Authorization: Bearer scepd_...`) or basic authentication with the key
//! as password. The challenge is minted by the JSON API's own
//! `service::mint_one`, so scope, the key's limits, the cap on unused
//! challenges and the audit entry are the same as for `POST /challenges`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;

use super::keys;
use super::service::{self, MintBody};
use super::{ApiError, ApiState};

/// The event Jamf Pro names in `webhook.webhookEvent`.
const EVENT: &str = "SCEPChallenge";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/jamf/scep-challenge", web::post().to(scep_challenge));
}

/// Where the challenge is for: the webhook URL's query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub profile: String,
    /// May be left out when the key acts for one organization only.
    pub organization_id: Option<i64>,
    pub department_id: Option<i64>,
    pub ttl_minutes: Option<u64>,
}

/// What scepd reads of Jamf Pro's webhook body; Jamf sends more (the
/// payload's identifier, the SCEP URL), which is ignored.
#[derive(Debug, Deserialize)]
struct Webhook {
    webhook: WebhookMeta,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookMeta {
    webhook_event: String,
}

/// The API key from `Authorization`: a bearer token (Jamf's header
/// authentication) or the password of basic authentication (the user name
/// is not checked: the key alone names the caller).
fn api_key(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or(ApiError::Unauthorized)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(rest.trim().to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::Unauthorized);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| ApiError::Unauthorized)?;
    let text = String::from_utf8(decoded).map_err(|_| ApiError::Unauthorized)?;
    let (_, password) = text.split_once(':').ok_or(ApiError::Unauthorized)?;
    Ok(password.to_string())
}

/// The body must be Jamf Pro's `SCEPChallenge` event in JSON: anything
/// else is a webhook pointed at the wrong event or content type.
fn check_event(body: &[u8]) -> Result<(), ApiError> {
    let hook: Webhook = serde_json::from_slice(body).map_err(|e| {
        ApiError::Invalid(format!(
            "expected Jamf Pro's SCEPChallenge webhook as JSON (content type JSON in Jamf Pro): {e}"
        ))
    })?;
    if hook.webhook.webhook_event != EVENT {
        return Err(ApiError::Invalid(format!(
            "webhook event {:?} is not {EVENT}",
            hook.webhook.webhook_event
        )));
    }
    Ok(())
}

async fn scep_challenge(
    state: web::Data<ApiState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let token = api_key(&req)?;
    let query = req.query_string().to_string();
    let state = state.clone();
    let body = body.to_vec();
    let secret = web::block(move || {
        let mut conn = state.pool.get().map_err(crate::store::StoreError::from)?;
        // The key first: an unauthenticated caller learns nothing of the
        // input's shape.
        let caller = keys::authenticate(&mut conn, &token)?;
        let target = web::Query::<Target>::from_query(&query)
            .map_err(|e| ApiError::Invalid(e.to_string()))?
            .into_inner();
        check_event(&body)?;
        let organization_id = match (target.organization_id, caller.organizations.as_slice()) {
            (Some(o), _) => o,
            (None, [only]) => *only,
            (None, _) => {
                return Err(ApiError::Invalid(
                    "this API key acts for several organizations: add organization_id to the webhook URL"
                        .into(),
                ))
            }
        };
        let minted = service::mint_one(
            &mut conn,
            &caller,
            &MintBody {
                profile: target.profile,
                organization_id,
                department_id: target.department_id,
                device_identity: None,
                ttl_minutes: target.ttl_minutes,
            },
            state.max_unused,
        )?;
        Ok::<_, ApiError>(minted.challenge)
    })
    .await??;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/plain; charset=utf-8")
        .body(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn with_auth(value: &str) -> HttpRequest {
        TestRequest::default()
            .insert_header((header::AUTHORIZATION, value))
            .to_http_request()
    }

    #[test]
    fn key_comes_from_bearer_or_basic_password() {
        assert_eq!(
            api_key(&with_auth("Bearer scepd_abc")).unwrap(),
            "scepd_abc"
        );
        // "jamf:scepd_abc"
        assert_eq!(
            api_key(&with_auth("Basic amFtZjpzY2VwZF9hYmM=")).unwrap(),
            "scepd_abc"
        );
        assert!(api_key(&with_auth("Digest x")).is_err());
        assert!(api_key(&with_auth("Basic !!!")).is_err());
        assert!(api_key(&TestRequest::default().to_http_request()).is_err());
    }

    #[test]
    fn only_the_scep_challenge_event_is_accepted() {
        let ok = br#"{"webhook":{"id":1,"name":"scepd","webhookEvent":"SCEPChallenge","eventTimestamp":1},
            "event":{"scepServerUrl":"https://x/scep/p","payloadIdentifier":"A","payloadTypes":["com.apple.security.scep"]}}"#;
        assert!(check_event(ok).is_ok());
        let other = br#"{"webhook":{"webhookEvent":"ComputerAdded"},"event":{}}"#;
        assert!(check_event(other).is_err());
        assert!(check_event(b"<JSSEvent/>").is_err());
        assert!(check_event(b"").is_err());
    }
}

//! `/api/v1/profiles/{id}/webhooks`: a profile's challenge-validation and
//! notification webhooks (docs/webhooks.md), through
//! `webhook::settings` with the key acting as an RAO of its organizations
//! (as `PATCH /profiles/{id}` does). The secret is accepted, never returned.

use actix_web::{web, HttpRequest, HttpResponse};
use diesel::pg::PgConnection;
use serde_json::{json, Value};

use super::handlers::as_caller;
use super::keys::Caller;
use super::service::require_profile;
use super::ApiError;
use crate::admin::{Actor, AdminError};
use crate::store::admins::Role;
use crate::store::queue::Scope;
use crate::webhook::settings::{self, Draft};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/profiles/{id}/webhooks", web::get().to(list))
        .route("/profiles/{id}/webhooks/{purpose}", web::put().to(set))
        .route(
            "/profiles/{id}/webhooks/{purpose}",
            web::delete().to(remove),
        );
}

/// Run `f` as an RAO of the key's organizations.
fn as_rao<T>(
    conn: &mut PgConnection,
    caller: &Caller,
    profile_id: &str,
    f: impl FnOnce(&mut PgConnection, &Actor<'_>) -> Result<T, AdminError>,
) -> Result<T, ApiError> {
    require_profile(conn, caller, profile_id)?;
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
    f(conn, &actor).map_err(|e| match e {
        AdminError::NotFound => ApiError::NotFound("no such profile or webhook".into()),
        AdminError::Forbidden => ApiError::Forbidden(
            "the profile is enabled for organizations outside this key's".into(),
        ),
        AdminError::Store(e) => e.into(),
        e => ApiError::Invalid(e.to_string()),
    })
}

async fn list(
    state: web::Data<super::ApiState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let out = as_caller(&state, &req, move |conn, caller, _| {
        as_rao(conn, caller, &id, |conn, who| {
            settings::show(conn, who, &id)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "webhooks": out })))
}

async fn set(
    state: web::Data<super::ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<Draft>,
) -> Result<HttpResponse, ApiError> {
    let (id, purpose) = path.into_inner();
    let draft = body.into_inner();
    let out = as_caller(&state, &req, move |conn, caller, st| {
        let sealer = st.enroll.webhook_sealer().ok_or(ApiError::Unavailable)?;
        as_rao(conn, caller, &id, |conn, who| {
            settings::set(conn, who, &sealer, &id, &purpose, &draft)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

async fn remove(
    state: web::Data<super::ApiState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, purpose) = path.into_inner();
    as_caller(&state, &req, move |conn, caller, _| {
        as_rao(conn, caller, &id, |conn, who| {
            settings::remove(conn, who, &id, &purpose)
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The paths and schemas above, and the contract of the calls scepd
/// makes, added to the OpenAPI document.
pub(super) fn describe(doc: &mut Value) {
    let err = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let common = |mut r: serde_json::Map<String, Value>| {
        r.insert(
            "401".into(),
            err("Missing, unknown, revoked or expired API key (`unauthorized`)."),
        );
        r.insert(
            "403".into(),
            err("The profile is enabled for organizations outside the key's (`forbidden`)."),
        );
        r.insert(
            "404".into(),
            err("No such profile or webhook in the key's organizations (`not_found`)."),
        );
        r.insert(
            "503".into(),
            err("Database unavailable; retry (`unavailable`)."),
        );
        Value::Object(r)
    };
    let id =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    let purpose = json!({ "name": "purpose", "in": "path", "required": true,
        "schema": { "type": "string", "enum": ["challenge", "notify"] } });
    let shown = json!({ "$ref": "#/components/schemas/Webhook" });
    let contract = "Every call scepd makes is a JSON POST with headers `X-Scepd-Timestamp` (Unix seconds), \
        `X-Scepd-Signature` (`v1=` and the lowercase hex HMAC-SHA256, keyed with the shared secret, of \
        the timestamp, a `.`, and the raw body), `X-Scepd-Event` and `X-Scepd-Delivery`. Reject a \
        timestamp more than 5 minutes off. Replies are not signed (use https). See docs/webhooks.md.";
    doc["paths"]["/profiles/{id}/webhooks"] = json!({ "get": {
        "summary": "A profile's webhooks (never the secret), with each one's last error and when",
        "operationId": "listWebhooks",
        "parameters": [id],
        "responses": common(serde_json::Map::from_iter([("200".to_string(), json!({
            "description": "Webhooks.",
            "content": { "application/json": { "schema": { "type": "object", "properties": {
                "webhooks": { "type": "array", "items": shown } } } } }
        }))]))
    }});
    doc["paths"]["/profiles/{id}/webhooks/{purpose}"] = json!({
        "put": {
            "summary": "Create or change the profile's challenge-validation or notification webhook",
            "description": contract,
            "operationId": "setWebhook",
            "parameters": [id, purpose],
            "requestBody": { "required": true, "content": { "application/json": { "schema": {
                "$ref": "#/components/schemas/WebhookSettings" } } } },
            "responses": common(serde_json::Map::from_iter([
                ("200".to_string(), json!({ "description": "The webhook as stored.",
                    "content": { "application/json": { "schema": shown } } })),
                ("400".to_string(), err("A value refused: URL, secret, timeout or events (`invalid_request`).")),
            ]))
        },
        "delete": {
            "summary": "Remove the profile's webhook (its undelivered events go with it)",
            "operationId": "removeWebhook",
            "parameters": [id, purpose],
            "responses": common(serde_json::Map::from_iter([
                ("204".to_string(), json!({ "description": "Removed." })),
            ]))
        }
    });
    let schemas = &mut doc["components"]["schemas"];
    schemas["WebhookSettings"] = json!({
        "type": "object", "required": ["url"], "additionalProperties": false,
        "properties": {
            "url": { "type": "string", "description": "http:// or https:// URL; redirects are never followed." },
            "secret": { "type": "string", "minLength": 16, "writeOnly": true,
                "description": "Shared HMAC secret; required for a new webhook, kept when absent. Stored sealed, never shown again." },
            "timeout_ms": { "type": "integer", "minimum": 100, "maximum": 10000, "default": 3000,
                "description": "challenge: the longest a device waits for the webhook." },
            "pending_on_error": { "type": "boolean", "default": false,
                "description": "challenge: on a timeout, a connection failure or a 5xx, answer PENDING (an officer decides) instead of FAILURE." },
            "events": { "type": "array", "items": { "type": "string", "enum": ["issued", "declined", "revoked", "failed"] },
                "description": "notify: the events sent [default: all]." },
            "enabled": { "type": "boolean", "default": true }
        }
    });
    schemas["Webhook"] = json!({
        "type": "object",
        "properties": {
            "purpose": { "type": "string", "enum": ["challenge", "notify"] },
            "url": { "type": "string" }, "timeout_ms": { "type": "integer" },
            "pending_on_error": { "type": "boolean" },
            "events": { "type": "array", "items": { "type": "string" } },
            "enabled": { "type": "boolean" },
            "last_error": { "type": "string", "nullable": true },
            "last_error_at": { "type": "string", "format": "date-time", "nullable": true },
            "last_success_at": { "type": "string", "format": "date-time", "nullable": true },
            "updated_at": { "type": "string", "format": "date-time" }
        }
    });
    schemas["ChallengeQuestion"] = json!({
        "description": "What scepd POSTs to a challenge webhook (X-Scepd-Event: challenge) for a PKCSReq whose challengePassword is no one-time challenge and no access code.",
        "type": "object",
        "properties": {
            "event": { "type": "string", "enum": ["challenge"] },
            "delivery": { "type": "string" },
            "profile": { "type": "string" },
            "organizations": { "type": "array", "items": { "type": "string" }, "description": "Organizations the profile is enabled for." },
            "transaction_id": { "type": "string" },
            "message_type": { "type": "string" },
            "csr": { "type": "string", "format": "byte", "description": "The PKCS#10 request, base64 DER." },
            "challenge": { "type": "string" },
            "client_ip": { "type": "string", "nullable": true },
            "subject": { "type": "string", "description": "Subject the certificate would carry." },
            "sans": { "type": "array", "items": { "type": "object", "properties": {
                "type": { "type": "string", "enum": ["dns", "email", "uri", "upn", "ip"] },
                "value": { "type": "string" } } } }
        }
    });
    schemas["ChallengeReply"] = json!({
        "description": "A challenge webhook's 2xx reply (at most 64 KiB). Anything else, a redirect, or a place that does not exist or where the profile is not enabled, is a bad reply: FAILURE. A timeout or 5xx: FAILURE, or PENDING when the webhook says pending_on_error.",
        "type": "object", "required": ["allow"],
        "properties": {
            "allow": { "type": "boolean" },
            "reason": { "type": "string", "description": "Recorded in the audit log (at most 200 characters)." },
            "organization": { "type": "string", "description": "Name of the organization to file the request under; required when the profile is enabled for more than one place." },
            "department": { "type": "string", "description": "Name of a department of that organization." }
        }
    });
    schemas["NotificationEvent"] = json!({
        "description": "What scepd POSTs to a notification webhook; any 2xx acknowledges it, anything else is retried with backoff. The same event keeps its `delivery` (also X-Scepd-Delivery) across retries.",
        "type": "object",
        "properties": {
            "event": { "type": "string", "enum": ["issued", "declined", "revoked", "failed"] },
            "delivery": { "type": "string" }, "profile": { "type": "string" },
            "occurred_at": { "type": "string", "format": "date-time" },
            "organization": { "type": "string", "nullable": true },
            "department": { "type": "string", "nullable": true },
            "certificate_id": { "type": "integer" }, "serial": { "type": "string" },
            "subject": { "type": "string" }, "request_id": { "type": "integer", "nullable": true },
            "transaction_id": { "type": "string" }, "reason": { "type": "string", "nullable": true },
            "fail_info": { "type": "string" }, "client_ip": { "type": "string", "nullable": true },
            "not_before": { "type": "string", "format": "date-time" },
            "not_after": { "type": "string", "format": "date-time" },
            "sans": { "type": "array", "items": { "type": "string" } }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_describes_the_webhook_routes_and_contract() {
        let d = super::super::openapi::document();
        assert!(d["paths"]["/profiles/{id}/webhooks"]["get"].is_object());
        let put = &d["paths"]["/profiles/{id}/webhooks/{purpose}"]["put"];
        assert!(put["description"]
            .as_str()
            .unwrap()
            .contains("X-Scepd-Signature"));
        for s in [
            "WebhookSettings",
            "Webhook",
            "ChallengeQuestion",
            "ChallengeReply",
            "NotificationEvent",
        ] {
            assert!(d["components"]["schemas"][s].is_object(), "{s}");
        }
    }
}

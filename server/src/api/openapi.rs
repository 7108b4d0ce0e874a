//! The OpenAPI 3.0 description of `/api/v1`, served at
//! `/api/v1/openapi.json`. Built with serde_json so it needs no code
//! generator; keep it in step with `handlers` and `service`.

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn array_of(name: &str, field: &str) -> Value {
    json!({
        "type": "object",
        "required": [field],
        "properties": { field: { "type": "array", "items": schema_ref(name) } }
    })
}

fn common_errors(mut responses: serde_json::Map<String, Value>) -> Value {
    responses.insert(
        "401".into(),
        error_response("Missing, unknown, revoked or expired API key (`unauthorized`)."),
    );
    // An endpoint's own 429 (limit_reached) is kept; the key's rate limit
    // answers 429 too, with Retry-After.
    responses.entry("429").or_insert_with(|| {
        error_response(
            "The key's requests per minute are spent; retry after Retry-After seconds (`rate_limited`).",
        )
    });
    responses.insert(
        "503".into(),
        error_response("Database unavailable; retry (`unavailable`)."),
    );
    Value::Object(responses)
}

fn responses(items: &[(&str, Value)]) -> Value {
    common_errors(
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

pub fn document() -> Value {
    let mut doc = base_document();
    super::webhooks::describe(&mut doc);
    doc
}

fn base_document() -> Value {
    let nullable_int = json!({ "type": "integer", "format": "int64", "nullable": true });
    let int = json!({ "type": "integer", "format": "int64" });
    let time = json!({ "type": "string", "format": "date-time" });
    let mint_errors = [
        ("400", error_response("Malformed body or parameters (`invalid_request`).")),
        ("403", error_response("The key may not act for this organization, or may not use this profile (`forbidden`).")),
        ("404", error_response("Unknown profile or organization (`not_found`).")),
        ("422", error_response("`ttl_minutes` beyond 30 days (`out_of_range`).")),
        ("409", error_response("The profile is not enabled for the organization or department (`profile_not_enabled`).")),
        ("429", error_response("Too many unused challenges for this profile and organization (`limit_reached`), or the key's requests per minute are spent (`rate_limited`, with Retry-After).")),
    ];
    let mut single = mint_errors.to_vec();
    single.push((
        "201",
        ok_json(
            "The challenge; its secret is shown only here.",
            schema_ref("Challenge"),
        ),
    ));
    let mut bulk = mint_errors.to_vec();
    bulk.push((
        "201",
        ok_json(
            "The challenges, all or none.",
            array_of("Challenge", "challenges"),
        ),
    ));
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "scepd API",
            "version": "1",
            "description": "Mint one-time SCEP challenges (RFC 8894 challengePassword) and follow enrollments. Authenticate with `Authorization: Bearer scepd_...`; a key acts only for its organizations, and for the profiles it is limited to if any; it may expire and be limited in requests per minute. Errors are `{\"error\": {\"code\", \"message\"}}` with codes unauthorized, forbidden, not_found, invalid_request, out_of_range, profile_not_enabled, limit_reached, rate_limited, unavailable, internal."
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }],
        "paths": {
            "/challenges": { "post": {
                "summary": "Mint one challenge",
                "operationId": "mintChallenge",
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref("MintRequest") } } },
                "responses": responses(&single)
            }},
            "/challenges/bulk": { "post": {
                "summary": "Mint many challenges: `count` unbound ones, or one bound to each of `device_identities`",
                "operationId": "mintChallenges",
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref("BulkMintRequest") } } },
                "responses": responses(&bulk)
            }},
            "/profiles": { "get": {
                "summary": "Profiles enabled for the key's organizations",
                "operationId": "listProfiles",
                "responses": responses(&[("200", ok_json("Profiles.", array_of("Profile", "profiles")))])
            }},
            "/profiles/{id}": { "patch": {
                "summary": "Change some switches of a profile enabled for the key's organizations alone",
                "operationId": "changeProfile",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object",
                    "additionalProperties": false,
                    "minProperties": 1,
                    "properties": {
                        "certrep_includes_chain": { "type": "boolean" },
                        "signer_key_must_match": { "type": "boolean" },
                        "auto_renew": { "type": "boolean" },
                        "renewal_allows_identity_change": { "type": "boolean" },
                        "revoke_on_replace": { "type": "boolean" },
                        "min_cipher": { "type": "string", "enum": ["des", "des3", "aes"] },
                        "include_crl_dp": { "type": "boolean" },
                        "include_ocsp_url": { "type": "boolean" },
                        "honor_requested_validity": { "type": "boolean" }
                    }
                }}}},
                "responses": responses(&[
                    ("200", ok_json("The profile as changed.", schema_ref("Profile"))),
                    ("400", error_response("No setting given, or a value refused (`invalid_request`).")),
                    ("403", error_response("The profile is also enabled for organizations outside the key's (`forbidden`).")),
                    ("404", error_response("No such profile in the key's organizations (`not_found`).")),
                ])
            }},
            "/profiles/{id}/intune": {
                "get": {
                    "summary": "The profile's Microsoft Intune settings (never the client secret) and the integration's last error",
                    "operationId": "showIntune",
                    "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                    "responses": responses(&[
                        ("200", ok_json("The settings.", json!({ "type": "object" }))),
                        ("404", error_response("No such profile, or it does not use Intune (`not_found`).")),
                    ])
                },
                "put": {
                    "summary": "Make the profile's challenges Intune's, or change its Intune settings (docs/intune.md)",
                    "operationId": "setIntune",
                    "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["tenant", "client_id", "organization_id"],
                        "properties": {
                            "tenant": { "type": "string" },
                            "client_id": { "type": "string" },
                            "client_secret": { "type": "string", "description": "required the first time; omitted: kept; stored sealed, never returned" },
                            "organization_id": int,
                            "department_id": int,
                            "authority_url": { "type": "string" },
                            "graph_url": { "type": "string" },
                            "intune_resource_url": { "type": "string" },
                            "intune_app_id": { "type": "string" },
                            "validation_url": { "type": "string", "description": "instead of service discovery" },
                            "pki_connector_url": { "type": "string", "description": "instead of service discovery" },
                            "revocation_enabled": { "type": "boolean", "default": true }
                        }
                    }}}},
                    "responses": responses(&[
                        ("200", ok_json("The settings as stored.", json!({ "type": "object" }))),
                        ("400", error_response("A value refused (`invalid_request`).")),
                        ("403", error_response("The profile is also enabled for organizations outside the key's (`forbidden`).")),
                        ("404", error_response("No such profile in the key's organizations (`not_found`).")),
                    ])
                },
                "delete": {
                    "summary": "The profile's challenges are no longer Intune's",
                    "operationId": "removeIntune",
                    "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                    "responses": responses(&[
                        ("204", json!({ "description": "Removed." })),
                        ("400", error_response("The profile does not use Intune (`invalid_request`).")),
                        ("404", error_response("No such profile in the key's organizations (`not_found`).")),
                    ])
                }
            },
            "/mobileconfig": { "post": {
                "summary": "A signed Apple configuration profile for one device, with a freshly minted one-time challenge",
                "operationId": "exportMobileconfig",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object",
                    "required": ["profile", "organization_id"],
                    "additionalProperties": false,
                    "properties": {
                        "profile": { "type": "string" },
                        "organization_id": int,
                        "department_id": int,
                        "device_identity": { "type": "string", "description": "CN or serialNumber; binds the challenge" },
                        "ttl_minutes": { "type": "integer", "minimum": 1, "maximum": 43200, "default": 10080 },
                        "signed": { "type": "boolean", "default": true },
                        "san_dns": { "type": "array", "items": { "type": "string" } },
                        "san_email": { "type": "array", "items": { "type": "string" } },
                        "san_upn": { "type": "array", "items": { "type": "string" } }
                    }
                }}}},
                "responses": responses(&[
                    ("200", json!({ "description": "The profile (CMS SignedData, or XML when unsigned).",
                        "content": { "application/x-apple-aspen-config": { "schema": { "type": "string", "format": "binary" } } } })),
                    ("403", error_response("The organization is not the key's (`forbidden`).")),
                    ("404", error_response("No such profile or organization (`not_found`).")),
                ])
            }},
            "/requests": { "get": {
                "summary": "An enrollment request by SCEP transactionID",
                "operationId": "getRequestByTransaction",
                "parameters": [{ "name": "transaction_id", "in": "query", "required": true, "schema": { "type": "string" } }],
                "responses": responses(&[
                    ("200", ok_json("The request.", schema_ref("EnrollmentRequest"))),
                    ("404", error_response("No such request in the key's organizations (`not_found`).")),
                ])
            }},
            "/requests/{id}": { "get": {
                "summary": "An enrollment request by ID",
                "operationId": "getRequest",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": int }],
                "responses": responses(&[
                    ("200", ok_json("The request.", schema_ref("EnrollmentRequest"))),
                    ("404", error_response("No such request in the key's organizations (`not_found`).")),
                ])
            }},
            "/devices/{identity}/certificates": { "get": {
                "summary": "Certificates issued to a device (by subject CN) in the key's organizations",
                "operationId": "listDeviceCertificates",
                "parameters": [{ "name": "identity", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": responses(&[("200", ok_json("Certificates, newest first.", array_of("Certificate", "certificates")))])
            }},
            "/jamf/scep-challenge": { "post": {
                "summary": "Jamf Pro's SCEPChallenge webhook: one fresh one-time challenge as plain text (docs/jamf.md)",
                "operationId": "jamfScepChallenge",
                "description": "Authenticate with `Authorization: Bearer scepd_...` (Jamf's header authentication) or basic authentication with the key as password. Minted as `POST /challenges` mints, unbound, and audited under the key.",
                "parameters": [
                    { "name": "profile", "in": "query", "required": true, "schema": { "type": "string" } },
                    { "name": "organization_id", "in": "query", "required": false, "schema": int, "description": "Required when the key acts for several organizations." },
                    { "name": "department_id", "in": "query", "required": false, "schema": int },
                    { "name": "ttl_minutes", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 43200, "default": 60 } }
                ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["webhook"],
                    "properties": { "webhook": { "type": "object", "required": ["webhookEvent"], "properties": {
                        "webhookEvent": { "type": "string", "enum": ["SCEPChallenge"] }
                    }}}
                }}}},
                "responses": responses(&[
                    ("200", json!({ "description": "The challenge, shown only here.", "content": { "text/plain": { "schema": { "type": "string" } } } })),
                    ("400", error_response("Not a SCEPChallenge event in JSON, or bad parameters (`invalid_request`).")),
                    ("403", error_response("The key may not act for this organization, or may not use this profile (`forbidden`).")),
                    ("404", error_response("Unknown profile or organization (`not_found`).")),
                    ("409", error_response("The profile is not enabled for the organization or department (`profile_not_enabled`).")),
                ])
            }},
            "/openapi.json": { "get": {
                "summary": "This document",
                "security": [],
                "responses": { "200": { "description": "OpenAPI 3.0 document." } }
            }}
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                        "code": { "type": "string", "enum": ["unauthorized", "forbidden", "not_found", "invalid_request", "out_of_range", "profile_not_enabled", "limit_reached", "rate_limited", "unavailable", "internal"] },
                        "message": { "type": "string" }
                    }}}
                },
                "MintRequest": {
                    "type": "object", "required": ["profile", "organization_id"], "additionalProperties": false,
                    "properties": {
                        "profile": { "type": "string", "description": "Profile ID, as in /scep/<profile>." },
                        "organization_id": int,
                        "department_id": nullable_int,
                        "device_identity": { "type": "string", "nullable": true, "description": "Only a CSR with this CN or serialNumber may use the challenge." },
                        "ttl_minutes": { "type": "integer", "minimum": 1, "maximum": 43200, "default": 60 }
                    }
                },
                "BulkMintRequest": {
                    "type": "object", "required": ["profile", "organization_id"], "additionalProperties": false,
                    "properties": {
                        "profile": { "type": "string" },
                        "organization_id": int,
                        "department_id": nullable_int,
                        "ttl_minutes": { "type": "integer", "minimum": 1, "maximum": 43200, "default": 60 },
                        "count": { "type": "integer", "minimum": 1, "maximum": 10000 },
                        "device_identities": { "type": "array", "items": { "type": "string" }, "maxItems": 10000 }
                    }
                },
                "Challenge": {
                    "type": "object",
                    "properties": {
                        "id": int, "challenge": { "type": "string" }, "profile": { "type": "string" },
                        "organization_id": int, "department_id": nullable_int,
                        "device_identity": { "type": "string", "nullable": true }, "expires_at": time
                    }
                },
                "Profile": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string" }, "name": { "type": "string" },
                        "approval_mode": { "type": "string", "enum": ["auto", "manual"] },
                        "enabled": { "type": "boolean" }, "scep_url": { "type": "string" },
                        "organizations": { "type": "array", "items": int },
                        "certrep_includes_chain": { "type": "boolean", "description": "A SUCCESS CertRep carries the CA and its issuers after the issued certificate (set in the console or with `scepd profile set`)." },
                        "signer_key_must_match": { "type": "boolean", "description": "A first enrollment must be signed with the key being certified (RFC 8894 §2.3)." },
                        "auto_renew": { "type": "boolean", "description": "On a manual profile, a renewal that keeps the subject and SANs is issued at once (an auto-approve profile always does)." },
                        "renewal_allows_identity_change": { "type": "boolean", "description": "A renewal may change the subject or SANs; an officer then decides. Off: such a renewal is refused." },
                        "revoke_on_replace": { "type": "boolean", "description": "The certificate a new one replaces is revoked as superseded: at the per-device limit, and once a renewal's certificate is delivered." },
                        "min_cipher": { "type": "string", "enum": ["des", "des3", "aes"], "description": "The weakest envelope cipher accepted (des < des3 < aes); a weaker one is refused with badAlg and GetCACaps lists only what is accepted. Access codes need des3 or aes whatever this says (set in the console or with `scepd profile set --min-cipher`)." },
                        "include_crl_dp": { "type": "boolean", "description": "Certificates issued from now on carry the CA's CRL distribution point (RFC 5280 §4.2.1.13)." },
                        "include_ocsp_url": { "type": "boolean", "description": "Certificates issued from now on carry the OCSP responder's URL, `<public_url>/ocsp`, in authorityInfoAccess (RFC 5280 §4.2.2.1, RFC 6960)." },
                        "honor_requested_validity": { "type": "boolean", "description": "A CSR asking for a validity (Microsoft's ValidityPeriod/ValidityPeriodUnits name-value pairs, as Windows sends) gets it when shorter than the profile's; longer requests get the profile's. Off: the profile's validity always." }
                    }
                },
                "EnrollmentRequest": {
                    "type": "object",
                    "properties": {
                        "id": int, "transaction_id": { "type": "string" },
                        "status": { "type": "string", "enum": ["requested", "applied", "issued", "declined"] },
                        "message_type": { "type": "string" }, "profile": { "type": "string" },
                        "organization_id": int, "department_id": nullable_int,
                        "subject": { "type": "string" }, "common_name": { "type": "string", "nullable": true },
                        "certificate_serial": { "type": "string", "nullable": true },
                        "decline_reason": { "type": "string", "nullable": true },
                        "created_at": time, "updated_at": time
                    }
                },
                "Certificate": {
                    "type": "object",
                    "properties": {
                        "serial": { "type": "string" }, "subject": { "type": "string" },
                        "common_name": { "type": "string", "nullable": true }, "profile": { "type": "string" },
                        "organization_id": int, "department_id": nullable_int,
                        "status": { "type": "string", "enum": ["valid", "revoked", "expired"] },
                        "not_before": time, "not_after": time,
                        "fingerprint_sha256": { "type": "string" }, "pem": { "type": "string" }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_lists_every_route_with_json_errors() {
        let d = super::document();
        for p in [
            "/challenges",
            "/challenges/bulk",
            "/profiles",
            "/profiles/{id}",
            "/profiles/{id}/intune",
            "/mobileconfig",
            "/requests",
            "/requests/{id}",
            "/devices/{identity}/certificates",
            "/jamf/scep-challenge",
        ] {
            assert!(d["paths"][p].is_object(), "{p} missing");
        }
        assert_eq!(d["openapi"], "3.0.3");
        let profile = &d["components"]["schemas"]["Profile"]["properties"];
        for p in [
            "certrep_includes_chain",
            "signer_key_must_match",
            "auto_renew",
            "renewal_allows_identity_change",
            "revoke_on_replace",
            "include_crl_dp",
            "include_ocsp_url",
            "honor_requested_validity",
        ] {
            assert_eq!(profile[p]["type"], "boolean", "{p}");
        }
        assert_eq!(
            profile["min_cipher"]["enum"],
            serde_json::json!(["des", "des3", "aes"])
        );
        assert!(d["components"]["schemas"]["Error"]["properties"]["error"].is_object());
    }
}

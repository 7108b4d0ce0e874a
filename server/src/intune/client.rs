//! The calls scepd makes to Microsoft's services as Intune's third-party CA,
//! written from the contract of Microsoft's published SCEP validation library
//! (github.com/microsoft/Intune-Resource-Access, `src/CsrValidation`):
//!
//! - an app token by the OAuth 2.0 client-credentials grant at
//!   `{authority}{tenant}/oauth2/v2.0/token`, scope `{graph}/.default` for
//!   discovery and `{intune resource}/.default` for Intune (the resource as
//!   configured, trailing slash and all, as the library does);
//! - service discovery through Microsoft Graph:
//!   `GET {graph}v1.0/servicePrincipals/appId={intune app}/endpoints`,
//!   whose `value[]` items name a service (`providerName`, or `serviceName`
//!   in the older form) and its `uri`;
//! - `POST {ScepRequestValidationFEService}/ScepActions/validateRequest`,
//!   `.../successNotification`, `.../failureNotification` (api-version
//!   2018-02-20), answered `{"code": "Success" | <error code>,
//!   "errorDescription": ...}`;
//! - `POST {PkiConnectorFEService}/CertificateAuthorityRequests/
//!   downloadRevocationRequests` and `.../uploadRevocationResults`
//!   (api-version 5019-05-05), answered `{"value": ...}`.
//!
//! Every call carries `client-request-id` (a fresh UUID), `api-version` and
//! the bearer token; a reply is read only when it is a 2xx with a JSON body
//! of at most [`MAX_BODY`] bytes; redirects are never followed. Every call
//! ends by the caller's deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::reply::{read_json, remaining};
use zeroize::Zeroizing;

/// Intune's application id in Entra ID (the library's default).
pub const INTUNE_APP_ID: &str = "0000000a-0000-0000-c000-000000000000";
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com/";
pub const DEFAULT_GRAPH: &str = "https://graph.microsoft.com/";
pub const DEFAULT_INTUNE_RESOURCE: &str = "https://api.manage.microsoft.com/";
pub const VALIDATION_SERVICE: &str = "ScepRequestValidationFEService";
pub const PKI_CONNECTOR_SERVICE: &str = "PkiConnectorFEService";
const VALIDATION_API_VERSION: &str = "2018-02-20";
const PKI_CONNECTOR_API_VERSION: &str = "5019-05-05";
const GRAPH_API_VERSION: &str = "v1.0";
/// The library's upper bound for one download.
pub const MAX_REVOCATIONS: u32 = 500;
/// The largest reply read; anything longer is refused unread.
pub const MAX_BODY: u64 = 1024 * 1024;
/// The library's limit on a failure notification's description.
const MAX_DESCRIPTION: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum IntuneError {
    #[error("no answer from {0} in time")]
    Timeout(String),
    #[error("cannot reach {url}: {message}")]
    Transport { url: String, message: String },
    #[error("{url} answered HTTP {status}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{0} answered with a redirect, which is not followed")]
    Redirect(String),
    #[error("{0} answered with more than 1 MiB")]
    TooLarge(String),
    #[error("{url} answered something that is not the expected JSON: {message}")]
    Malformed { url: String, message: String },
    #[error("Entra ID refused the app's credentials: {0}")]
    Token(String),
    #[error("service discovery names no {0}")]
    ServiceNotFound(String),
    /// Intune answered, and its answer is no.
    #[error("Intune refused: {code}: {description}")]
    Refused { code: String, description: String },
    #[error("bad Intune setting: {0}")]
    Setting(String),
}

impl IntuneError {
    /// Intune itself said no (as opposed to not being reachable or
    /// understood).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }
}

/// Where the integration's calls go; every URL can point at a stand-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Entra ID's login authority, ending in `/` (`{authority}{tenant}/...`).
    pub authority_url: String,
    /// Microsoft Graph's root, ending in `/`.
    pub graph_url: String,
    /// The resource whose `/.default` scope the Intune token asks for.
    pub intune_resource_url: String,
    pub intune_app_id: String,
    /// Used instead of the discovered ScepRequestValidationFEService URI.
    pub validation_url: Option<String>,
    /// Used instead of the discovered PkiConnectorFEService URI.
    pub pki_connector_url: Option<String>,
}

/// The app registration scepd signs in as.
pub struct Credentials {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// One profile's integration: who, and where.
#[derive(Debug)]
pub struct Target {
    pub credentials: Credentials,
    pub endpoints: Endpoints,
}

/// A certificate Intune asks the CA to revoke.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationRequest {
    // The Java library reads camelCase; the C# one's model is PascalCase.
    #[serde(alias = "RequestContext")]
    pub request_context: String,
    #[serde(alias = "SerialNumber")]
    pub serial_number: String,
    #[serde(default, alias = "IssuerName")]
    pub issuer_name: Option<String>,
    #[serde(default, alias = "CaConfiguration")]
    pub ca_configuration: Option<String>,
}

/// The library's `CARequestErrorCodes` that scepd reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationError {
    None = 0,
    NonRetryableServiceException = 4000,
    ParameterDataInvalidError = 4002,
    CertificateNotFoundError = 4004,
    ConflictError = 4005,
    RetryableServiceException = 4100,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationResult {
    pub request_context: String,
    pub succeeded: bool,
    pub error_code: i32,
    pub error_message: String,
}

impl RevocationResult {
    pub fn new(request_context: &str, code: RevocationError, message: &str) -> Self {
        Self {
            request_context: request_context.to_string(),
            succeeded: code == RevocationError::None,
            error_code: code as i32,
            error_message: message.to_string(),
        }
    }
}

/// What a success notification reports of the issued certificate.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// SHA-1 of the DER, upper-case hex (the Windows thumbprint).
    pub thumbprint: String,
    pub serial: String,
    /// ISO 8601, UTC, milliseconds.
    pub expires: String,
    /// The issuing CA's distinguished name.
    pub issuer: String,
}

type TokenKey = (String, String, String, String);
/// A cached token and when to stop using it.
type CachedToken = (Arc<Zeroizing<String>>, Instant);
type ServiceKey = (String, String, String);

/// The HTTP agent, tokens and discovered services; shared by all workers.
pub struct Client {
    agent: ureq::Agent,
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
    services: Mutex<HashMap<ServiceKey, HashMap<String, String>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("intune::Client")
    }
}

impl Client {
    /// `extra_roots`: PEM certificates trusted besides the public roots
    /// (a proxy's CA, or a test's stand-in).
    pub fn new(extra_roots: Option<&[u8]>) -> Result<Self, IntuneError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = extra_roots {
            let certs = openssl::x509::X509::stack_from_pem(pem)
                .map_err(|e| IntuneError::Setting(format!("CA bundle: {e}")))?;
            if certs.is_empty() {
                return Err(IntuneError::Setting(
                    "CA bundle holds no certificate".into(),
                ));
            }
            for c in certs {
                let der = c
                    .to_der()
                    .map_err(|e| IntuneError::Setting(format!("CA bundle: {e}")))?;
                roots
                    .add(rustls::pki_types::CertificateDer::from(der))
                    .map_err(|e| IntuneError::Setting(format!("CA bundle: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| IntuneError::Setting(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let agent = ureq::AgentBuilder::new()
            .tls_config(Arc::new(tls))
            .redirects(0)
            .user_agent(&caller_info())
            .build();
        Ok(Self {
            agent,
            tokens: Mutex::default(),
            services: Mutex::default(),
        })
    }

    /// validateRequest: `Ok` only when Intune answers `Success`.
    pub fn validate(
        &self,
        t: &Target,
        transaction_id: &str,
        csr_der: &[u8],
        deadline: Instant,
    ) -> Result<(), IntuneError> {
        let body = json!({ "request": {
            "transactionId": transaction_id,
            "certificateRequest": b64(csr_der),
            "callerInfo": caller_info(),
        }});
        self.scep_action(t, "ScepActions/validateRequest", &body, deadline)
    }

    pub fn notify_success(
        &self,
        t: &Target,
        transaction_id: &str,
        csr_der: &[u8],
        cert: &IssuedCert,
        deadline: Instant,
    ) -> Result<(), IntuneError> {
        let body = json!({ "notification": {
            "transactionId": transaction_id,
            "certificateRequest": b64(csr_der),
            "certificateThumbprint": cert.thumbprint,
            "certificateSerialNumber": cert.serial,
            "certificateExpirationDateUtc": cert.expires,
            "issuingCertificateAuthority": cert.issuer,
            "callerInfo": caller_info(),
        }});
        self.scep_action(t, "ScepActions/successNotification", &body, deadline)
    }

    /// `hresult`: a 32-bit HRESULT (MS-ERREF §2.1) Intune shows its admins.
    pub fn notify_failure(
        &self,
        t: &Target,
        transaction_id: &str,
        csr_der: &[u8],
        hresult: u32,
        description: &str,
        deadline: Instant,
    ) -> Result<(), IntuneError> {
        let description: String = description.chars().take(MAX_DESCRIPTION).collect();
        let body = json!({ "notification": {
            "transactionId": transaction_id,
            "certificateRequest": b64(csr_der),
            "hResult": hresult,
            "errorDescription": description,
            "callerInfo": caller_info(),
        }});
        self.scep_action(t, "ScepActions/failureNotification", &body, deadline)
    }

    pub fn download_revocations(
        &self,
        t: &Target,
        max: u32,
        issuer_name: Option<&str>,
        deadline: Instant,
    ) -> Result<Vec<RevocationRequest>, IntuneError> {
        let body = json!({ "downloadParameters": {
            "maxRequests": max.clamp(1, MAX_REVOCATIONS),
            "issuerName": issuer_name,
        }});
        let (url, v) = self.post(
            t,
            PKI_CONNECTOR_SERVICE,
            "CertificateAuthorityRequests/downloadRevocationRequests",
            PKI_CONNECTOR_API_VERSION,
            &body,
            deadline,
        )?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|e| IntuneError::Malformed {
            url,
            message: e.to_string(),
        })
    }

    pub fn upload_revocation_results(
        &self,
        t: &Target,
        results: &[RevocationResult],
        deadline: Instant,
    ) -> Result<(), IntuneError> {
        let body = json!({ "results": results });
        let (url, v) = self.post(
            t,
            PKI_CONNECTOR_SERVICE,
            "CertificateAuthorityRequests/uploadRevocationResults",
            PKI_CONNECTOR_API_VERSION,
            &body,
            deadline,
        )?;
        match v.get("value").and_then(Value::as_bool) {
            Some(true) => Ok(()),
            Some(false) => Err(IntuneError::Refused {
                code: "UploadNotRecorded".into(),
                description: "Intune did not record the revocation results".into(),
            }),
            None => Err(IntuneError::Malformed {
                url,
                message: "no boolean value".into(),
            }),
        }
    }

    fn scep_action(
        &self,
        t: &Target,
        suffix: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<(), IntuneError> {
        let (url, v) = self.post(
            t,
            VALIDATION_SERVICE,
            suffix,
            VALIDATION_API_VERSION,
            body,
            deadline,
        )?;
        let Some(code) = v.get("code").and_then(Value::as_str) else {
            return Err(IntuneError::Malformed {
                url,
                message: "no code".into(),
            });
        };
        if code == "Success" {
            return Ok(());
        }
        let description = v
            .get("errorDescription")
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(500)
            .collect();
        Err(IntuneError::Refused {
            code: code.chars().take(100).collect(),
            description,
        })
    }

    /// POST to a discovered Intune service; returns the URL called and its
    /// JSON reply.
    fn post(
        &self,
        t: &Target,
        service: &str,
        suffix: &str,
        api_version: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<(String, Value), IntuneError> {
        let base = self.service_uri(t, service, deadline)?;
        // As the library forms it: the resource, then "/.default" (so
        // "https://api.manage.microsoft.com//.default" for the default).
        let scope = format!("{}/.default", t.endpoints.intune_resource_url);
        let token = self.token(t, &scope, deadline)?;
        let url = format!("{}/{suffix}", base.trim_end_matches('/'));
        let req = self
            .agent
            .post(&url)
            .timeout(remaining(deadline, &url)?)
            .set("Authorization", &format!("Bearer {}", token.as_str()))
            .set("Content-Type", "application/json")
            .set("client-request-id", &uuid::Uuid::new_v4().to_string())
            .set("api-version", api_version)
            // The library's own header naming the caller (besides User-Agent).
            .set("UserAgent", &caller_info());
        let res = read_json(&url, deadline, req.send_string(&body.to_string()));
        if matches!(
            res,
            Err(IntuneError::Transport { .. } | IntuneError::Status { .. })
        ) {
            // As the library does: the service may have moved.
            self.forget_services(t);
        }
        Ok((url, res?))
    }

    fn service_uri(
        &self,
        t: &Target,
        service: &str,
        deadline: Instant,
    ) -> Result<String, IntuneError> {
        let fixed = match service {
            VALIDATION_SERVICE => &t.endpoints.validation_url,
            _ => &t.endpoints.pki_connector_url,
        };
        if let Some(u) = fixed {
            return Ok(u.clone());
        }
        let key = service_key(t);
        let name = service.to_ascii_lowercase();
        if let Some(u) = lock(&self.services).get(&key).and_then(|m| m.get(&name)) {
            return Ok(u.clone());
        }
        let scope = format!("{}/.default", t.endpoints.graph_url.trim_end_matches('/'));
        // (The library: "{graph}.default" with its trailing slash, the same.)
        let token = self.token(t, &scope, deadline)?;
        let url = format!(
            "{}/{GRAPH_API_VERSION}/servicePrincipals/appId={}/endpoints",
            t.endpoints.graph_url.trim_end_matches('/'),
            t.endpoints.intune_app_id
        );
        let req = self
            .agent
            .get(&url)
            .timeout(remaining(deadline, &url)?)
            .set("Authorization", &format!("Bearer {}", token.as_str()))
            .set("client-request-id", &uuid::Uuid::new_v4().to_string());
        let v = read_json(&url, deadline, req.call())?;
        let Some(items) = v.get("value").and_then(Value::as_array) else {
            return Err(IntuneError::Malformed {
                url,
                message: "no value array".into(),
            });
        };
        let mut map = HashMap::new();
        for item in items {
            let name = item
                .get("providerName")
                .or_else(|| item.get("serviceName"))
                .and_then(Value::as_str);
            if let (Some(n), Some(u)) = (name, item.get("uri").and_then(Value::as_str)) {
                map.insert(n.to_ascii_lowercase(), u.to_string());
            }
        }
        let found = map.get(&name).cloned();
        lock(&self.services).insert(key, map);
        found.ok_or_else(|| IntuneError::ServiceNotFound(service.to_string()))
    }

    fn forget_services(&self, t: &Target) {
        lock(&self.services).remove(&service_key(t));
    }

    /// An app token for `scope`, reused until a minute before it expires.
    fn token(
        &self,
        t: &Target,
        scope: &str,
        deadline: Instant,
    ) -> Result<Arc<Zeroizing<String>>, IntuneError> {
        let c = &t.credentials;
        let key = (
            t.endpoints.authority_url.clone(),
            c.tenant.clone(),
            c.client_id.clone(),
            scope.to_string(),
        );
        if let Some((tok, until)) = lock(&self.tokens).get(&key) {
            if Instant::now() < *until {
                return Ok(tok.clone());
            }
        }
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            t.endpoints.authority_url.trim_end_matches('/'),
            c.tenant
        );
        let req = self.agent.post(&url).timeout(remaining(deadline, &url)?);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
            ("scope", scope),
        ];
        let v = match read_json(&url, deadline, req.send_form(&form)) {
            Ok(v) => v,
            Err(IntuneError::Status { status, detail, .. }) if (400..500).contains(&status) => {
                return Err(IntuneError::Token(format!("HTTP {status}{detail}")))
            }
            Err(e) => return Err(e),
        };
        let Some(access) = v.get("access_token").and_then(Value::as_str) else {
            return Err(IntuneError::Malformed {
                url,
                message: "no access_token".into(),
            });
        };
        let lifetime = v
            .get("expires_in")
            .and_then(|e| e.as_u64().or_else(|| e.as_str()?.parse().ok()))
            .unwrap_or(300);
        let tok = Arc::new(Zeroizing::new(access.to_string()));
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60));
        lock(&self.tokens).insert(key, (tok.clone(), until));
        Ok(tok)
    }
}

fn service_key(t: &Target) -> ServiceKey {
    (
        t.endpoints.graph_url.clone(),
        t.credentials.tenant.clone(),
        t.endpoints.intune_app_id.clone(),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned cache is still a valid cache.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn b64(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// `callerInfo` and the User-Agent: who is calling (the library's
/// PROVIDER_NAME_AND_VERSION).
pub fn caller_info() -> String {
    format!("scepd/{}", env!("CARGO_PKG_VERSION"))
}

/// What a success notification says of `cert_der` (None if it is no
/// certificate).
pub fn issued_cert(cert_der: &[u8]) -> Option<IssuedCert> {
    let x = openssl::x509::X509::from_der(cert_der).ok()?;
    let thumbprint = hex::encode_upper(openssl::sha::sha1(cert_der));
    let serial = crate::enroll::serial_hex(&x.serial_number().to_bn().ok()?.to_vec());
    let expires = asn1_time_utc(x.not_after())?
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let issuer = crate::wire::name_text(x.issuer_name());
    Some(IssuedCert {
        thumbprint,
        serial,
        expires,
        issuer,
    })
}

fn asn1_time_utc(t: &openssl::asn1::Asn1TimeRef) -> Option<chrono::DateTime<chrono::Utc>> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    chrono::DateTime::from_timestamp(i64::from(d.days) * 86_400 + i64::from(d.secs), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_results_serialize_as_the_library_sends_them() {
        let r = RevocationResult::new("ctx", RevocationError::CertificateNotFoundError, "gone");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"requestContext": "ctx", "succeeded": false, "errorCode": 4004, "errorMessage": "gone"})
        );
        let ok = RevocationResult::new("ctx", RevocationError::None, "");
        assert!(ok.succeeded);
    }
}

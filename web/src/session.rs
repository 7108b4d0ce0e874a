//! The console's one gate, run for every console request
//! (`middleware::from_fn(gate)`): resolves the session cookie to an
//! `Officer`, refuses any state-changing request whose form lacks the
//! session's CSRF token, and adds the security headers to every answer,
//! errors included. Handlers take an `Officer` argument to require a login.
//!
//! The cookie holds a random 256-bit id; the database keeps its SHA-256.
//! Being unguessable and checked server-side, the id needs no signature;
//! `HttpOnly` keeps it from scripts, `SameSite=Strict` from other sites.
//! When the browser reaches the console over HTTPS (this connection is
//! TLS, or the public URL is https behind a TLS-terminating proxy) the
//! cookies are `Secure` and named with the `__Host-` prefix, so that no
//! plain-HTTP page and no other host can set or shadow them (RFC 6265bis
//! §4.1.3.2), and every answer carries HSTS (RFC 6797).

use std::future::{ready, Ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest};
use server::enroll::Enroll;
use server::store::admins::Role;
use server::store::queue::{self, Scope};
use server::store::sessions;

use crate::error::WebError;
use crate::ConsoleSettings;

pub const SESSION_COOKIE: &str = "scepd_session";
/// Double-submit token for the login form, which has no session yet.
pub const LOGIN_CSRF_COOKIE: &str = "scepd_login_csrf";
/// A year: browsers keep to HTTPS for this host that long after a visit.
/// No `includeSubDomains`: other services may share the domain.
const HSTS: &str = "max-age=31536000";
/// The form field every POST form carries.
pub const CSRF_FIELD: &str = "csrf";

/// `script-src 'self'` via default-src: no inline script or style anywhere.
const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// The logged-in officer of this request.
#[derive(Debug, Clone)]
pub struct Officer {
    /// `admins.id`: who the officer is, whatever its name.
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub scope: Scope,
    pub csrf: String,
    pub session_hash: Vec<u8>,
    /// Logged in with the generated first password: see [`detour`].
    pub must_change_password: bool,
    /// The password was right; the TOTP code is still to come.
    pub second_factor_pending: bool,
    /// The officer has a confirmed second factor.
    pub has_second_factor: bool,
    /// When the officer last proved who it is (login or re-authentication).
    pub authenticated_at: chrono::DateTime<chrono::Utc>,
}

impl FromRequest for Officer {
    type Error = WebError;
    type Future = Ready<Result<Officer, WebError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Officer>()
                .cloned()
                .ok_or(WebError::LoginRequired),
        )
    }
}

/// A random token of `n` bytes, hex.
pub fn random_token(n: usize) -> Result<String, WebError> {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b).map_err(|e| WebError::Internal(e.to_string()))?;
    Ok(hex::encode(b))
}

pub fn hash_id(id: &str) -> Vec<u8> {
    openssl::sha::sha256(id.as_bytes()).to_vec()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && !a.is_empty() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

/// Whether the browser sees this console over HTTPS: the connection is
/// TLS (the console listener), or the public URL is https.
pub fn over_https(req: &HttpRequest) -> bool {
    req.app_config().secure()
        || req
            .app_data::<web::Data<ConsoleSettings>>()
            .is_some_and(|s| s.secure_cookies)
}

/// The name `base` (one of the cookie constants above) goes by: with the
/// `__Host-` prefix over HTTPS.
pub fn cookie_name(base: &'static str, https: bool) -> &'static str {
    match (base, https) {
        (SESSION_COOKIE, true) => "__Host-scepd_session",
        (LOGIN_CSRF_COOKIE, true) => "__Host-scepd_login_csrf",
        _ => base,
    }
}

/// The value of console cookie `base` in this request, under the name it
/// has on this connection.
pub fn read_cookie(req: &HttpRequest, base: &'static str) -> Option<String> {
    req.cookie(cookie_name(base, over_https(req)))
        .map(|c| c.value().to_string())
}

/// A console cookie with the attributes every one of ours carries; over
/// HTTPS `Secure` and `__Host-` named (which needs `Path=/` and no domain).
pub fn cookie(base: &'static str, value: String, https: bool) -> Cookie<'static> {
    Cookie::build(cookie_name(base, https), value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(https)
        .finish()
}

/// A cookie that tells the browser to forget `base`.
pub fn removal(base: &'static str, https: bool) -> Cookie<'static> {
    let mut c = cookie(base, String::new(), https);
    c.make_removal();
    c
}

/// The client's address for login throttling and the audit log: the
/// socket peer, or the forwarded client behind a trusted proxy
/// (`server::http::client_ip`), never a header the client wrote itself.
pub fn client_ip(req: &HttpRequest) -> String {
    server::http::client_ip(req, server::http::TrustedProxies::of(req))
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn settings(req: &ServiceRequest) -> ConsoleSettings {
    req.app_data::<web::Data<ConsoleSettings>>()
        .map(|s| s.get_ref().clone())
        .unwrap_or_default()
}

/// Resolve the session cookie (if any) to an officer and its scope.
async fn resolve(req: &ServiceRequest, cfg: &ConsoleSettings) -> Result<Option<Officer>, WebError> {
    let Some(id) = read_cookie(req.request(), SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(enroll) = req.app_data::<web::Data<Enroll>>().cloned() else {
        return Err(WebError::Internal("no enrollment service".into()));
    };
    let (idle, max_age) = (cfg.idle_chrono(), cfg.max_age_chrono());
    let found = web::block(move || -> Result<Option<Officer>, WebError> {
        let mut conn = enroll
            .pool()
            .get()
            .map_err(server::store::StoreError::from)?;
        let hash = hash_id(&id);
        let Some((session, admin)) = sessions::touch(&mut conn, &hash, idle, max_age)? else {
            return Ok(None);
        };
        let Some(role) = Role::parse(&admin.role) else {
            return Ok(None);
        };
        let scope = queue::scope_of(&mut conn, &admin)?;
        let has_second_factor = admin.has_second_factor();
        Ok(Some(Officer {
            id: admin.id,
            username: admin.username,
            role,
            scope,
            csrf: session.csrf_token,
            session_hash: hash,
            must_change_password: admin.must_change_password,
            second_factor_pending: session.second_factor_pending,
            has_second_factor,
            authenticated_at: session.authenticated_at,
        }))
    })
    .await??;
    Ok(found)
}

/// Read the urlencoded body, find the CSRF field, and put the body back for
/// the handler.
async fn form_token(req: &mut ServiceRequest) -> Result<Option<String>, Error> {
    let body = req.extract::<Bytes>().await?;
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == CSRF_FIELD))
        .map(|(_, v)| v);
    req.set_payload(Payload::from(body));
    Ok(token)
}

async fn check(req: &mut ServiceRequest, cfg: &ConsoleSettings) -> Result<(), Error> {
    let officer = resolve(req, cfg).await?;
    // Logging out of a session that already expired changes nothing; let
    // it through to the handler, which sends the browser to the login page.
    let expired_logout = officer.is_none() && req.path() == "/logout";
    let state_changing = !matches!(*req.method(), Method::GET | Method::HEAD) && !expired_logout;
    if state_changing {
        // The login form has no session yet: it proves its origin with a
        // double-submit cookie instead.
        let expected = if req.path() == "/login" {
            read_cookie(req.request(), LOGIN_CSRF_COOKIE)
        } else {
            officer.as_ref().map(|o| o.csrf.clone())
        };
        let given = form_token(req).await?;
        let ok = matches!((&expected, &given), (Some(e), Some(g)) if tokens_match(e, g));
        if !ok {
            tracing::warn!(path = %req.path(), "console POST refused: CSRF token missing or wrong");
            return Err(WebError::Csrf.into());
        }
    }
    if let Some(o) = officer {
        if let Some(to) = detour(&o, cfg, req.method(), req.path(), chrono::Utc::now()) {
            return Err(WebError::Detour(to).into());
        }
        req.extensions_mut().insert(o);
    }
    Ok(())
}

/// How long a login or re-authentication counts for the changes that need
/// a fresh one.
pub const REAUTH_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// Where a logged-in officer must go before `method path`, if anywhere:
/// the second factor of a login, the change of a generated password, the
/// set-up of a second factor the installation requires, or proof of who it
/// is before changing credentials (passwords, second factor, API keys).
fn detour(
    o: &Officer,
    cfg: &ConsoleSettings,
    method: &Method,
    path: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let get = matches!(*method, Method::GET | Method::HEAD);
    let post = *method == Method::POST;
    if post && path == "/logout" {
        return None;
    }
    if o.second_factor_pending {
        return (path != "/login/second-factor").then(|| "/login/second-factor".into());
    }
    if o.must_change_password {
        let own = format!("/officers/{}", o.id);
        let open = (get && path == own) || (post && path == format!("{own}/password"));
        return (!open).then(|| format!("{own}?msg=change-password"));
    }
    if cfg.second_factor_required(o.role) && !o.has_second_factor {
        let open = path == "/account/second-factor"
            || path.starts_with("/account/second-factor/")
            || path == "/reauth";
        if !open {
            return Some("/account/second-factor?msg=required".into());
        }
    }
    if post && changes_credentials(path) && now - o.authenticated_at > REAUTH_WINDOW {
        return Some(format!("/reauth?next={}", page_of(path)));
    }
    None
}

/// POSTs that change how someone logs in or what an MDM may do.
fn changes_credentials(path: &str) -> bool {
    path.starts_with("/account/second-factor/")
        || path == "/api-keys"
        || (path.starts_with("/api-keys/") && path.ends_with("/revoke"))
        || (path.starts_with("/officers/") && path.ends_with("/password"))
}

/// The page a credential form was on, to return to after re-authenticating.
fn page_of(path: &str) -> &str {
    if path.starts_with("/api-keys") {
        "/api-keys"
    } else if path.starts_with("/account/second-factor") {
        "/account/second-factor"
    } else {
        path.strip_suffix("/password").unwrap_or("/")
    }
}

/// The middleware: session, CSRF, then security headers on every answer.
pub async fn gate(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let cfg = settings(&req);
    let request_id = random_token(8).unwrap_or_default();
    let mut res = match check(&mut req, &cfg).await {
        // Handler errors already arrive as responses (actix converts them),
        // so they get the headers below too.
        Ok(()) => next.call(req).await?.map_into_boxed_body(),
        Err(e) => req.error_response(e),
    };
    let https = over_https(res.request());
    secure_headers(&mut res, &request_id, https);
    Ok(res)
}

fn secure_headers(res: &mut ServiceResponse<BoxBody>, request_id: &str, https: bool) {
    let h = res.headers_mut();
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static(HSTS),
        );
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    if let Ok(v) = header::HeaderValue::from_str(request_id) {
        h.insert(header::HeaderName::from_static("x-request-id"), v);
    }
}

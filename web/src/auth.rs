//! Officer login and logout: throttling of failed attempts per account
//! from one client address and per address (counted in PostgreSQL, so it
//! holds across scepd processes; each attempt is counted before its
//! password is checked, so parallel guesses cannot exceed the limit),
//! argon2id verification, a fresh session at each login, and an audit
//! entry for every outcome. Runs on the blocking pool: argon2 is
//! deliberately slow.

use std::sync::OnceLock;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use chrono::{Duration, Utc};
use server::admin::second_factor;
use server::store::audit::{self, AuditEvent, AuditKind};
use server::store::{admins, sessions, PgPool, StoreError};

use crate::error::WebError;
use crate::session::{hash_id, random_token};

/// Failed logins are counted over this window.
const WINDOW: Duration = Duration::minutes(15);
/// Failures per account from one address in the window before that
/// address is throttled for the account (the account stays open to its
/// officer elsewhere).
pub const MAX_PER_ACCOUNT: i64 = 5;
/// Failures per client address in the window (one address guessing many
/// accounts).
pub const MAX_PER_ADDRESS: i64 = 20;

pub enum LoginOutcome {
    /// The new session's id (for the cookie only; stored hashed).
    Success {
        session_id: String,
        /// The session waits for the officer's TOTP code.
        second_factor: bool,
    },
    Invalid,
    Throttled,
}

/// A hash to verify against when the account does not exist, so that the
/// answer takes as long as for a real account (no username probing).
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"scepd-no-such-officer", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

fn record(
    conn: &mut server::store::PgPooled,
    actor: &str,
    kind: AuditKind,
    details: serde_json::Value,
    ip: &str,
) -> Result<(), StoreError> {
    audit::record(
        conn,
        &AuditEvent::new(actor, kind)
            .target(format!("admin:{actor}"))
            .details(details)
            .client_ip(Some(ip)),
    )
}

/// Check a login attempt and, if it succeeds, open a session.
pub fn login(
    pool: &PgPool,
    username: &str,
    password: &str,
    ip: &str,
    idle: Duration,
) -> Result<LoginOutcome, WebError> {
    let mut conn = pool.get().map_err(StoreError::from)?;
    // Usernames are at most 100 characters (schema); longer input is
    // trimmed so it cannot bloat the failure table or the audit log.
    let username: String = username.trim().chars().take(100).collect();
    let attempt = sessions::claim_attempt(
        &mut conn,
        &username,
        ip,
        Utc::now() - WINDOW,
        MAX_PER_ACCOUNT,
        MAX_PER_ADDRESS,
    )?;
    let Some(attempt) = attempt else {
        record(
            &mut conn,
            &username,
            AuditKind::ConsoleLoginFailed,
            serde_json::json!({ "reason": "throttled" }),
            ip,
        )?;
        return Ok(LoginOutcome::Throttled);
    };
    let admin = admins::by_username(&mut conn, &username)?;
    let ok = match &admin {
        Some(a) if a.enabled => verify(password, &a.password_hash),
        _ => {
            let _ = verify(password, dummy_hash());
            false
        }
    };
    let Some(admin) = admin.filter(|_| ok) else {
        // The attempt was recorded as a failure when it was claimed.
        record(
            &mut conn,
            &username,
            AuditKind::ConsoleLoginFailed,
            serde_json::json!({ "reason": "bad credentials" }),
            ip,
        )?;
        return Ok(LoginOutcome::Invalid);
    };
    let session_id = random_token(32)?;
    let csrf = random_token(32)?;
    let second_factor = admin.has_second_factor();
    sessions::create(
        &mut conn,
        &hash_id(&session_id),
        admin.id,
        &csrf,
        idle,
        second_factor,
    )?;
    sessions::forgive_attempt(&mut conn, attempt, &admin.username, ip, Utc::now() - WINDOW)?;
    sessions::purge_expired(&mut conn)?;
    record(
        &mut conn,
        &admin.username,
        AuditKind::ConsoleLogin,
        serde_json::json!({ "role": admin.role, "second_factor": if second_factor { "pending" } else { "none" } }),
        ip,
    )?;
    Ok(LoginOutcome::Success {
        session_id,
        second_factor,
    })
}

/// End a session: its row is deleted, so the cookie is worthless even if
/// it was copied.
pub fn logout(
    pool: &PgPool,
    session_hash: &[u8],
    username: &str,
    ip: &str,
) -> Result<(), WebError> {
    let mut conn = pool.get().map_err(StoreError::from)?;
    sessions::delete(&mut conn, session_hash)?;
    record(
        &mut conn,
        username,
        AuditKind::ConsoleLogout,
        serde_json::json!({}),
        ip,
    )?;
    Ok(())
}

/// Wrong codes a session may send before it is ended.
pub const MAX_CODE_FAILURES: i32 = 5;

pub enum CodeOutcome {
    Accepted,
    Refused,
    /// Too many wrong codes: the session is gone.
    Ended,
}

/// The second step of a login (or of a re-authentication): the officer's
/// TOTP code or a recovery code. Audited either way; after
/// [`MAX_CODE_FAILURES`] wrong codes the session is ended.
pub fn second_factor(
    pool: &PgPool,
    officer: &crate::session::Officer,
    code: &str,
    sealer: &second_factor::SecretBox,
    ip: &str,
) -> Result<CodeOutcome, WebError> {
    let mut conn = pool.get().map_err(StoreError::from)?;
    let accepted = second_factor::check(&mut conn, officer.id, code, sealer)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    match accepted {
        Some(how) => {
            sessions::mark_authenticated(&mut conn, &officer.session_hash)?;
            let detail = match how {
                second_factor::Accepted::Totp => serde_json::json!({ "second_factor": "totp" }),
                second_factor::Accepted::RecoveryCode { left } => {
                    serde_json::json!({ "second_factor": "recovery_code", "recovery_codes_left": left })
                }
            };
            let kind = if officer.second_factor_pending {
                AuditKind::ConsoleLogin
            } else {
                AuditKind::ConsoleReauthenticated
            };
            record(&mut conn, &officer.username, kind, detail, ip)?;
            Ok(CodeOutcome::Accepted)
        }
        None => {
            let failures = sessions::count_second_factor_failure(&mut conn, &officer.session_hash)?;
            record(
                &mut conn,
                &officer.username,
                AuditKind::ConsoleSecondFactorFailed,
                serde_json::json!({ "failures": failures }),
                ip,
            )?;
            if failures >= MAX_CODE_FAILURES {
                sessions::delete(&mut conn, &officer.session_hash)?;
                return Ok(CodeOutcome::Ended);
            }
            Ok(CodeOutcome::Refused)
        }
    }
}

/// Re-authentication before a credential change: the password, and the
/// second factor when the officer has one. `false`: refused (counted like
/// wrong codes).
pub fn reauthenticate(
    pool: &PgPool,
    officer: &crate::session::Officer,
    password: &str,
    code: &str,
    sealer: &second_factor::SecretBox,
    ip: &str,
) -> Result<CodeOutcome, WebError> {
    let mut conn = pool.get().map_err(StoreError::from)?;
    let admin = admins::by_id(&mut conn, officer.id)?;
    if !verify(password, &admin.password_hash) {
        let failures = sessions::count_second_factor_failure(&mut conn, &officer.session_hash)?;
        record(
            &mut conn,
            &officer.username,
            AuditKind::ConsoleLoginFailed,
            serde_json::json!({ "reason": "re-authentication: bad password", "failures": failures }),
            ip,
        )?;
        if failures >= MAX_CODE_FAILURES {
            sessions::delete(&mut conn, &officer.session_hash)?;
            return Ok(CodeOutcome::Ended);
        }
        return Ok(CodeOutcome::Refused);
    }
    if admin.has_second_factor() {
        drop(conn);
        return second_factor(pool, officer, code, sealer, ip);
    }
    sessions::mark_authenticated(&mut conn, &officer.session_hash)?;
    record(
        &mut conn,
        &officer.username,
        AuditKind::ConsoleReauthenticated,
        serde_json::json!({ "second_factor": "none" }),
        ip,
    )?;
    Ok(CodeOutcome::Accepted)
}

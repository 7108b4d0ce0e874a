//! Setting, showing and removing a profile's webhooks: one service for the
//! console, the CLI and the API. Who may edit the profile may set its
//! webhooks (`admin::profiles::lock_manageable`, checked inside the
//! transaction); every change is audited with what changed, never with
//! the secret, which is sealed on entry and never shown again.

use diesel::pg::PgConnection;
use diesel::Connection;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Sealer, DEFAULT_TIMEOUT_MS, MIN_SECRET_LEN, TIMEOUT_MS};
use crate::admin::{profiles as admin_profiles, Actor, AdminError};
use crate::store::audit::{AuditEvent, AuditKind};
use crate::store::webhooks::{
    self, Webhook, WebhookSettings, EVENTS, PURPOSE_CHALLENGE, PURPOSE_NOTIFY,
};

/// What an officer submits. `secret` None keeps the stored one (required
/// for a new webhook).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    pub url: String,
    #[serde(default)]
    pub secret: Option<String>,
    /// Challenge webhooks: how long a device may wait [100–10000 ms].
    #[serde(default)]
    pub timeout_ms: Option<i32>,
    /// Challenge webhooks: answer PENDING (an officer decides) instead of
    /// FAILURE when the webhook times out or answers 5xx.
    #[serde(default)]
    pub pending_on_error: Option<bool>,
    /// Notification webhooks: which of `issued`, `declined`, `revoked`,
    /// `failed` [default: all].
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl std::fmt::Debug for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Draft")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("pending_on_error", &self.pending_on_error)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// A webhook as shown: everything but the secret.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub purpose: String,
    pub url: String,
    pub timeout_ms: i32,
    pub pending_on_error: bool,
    pub events: Vec<String>,
    pub enabled: bool,
    pub last_error: Option<String>,
    pub last_error_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_success_at: Option<chrono::DateTime<chrono::Utc>>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Webhook> for Shown {
    fn from(w: &Webhook) -> Self {
        Self {
            purpose: w.purpose.clone(),
            url: w.url.clone(),
            timeout_ms: w.timeout_ms,
            pending_on_error: w.pending_on_error,
            events: w.events.clone(),
            enabled: w.enabled,
            last_error: w.last_error.clone(),
            last_error_at: w.last_error_at,
            last_success_at: w.last_success_at,
            updated_at: w.updated_at,
        }
    }
}

/// `challenge` or `notify`, else a refusal.
pub fn purpose(p: &str) -> Result<&'static str, AdminError> {
    match p {
        "challenge" => Ok(PURPOSE_CHALLENGE),
        "notify" => Ok(PURPOSE_NOTIFY),
        _ => Err(AdminError::refused(
            "purpose",
            "purpose must be challenge or notify",
        )),
    }
}

/// The profile's webhooks, if the officer sees the profile.
pub fn show(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
) -> Result<Vec<Shown>, AdminError> {
    let p = admin_profiles::visible(conn, who, profile_id)?;
    Ok(webhooks::all_of_profile(conn, p.profile.id)?
        .iter()
        .map(Shown::from)
        .collect())
}

/// Create or change the profile's webhook for `purpose`; audited as
/// `webhook.updated` with the settings changed (a new secret is recorded
/// only as `"secret": "changed"`).
pub fn set(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    sealer: &Sealer,
    profile_id: &str,
    purpose_name: &str,
    d: &Draft,
) -> Result<Shown, AdminError> {
    let purpose = purpose(purpose_name)?;
    conn.transaction(|conn| {
        let profile = admin_profiles::lock_manageable(conn, who, profile_id)?;
        let old = webhooks::of_profile(conn, profile.id, purpose)?;
        let mut refusals = crate::admin::Refusals::default();
        let url = d.url.trim();
        if !super::url_ok(url) {
            refusals.add("url", "URL must be an http:// or https:// URL with a host");
        }
        let secret = d
            .secret
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Zeroizing::new(s.to_string()));
        match &secret {
            Some(s) if s.len() < MIN_SECRET_LEN => refusals.add(
                "secret",
                format!("the secret must be at least {MIN_SECRET_LEN} characters"),
            ),
            None if old.is_none() => refusals.add("secret", "a new webhook needs a secret"),
            _ => {}
        }
        let timeout_ms = d
            .timeout_ms
            .or(old.as_ref().map(|o| o.timeout_ms))
            .unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(TIMEOUT_MS.0..=TIMEOUT_MS.1).contains(&timeout_ms) {
            refusals.add(
                "timeout_ms",
                format!("timeout must be {}–{} ms", TIMEOUT_MS.0, TIMEOUT_MS.1),
            );
        }
        let mut events: Vec<String> = match &d.events {
            Some(e) => e
                .iter()
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect(),
            None => old
                .as_ref()
                .map(|o| o.events.clone())
                .unwrap_or_else(|| EVENTS.iter().map(|e| e.to_string()).collect()),
        };
        let mut seen = vec![];
        events.retain(|e| {
            let first = !seen.contains(e);
            seen.push(e.clone());
            first
        });
        if let Some(bad) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            refusals.add(
                "events",
                format!("unknown event {bad:?} (use {})", EVENTS.join(", ")),
            );
        }
        refusals.finish()?;
        let sealed = match &secret {
            Some(s) => Some(
                sealer
                    .seal(s.as_bytes(), profile.id, purpose)
                    .map_err(|e| AdminError::Failed(e.to_string()))?,
            ),
            None => None,
        };
        let settings = WebhookSettings {
            url,
            secret_sealed: sealed,
            timeout_ms,
            pending_on_error: d
                .pending_on_error
                .or(old.as_ref().map(|o| o.pending_on_error))
                .unwrap_or(false),
            events,
            enabled: d
                .enabled
                .or(old.as_ref().map(|o| o.enabled))
                .unwrap_or(true),
        };
        let new = webhooks::upsert(conn, profile.id, purpose, &settings)?;
        let mut changed = serde_json::Map::new();
        let before = old.as_ref().map(Shown::from);
        let after = Shown::from(&new);
        let (b, a) = (
            before.map(|b| serde_json::to_value(b).unwrap_or_default()),
            serde_json::to_value(&after).unwrap_or_default(),
        );
        for k in ["url", "timeout_ms", "pending_on_error", "events", "enabled"] {
            let from = b.as_ref().and_then(|b| b.get(k)).cloned();
            let to = a.get(k).cloned();
            if from != to {
                changed.insert(k.into(), serde_json::json!({ "from": from, "to": to }));
            }
        }
        if secret.is_some() {
            changed.insert("secret".into(), "changed".into());
        }
        admin_profiles::record_filed(
            conn,
            profile.id,
            AuditEvent::new(who.username, AuditKind::WebhookUpdated)
                .target(format!("profile:{}", profile.profile_id))
                .details(serde_json::json!({
                    "purpose": purpose,
                    "created": old.is_none(),
                    "changed": changed,
                })),
        )?;
        Ok(after)
    })
}

/// Remove the profile's webhook for `purpose` (with its queued events);
/// audited as `webhook.removed`.
pub fn remove(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
    purpose_name: &str,
) -> Result<(), AdminError> {
    let purpose = purpose(purpose_name)?;
    conn.transaction(|conn| {
        let profile = admin_profiles::lock_manageable(conn, who, profile_id)?;
        if !webhooks::remove(conn, profile.id, purpose)? {
            return Err(AdminError::NotFound);
        }
        admin_profiles::record_filed(
            conn,
            profile.id,
            AuditEvent::new(who.username, AuditKind::WebhookRemoved)
                .target(format!("profile:{}", profile.profile_id))
                .details(serde_json::json!({ "purpose": purpose })),
        )
    })
}

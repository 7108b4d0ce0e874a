//! A profile's Intune settings: one service for the console, the CLI and
//! the API. The officer must be able to change the profile (the same check
//! as any profile change, inside the transaction); every change is audited
//! with what changed, the client secret only as "changed". The secret is
//! sealed before it is stored and never shown again.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::Connection;

use super::client::{DEFAULT_AUTHORITY, DEFAULT_GRAPH, DEFAULT_INTUNE_RESOURCE, INTUNE_APP_ID};
use super::Sealer;
use crate::admin::rules::{self, Actor};
use crate::admin::{AdminError, Refusals};
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::intune::{self as store, IntuneSettings, NewIntuneSettings};
use crate::store::profiles;

/// What an officer submits. Empty optional URLs take Microsoft's defaults
/// (or, for the two service URLs, service discovery).
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsForm {
    pub tenant: String,
    pub client_id: String,
    /// None or empty: keep the stored one (required the first time).
    #[serde(default)]
    pub client_secret: Option<String>,
    pub organization_id: i64,
    #[serde(default)]
    pub department_id: Option<i64>,
    #[serde(default)]
    pub authority_url: Option<String>,
    #[serde(default)]
    pub graph_url: Option<String>,
    #[serde(default)]
    pub intune_resource_url: Option<String>,
    #[serde(default)]
    pub intune_app_id: Option<String>,
    #[serde(default)]
    pub validation_url: Option<String>,
    #[serde(default)]
    pub pki_connector_url: Option<String>,
    #[serde(default = "yes")]
    pub revocation_enabled: bool,
}

fn yes() -> bool {
    true
}

impl std::fmt::Debug for SettingsForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsForm")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// The settings as shown: everything but the secret, and the
/// integration's last error.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Shown {
    pub profile_id: String,
    pub tenant: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub organization_id: i64,
    pub department_id: Option<i64>,
    pub authority_url: String,
    pub graph_url: String,
    pub intune_resource_url: String,
    pub intune_app_id: String,
    pub validation_url: Option<String>,
    pub pki_connector_url: Option<String>,
    pub revocation_enabled: bool,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_revocation_sync_at: Option<DateTime<Utc>>,
}

impl Shown {
    fn of(profile_id: &str, s: IntuneSettings) -> Self {
        Self {
            profile_id: profile_id.to_string(),
            tenant: s.tenant,
            client_id: s.client_id,
            client_secret_set: !s.client_secret_sealed.is_empty(),
            organization_id: s.organization_id,
            department_id: s.department_id,
            authority_url: s.authority_url,
            graph_url: s.graph_url,
            intune_resource_url: s.intune_resource_url,
            intune_app_id: s.intune_app_id,
            validation_url: s.validation_url,
            pki_connector_url: s.pki_connector_url,
            revocation_enabled: s.revocation_enabled,
            last_error: s.last_error,
            last_error_at: s.last_error_at,
            last_success_at: s.last_success_at,
            last_revocation_sync_at: s.last_revocation_sync_at,
        }
    }
}

/// The profile's settings, if the officer sees the profile (`None`: it
/// does not use Intune).
pub fn show(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
) -> Result<Option<Shown>, AdminError> {
    let seen = crate::admin::profiles::visible(conn, who, profile_id)?;
    Ok(store::of_profile(conn, seen.profile.id)?.map(|s| Shown::of(profile_id, s)))
}

/// Make the profile's challenges Intune's, or change how it reaches Intune.
pub fn set(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    sealer: &Sealer,
    profile_id: &str,
    form: &SettingsForm,
) -> Result<Shown, AdminError> {
    conn.transaction(|conn| {
        let (profile, _) = crate::admin::profiles::locked(conn, who, profile_id)?;
        let old = store::of_profile(conn, profile.id)?;
        let mut refusals = Refusals::default();
        let tenant = form.tenant.trim();
        if tenant.is_empty()
            || tenant.len() > 200
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            refusals.add(
                "tenant",
                "the tenant ID (a GUID) or its domain, such as contoso.onmicrosoft.com",
            );
        }
        let client_id = form.client_id.trim();
        if client_id.is_empty() || client_id.len() > 200 || client_id.contains(char::is_whitespace)
        {
            refusals.add(
                "client_id",
                "the app registration's application (client) ID",
            );
        }
        let new_secret = form
            .client_secret
            .as_ref()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        if new_secret.is_none() && old.is_none() {
            refusals.add(
                "client_secret",
                "the app registration's client secret is required",
            );
        }
        if new_secret.is_some_and(|s| s.len() > 1024) {
            refusals.add("client_secret", "at most 1024 characters");
        }
        let url = |refusals: &mut Refusals, name: &'static str, v: &Option<String>| {
            let v = v.as_deref().map(str::trim).filter(|v| !v.is_empty());
            if let Some(u) = v {
                if !u.starts_with("https://") || u.len() > 500 || u.contains(char::is_whitespace) {
                    refusals.add(name, "an https:// URL");
                }
            }
            v.map(str::to_string)
        };
        let authority = url(&mut refusals, "authority_url", &form.authority_url);
        let graph = url(&mut refusals, "graph_url", &form.graph_url);
        let resource = url(
            &mut refusals,
            "intune_resource_url",
            &form.intune_resource_url,
        );
        let validation = url(&mut refusals, "validation_url", &form.validation_url);
        let connector = url(&mut refusals, "pki_connector_url", &form.pki_connector_url);
        let app_id = form
            .intune_app_id
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or(INTUNE_APP_ID);
        if app_id.len() > 100 || !app_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            refusals.add("intune_app_id", "a GUID");
        }
        let place = (form.organization_id, form.department_id);
        crate::admin::check_places(conn, &[place], "organization_id", &mut refusals)?;
        if !refusals.has("organization_id") {
            if !profiles::is_enabled_for(conn, profile.id, place.0, place.1)? {
                refusals.add(
                    "organization_id",
                    "the profile is not enabled for this organization or department",
                );
            } else if !rules::may_manage_places(who, &[place]) {
                refusals.add("organization_id", "outside your scope");
            }
        }
        refusals.finish()?;
        let sealed = match new_secret {
            Some(s) => sealer
                .seal(s.as_bytes(), profile.id)
                .map_err(AdminError::Failed)?,
            None => old
                .as_ref()
                .map(|o| o.client_secret_sealed.clone())
                .unwrap_or_default(),
        };
        let new = NewIntuneSettings {
            profile_id: profile.id,
            tenant,
            client_id,
            client_secret_sealed: &sealed,
            organization_id: place.0,
            department_id: place.1,
            authority_url: authority.as_deref().unwrap_or(DEFAULT_AUTHORITY),
            graph_url: graph.as_deref().unwrap_or(DEFAULT_GRAPH),
            intune_resource_url: resource.as_deref().unwrap_or(DEFAULT_INTUNE_RESOURCE),
            intune_app_id: app_id,
            validation_url: validation.as_deref(),
            pki_connector_url: connector.as_deref(),
            revocation_enabled: form.revocation_enabled,
        };
        store::upsert(conn, &new)?;
        let mut changed = changes(old.as_ref(), &new, new_secret.is_some());
        if old.is_none() {
            // From now on Intune issues this profile's challenges: none of
            // scepd's may stay usable (nor take the one-statement path).
            let revoked = store::revoke_unused_challenges(conn, profile.id)?;
            changed["challenges_revoked"] = revoked.into();
        }
        audit::record(
            conn,
            &AuditEvent::new(who.username, AuditKind::IntuneSettingsChanged)
                .target(format!("profile:{}", profile.profile_id))
                .details(serde_json::json!({ "changed": changed }))
                .org(place.0)
                .dept(place.1),
        )?;
        let stored = store::of_profile(conn, profile.id)?.ok_or(AdminError::NotFound)?;
        Ok(Shown::of(&profile.profile_id, stored))
    })
}

/// The profile's challenges are no longer Intune's.
pub fn remove(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    profile_id: &str,
) -> Result<(), AdminError> {
    conn.transaction(|conn| {
        let (profile, _) = crate::admin::profiles::locked(conn, who, profile_id)?;
        let Some(old) = store::of_profile(conn, profile.id)? else {
            return Err(AdminError::Conflict(format!(
                "profile {} does not use Intune",
                profile.profile_id
            )));
        };
        store::delete(conn, profile.id)?;
        audit::record(
            conn,
            &AuditEvent::new(who.username, AuditKind::IntuneSettingsChanged)
                .target(format!("profile:{}", profile.profile_id))
                .details(serde_json::json!({ "removed": true, "tenant": old.tenant }))
                .org(old.organization_id)
                .dept(old.department_id),
        )?;
        Ok(())
    })
}

/// `{field: {"from", "to"}}` for what differs; the secret only as changed.
fn changes(
    old: Option<&IntuneSettings>,
    new: &NewIntuneSettings<'_>,
    secret_changed: bool,
) -> serde_json::Value {
    let before = old.map(|o| {
        serde_json::json!({
            "tenant": o.tenant, "client_id": o.client_id,
            "organization_id": o.organization_id, "department_id": o.department_id,
            "authority_url": o.authority_url, "graph_url": o.graph_url,
            "intune_resource_url": o.intune_resource_url, "intune_app_id": o.intune_app_id,
            "validation_url": o.validation_url, "pki_connector_url": o.pki_connector_url,
            "revocation_enabled": o.revocation_enabled,
        })
    });
    let after = serde_json::json!({
        "tenant": new.tenant, "client_id": new.client_id,
        "organization_id": new.organization_id, "department_id": new.department_id,
        "authority_url": new.authority_url, "graph_url": new.graph_url,
        "intune_resource_url": new.intune_resource_url, "intune_app_id": new.intune_app_id,
        "validation_url": new.validation_url, "pki_connector_url": new.pki_connector_url,
        "revocation_enabled": new.revocation_enabled,
    });
    let mut out = serde_json::Map::new();
    if let serde_json::Value::Object(b) = after {
        for (k, v) in b {
            let was = before.as_ref().and_then(|o| o.get(&k).cloned());
            if was.as_ref() != Some(&v) {
                out.insert(k, serde_json::json!({ "from": was, "to": v }));
            }
        }
    }
    if secret_changed {
        out.insert("client_secret".into(), "changed".into());
    }
    serde_json::Value::Object(out)
}

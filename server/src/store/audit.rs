//! The audit log: every security decision (issue, refusal, RA decision,
//! revocation, mint) as a typed event, written in the same transaction as
//! the change it records. Never holds secrets.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{admins, audit_log};
use super::StoreError;

/// Actor names the system writes under (device enrollment, automatic
/// approval, the purge, start-up, the command line, the API), compared
/// without regard to case. No officer may carry one (`admin::rules::
/// check_username`), and an entry under one of them is never taken for an
/// officer's own: device events of every organization use them.
pub const SYSTEM_ACTORS: &[&str] = &[
    "scep",
    "auto-approve",
    "purge",
    "system",
    "cli",
    "api",
    "bootstrap",
    "intune",
];

/// Whether `name` is one of [`SYSTEM_ACTORS`].
pub fn is_system_actor(name: &str) -> bool {
    SYSTEM_ACTORS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    CertificateIssued,
    RequestPending,
    RequestRefused,
    RequestApproved,
    RequestDeclined,
    CertificateRevoked,
    ChallengeMinted,
    ChallengeUsed,
    ChallengeRejected,
    ChallengesExpired,
    ChallengeRevoked,
    AccessCodeCreated,
    AccessCodeUsed,
    AccessCodeChanged,
    AccessCodeChecked,
    ApiKeyCreated,
    ApiKeyRevoked,
    AdminCreated,
    AdminUpdated,
    AdminDisabled,
    AdminEnabled,
    AdminPasswordReset,
    OrganizationCreated,
    OrganizationUpdated,
    OrganizationDisabled,
    OrganizationEnabled,
    DepartmentCreated,
    DepartmentUpdated,
    DepartmentDisabled,
    DepartmentEnabled,
    ProfileCreated,
    ProfileUpdated,
    ProfileDisabled,
    ProfileEnabled,
    AccessCodeDisabled,
    AccessCodeEnabled,
    CaCreated,
    /// The installation's CA identity recorded in the database.
    CaRecorded,
    /// A rollover CA created and recorded (`scepd ca rollover`).
    CaRolloverPrepared,
    CaSwitched,
    CrlIssued,
    ConsoleLogin,
    ConsoleLoginFailed,
    ConsoleSecondFactorFailed,
    ConsoleReauthenticated,
    OfficerSecondFactorEnabled,
    OfficerSecondFactorDisabled,
    ConsoleLogout,
    OfficerPreference,
    TestMailSent,
    TlsCertificateIssued,
    IntuneSettingsChanged,
    IntuneValidated,
    IntuneRefused,
    IntuneNotificationFailed,
    IntuneRevocationsApplied,
    WebhookUpdated,
    WebhookRemoved,
    /// A challenge webhook admitted an enrollment.
    WebhookAllowed,
    WebhookDenied,
    /// A webhook was unavailable or replied badly.
    WebhookFailed,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OfficerPreference => "officer.preference",
            Self::TestMailSent => "mail.test",
            Self::TlsCertificateIssued => "tls.certificate_issued",
            Self::IntuneSettingsChanged => "intune.settings_changed",
            Self::IntuneValidated => "intune.validated",
            Self::IntuneRefused => "intune.refused",
            Self::IntuneNotificationFailed => "intune.notification_failed",
            Self::IntuneRevocationsApplied => "intune.revocations_applied",
            Self::CertificateIssued => "certificate.issued",
            Self::RequestPending => "request.pending",
            Self::RequestRefused => "request.refused",
            Self::RequestApproved => "request.approved",
            Self::RequestDeclined => "request.declined",
            Self::CertificateRevoked => "certificate.revoked",
            Self::ChallengeMinted => "challenge.minted",
            Self::ChallengeUsed => "challenge.used",
            Self::ChallengeRejected => "challenge.rejected",
            Self::ChallengesExpired => "challenge.expired",
            Self::ChallengeRevoked => "challenge.revoked",
            Self::AccessCodeCreated => "access_code.created",
            Self::AccessCodeUsed => "access_code.used",
            Self::AccessCodeChanged => "access_code.changed",
            Self::AccessCodeChecked => "access_code.checked",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::AdminCreated => "admin.created",
            Self::AdminUpdated => "admin.updated",
            Self::AdminDisabled => "admin.disabled",
            Self::AdminEnabled => "admin.enabled",
            Self::AdminPasswordReset => "admin.password_reset",
            Self::OrganizationCreated => "organization.created",
            Self::OrganizationUpdated => "organization.updated",
            Self::OrganizationDisabled => "organization.disabled",
            Self::OrganizationEnabled => "organization.enabled",
            Self::DepartmentCreated => "department.created",
            Self::DepartmentUpdated => "department.updated",
            Self::DepartmentDisabled => "department.disabled",
            Self::DepartmentEnabled => "department.enabled",
            Self::ProfileCreated => "profile.created",
            Self::ProfileUpdated => "profile.updated",
            Self::ProfileDisabled => "profile.disabled",
            Self::ProfileEnabled => "profile.enabled",
            Self::AccessCodeDisabled => "access_code.disabled",
            Self::AccessCodeEnabled => "access_code.enabled",
            Self::CaCreated => "ca.created",
            Self::CaRecorded => "ca.recorded",
            Self::CaRolloverPrepared => "ca.rollover",
            Self::CaSwitched => "ca.switch",
            Self::CrlIssued => "crl.issued",
            Self::ConsoleLogin => "console.login",
            Self::ConsoleLoginFailed => "console.login_failed",
            Self::ConsoleSecondFactorFailed => "console.second_factor_failed",
            Self::ConsoleReauthenticated => "console.reauthenticated",
            Self::OfficerSecondFactorEnabled => "officer.second_factor_enabled",
            Self::OfficerSecondFactorDisabled => "officer.second_factor_disabled",
            Self::ConsoleLogout => "console.logout",
            Self::WebhookUpdated => "webhook.updated",
            Self::WebhookRemoved => "webhook.removed",
            Self::WebhookAllowed => "webhook.allowed",
            Self::WebhookDenied => "webhook.denied",
            Self::WebhookFailed => "webhook.failed",
        }
    }
}

/// One audit entry to record. `organization_id`/`department_id` say which
/// part of the tree the event concerns (the request, certificate,
/// challenge, code or key it acts on); they decide which officers see the
/// entry, so leave them `None` only for events that concern no
/// organization. Build with [`AuditEvent::new`] and the methods below, or
/// as a struct literal.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub actor: &'a str,
    pub kind: AuditKind,
    pub target: Option<String>,
    pub details: serde_json::Value,
    pub client_ip: Option<&'a str>,
    pub organization_id: Option<i64>,
    pub department_id: Option<i64>,
}

impl<'a> AuditEvent<'a> {
    /// An event with no target, empty details and no scope.
    pub fn new(actor: &'a str, kind: AuditKind) -> Self {
        Self {
            actor,
            kind,
            target: None,
            details: serde_json::json!({}),
            client_ip: None,
            organization_id: None,
            department_id: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn client_ip(mut self, ip: Option<&'a str>) -> Self {
        self.client_ip = ip;
        self
    }

    /// The organization the event concerns.
    pub fn org(mut self, organization_id: i64) -> Self {
        self.organization_id = Some(organization_id);
        self
    }

    /// The department the event concerns, if any (its organization is set
    /// with [`AuditEvent::org`]).
    pub fn dept(mut self, department_id: Option<i64>) -> Self {
        self.department_id = department_id;
        self
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub event: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
    pub client_ip: Option<String>,
    pub organization_id: Option<i64>,
    pub department_id: Option<i64>,
}

/// Write one entry. When the actor is an officer, the entry records the
/// officer's id too (`actor_officer_id`): what the officer later sees as
/// its own follows that id, not the name. A system actor's entry names
/// no officer, even one created under that name before it was reserved.
pub fn record(conn: &mut PgConnection, ev: &AuditEvent<'_>) -> Result<(), StoreError> {
    let officer = if is_system_actor(ev.actor) {
        None
    } else {
        admins::table
            .filter(admins::username.eq(ev.actor))
            .select(admins::id)
            .first::<i64>(conn)
            .optional()?
    };
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor.eq(ev.actor),
            audit_log::actor_officer_id.eq(officer),
            audit_log::event.eq(ev.kind.as_str()),
            audit_log::target.eq(ev.target.as_deref()),
            audit_log::details.eq(&ev.details),
            audit_log::client_ip.eq(ev.client_ip),
            audit_log::organization_id.eq(ev.organization_id),
            audit_log::department_id.eq(ev.department_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// Most recent entries first, optionally of one event kind.
pub fn recent(
    conn: &mut PgConnection,
    kind: Option<AuditKind>,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut q = audit_log::table
        .select(AuditEntry::as_select())
        .into_boxed();
    if let Some(k) = kind {
        q = q.filter(audit_log::event.eq(k.as_str()));
    }
    Ok(q.order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(limit)
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_built_step_by_step_carries_its_scope() {
        let ev = AuditEvent::new("alice", AuditKind::AccessCodeChanged)
            .target("access_code:7")
            .details(serde_json::json!({ "enabled": false }))
            .client_ip(Some("192.0.2.1"))
            .org(3)
            .dept(Some(9));
        assert_eq!(ev.target.as_deref(), Some("access_code:7"));
        assert_eq!((ev.organization_id, ev.department_id), (Some(3), Some(9)));
        assert_eq!(ev.client_ip, Some("192.0.2.1"));
        let bare = AuditEvent::new("bob", AuditKind::ConsoleLogin);
        assert_eq!((bare.organization_id, bare.department_id), (None, None));
        assert_eq!(bare.details, serde_json::json!({}));
    }
}

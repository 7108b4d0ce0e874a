//! Email notifications (issue 6) through a transactional outbox.
//!
//! Producers in [`events`] write outbox rows inside the transaction of the
//! change they report (request pending, certificate issued, request
//! declined, certificate revoked), so no committed change goes unreported
//! and no rolled-back one is reported. The [`sender`] task in every `scepd
//! serve` process leases due rows (`FOR UPDATE SKIP LOCKED`), renders them
//! with the askama templates in `templates/mail/` ([`render`]) and delivers
//! them over SMTP with retries and exponential backoff; it also enqueues
//! expiry reminders, once per certificate and threshold. Pending-request
//! rows for one officer go out as one digest.

pub mod events;
pub mod render;
pub mod sender;

pub use sender::{MailSettings, Mailer, SmtpTls};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot render mail: {0}")]
    Render(#[from] askama::Error),
    #[error("bad address {0:?}")]
    Address(String),
    /// `permanent`: the server refused for good (5xx); otherwise a retry
    /// may succeed (connection refused, timeout, 4xx).
    #[error("SMTP: {message}")]
    Smtp { permanent: bool, message: String },
    #[error("no SMTP server configured (set SCEPD_SMTP_HOST)")]
    NotConfigured,
    #[error("unknown mail kind {0:?}")]
    UnknownKind(String),
}

/// An officer turns their own pending-request mails on or off; audited
/// with the change, in one transaction.
pub fn set_officer_mail(
    conn: &mut diesel::pg::PgConnection,
    username: &str,
    enabled: bool,
) -> Result<(), crate::store::StoreError> {
    use crate::store::audit::{self, AuditEvent, AuditKind};
    diesel::Connection::transaction(conn, |conn| {
        crate::store::notification_contacts::set_officer_mail(conn, username, enabled)?;
        audit::record(
            conn,
            &AuditEvent {
                actor: username,
                kind: AuditKind::OfficerPreference,
                target: Some(format!("admin:{username}")),
                details: serde_json::json!({ "notify_email": enabled }),
                client_ip: None,
                organization_id: None,
                department_id: None,
            },
        )
    })
}

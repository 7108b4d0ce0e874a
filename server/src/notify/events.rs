//! Producers: each function is called inside the transaction of the change
//! it reports (request pending, issued, declined, revoked), so the outbox
//! rows commit or roll back with it.

use diesel::pg::PgConnection;
use serde_json::json;

use crate::store::certificates::Certificate;
use crate::store::notification_contacts as contacts;
use crate::store::outbox::{self, KIND_PENDING};
use crate::store::profiles::{self, Profile};
use crate::store::requests::EnrollmentRequest;
use crate::store::StoreError;

fn to_contacts(
    conn: &mut PgConnection,
    organization_id: i64,
    profile_id: i64,
    event: &str,
    payload: &serde_json::Value,
) -> Result<(), StoreError> {
    for email in contacts::emails_for(conn, organization_id, profile_id, event)? {
        outbox::enqueue(conn, event, &email, payload, None)?;
    }
    Ok(())
}

/// A request awaits approval: one row per officer in scope; the sender
/// folds an officer's rows into one digest.
pub fn request_pending(
    conn: &mut PgConnection,
    req: &EnrollmentRequest,
    profile: &Profile,
) -> Result<(), StoreError> {
    let payload = json!({
        "request_id": req.id,
        "subject": req.subject,
        "profile": profile.profile_id,
        "received": req.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    });
    for email in contacts::officer_emails(conn, req.organization_id, req.department_id)? {
        outbox::enqueue(conn, KIND_PENDING, &email, &payload, None)?;
    }
    Ok(())
}

/// A certificate was issued for `req` (auto-approved or approved).
pub fn issued(
    conn: &mut PgConnection,
    req: &EnrollmentRequest,
    profile: &Profile,
    cert: &Certificate,
) -> Result<(), StoreError> {
    let mut payload = issued_payload(&cert.serial, &cert.subject, profile, cert.not_after);
    payload["request_id"] = json!(req.id);
    payload["certificate_id"] = json!(cert.id);
    to_contacts(conn, cert.organization_id, profile.id, "issued", &payload)
}

/// The "issued" mail's payload but for the request and certificate IDs,
/// which the one-statement enrollment adds in SQL (`store::issue_tx`).
pub fn issued_payload(
    serial: &str,
    subject: &str,
    profile: &Profile,
    not_after: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    json!({
        "serial": serial,
        "subject": subject,
        "profile": profile.profile_id,
        "not_after": not_after.format("%Y-%m-%d %H:%M UTC").to_string(),
    })
}

/// `req` was declined with `reason`.
pub fn declined(
    conn: &mut PgConnection,
    req: &EnrollmentRequest,
    reason: &str,
) -> Result<(), StoreError> {
    let profile = profiles::by_id(conn, req.profile_id)?;
    let payload = json!({
        "request_id": req.id,
        "subject": req.subject,
        "profile": profile.profile_id,
        "reason": reason,
    });
    to_contacts(
        conn,
        req.organization_id,
        req.profile_id,
        "declined",
        &payload,
    )
}

/// `cert` was revoked with an RFC 5280 `reason`.
pub fn revoked(
    conn: &mut PgConnection,
    cert: &Certificate,
    reason: &str,
) -> Result<(), StoreError> {
    let payload = json!({
        "request_id": cert.request_id,
        "certificate_id": cert.id,
        "serial": cert.serial,
        "subject": cert.subject,
        "reason": reason,
    });
    to_contacts(
        conn,
        cert.organization_id,
        cert.profile_id,
        "revoked",
        &payload,
    )
}

/// Enqueue expiry reminders for every threshold (days, any order); each
/// (certificate, threshold, contact) at most once. Returns rows added.
pub fn expiring(conn: &mut PgConnection, thresholds: &[u32]) -> Result<usize, StoreError> {
    let mut days: Vec<i32> = thresholds
        .iter()
        .filter_map(|d| i32::try_from(*d).ok())
        .collect();
    days.sort_unstable();
    days.dedup();
    let mut added = 0;
    let mut lower = 0;
    for d in days {
        added += outbox::enqueue_expiring(conn, d, lower, "expiring")?;
        lower = d;
    }
    Ok(added)
}

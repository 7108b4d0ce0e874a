//! Officer decisions and revocation: approve (Requested → Applied →
//! Issued), decline (→ Declined with a reason), revoke (RFC 5280 reason,
//! reflected in the next CRL), and CRL signing (RFC 5280 §5).

use std::str::FromStr;

use chrono::{Duration, Utc};
use diesel::pg::PgConnection;
use diesel::Connection;

use super::{policy, Enroll, EnrollError};
use crate::ca::{self, CaIdentity, RevocationReason, RevokedEntry};
use crate::csr::Csr;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::certificates::{self, Certificate};
use crate::store::requests::{self, EnrollmentRequest, Status};
use crate::store::{profiles, StoreError};

/// How long a CRL is valid; clients refetch before then.
const CRL_VALIDITY: Duration = Duration::days(7);

pub struct RevokeOutcome {
    pub certificate: Certificate,
}

impl Enroll {
    /// Approve a Requested request and issue its certificate, in one
    /// transaction. The profile's policy is checked again: it may have
    /// changed since the request arrived.
    pub fn approve(&self, request_id: i64, actor: &str) -> Result<EnrollmentRequest, EnrollError> {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        conn.transaction(|conn| {
            let req = requests::lock(conn, request_id).map_err(not_found("request", request_id))?;
            if req.status() != Some(Status::Requested) {
                return Err(EnrollError::Conflict(format!(
                    "request {request_id} is {}, not requested",
                    req.status
                )));
            }
            let profile = profiles::by_id(conn, req.profile_id)?;
            let csr = Csr::from_der(&req.csr_der)
                .map_err(|e| EnrollError::Conflict(format!("stored CSR unreadable: {e}")))?;
            let subject = policy::check(&profile, &csr)
                .map_err(|v| EnrollError::Conflict(format!("policy: {v}")))?;
            let applied = requests::transition(
                conn,
                req.id,
                Status::Requested,
                Status::Applied,
                actor,
                None,
            )?;
            audit::record(
                conn,
                &AuditEvent {
                    actor,
                    kind: AuditKind::RequestApproved,
                    target: Some(format!("request:{}", req.id)),
                    details: serde_json::json!({ "transaction_id": req.transaction_id }),
                    client_ip: None,
                    organization_id: Some(req.organization_id),
                    department_id: req.department_id,
                },
            )?;
            self.issue_in_tx(conn, &profile, &applied, &csr, &subject, actor)?;
            Ok(requests::by_id(conn, req.id)?)
        })
    }

    /// Decline a Requested or Applied request with a reason.
    pub fn decline(
        &self,
        request_id: i64,
        actor: &str,
        reason: &str,
    ) -> Result<EnrollmentRequest, EnrollError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EnrollError::BadRequest("a decline needs a reason".into()));
        }
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        conn.transaction(|conn| {
            let req = requests::lock(conn, request_id).map_err(not_found("request", request_id))?;
            let from = match req.status() {
                Some(s @ (Status::Requested | Status::Applied)) => s,
                _ => {
                    return Err(EnrollError::Conflict(format!(
                        "request {request_id} is {}, it cannot be declined",
                        req.status
                    )))
                }
            };
            requests::transition(conn, req.id, from, Status::Declined, actor, Some(reason))?;
            requests::set_decline_reason(conn, req.id, reason)?;
            audit::record(
                conn,
                &AuditEvent {
                    actor,
                    kind: AuditKind::RequestDeclined,
                    target: Some(format!("request:{}", req.id)),
                    details: serde_json::json!({ "transaction_id": req.transaction_id, "reason": reason }),
                    client_ip: None,
                    organization_id: Some(req.organization_id),
                    department_id: req.department_id,
                },
            )?;
            crate::notify::events::declined(conn, &req, reason)?;
            Ok(requests::by_id(conn, req.id)?)
        })
    }

    /// Revoke a certificate by serial (hex, any case) with an RFC 5280 reason.
    pub fn revoke(
        &self,
        serial: &str,
        reason: &str,
        actor: &str,
    ) -> Result<RevokeOutcome, EnrollError> {
        let reason = RevocationReason::from_str(reason)
            .map_err(|e| EnrollError::BadRequest(e.to_string()))?;
        let serial = normalize_serial(serial)?;
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        conn.transaction(|conn| {
            let cert = certificates::by_serial(conn, &serial)?.ok_or_else(|| {
                EnrollError::NotFound(format!("no certificate with serial {serial}"))
            })?;
            self.revoke_in_tx(conn, &cert, reason, actor, serde_json::json!({}))?;
            Ok(RevokeOutcome {
                certificate: certificates::by_id(conn, cert.id)?,
            })
        })
    }

    /// Revoke `cert` inside the caller's transaction, with everything a
    /// revocation brings: the revocation row (hence the next CRL), the
    /// audit entry (`details` plus the reason) and the contacts' mails.
    /// Every revocation goes through here, whoever asks for it (an
    /// officer, a per-device cap, a renewal), so none of them skips a
    /// side effect. `Conflict` if it is already revoked.
    pub(super) fn revoke_in_tx(
        &self,
        conn: &mut PgConnection,
        cert: &Certificate,
        reason: RevocationReason,
        actor: &str,
        mut details: serde_json::Value,
    ) -> Result<(), EnrollError> {
        certificates::revoke(conn, cert.id, reason.as_str(), actor).map_err(|e| match e {
            StoreError::Conflict(_) => {
                EnrollError::Conflict(format!("certificate {} is already revoked", cert.serial))
            }
            e => e.into(),
        })?;
        details["reason"] = reason.as_str().into();
        audit::record(
            conn,
            &AuditEvent {
                actor,
                kind: AuditKind::CertificateRevoked,
                target: Some(format!("certificate:{}", cert.serial)),
                details,
                client_ip: None,
                organization_id: Some(cert.organization_id),
                department_id: cert.department_id,
            },
        )?;
        crate::notify::events::revoked(conn, cert, reason.as_str())?;
        Ok(())
    }

    /// A freshly signed CRL (DER) for `ca`, numbered from the shared sequence.
    pub fn crl_for(&self, ca: &CaIdentity) -> Result<Vec<u8>, EnrollError> {
        let issuer =
            hex::decode(ca.fingerprint()).map_err(|e| EnrollError::BadRequest(e.to_string()))?;
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let revoked = certificates::revoked_by_issuer(&mut conn, &issuer)?;
        let number = certificates::next_crl_number(&mut conn)?;
        let entries = revoked
            .into_iter()
            .filter_map(|(serial, r)| {
                Some(RevokedEntry {
                    serial: hex::decode(serial).ok()?,
                    revoked_at: r.revoked_at,
                    reason: RevocationReason::from_str(&r.reason).ok(),
                })
            })
            .collect::<Vec<_>>();
        let now = Utc::now();
        Ok(ca::sign_crl(ca, &entries, number, now, now + CRL_VALIDITY)?)
    }

    /// The CRL published under `/crl/<name>.crl`, if `name` is one of ours.
    pub fn crl_by_name(&self, name: &str) -> Result<Option<Vec<u8>>, EnrollError> {
        match self.auth.ca_by_crl_name(name) {
            Some(ca) => Ok(Some(self.crl_for(ca)?)),
            None => Ok(None),
        }
    }
}

fn not_found(what: &'static str, id: i64) -> impl Fn(StoreError) -> EnrollError {
    move |e| match e {
        StoreError::NotFound => EnrollError::NotFound(format!("no {what} {id}")),
        e => e.into(),
    }
}

/// Accept `0a:bc`, `0ABC`, `abc`; store form is uppercase minimal bytes.
pub fn normalize_serial(s: &str) -> Result<String, EnrollError> {
    let clean: String = s.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let padded = if clean.len() % 2 == 1 {
        format!("0{clean}")
    } else {
        clean
    };
    let bytes =
        hex::decode(&padded).map_err(|_| EnrollError::BadRequest(format!("bad serial {s:?}")))?;
    if bytes.is_empty() {
        return Err(EnrollError::BadRequest("empty serial".into()));
    }
    Ok(super::serial_hex(&bytes))
}

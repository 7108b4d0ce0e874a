//! Microsoft Intune as the issuer of a profile's challenges (docs/intune.md).
//!
//! For a PKCSReq on such a profile, Intune's SCEP validation service judges
//! the request (its challenge is Intune's) before anything is signed; a
//! validated request is issued at once (Intune's validation is the
//! approval) and Intune is told of the certificate before the enrollment
//! commits, as its contract asks; a request refused after validation is
//! reported back as a failure. Intune's revocation requests are applied
//! through the same revocation path an officer's use.

use diesel::pg::PgConnection;
use diesel::Connection;

use super::{Answer, Enroll, EnrollError};
use crate::ca::RevocationReason;
use crate::csr::Csr;
use crate::intune::client::{self, RevocationError, RevocationResult};
use crate::intune::{IntuneError, Target, HRESULT_FAIL};
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::certificates;
use crate::store::intune::{self as store, IntuneSettings};
use crate::store::profiles::Profile;
use crate::store::StoreError;
use crate::wire::FailInfo;

/// Most revocation requests fetched in one round.
const REVOCATIONS_PER_ROUND: u32 = 100;

/// A request Intune has validated: where it is filed and how to reach
/// Intune again for the notification.
pub(super) struct Validated {
    pub organization_id: i64,
    pub department_id: Option<i64>,
    profile_id: i64,
    target: Target,
}

pub(super) enum IntuneGate {
    /// The profile's challenges are not Intune's.
    NotIntune,
    /// Refused (audited): answer this.
    Answer(Answer),
    Validated(Box<Validated>),
}

/// How one revocation round went.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RevocationRound {
    pub profile_id: i64,
    pub downloaded: usize,
    pub revoked: usize,
    pub failed: usize,
}

impl Enroll {
    /// With the Intune client: profiles may have Intune issue their
    /// challenges.
    pub fn with_intune(mut self, intune: crate::intune::Intune) -> Self {
        self.intune = Some(std::sync::Arc::new(intune));
        self
    }

    pub fn intune(&self) -> Option<&crate::intune::Intune> {
        self.intune.as_deref()
    }

    /// Ask Intune whether this PKCSReq may be issued. Called before the
    /// enrollment transaction and before any private-key operation; waits
    /// at most the configured timeout.
    pub(super) fn intune_gate(
        &self,
        conn: &mut PgConnection,
        profile: &Profile,
        txid: &str,
        csr: &Csr,
        client_ip: Option<&str>,
    ) -> Result<IntuneGate, EnrollError> {
        let Some(settings) = store::of_profile(conn, profile.id)? else {
            return Ok(IntuneGate::NotIntune);
        };
        let refuse = |conn: &mut PgConnection, reason: String| {
            self.audit_refusal(conn, txid, &reason, client_ip);
            Ok(IntuneGate::Answer(Answer::Fail(
                FailInfo::BadRequest,
                reason,
            )))
        };
        let Some(intune) = self.intune.as_deref() else {
            return refuse(
                conn,
                "this profile's challenges are Intune's, and Intune is not set up here".into(),
            );
        };
        let target = match intune.target(&settings) {
            Ok(t) => t,
            Err(e) => {
                self.intune_outcome(settings.profile_id, Some(&e));
                return refuse(conn, format!("intune: {e}"));
            }
        };
        let started = std::time::Instant::now();
        match intune
            .client()
            .validate(&target, txid, &csr.der, intune.deadline())
        {
            Ok(()) => {
                self.intune_outcome(settings.profile_id, None);
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "Intune validated the request"
                );
                Ok(IntuneGate::Validated(Box::new(Validated {
                    organization_id: settings.organization_id,
                    department_id: settings.department_id,
                    profile_id: settings.profile_id,
                    target,
                })))
            }
            Err(e) if e.is_refusal() => {
                // Intune answered: the integration works, the challenge
                // does not. Counted like any unusable challenge.
                self.intune_outcome(settings.profile_id, None);
                let reason = format!("intune: challenge not valid: {e}");
                self.gate.reject(conn, client_ip, txid, &reason, true)?;
                refuse(conn, reason)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Intune validation failed");
                self.intune_outcome(settings.profile_id, Some(&e));
                refuse(conn, format!("intune: validation unavailable: {e}"))
            }
        }
    }

    /// Inside the enrollment transaction: audit the validated request.
    pub(super) fn intune_used(
        &self,
        conn: &mut PgConnection,
        v: &Validated,
        txid: &str,
        client_ip: Option<&str>,
    ) -> Result<(), EnrollError> {
        audit::record(
            conn,
            &AuditEvent::new("scep", AuditKind::IntuneValidated)
                .target(format!("transaction:{txid}"))
                .details(serde_json::json!({ "transaction_id": txid, "tenant": v.target.credentials.tenant }))
                .client_ip(client_ip)
                .org(v.organization_id)
                .dept(v.department_id),
        )?;
        Ok(())
    }

    /// Inside the enrollment transaction, after the certificate is made:
    /// tell Intune. If Intune does not take it, the enrollment is refused
    /// (the library's contract: no certificate then).
    pub(super) fn intune_issued(
        &self,
        v: &Validated,
        txid: &str,
        csr_der: &[u8],
        cert_der: &[u8],
    ) -> Result<(), EnrollError> {
        let Some(intune) = self.intune.as_deref() else {
            return Err(EnrollError::Policy("Intune is not set up here".into()));
        };
        let Some(cert) = client::issued_cert(cert_der) else {
            return Err(EnrollError::Policy("issued certificate unreadable".into()));
        };
        match intune
            .client()
            .notify_success(&v.target, txid, csr_der, &cert, intune.deadline())
        {
            Ok(()) => Ok(()),
            Err(e) => {
                self.intune_outcome(v.profile_id, Some(&e));
                Err(EnrollError::Policy(format!(
                    "Intune did not take the success notification: {e}"
                )))
            }
        }
    }

    /// After a validated request was refused: tell Intune why. A failure
    /// to tell is recorded (last error, audit); the device's answer stands.
    pub(super) fn intune_failed(&self, v: &Validated, txid: &str, csr_der: &[u8], reason: &str) {
        let Some(intune) = self.intune.as_deref() else {
            return;
        };
        let res = intune.client().notify_failure(
            &v.target,
            txid,
            csr_der,
            HRESULT_FAIL,
            reason,
            intune.deadline(),
        );
        if let Err(e) = res {
            self.intune_outcome(v.profile_id, Some(&e));
            let audited = self.pool.get().map_err(StoreError::from).and_then(|mut c| {
                audit::record(
                    &mut c,
                    &AuditEvent::new("scep", AuditKind::IntuneNotificationFailed)
                        .target(format!("transaction:{txid}"))
                        .details(serde_json::json!({ "notification": "failure", "error": e.to_string() }))
                        .org(v.organization_id)
                        .dept(v.department_id),
                )
            });
            if let Err(e) = audited {
                tracing::warn!(error = %e, "could not audit a failed Intune notification");
            }
        }
    }

    /// Keep the integration's last error (or success) for the console, on
    /// a connection of its own: the enrollment's transaction may roll back.
    fn intune_outcome(&self, profile_id: i64, error: Option<&IntuneError>) {
        let msg = error.map(|e| e.to_string());
        let res = self
            .pool
            .get()
            .map_err(StoreError::from)
            .and_then(|mut c| store::record_outcome(&mut c, profile_id, msg.as_deref()));
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not record the Intune outcome");
        }
    }

    /// One round for every profile whose revocations are fetched: download
    /// Intune's revocation requests, revoke, upload the results.
    /// One process at a time across the installation: while another holds
    /// the round's lock this one does nothing (an empty answer), so no
    /// request is downloaded and applied twice.
    pub fn intune_revocation_round(&self) -> Result<Vec<RevocationRound>, EnrollError> {
        let mut lock = self.pool.get().map_err(StoreError::from)?;
        if !store::try_lock_revocation_round(&mut lock)? {
            tracing::debug!("another scepd is running the Intune revocation round");
            return Ok(vec![]);
        }
        let res = self.intune_revocation_round_locked();
        // An unlock that fails has lost its connection, and the lock with it.
        if let Err(e) = store::unlock_revocation_round(&mut lock) {
            tracing::warn!(error = %e, "could not release the Intune revocation round's lock");
        }
        res
    }

    fn intune_revocation_round_locked(&self) -> Result<Vec<RevocationRound>, EnrollError> {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let all = store::with_revocation(&mut conn)?;
        drop(conn);
        let mut out = vec![];
        for s in all {
            match self.intune_revocations_for(&s) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(profile = s.profile_id, error = %e, "Intune revocation round failed");
                    self.intune_outcome(s.profile_id, Some(&e));
                }
            }
        }
        Ok(out)
    }

    fn intune_revocations_for(&self, s: &IntuneSettings) -> Result<RevocationRound, IntuneError> {
        let Some(intune) = self.intune.as_deref() else {
            return Err(IntuneError::Setting("Intune is not set up here".into()));
        };
        let target = intune.target(s)?;
        let requests = intune.client().download_revocations(
            &target,
            REVOCATIONS_PER_ROUND,
            None,
            intune.deadline(),
        )?;
        let mut round = RevocationRound {
            profile_id: s.profile_id,
            downloaded: requests.len(),
            ..Default::default()
        };
        if requests.is_empty() {
            self.intune_synced(s.profile_id);
            return Ok(round);
        }
        let mut results = Vec::with_capacity(requests.len());
        for r in &requests {
            let (code, message) = self.apply_revocation(s, &r.serial_number, &r.request_context);
            if code == RevocationError::None {
                round.revoked += 1;
            } else {
                round.failed += 1;
            }
            results.push(RevocationResult::new(&r.request_context, code, &message));
        }
        intune
            .client()
            .upload_revocation_results(&target, &results, intune.deadline())?;
        self.intune_synced(s.profile_id);
        let audited = self.pool.get().map_err(StoreError::from).and_then(|mut c| {
            audit::record(
                &mut c,
                &AuditEvent::new("intune", AuditKind::IntuneRevocationsApplied)
                    .target(format!("intune:{}", s.tenant))
                    .details(serde_json::json!({
                        "downloaded": round.downloaded,
                        "revoked": round.revoked,
                        "failed": round.failed,
                        "results": results,
                    }))
                    .org(s.organization_id)
                    .dept(s.department_id),
            )
        });
        if let Err(e) = audited {
            tracing::warn!(error = %e, "could not audit the Intune revocation round");
        }
        Ok(round)
    }

    fn intune_synced(&self, profile_id: i64) {
        let res = self.pool.get().map_err(StoreError::from).and_then(|mut c| {
            store::revocation_synced(&mut c, profile_id)?;
            store::record_outcome(&mut c, profile_id, None)
        });
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not record the Intune revocation round");
        }
    }

    /// Revoke the certificate one revocation request names, if it is one
    /// this tenant's profiles issued; the result in the library's terms.
    fn apply_revocation(
        &self,
        s: &IntuneSettings,
        serial: &str,
        context: &str,
    ) -> (RevocationError, String) {
        let Ok(serial) = super::normalize_serial(serial) else {
            return (
                RevocationError::ParameterDataInvalidError,
                "the serial number is not hexadecimal".into(),
            );
        };
        let res = self
            .pool
            .get()
            .map_err(StoreError::from)
            .map_err(EnrollError::from)
            .and_then(|mut conn| {
                conn.transaction(|conn| {
                    let Some(cert) = certificates::by_serial(conn, &serial)? else {
                        return Ok(Err((
                            RevocationError::CertificateNotFoundError,
                            "no such certificate".to_string(),
                        )));
                    };
                    if !store::profiles_of_tenant(conn, &s.tenant)?.contains(&cert.profile_id) {
                        // Not one of this tenant's: answered as unknown, so a
                        // tenant learns nothing of other profiles' certificates.
                        return Ok(Err((
                            RevocationError::CertificateNotFoundError,
                            "no such certificate".to_string(),
                        )));
                    }
                    if cert.is_revoked() {
                        return Ok(Err((
                            RevocationError::ConflictError,
                            "already revoked".to_string(),
                        )));
                    }
                    self.revoke_in_tx(
                        conn,
                        &cert,
                        RevocationReason::Unspecified,
                        "intune",
                        serde_json::json!({ "intune_request_context": context }),
                    )?;
                    Ok::<_, EnrollError>(Ok(()))
                })
            });
        match res {
            Ok(Ok(())) => (RevocationError::None, String::new()),
            Ok(Err(refusal)) => refusal,
            Err(e) => {
                tracing::warn!(error = %e, "revocation requested by Intune failed");
                (
                    RevocationError::RetryableServiceException,
                    "the CA could not revoke it now".into(),
                )
            }
        }
    }
}

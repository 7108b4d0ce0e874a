//! Renewal (RFC 8894 §3.3.1.2): a request signed by a certificate we
//! issued renews that certificate, and only it.
//!
//! - It carries the certificate's identity: the subject the profile would
//!   issue and the SAN set are the old certificate's. Otherwise it is
//!   refused, unless the profile allows a change
//!   (`renewal_allows_identity_change`); the change then waits for an
//!   officer, even on an auto-approve profile. A valid certificate is
//!   proof of who the device was, not of who it may become.
//! - It is issued at once on an auto-approve profile, and on a manual one
//!   only when the profile says so (`auto_renew`); otherwise an officer
//!   decides, as for a first enrollment.
//! - A certificate is renewed once: a second renewal signed by it (another
//!   transaction, another key) is refused while the first stands. A
//!   retransmission of the first is answered as before (`requests_flow`).
//! - With `revoke_on_replace`, the renewed certificate is revoked
//!   (superseded) once its successor is delivered in a SUCCESS reply: at
//!   once when issued at once, else on the CertPoll that fetches it, so a
//!   device is never left without a valid certificate because an officer
//!   approved one it has not fetched yet.

use diesel::pg::PgConnection;
use diesel::Connection;
use openssl::x509::X509NameRef;

use super::{Enroll, EnrollError};
use crate::ca::RevocationReason;
use crate::csr::Csr;
use crate::store::certificates::{self, Certificate};
use crate::store::profiles::Profile;
use crate::store::requests::{self, EnrollmentRequest};
use crate::store::StoreError;

/// What a renewal asks for, once it is known to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Renewal {
    /// The old certificate's subject and SANs.
    SameIdentity,
    /// Another subject or other SANs, which the profile allows an officer
    /// to grant.
    IdentityChange,
}

impl Renewal {
    /// Whether the renewal is issued without an officer.
    pub(super) fn at_once(self, profile: &Profile) -> bool {
        self == Self::SameIdentity && (profile.auto_approve() || profile.auto_renew)
    }
}

/// The refusal of a second renewal of one certificate.
pub(super) fn already_renewed(request_id: i64) -> String {
    format!("certificate already renewed: request {request_id}")
}

/// Whether `old` may be renewed into `subject` (built by `policy::check`)
/// with the CSR's SANs; `Err` carries the refusal. Read without a lock:
/// the enrollment transaction checks again under one (`lock_renewed`).
pub(super) fn judge(
    conn: &mut PgConnection,
    profile: &Profile,
    old: &Certificate,
    subject: &X509NameRef,
    csr: &Csr,
) -> Result<Result<Renewal, String>, StoreError> {
    if let Some(prior) = requests::renewing(conn, old.id)? {
        return Ok(Err(already_renewed(prior.id)));
    }
    let new_subject = super::name_text(subject);
    let mut new_sans: Vec<String> = csr.sans.iter().map(|s| s.to_string()).collect();
    let mut old_sans = old.sans.clone();
    new_sans.sort();
    new_sans.dedup();
    old_sans.sort();
    old_sans.dedup();
    if new_subject == old.subject && new_sans == old_sans {
        return Ok(Ok(Renewal::SameIdentity));
    }
    if profile.renewal_allows_identity_change {
        return Ok(Ok(Renewal::IdentityChange));
    }
    Ok(Err(format!(
        "a renewal keeps the subject and SANs of the certificate it renews \
         ({} [{}]), and this one asks for {} [{}]",
        old.subject,
        old_sans.join(", "),
        new_subject,
        new_sans.join(", ")
    )))
}

/// Inside the enrollment transaction: lock the certificate being renewed
/// (concurrent renewals of it queue here, in any process) and return the
/// request that already renews it, if any.
pub(super) fn lock_renewed(
    conn: &mut PgConnection,
    old_id: i64,
) -> Result<Option<EnrollmentRequest>, StoreError> {
    certificates::lock(conn, old_id)?;
    requests::renewing(conn, old_id)
}

impl Enroll {
    /// The renewal `req` has just been delivered in a SUCCESS reply (or is
    /// being, in the caller's transaction): revoke the certificate it
    /// renews, when the profile revokes what is replaced. Through the one
    /// revoke function, so the CRL, the audit and the mails are as for any
    /// revocation. A certificate already revoked stays as it is.
    pub(super) fn supersede_renewed(
        &self,
        conn: &mut PgConnection,
        profile: &Profile,
        req: &EnrollmentRequest,
        actor: &str,
    ) -> Result<(), EnrollError> {
        let Some(old_id) = req.renewal_of else {
            return Ok(());
        };
        if !profile.revoke_on_replace {
            return Ok(());
        }
        conn.transaction(|conn| {
            let old = certificates::lock(conn, old_id)?;
            if old.is_revoked() {
                return Ok(());
            }
            let details = serde_json::json!({ "replaced_by_request": req.id });
            match self.revoke_in_tx(conn, &old, RevocationReason::Superseded, actor, details) {
                Ok(()) | Err(EnrollError::Conflict(_)) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }
}

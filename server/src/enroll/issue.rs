//! Issuing a certificate for an applied request, inside the caller's
//! transaction: sign with the CA, store the certificate, mark the request
//! Issued and audit it — all or nothing.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use diesel::pg::PgConnection;
use openssl::x509::X509NameRef;

use super::{Enroll, EnrollError};
use crate::ca::{self, Eku, IssueParams, KeyUsage, RevocationReason};
use crate::csr::Csr;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::certificates::{self, NewCertificate};
use crate::store::profiles::Profile;
use crate::store::requests::{self, EnrollmentRequest};

/// Tolerance for device clocks that run a little behind.
const BACKDATE: Duration = Duration::minutes(5);

/// A certificate signed for a request, with what the store keeps of it.
pub(super) struct Signed {
    pub der: Vec<u8>,
    pub fingerprint: [u8; 32],
    pub serial_hex: String,
    pub subject_text: String,
    pub not_before: chrono::DateTime<Utc>,
    pub not_after: chrono::DateTime<Utc>,
}

/// The profile's validity, or less when the profile honours what the CSR
/// asks for (`csr::validity`) and it asks for less: never more.
pub(super) fn not_after(profile: &Profile, csr: &Csr, now: DateTime<Utc>) -> DateTime<Utc> {
    let cap = now + Duration::days(i64::from(profile.validity_days));
    let asked = csr
        .requested_validity
        .filter(|_| profile.honor_requested_validity)
        .and_then(|r| r.not_after(now));
    asked.map_or(cap, |a| a.min(cap))
}

impl Enroll {
    /// Sign a certificate for `csr` under the profile's rules (no database).
    pub(super) fn sign(
        &self,
        profile: &Profile,
        csr: &Csr,
        subject: &X509NameRef,
    ) -> Result<Signed, EnrollError> {
        let ca = &self.auth.ca;
        let now = Utc::now();
        let not_after = not_after(profile, csr, now).min(ca.not_after());
        let key_usage = profile
            .key_usage
            .iter()
            .map(|k| KeyUsage::from_str(k))
            .collect::<Result<Vec<_>, _>>()?;
        let eku = profile
            .extended_key_usage
            .iter()
            .map(|k| Eku::from_str(k))
            .collect::<Result<Vec<_>, _>>()?;
        let digest = match profile.hash_alg.as_str() {
            "sha384" => openssl::hash::MessageDigest::sha384(),
            "sha512" => openssl::hash::MessageDigest::sha512(),
            _ => openssl::hash::MessageDigest::sha256(),
        };
        let serial = ca::random_serial()?;
        // The profile chooses which revocation pointers its certificates carry.
        let crl_url = profile.include_crl_dp.then(|| self.auth.crl_url(ca));
        let ocsp_url = profile.include_ocsp_url.then(|| self.auth.ocsp_url());
        let der = ca::issue_der(
            ca,
            &IssueParams {
                public_key: &csr.public_key,
                spki_der: Some(&csr.spki_der),
                subject,
                sans: &csr.sans,
                not_before: now - BACKDATE,
                not_after,
                key_usage: &key_usage,
                extended_key_usage: &eku,
                crl_url: crl_url.as_deref(),
                ocsp_url: ocsp_url.as_deref(),
                digest,
                serial: &serial,
            },
        )?;
        self.signatures
            .ca
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Signed {
            fingerprint: openssl::sha::sha256(&der),
            serial_hex: hex::encode_upper(serial.to_vec()),
            subject_text: super::name_text(subject),
            not_before: now - BACKDATE,
            not_after,
            der,
        })
    }

    pub(super) fn issue_in_tx(
        &self,
        conn: &mut PgConnection,
        profile: &Profile,
        req: &EnrollmentRequest,
        csr: &Csr,
        subject: &X509NameRef,
        actor: &str,
    ) -> Result<Vec<u8>, EnrollError> {
        self.limit_active(conn, profile, req, csr, actor)?;
        let Signed {
            der,
            fingerprint,
            serial_hex,
            subject_text,
            not_before,
            not_after,
        } = self.sign(profile, csr, subject)?;
        let sans: Vec<String> = csr.sans.iter().map(|s| s.to_string()).collect();
        let stored = certificates::insert(
            conn,
            &NewCertificate {
                serial: &serial_hex,
                request_id: Some(req.id),
                profile_id: profile.id,
                organization_id: req.organization_id,
                department_id: req.department_id,
                subject: &subject_text,
                common_name: csr.common_name.as_deref(),
                sans,
                not_before,
                not_after,
                fingerprint_sha256: &fingerprint,
                public_key_sha256: &csr.public_key_sha256,
                issuer_sha256: self.auth.ca_sha256(),
                der: &der,
                replaces_id: req.renewal_of,
            },
        )?;
        requests::mark_issued(conn, req.id, stored.id, actor)?;
        // A renewed certificate is superseded once its successor is
        // delivered, not here: an officer's approval delivers nothing
        // (`enroll::renewal`).
        audit::record(
            conn,
            &AuditEvent {
                actor,
                kind: AuditKind::CertificateIssued,
                target: Some(format!("certificate:{serial_hex}")),
                details: super::issued_details(
                    Some(req.id),
                    &req.transaction_id,
                    &subject_text,
                    profile,
                    req.renewal_of,
                ),
                client_ip: req.client_ip.as_deref(),
                organization_id: Some(req.organization_id),
                department_id: req.department_id,
            },
        )?;
        crate::notify::events::issued(conn, req, profile, &stored)?;
        Ok(der)
    }

    /// The profile's cap on active certificates per device (a CN within
    /// the request's organization and department): make
    /// room by revoking the oldest when the profile says so, else refuse.
    /// A renewal does not count the certificate it replaces.
    fn limit_active(
        &self,
        conn: &mut PgConnection,
        profile: &Profile,
        req: &EnrollmentRequest,
        csr: &Csr,
        actor: &str,
    ) -> Result<(), EnrollError> {
        let (Ok(max), Some(cn)) = (
            usize::try_from(profile.max_active_per_device),
            csr.common_name.as_deref(),
        ) else {
            return Ok(());
        };
        if max == 0 {
            return Ok(());
        }
        let device = (req.organization_id, req.department_id);
        let active: Vec<_> =
            certificates::active_for_device(conn, profile.id, device, cn, Utc::now())?
                .into_iter()
                .filter(|c| Some(c.id) != req.renewal_of)
                .collect();
        if active.len() < max {
            return Ok(());
        }
        if !profile.revoke_on_replace {
            return Err(EnrollError::Policy(format!(
                "device {cn} already has {} active certificates (profile allows {max})",
                active.len()
            )));
        }
        for old in &active[..active.len() + 1 - max] {
            self.revoke_in_tx(
                conn,
                old,
                RevocationReason::Superseded,
                actor,
                serde_json::json!({ "replaced_by_request": req.id }),
            )?;
        }
        Ok(())
    }
}

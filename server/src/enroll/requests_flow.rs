//! PKCSReq and RenewalReq (RFC 8894 §3.3.1, §3.3.1.2): authenticate by
//! one-time challenge or by a certificate we issued, apply the profile's
//! policy, then issue at once or store the request as Requested (PENDING).
//!
//! A challengePassword that is no known one-time challenge may be an
//! organization's access code (`challenge::access_codes`). A client with too
//! many failed challenge attempts is refused before its secret is examined.

use chrono::{Duration, Utc};
use diesel::pg::PgConnection;
use diesel::Connection;

use super::intune::IntuneGate;
use super::profile_cache::ProfileCopy;
use super::renewal::Renewal;
use super::webhook_flow::{Admitted, Step};
use super::{policy, Answer, Enroll, EnrollError};
use crate::challenge::{access_codes, hash_secret};
use crate::csr::{Csr, CsrError};
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::certificates::{self, Certificate};
use crate::store::challenges::{self, Rejection};
use crate::store::profiles::Profile;
use crate::store::requests::{self, NewRequest, Status};
use crate::store::StoreError;
use crate::wire::{ContentCipher, FailInfo, MessageContent, MessageType, PkiMessage};

/// Why the enrollment transaction was rolled back.
enum Abort {
    Challenge(Rejection),
    /// A secret the envelope's cipher may not carry (`policy::cipher_allowed`).
    Cipher(String),
    Retransmission,
    Error(EnrollError),
}

impl<E: Into<EnrollError>> From<E> for Abort {
    fn from(e: E) -> Self {
        Self::Error(e.into())
    }
}

impl Enroll {
    pub(super) fn enroll(
        &self,
        copy: &ProfileCopy,
        msg: &PkiMessage,
        client_ip: Option<&str>,
    ) -> Result<Answer, EnrollError> {
        let MessageContent::CertReq { csr_der } = &msg.content else {
            return Ok(Answer::Fail(
                FailInfo::BadRequest,
                "request without PKCS#10".into(),
            ));
        };
        // Most requests are signed with the key they certify: the signer's
        // key object is then reused for the CSR (see `from_der_known_key`).
        let signer = &msg.signer_cert;
        let known = Some((signer.spki_sha256(), signer.public_key()));
        // The CSR is the decrypted content: like every failure past the key
        // unwrap, an unreadable one is answered badMessageCheck, so the
        // answer tells nothing of whether the unwrap succeeded. The audit
        // says which it was.
        let csr = match Csr::from_der_known_key(csr_der, known) {
            Ok(c) => c,
            Err(e) => {
                let reason = match e {
                    CsrError::BadSignature => "CSR signature does not verify".to_string(),
                    e => format!("bad CSR: {e}"),
                };
                let txid = &msg.header.transaction_id.0;
                let mut conn = self.pool.get().map_err(StoreError::from)?;
                self.audit_refusal(&mut conn, txid, &reason, client_ip);
                return Ok(Answer::Fail(FailInfo::BadMessageCheck, reason));
            }
        };
        let txid = msg.header.transaction_id.0.as_str();
        if let Some(answer) = self.try_fast(&copy.profile, msg, &csr, client_ip)? {
            return Ok(answer);
        }
        // The general path decides on the profile as the database has it
        // now, not on the copy the one-statement path may use.
        let fresh = self.profiles.current(&self.pool, copy)?;
        let profile = &*fresh;
        if let Some(refused) = self.cipher_refused(profile, msg, client_ip) {
            return Ok(refused);
        }
        let mut conn = self.pool.get().map_err(StoreError::from)?;

        // A request signed by a certificate we issued is a renewal
        // (RenewalReq, or a PKCSReq as older clients send it).
        // Only a certificate whose issuer is one of our CAs can be ours:
        // self-signed signers (first enrollments) skip the lookup.
        let renewing = if self.auth.is_our_issuer(msg.signer_cert.issuer_der()) {
            certificates::by_fingerprint(&mut conn, &openssl::sha::sha256(msg.signer_cert.der()))?
        } else {
            None
        };
        // RFC 8894 §3.3.1: a retransmission gets the first answer again. It
        // renews what the first renewed: certmonger keeps one transactionID
        // per key, so a renewal with the same key repeats the first
        // enrollment's transactionID without repeating the enrollment.
        let key = (&csr.public_key_sha256[..], renewing.as_ref().map(|c| c.id));
        if let Some(existing) = requests::by_transaction(&mut conn, txid, key.0, key.1)? {
            return self.answer_for(&mut conn, &existing);
        }
        if !profile.enabled {
            return Ok(Answer::Fail(
                FailInfo::BadRequest,
                "profile is disabled".into(),
            ));
        }
        if msg.header.message_type == MessageType::RenewalReq && renewing.is_none() {
            return self.refuse(
                &mut conn,
                txid,
                "RenewalReq is not signed by a certificate issued here",
                client_ip,
            );
        }
        let subject = match policy::check(profile, &csr) {
            Ok(s) => s,
            Err(v) => return self.refuse(&mut conn, txid, &format!("policy: {v}"), client_ip),
        };
        let mut renewal = Renewal::SameIdentity;
        let renewing = match renewing {
            Some(old) => match match renewal_allowed(profile, &old) {
                Ok(()) => super::renewal::judge(&mut conn, profile, &old, &subject, &csr)?,
                Err(reason) => Err(reason),
            } {
                Ok(kind) => {
                    renewal = kind;
                    Some(old)
                }
                // A device that still holds one of our certificates but
                // brings a challenge enrolls afresh (scepclient signs with
                // its existing certificate when it has one).
                Err(_)
                    if msg.header.message_type == MessageType::PkcsReq
                        && csr.challenge_password.is_some() =>
                {
                    None
                }
                Err(reason) => return self.refuse(&mut conn, txid, &reason, client_ip),
            },
            None => None,
        };
        // RFC 8894 §2.3 asks a first enrollment to be signed with the key
        // being certified. Clients in the field (Cisco ASA, clients that
        // keep one throwaway certificate) sign with another; the CSR's own
        // signature proves possession of its key, the challenge authorizes,
        // and the reply is enveloped to the signer, who alone can read it.
        // A profile can still insist.
        let signer_key_differs =
            renewing.is_none() && !super::signer_holds_csr_key(&msg.signer_cert, &csr);
        if signer_key_differs && profile.signer_key_must_match {
            return self.refuse(
                &mut conn,
                txid,
                "the signer certificate's key is not the key being certified, \
                 and this profile requires it (RFC 8894 §2.3)",
                client_ip,
            );
        }
        let challenge_pw = match (&renewing, &csr.challenge_password) {
            (Some(_), _) => None,
            (None, Some(pw)) => Some(pw.as_str()),
            (None, None) => {
                return self.refuse(&mut conn, txid, "no challenge password", client_ip)
            }
        };
        // Checked before the secret is looked at, so a locked-out client
        // learns nothing and costs no argon2 run.
        // A locked-out client gets HTTP 429, not a signed FAILURE: it costs
        // no private-key operation at all.
        if challenge_pw.is_some() && self.gate.locked_out(&mut conn, client_ip)? {
            let reason = "too many failed challenge attempts from this client";
            self.gate
                .reject(&mut conn, client_ip, txid, reason, false)?;
            self.audit_refusal(&mut conn, txid, reason, client_ip);
            return Err(EnrollError::LockedOut {
                reason: reason.into(),
                retry_after_secs: self.gate.retry_after_secs(Utc::now()),
            });
        }

        // Intune issues this profile's challenges: it judges the request
        // before anything is signed (`enroll::intune`).
        let intune = match challenge_pw {
            Some(_) => match self.intune_gate(&mut conn, profile, txid, &csr, client_ip)? {
                IntuneGate::NotIntune => None,
                IntuneGate::Answer(a) => return Ok(a),
                IntuneGate::Validated(v) => Some(v),
            },
            None => None,
        };
        let renewal_of = renewing.as_ref().map(|old| old.id);
        // `admitted`: filed as the challenge webhook decided (second run).
        let attempt = |conn: &mut PgConnection, admitted: Option<&Admitted>| {
            let (org, dept, challenge_id, renewal_of) = match (&renewing, challenge_pw) {
                (Some(old), _) => {
                    // Under the certificate's lock: a renewal that raced
                    // this one, or this one's own retransmission.
                    if let Some(prior) = super::renewal::lock_renewed(conn, old.id)? {
                        if prior.transaction_id == txid
                            && prior.public_key_sha256 == csr.public_key_sha256
                        {
                            return Err(Abort::Retransmission);
                        }
                        let reason = super::renewal::already_renewed(prior.id);
                        return Err(Abort::Error(EnrollError::Policy(reason)));
                    }
                    (old.organization_id, old.department_id, None, Some(old.id))
                }
                (None, Some(_)) if intune.is_some() => {
                    let v = intune.as_deref().ok_or_else(|| {
                        Abort::Error(EnrollError::Conflict("Intune validation lost".into()))
                    })?;
                    self.intune_used(conn, v, txid, client_ip)?;
                    (v.organization_id, v.department_id, None, None)
                }
                (None, Some(_)) if admitted.is_some() => {
                    self.admitted_place(conn, admitted, profile, txid, &csr, client_ip)?
                }
                (None, Some(pw)) => {
                    let ids: Vec<&str> = [csr.common_name.as_deref(), csr.serial_number.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect();
                    // A challenge bound to a device issues only for it.
                    let bound = super::binding::bound_identity(profile, &subject, &csr);
                    let (org, dept, challenge) = self.authenticate_secret(
                        conn,
                        profile,
                        pw,
                        (&ids, bound.as_deref()),
                        (txid, signer_key_differs, msg.cipher),
                        client_ip,
                    )?;
                    (org, dept, challenge, None)
                }
                (None, None) => return Err(Abort::Challenge(Rejection::Unknown)),
            };
            // Disabled in the console: refused, and the rollback leaves the
            // challenge unused for when the organization is enabled again.
            if !crate::store::orgs::accepts_enrollment(conn, org, dept)? {
                return Err(Abort::Error(EnrollError::Policy(
                    "organization or department is disabled".into(),
                )));
            }
            // New enrollments follow the profile's approval mode; renewals
            // its renewal settings (`enroll::renewal`).
            let immediate = match renewing {
                Some(_) => renewal.at_once(profile),
                None => {
                    (profile.auto_approve() || intune.is_some())
                        && !admitted.is_some_and(|a| a.pending)
                }
            };
            let status = if immediate {
                Status::Applied
            } else {
                Status::Requested
            };
            let sans: Vec<String> = csr.sans.iter().map(|s| s.to_string()).collect();
            let key_desc = csr.key.to_string();
            let signer_sha256 = msg.signer_cert.spki_sha256();
            let new = NewRequest {
                transaction_id: txid,
                public_key_sha256: &csr.public_key_sha256,
                message_type: msg.header.message_type.name(),
                profile_id: profile.id,
                organization_id: org,
                department_id: dept,
                status: status.as_str(),
                subject: &csr.subject_text,
                common_name: csr.common_name.as_deref(),
                sans,
                key_desc: &key_desc,
                csr_der: &csr.der,
                challenge_id,
                renewal_of,
                client_ip,
                signer_key_sha256: (signer_sha256 != csr.public_key_sha256)
                    .then_some(signer_sha256.as_slice()),
            };
            let actor = if immediate { "auto-approve" } else { "scep" };
            let req = match requests::insert(conn, &new, actor) {
                Ok(r) => r,
                Err(StoreError::Conflict(_)) => return Err(Abort::Retransmission),
                Err(e) => return Err(e.into()),
            };
            if immediate {
                let cert = self.issue_in_tx(conn, profile, &req, &csr, &subject, "auto-approve")?;
                if let Some(v) = &intune {
                    self.intune_issued(v, txid, &csr.der, &cert)?;
                }
                // Delivered in this reply: what it renews is superseded.
                self.supersede_renewed(conn, profile, &req, "auto-approve")?;
                Ok(self.issued(profile, cert))
            } else {
                audit::record(
                    conn,
                    &AuditEvent {
                        actor: "scep",
                        kind: AuditKind::RequestPending,
                        target: Some(format!("request:{}", req.id)),
                        details: pending_details(txid, &csr, renewal_of, renewal),
                        client_ip,
                        organization_id: Some(org),
                        department_id: dept,
                    },
                )?;
                crate::notify::events::request_pending(conn, &req, profile)?;
                Ok(Answer::Pending)
            }
        };
        let mut res = conn.transaction::<_, Abort, _>(|conn| attempt(conn, None));
        // A secret scepd does not know: the profile's challenge webhook
        // decides (`webhook_flow`), asked with no connection held.
        if let (Err(Abort::Challenge(Rejection::Unknown)), None, Some(pw)) =
            (&res, &renewing, challenge_pw)
        {
            drop(conn);
            let step = self.challenge_webhook(profile, msg, &csr, &subject, pw, client_ip)?;
            conn = self.pool.get().map_err(StoreError::from)?;
            match step {
                Step::NotConfigured => {}
                Step::Admit(a) => res = conn.transaction(|conn| attempt(conn, Some(&a))),
                Step::Answer(answer) => return Ok(answer),
            }
        }
        if let (Some(v), Some(reason)) = (&intune, failure_reason(&res)) {
            self.intune_failed(v, txid, &csr.der, &reason);
        }
        match res {
            Ok(answer) => Ok(answer),
            Err(Abort::Error(EnrollError::Policy(reason))) => {
                self.refuse(&mut conn, txid, &format!("policy: {reason}"), client_ip)
            }
            Err(Abort::Error(e)) => Err(e),
            Err(Abort::Cipher(reason)) => {
                // The secret was not examined and may be a guess: counted
                // like any secret that is no usable one-time challenge, so
                // a weak envelope is no way around the lockout.
                self.gate
                    .reject(&mut conn, client_ip, txid, &reason, true)?;
                self.audit_refusal(&mut conn, txid, &reason, client_ip);
                Ok(Answer::Fail(FailInfo::BadAlg, reason))
            }
            Err(Abort::Retransmission) => self.answer_existing(&mut conn, txid, &csr, renewal_of),
            Err(Abort::Challenge(r)) => {
                // A concurrent retransmission may have used the challenge
                // for this very transaction: answer as it was answered.
                if r == Rejection::AlreadyUsed {
                    if let Some(existing) =
                        requests::by_transaction(&mut conn, txid, &csr.public_key_sha256, None)?
                    {
                        return self.answer_for(&mut conn, &existing);
                    }
                }
                self.gate
                    .reject(&mut conn, client_ip, txid, r.as_str(), true)?;
                self.refuse(&mut conn, txid, r.as_str(), client_ip)
            }
        }
    }

    /// Inside the enrollment transaction: use the one-time challenge (or
    /// match an access code) and audit the use. Returns the organization,
    /// department and challenge IDs the request is filed under.
    /// `identities` are the request's CN and serialNumber (for the audit);
    /// `bound` is the one identity a challenge bound to a device must name
    /// to issue this request (`binding::bound_identity`).
    fn authenticate_secret(
        &self,
        conn: &mut PgConnection,
        profile: &Profile,
        pw: &str,
        (identities, bound): (&[&str], Option<&str>),
        (txid, signer_key_differs, cipher): (&str, bool, ContentCipher),
        client_ip: Option<&str>,
    ) -> Result<(i64, Option<i64>, Option<i64>), Abort> {
        let (org, dept, challenge_id, kind, target) =
            match challenges::consume(conn, &hash_secret(pw), profile.id, bound)? {
                Ok(c) => (
                    c.organization_id,
                    c.department_id,
                    Some(c.id),
                    AuditKind::ChallengeUsed,
                    format!("challenge:{}", c.id),
                ),
                // Not a one-time challenge: perhaps an access code, which
                // outlives this request, so an envelope that can be broken
                // offline may not carry one. Decided before the argon2
                // comparison, so such a request costs none.
                Err(Rejection::Unknown) => {
                    let code = Some(policy::Secret::AccessCode);
                    if let Err(reason) = policy::cipher_allowed(profile, cipher, code) {
                        // Without any code to match, it is an unknown
                        // challenge, answered as one.
                        if !access_codes::any_usable(conn, profile)? {
                            return Err(Abort::Challenge(Rejection::Unknown));
                        }
                        return Err(Abort::Cipher(reason));
                    }
                    match access_codes::find_match(conn, &self.gate.cache, pw, profile)? {
                        Some(code) => (
                            code.organization_id,
                            code.department_id,
                            None,
                            AuditKind::AccessCodeUsed,
                            format!("access_code:{}", code.id),
                        ),
                        None => return Err(Abort::Challenge(Rejection::Unknown)),
                    }
                }
                Err(r) => return Err(Abort::Challenge(r)),
            };
        audit::record(
            conn,
            &AuditEvent {
                actor: "scep",
                kind,
                target: Some(target),
                details: super::secret_used_details(txid, profile, &identities, signer_key_differs),
                client_ip,
                organization_id: Some(org),
                department_id: dept,
            },
        )?;
        Ok((org, dept, challenge_id))
    }

    fn answer_existing(
        &self,
        conn: &mut PgConnection,
        txid: &str,
        csr: &Csr,
        renewal_of: Option<i64>,
    ) -> Result<Answer, EnrollError> {
        match requests::by_transaction(conn, txid, &csr.public_key_sha256, renewal_of)? {
            Some(existing) => self.answer_for(conn, &existing),
            None => Err(EnrollError::Conflict(
                "request vanished during retransmission".into(),
            )),
        }
    }

    pub(super) fn refuse(
        &self,
        conn: &mut PgConnection,
        txid: &str,
        reason: &str,
        client_ip: Option<&str>,
    ) -> Result<Answer, EnrollError> {
        self.audit_refusal(conn, txid, reason, client_ip);
        Ok(Answer::Fail(FailInfo::BadRequest, reason.to_string()))
    }
}

/// Why a request Intune validated was not issued, for Intune's failure
/// notification (None: issued, or a retransmission answered as before).
fn failure_reason(res: &Result<Answer, Abort>) -> Option<String> {
    match res {
        Ok(Answer::Fail(_, reason)) => Some(reason.clone()),
        Ok(_) | Err(Abort::Retransmission) => None,
        // The device is answered 503 and retries; the retry decides.
        Err(Abort::Error(e)) if e.is_unavailable() => None,
        Err(Abort::Error(EnrollError::Policy(reason))) => Some(format!("policy: {reason}")),
        Err(Abort::Error(_)) => Some("the CA failed to issue the certificate".into()),
        Err(Abort::Challenge(r)) => Some(r.as_str().to_string()),
        Err(Abort::Cipher(reason)) => Some(reason.clone()),
    }
}

/// Details of a `request.pending` entry; a renewal names the certificate
/// it renews and whether it asks for another identity.
fn pending_details(
    txid: &str,
    csr: &Csr,
    renewal_of: Option<i64>,
    renewal: Renewal,
) -> serde_json::Value {
    let mut d = serde_json::json!({ "transaction_id": txid, "subject": csr.subject_text });
    if let Some(old) = renewal_of {
        d["renewal_of"] = old.into();
        d["identity_change"] = (renewal == Renewal::IdentityChange).into();
    }
    d
}

/// RFC 8894 §3.3.1.2: renewal needs a valid, unexpired certificate of the
/// same profile, inside the profile's renewal window.
fn renewal_allowed(profile: &Profile, old: &Certificate) -> Result<(), String> {
    let now = Utc::now();
    if old.is_revoked() {
        return Err("signing certificate is revoked".into());
    }
    if old.not_after <= now {
        return Err("signing certificate has expired".into());
    }
    if old.profile_id != profile.id {
        return Err("signing certificate belongs to another profile".into());
    }
    let window = Duration::days(profile.renewal_window_days as i64);
    if now < old.not_after - window {
        return Err(format!(
            "renewal window opens {} days before expiry",
            profile.renewal_window_days
        ));
    }
    Ok(())
}

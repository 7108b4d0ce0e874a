//! The common enrollment in one round trip, shared with the enrollments
//! that arrive with it: a first PKCSReq with a usable one-time challenge
//! on a profile that issues at once. Anything else —
//! renewals, access codes, manual approval, a per-device cap, a client that
//! is locked out, a challenge that is not usable (or whose organization or
//! department is disabled), a retransmission — returns
//! `None` and takes the general path (`requests_flow`), which decides and
//! audits it. What this path writes is what the general path writes for the
//! same request (`store::issue_tx`), so the rest of scepd cannot tell them
//! apart.

use super::{policy, Answer, Enroll, EnrollError};
use crate::challenge::gate::UNKNOWN_CLIENT;
use crate::challenge::hash_secret;
use crate::csr::Csr;
use crate::store::challenges::SigningCheck;
use crate::store::issue_tx::IssueRow;
use crate::store::profiles::Profile;
use crate::store::StoreError;
use crate::wire::{MessageType, PkiMessage};

impl Enroll {
    /// `Some(answer)` when the request was served here; `None` to take the
    /// general path (nothing has been written then). `profile` may be a
    /// cached copy: the statement refuses it if the profile changed since.
    pub(super) fn try_fast(
        &self,
        profile: &Profile,
        msg: &PkiMessage,
        csr: &Csr,
        client_ip: Option<&str>,
    ) -> Result<Option<Answer>, EnrollError> {
        let Some(pw) = csr.challenge_password.as_deref() else {
            return Ok(None);
        };
        if msg.header.message_type != MessageType::PkcsReq
            || !profile.enabled
            || !profile.auto_approve()
            || profile.max_active_per_device != 0
        {
            return Ok(None);
        }
        // Only one-time challenges are written here (the statement checks
        // it); a cipher the rule refuses is the general path's to refuse
        // and audit.
        let secret = Some(policy::Secret::OneTimeChallenge);
        if policy::cipher_allowed(profile, msg.cipher, secret).is_err() {
            return Ok(None);
        }
        // A signer issued by one of our CAs makes this a renewal; a
        // self-signed signer with another key than the CSR's is the
        // profile's to judge and the audit's to record: both are the
        // general path's.
        let signer = &msg.signer_cert;
        if self.auth.is_our_issuer(signer.issuer_der()) {
            return Ok(None);
        }
        if !super::signer_holds_csr_key(signer, csr) {
            return Ok(None);
        }
        let Ok(subject) = policy::check(profile, csr) else {
            return Ok(None);
        };
        let identities: Vec<String> = [csr.common_name.as_deref(), csr.serial_number.as_deref()]
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect();

        // Nothing is signed for a request that is not authenticated: one
        // read first, and a challenge that is not outstanding, or a client
        // that is locked out, goes to the general path, which refuses it
        // without signing a certificate. The statement below still
        // decides; this read only spares the signatures.
        let lockout_key = client_ip.unwrap_or(UNKNOWN_CLIENT);
        let window_start = self.gate.window_start(chrono::Utc::now());
        let failure_limit = i32::try_from(self.gate.failure_limit).unwrap_or(i32::MAX);
        let secret_hash = hash_secret(pw);
        let check = SigningCheck {
            secret_hash: secret_hash.to_vec(),
            profile_id: profile.id,
            lockout_key: lockout_key.to_string(),
            window_start,
            failure_limit,
        };
        if !self.commit.check(check)? {
            return Ok(None);
        }
        let signed = self.sign(profile, csr, &subject)?;
        let txid = &msg.header.transaction_id.0;
        // The same details and payload the general path records; the IDs
        // are added by the statement.
        let challenge_details = super::secret_used_details(txid, profile, &identities, false);
        let issued_details = super::issued_details(None, txid, &signed.subject_text, profile, None);
        let mail_payload = crate::notify::events::issued_payload(
            &signed.serial_hex,
            &signed.subject_text,
            profile,
            signed.not_after,
        );
        let ticket = self.commit.submit(IssueRow {
            secret_hash: secret_hash.to_vec(),
            profile_id: profile.id,
            profile_revision: profile.revision,
            device_identity: super::binding::bound_identity(profile, &subject, csr),
            lockout_key: lockout_key.to_string(),
            window_start,
            failure_limit,
            transaction_id: txid.clone(),
            public_key_sha256: csr.public_key_sha256.to_vec(),
            message_type: msg.header.message_type.name(),
            request_subject: csr.subject_text.clone(),
            common_name: csr.common_name.clone(),
            sans: csr.sans.iter().map(|s| s.to_string()).collect(),
            key_desc: csr.key.to_string(),
            csr_der: csr.der.clone(),
            client_ip: client_ip.map(str::to_string),
            serial: signed.serial_hex,
            cert_subject: signed.subject_text,
            not_before: signed.not_before,
            not_after: signed.not_after,
            fingerprint_sha256: signed.fingerprint.to_vec(),
            issuer_sha256: self.auth.ca_sha256().to_vec(),
            der: signed.der.clone(),
            challenge_details,
            issued_details,
            mail_payload,
        });
        // The reply is signed while the batch commits (at concurrency 1 the
        // commit's WAL flush and the RA's signature no longer add up), and
        // sent only if the row committed; a refused one wastes it.
        let reply = self.reply(
            &msg.header,
            Some((&msg.signer_cert, msg.cipher)),
            self.issued(profile, signed.der),
        );
        match ticket.wait() {
            Ok(Some(ids)) => {
                tracing::debug!(request = ids.request_id, "issued in one statement");
                Ok(Some(Answer::Replied(reply?)))
            }
            // The challenge is not usable (or went to a racing request),
            // the client is locked out, the profile changed, or this
            // transaction is already stored: the general path answers.
            Ok(None) | Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

//! The enrollment service (RFC 8894 §3.3): turns an opened PKIMessage into
//! a decision — issue, PENDING, or FAILURE with its failInfo — and records
//! it. It owns the request state machine
//! `Requested → Applied → Issued` / `→ Declined`.
//!
//! Every PKIOperation that changes state is written in one database
//! transaction (challenge use, request, certificate, audit), committed
//! before the CertRep is returned. Common enrollments that arrive together
//! share their transaction (`store::group_commit`); each is still all or
//! nothing.

use std::sync::Arc;

use diesel::pg::PgConnection;
use diesel::Connection;
use openssl::x509::{X509Ref, X509};

use crate::ca::CaError;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::certificates;
use crate::store::group_commit::GroupCommit;
use crate::store::profiles::{self, Profile};
use crate::store::requests::{self, EnrollmentRequest, Status};
use crate::store::{PgPool, StoreError};
use crate::wire::{
    self, FailInfo, Header, MessageContent, MessageType, PkiMessage, PkiStatus, Reply, WireError,
};

mod authority;
mod binding;
mod decide;
mod fast;
mod intune;
mod issue;
mod ocsp;
pub mod policy;
mod profile_cache;
mod renewal;
mod requests_flow;
mod webhook_flow;

pub use crate::wire::name_text;
pub use decide::normalize_serial;

pub use authority::{ocsp_url, Authority, NextAuthority};
pub use decide::RevokeOutcome;
pub use intune::RevocationRound;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The client's HTTP request or message is undecodable: HTTP 400.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The profile's policy refuses this issuance (SCEP: FAILURE badRequest).
    #[error("policy: {0}")]
    Policy(String),
    /// The client used up its failed challenge attempts: HTTP 429, answered
    /// without a signature (an unauthenticated client costs no private-key
    /// operation).
    #[error("{reason}; retry in {retry_after_secs} s")]
    LockedOut {
        reason: String,
        retry_after_secs: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("CA error: {0}")]
    Ca(#[from] CaError),
    #[error("cannot encode reply: {0}")]
    Wire(#[from] WireError),
}

impl From<diesel::result::Error> for EnrollError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(e.into())
    }
}

impl EnrollError {
    /// True when the database is unreachable (HTTP 503: the client retries).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_unavailable())
    }
}

/// The decision for one PKIOperation, before it is encoded.
enum Answer {
    /// SUCCESS with this certificate (DER).
    Issued(Vec<u8>),
    Pending,
    Fail(FailInfo, String),
    /// SUCCESS with a ready degenerate PKCS#7 (GetCert, GetCRL).
    Content(Vec<u8>),
    /// The CertRep, already signed (the one-statement path signs it while
    /// its batch commits).
    Replied(CertRepOut),
}

/// A signed CertRep and the pkiStatus it carries (for metrics and logs).
pub struct CertRepOut {
    pub der: Vec<u8>,
    pub status: PkiStatus,
}

/// The enrollment service; cheap to clone, shared by all workers.
#[derive(Clone)]
pub struct Enroll {
    pool: PgPool,
    auth: Arc<Authority>,
    allow_single_des: bool,
    /// Failed-attempt limit and access-code cache (shared by all workers).
    gate: Arc<crate::challenge::gate::Gate>,
    /// Profiles for the one-statement path (see `profile_cache`).
    profiles: Arc<profile_cache::ProfileCache>,
    /// Writes one-statement enrollments in batches, and asks in the same
    /// statements whether one is worth signing for
    /// (`store::challenges::SigningCheck`).
    commit: GroupCommit,
    /// Private-key signatures made, for `/metrics` (and the tests that
    /// check an unauthenticated request costs none).
    signatures: Arc<Signatures>,
    /// OCSP responders and the statuses read recently (`ocsp.rs`).
    ocsp: Arc<ocsp::OcspState>,
    /// Microsoft Intune as a profile's challenge issuer (`intune.rs`).
    intune: Option<Arc<crate::intune::Intune>>,
    /// Opens challenge-webhook secrets; None: webhooks are not asked.
    webhooks: Option<Arc<crate::webhook::Sealer>>,
}

#[derive(Default)]
struct Signatures {
    ca: std::sync::atomic::AtomicU64,
    ra: std::sync::atomic::AtomicU64,
}

/// Why a CertRep sent as a request is refused.
const CERTREP_IS_NO_REQUEST: &str = "CertRep is not a request";

/// Group-commit writers. One: the next batch gathers while the current one
/// is in the database, so batches grow with the load (two writers took
/// about two enrollments each at c16, paying a plan start and a commit per
/// pair; one writer cut PostgreSQL's CPU per enrollment by a fifth and
/// raised c16/c64 by 5-6 %, docs/BENCHMARKS.md).
const COMMIT_WRITERS: usize = 1;
/// Most enrollments written by one statement.
const COMMIT_MAX_BATCH: usize = 32;

impl Enroll {
    pub fn new(pool: PgPool, auth: Arc<Authority>) -> Self {
        Self {
            commit: GroupCommit::start(pool.clone(), COMMIT_WRITERS, COMMIT_MAX_BATCH),
            pool,
            auth,
            allow_single_des: true,
            gate: Arc::default(),
            profiles: Arc::default(),
            signatures: Arc::default(),
            ocsp: Arc::new(ocsp::OcspState::new(0)),
            intune: None,
            webhooks: None,
        }
    }

    /// Ask profiles' challenge webhooks (`webhook_flow`), opening their
    /// secrets with `sealer`.
    pub fn with_webhooks(mut self, sealer: crate::webhook::Sealer) -> Self {
        self.webhooks = Some(Arc::new(sealer));
        self
    }

    /// Challenge policy: failed-attempt limit and its window.
    pub fn with_gate(mut self, gate: crate::challenge::gate::Gate) -> Self {
        self.gate = Arc::new(gate);
        self
    }

    /// Whether requests enveloped with single DES are served (micromdm's
    /// scepclient uses nothing else); refused with badAlg when false.
    pub fn with_single_des(mut self, allow: bool) -> Self {
        self.allow_single_des = allow;
        self
    }

    /// The webhook secrets' sealer, when webhooks are on.
    pub fn webhook_sealer(&self) -> Option<Arc<crate::webhook::Sealer>> {
        self.webhooks.clone()
    }

    pub fn authority(&self) -> &Authority {
        &self.auth
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Group-commit batches written by this process, and the enrollments
    /// they carried.
    pub fn commit_stats(&self) -> (u64, u64) {
        self.commit.stats()
    }

    /// Signatures made by this process with the CA key (certificates) and
    /// the RA key (CertReps).
    pub fn signatures(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.signatures.ca.load(Relaxed),
            self.signatures.ra.load(Relaxed),
        )
    }

    /// RFC 8894 §3.5.2 GetCACaps: only what works.
    pub fn caps(&self, profile: &Profile) -> String {
        // Exactly what is accepted (docs/scep.md, capability by capability).
        // SHA-1 stays listed: older clients stop without it, and a client
        // that knows SHA-2 picks the strongest listed. SHA-384 has no
        // capability in RFC 8894, but strongSwan 5.9.8 reads its AES bit
        // from where SHA-384 sits in its own list, and refuses AES without it.
        let mut caps = vec!["SHA-1", "SHA-256", "SHA-384", "SHA-512"];
        // Only the ciphers this profile's minimum accepts: a client that
        // picks a listed one must not meet badAlg.
        for (cap, cipher) in [
            ("AES", wire::ContentCipher::Aes128Cbc),
            ("DES3", wire::ContentCipher::Des3Cbc),
        ] {
            if policy::cipher_allowed(profile, cipher, None).is_ok() {
                caps.push(cap);
            }
        }
        caps.push("Renewal");
        if profile.allow_post {
            // RFC 8894 §3.5.2: SCEPStandard implies POSTPKIOperation, so a
            // GET-only profile advertises neither (micromdm's client POSTs
            // whenever it sees SCEPStandard).
            caps.extend(["POSTPKIOperation", "SCEPStandard"]);
        }
        if self.auth.next.is_some() {
            caps.push("GetNextCACert");
        }
        let mut s = caps.join("\n");
        s.push('\n');
        s
    }

    /// RFC 8894 §3.5.1 GetCACert body: the CA, then the RA's signing and
    /// encryption certificates (NDES's layout, which clients that pick the
    /// recipient by keyUsage expect), as a degenerate PKCS#7. An
    /// intermediate CA's issuers follow, so that a client given only the
    /// root can build the path to our CA.
    pub fn ca_certs(&self) -> Result<Vec<u8>, EnrollError> {
        let mut certs: Vec<&X509Ref> = vec![
            self.auth.ca.cert(),
            self.auth.ra.cert(),
            self.auth.ra_enc.cert(),
        ];
        certs.extend(self.auth.issuers().iter().map(|c| &**c));
        Ok(wire::certs_only(&certs)?)
    }

    /// RFC 8894 §3.5.2 GetNextCACert body, or None without a rollover CA.
    pub fn next_ca_certs(&self) -> Result<Option<Vec<u8>>, EnrollError> {
        let Some(next) = &self.auth.next else {
            return Ok(None);
        };
        let content = wire::certs_only(&[next.ca.cert(), next.ra.cert(), next.ra_enc.cert()])?;
        // OpenSSL's CMS signing needs the key in memory: with the CA key
        // in an HSM the RA signs, whose certificate GetCACert publishes
        // beside the CA's (docs/hsm.md).
        let (cert, key) = match self.auth.ca.key().software() {
            Some(key) => (self.auth.ca.cert(), key),
            None => (self.auth.ra.cert(), &**self.auth.ra.key()),
        };
        Ok(Some(wire::signed_next_ca(cert, key, &content)?))
    }

    /// The enabled profile `name` as the database has it now (`NotFound`
    /// when it is missing or disabled).
    pub fn profile(&self, name: &str) -> Result<Arc<Profile>, EnrollError> {
        self.profiles.load(&self.pool, name)
    }

    /// RFC 8894 §3.3 PKIOperation on the enabled profile `profile_name`:
    /// decode, authenticate, decide, answer. `Err` only for a missing or
    /// disabled profile (404), undecodable input (400) or server trouble;
    /// every protocol-level refusal is an `Ok` signed CertRep FAILURE.
    pub fn pki_operation(
        &self,
        profile_name: &str,
        body: &[u8],
        client_ip: Option<&str>,
    ) -> Result<CertRepOut, EnrollError> {
        // A recent copy lets the common enrollment skip a read; anything
        // but the one-statement path reads the profile again.
        let profile = self.profiles.get(&self.pool, profile_name)?;
        let current = || self.profiles.current(&self.pool, &profile);
        let signed = wire::decode(body).map_err(|e| EnrollError::BadRequest(e.to_string()))?;
        let header = signed.header().clone();
        let span = tracing::info_span!(
            "pki_operation",
            txid = %header.transaction_id,
            msg = header.message_type.name(),
            ip = client_ip.unwrap_or("-")
        );
        let _enter = span.enter();
        // A CertRep is an answer, never a request: refused before the
        // envelope is opened.
        if header.message_type == MessageType::CertRep {
            let reason = CERTREP_IS_NO_REQUEST;
            self.audit_unopened(&header, reason, client_ip);
            return self.reply(
                &header,
                None,
                Answer::Fail(FailInfo::BadRequest, reason.into()),
            );
        }
        let msg = match signed.open_for(&self.auth.recipients()) {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(error = %e, "message refused");
                self.audit_unopened(&header, &e.to_string(), client_ip);
                return self.reply(&header, None, Answer::Fail(e.fail_info(), e.to_string()));
            }
        };
        if msg.cipher == wire::ContentCipher::DesCbc && !self.allow_single_des {
            let reason = "the request is enveloped with single DES, which this server refuses";
            self.audit_unopened(&header, reason, client_ip);
            return self.reply(&header, None, Answer::Fail(FailInfo::BadAlg, reason.into()));
        }
        // Read afresh for anything but an enrollment (which may take the
        // one-statement path): the profile's minimum cipher holds for
        // every message type.
        let refused = || -> Result<Option<Answer>, EnrollError> {
            Ok(self.cipher_refused(&*current()?, &msg, client_ip))
        };
        let answer = match header.message_type {
            MessageType::PkcsReq | MessageType::RenewalReq => {
                self.enroll(&profile, &msg, client_ip)?
            }
            MessageType::CertPoll => match refused()? {
                Some(refused) => refused,
                None => self.poll(&msg)?,
            },
            MessageType::GetCert => match refused()? {
                Some(refused) => refused,
                None => self.get_cert(&msg)?,
            },
            MessageType::GetCrl => match refused()? {
                Some(refused) => refused,
                None => self.get_crl(&msg)?,
            },
            // Refused before the envelope was opened (above).
            MessageType::CertRep => {
                Answer::Fail(FailInfo::BadRequest, CERTREP_IS_NO_REQUEST.into())
            }
        };
        if let Answer::Fail(info, reason) = &answer {
            tracing::info!(fail_info = ?info, reason = %reason, "FAILURE");
            if matches!(
                header.message_type,
                MessageType::PkcsReq | MessageType::RenewalReq
            ) {
                self.notify_failed(&profile.profile, &msg, *info, reason, client_ip);
            }
        }
        self.reply(&msg.header, Some((&msg.signer_cert, msg.cipher)), answer)
    }

    fn reply(
        &self,
        header: &Header,
        recipient: Option<(&wire::SignerCert, wire::ContentCipher)>,
        answer: Answer,
    ) -> Result<CertRepOut, EnrollError> {
        let reply = match (answer, recipient) {
            (Answer::Replied(out), _) => return Ok(out),
            (Answer::Issued(cert), Some((to, cipher))) => Reply::Success {
                content: wire::certs_only_der(&[&cert]),
                recipient: to,
                cipher,
            },
            (Answer::Content(content), Some((to, cipher))) => Reply::Success {
                content,
                recipient: to,
                cipher,
            },
            (Answer::Pending, _) => Reply::Pending,
            (Answer::Fail(info, _), _) => Reply::Failure(info),
            (_, None) => Reply::Failure(FailInfo::BadRequest),
        };
        let status = match reply {
            Reply::Success { .. } => PkiStatus::Success,
            Reply::Pending => PkiStatus::Pending,
            Reply::Failure(_) => PkiStatus::Failure,
        };
        let der = wire::cert_rep(&self.auth.ra, header, reply)?;
        self.signatures
            .ra
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(CertRepOut { der, status })
    }

    /// The SUCCESS answer for an issued certificate (RFC 8894 §3.3.2): the
    /// certificate alone, or followed by the CA and its issuers when the
    /// profile asks (some VPN clients need the chain there, others refuse
    /// a reply that carries it).
    fn issued(&self, profile: &Profile, cert: Vec<u8>) -> Answer {
        if !profile.certrep_includes_chain {
            return Answer::Issued(cert);
        }
        let mut certs: Vec<&[u8]> = vec![&cert];
        certs.extend(self.auth.chain_der().iter().map(Vec::as_slice));
        Answer::Content(wire::certs_only_der(&certs))
    }

    /// FAILURE badAlg, audited, for a message whose envelope cipher is
    /// weaker than `profile` accepts (`policy::cipher_allowed`); None when
    /// it is accepted. Decided before anything is looked up or spent.
    fn cipher_refused(
        &self,
        profile: &Profile,
        msg: &PkiMessage,
        client_ip: Option<&str>,
    ) -> Option<Answer> {
        let reason = policy::cipher_allowed(profile, msg.cipher, None).err()?;
        self.audit_unopened(&msg.header, &reason, client_ip);
        Some(Answer::Fail(FailInfo::BadAlg, reason))
    }

    /// CertPoll (RFC 8894 §3.3.3): the request's current state.
    fn poll(&self, msg: &PkiMessage) -> Result<Answer, EnrollError> {
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        let (txid, key) = (&msg.header.transaction_id.0, msg.signer_cert.spki_sha256());
        match requests::by_transaction_and_signer(&mut conn, txid, &key)? {
            Some(req) => self.answer_for(&mut conn, &req),
            None => Ok(Answer::Fail(
                FailInfo::BadCertId,
                "no request with this transactionID signed by this key".into(),
            )),
        }
    }

    /// The answer a stored request gives (retransmission and CertPoll).
    fn answer_for(
        &self,
        conn: &mut PgConnection,
        req: &EnrollmentRequest,
    ) -> Result<Answer, EnrollError> {
        Ok(match req.status() {
            Some(Status::Issued) => match req.certificate_id {
                Some(id) => {
                    let der = certificates::by_id(conn, id)?.der;
                    // The chain setting of the profile it was issued under.
                    let profile = profiles::by_id(conn, req.profile_id)?;
                    // Delivered now: what it renews is superseded.
                    self.supersede_renewed(conn, &profile, req, "scep")?;
                    self.issued(&profile, der)
                }
                None => Answer::Fail(
                    FailInfo::BadRequest,
                    "issued request without certificate".into(),
                ),
            },
            Some(Status::Requested | Status::Applied) => Answer::Pending,
            Some(Status::Declined) | None => Answer::Fail(
                FailInfo::BadRequest,
                format!("declined: {}", req.decline_reason.as_deref().unwrap_or("")),
            ),
        })
    }

    /// GetCert (RFC 8894 §3.3.4): a certificate by issuer and serial.
    fn get_cert(&self, msg: &PkiMessage) -> Result<Answer, EnrollError> {
        let MessageContent::GetCert { issuer_der, serial } = &msg.content else {
            return Ok(Answer::Fail(
                FailInfo::BadRequest,
                "GetCert without IssuerAndSerialNumber".into(),
            ));
        };
        if !self.auth.is_our_issuer(issuer_der) {
            return Ok(Answer::Fail(FailInfo::BadCertId, "unknown issuer".into()));
        }
        let mut conn = self.pool.get().map_err(StoreError::from)?;
        match certificates::by_serial(&mut conn, &serial_hex(serial))? {
            Some(c) => {
                let cert = X509::from_der(&c.der).map_err(CaError::from)?;
                Ok(Answer::Content(wire::certs_only(&[&cert])?))
            }
            None => Ok(Answer::Fail(
                FailInfo::BadCertId,
                "no certificate with this serial".into(),
            )),
        }
    }

    /// GetCRL (RFC 8894 §3.3.4): the CRL of the issuer named.
    fn get_crl(&self, msg: &PkiMessage) -> Result<Answer, EnrollError> {
        let MessageContent::GetCrl { issuer_der, .. } = &msg.content else {
            return Ok(Answer::Fail(
                FailInfo::BadRequest,
                "GetCRL without IssuerAndSerialNumber".into(),
            ));
        };
        let Some(ca) = self.auth.issuer_by_name(issuer_der) else {
            return Ok(Answer::Fail(FailInfo::BadCertId, "unknown issuer".into()));
        };
        let crl = self.crl_for(ca)?;
        Ok(Answer::Content(wire::crl_only(&crl)?))
    }

    /// Audit the refusal of a message that could not be opened (its
    /// signature, its envelope, its algorithms), so that an administrator
    /// sees why a device fails. Best effort: the answer does not wait on a
    /// database that is down.
    fn audit_unopened(&self, header: &Header, reason: &str, client_ip: Option<&str>) {
        match self.pool.get() {
            Ok(mut conn) => {
                self.audit_refusal(&mut conn, &header.transaction_id.0, reason, client_ip)
            }
            Err(e) => tracing::warn!(error = %e, "could not audit refusal"),
        }
    }

    /// Audit a refusal in its own transaction (the enrollment's was rolled back).
    fn audit_refusal(
        &self,
        conn: &mut PgConnection,
        txid: &str,
        reason: &str,
        client_ip: Option<&str>,
    ) {
        let res = conn.transaction(|conn| {
            audit::record(
                conn,
                &AuditEvent {
                    actor: "scep",
                    kind: AuditKind::RequestRefused,
                    target: Some(format!("transaction:{txid}")),
                    details: serde_json::json!({ "reason": reason }),
                    client_ip,
                    // Refused before the client proved where it belongs.
                    organization_id: None,
                    department_id: None,
                },
            )
        });
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not audit refusal");
        }
    }
}

/// Details of a `challenge.used` / `access_code.used` audit entry (both
/// enrollment paths write them). `signer_key_differs` marks a first
/// enrollment signed by a throwaway certificate with another key than the
/// CSR's (accepted unless the profile enforces RFC 8894 §2.3).
fn secret_used_details(
    txid: &str,
    profile: &Profile,
    identities: &impl serde::Serialize,
    signer_key_differs: bool,
) -> serde_json::Value {
    let mut d = serde_json::json!({
        "transaction_id": txid,
        "profile": profile.profile_id,
        "identities": identities,
    });
    if signer_key_differs {
        d["signer_key_differs"] = true.into();
    }
    d
}

/// RFC 8894 §2.3: whether the signer certificate holds the key the CSR
/// certifies. Compared by the key itself: equal digests of the DER
/// SubjectPublicKeyInfo settle the common case, `public_eq` any other
/// encoding of the same key.
fn signer_holds_csr_key(signer: &wire::SignerCert, csr: &crate::csr::Csr) -> bool {
    signer.spki_sha256() == csr.public_key_sha256 || signer.public_key().public_eq(&csr.public_key)
}

/// Details of a `certificate.issued` audit entry.
fn issued_details(
    request_id: Option<i64>,
    txid: &str,
    subject: &str,
    profile: &Profile,
    replaces: Option<i64>,
) -> serde_json::Value {
    let mut d = serde_json::json!({
        "transaction_id": txid,
        "subject": subject,
        "profile": profile.profile_id,
        "replaces": replaces,
    });
    if let Some(id) = request_id {
        d["request_id"] = id.into();
    }
    d
}

/// Serial numbers are stored as uppercase hex of their minimal big-endian bytes.
pub fn serial_hex(bytes: &[u8]) -> String {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    hex::encode_upper(&bytes[start..])
}

#[cfg(test)]
mod tests {
    use super::serial_hex;

    #[test]
    fn serial_hex_strips_leading_zero_bytes() {
        assert_eq!(serial_hex(&[0, 0, 0x0a, 0xbc]), "0ABC");
        assert_eq!(serial_hex(&[0x7f]), "7F");
        assert_eq!(serial_hex(&[0]), "00");
    }
}

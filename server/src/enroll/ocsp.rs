//! OCSP answers (RFC 6960) from PostgreSQL, for every CA this process
//! holds (the current one and, after `scepd ca rollover`, the next).
//!
//! Each CA gets a delegated responder, issued in memory by this process
//! from the CA key on the first request for that CA and replaced in the
//! last half of its week: nothing to share between nodes or keep on disk,
//! and after a rollover the new CA's responder is the new CA's. A node's
//! answers differ from another's only in the responder certificate, which
//! every answer carries.
//!
//! A status read from the database may be served from memory for the
//! configured cache time and no longer; thisUpdate is when it was read and
//! nextUpdate when it stops being served, so a revocation reaches every
//! node's answers within that time.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use chrono::{DateTime, Duration, Utc};
use der::Decode;
use x509_ocsp::OcspResponseStatus;

use super::Enroll;
use crate::ca::{CaIdentity, RevocationReason};
use crate::ocsp::{self, Answer, Query, Responder, Status};
use crate::store::{certificates, StoreError};

/// Statuses kept at most; past it expired ones are dropped, then all.
const CACHE_MAX: usize = 65_536;

/// A certificate by the position of its CA in `Authority::cas` and its
/// serial number.
type CertKey = (usize, Vec<u8>);

/// A status and when it was read from the database.
type Read = (Status, DateTime<Utc>);

/// A CA as OCSP requests name it.
struct Issuer {
    subject_der: Vec<u8>,
    /// The contents of its subjectPublicKey BIT STRING (issuerKeyHash input).
    key_bits: Vec<u8>,
    /// SHA-256 of its certificate, as `certificates.issuer_sha256` holds it.
    sha256: Vec<u8>,
}

/// The OCSP side of an `Enroll`: responders and recently read statuses.
#[derive(Default)]
pub(super) struct OcspState {
    cache_for: Option<Duration>,
    /// By position in `Authority::cas` (`None`: a CA we could not read).
    issuers: OnceLock<Vec<Option<Issuer>>>,
    /// One per CA, by position in `Authority::cas`.
    responders: RwLock<HashMap<usize, Arc<Responder>>>,
    statuses: Mutex<HashMap<CertKey, Read>>,
}

impl OcspState {
    pub(super) fn new(cache_seconds: u32) -> Self {
        Self {
            cache_for: (cache_seconds > 0).then(|| Duration::seconds(i64::from(cache_seconds))),
            ..Self::default()
        }
    }

    fn cached(
        &self,
        key: &(usize, Vec<u8>),
        now: DateTime<Utc>,
    ) -> Option<(Status, DateTime<Utc>)> {
        let ttl = self.cache_for?;
        let map = self.statuses.lock().ok()?;
        map.get(key).copied().filter(|(_, read)| now < *read + ttl)
    }

    fn remember(&self, key: CertKey, status: Status, read: DateTime<Utc>) {
        let Some(ttl) = self.cache_for else { return };
        let Ok(mut map) = self.statuses.lock() else {
            return;
        };
        if map.len() >= CACHE_MAX {
            let now = Utc::now();
            map.retain(|_, (_, r)| now < *r + ttl);
            if map.len() >= CACHE_MAX {
                map.clear();
            }
        }
        map.insert(key, (status, read));
    }
}

fn issuer_of(ca: &CaIdentity) -> Option<Issuer> {
    let der = ca.cert_der().ok()?;
    let cert = x509_cert::Certificate::from_der(&der).ok()?;
    let key_bits = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()?
        .to_vec();
    Some(Issuer {
        subject_der: ca.subject_der().to_vec(),
        key_bits,
        sha256: hex::decode(ca.fingerprint()).ok()?,
    })
}

impl Enroll {
    /// Serve OCSP statuses from memory for `seconds` (0: never).
    pub fn with_ocsp_cache(mut self, seconds: u32) -> Self {
        self.ocsp = Arc::new(OcspState::new(seconds));
        self
    }

    /// Seconds a status may be served from memory (0: none).
    pub fn ocsp_cache_seconds(&self) -> i64 {
        self.ocsp.cache_for.map_or(0, |d| d.num_seconds())
    }

    /// The DER OCSPResponse to `request` (RFC 6960 §4.2). Never an error:
    /// what cannot be answered gets the protocol's own status
    /// (malformedRequest, unauthorized, tryLater, internalError).
    pub fn ocsp_answer(&self, request: &[u8]) -> Vec<u8> {
        let req = match ocsp::parse_request(request) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "OCSP request refused");
                return ocsp::malformed_request();
            }
        };
        let issuers = self
            .ocsp
            .issuers
            .get_or_init(|| self.auth.cas().map(issuer_of).collect::<Vec<_>>());
        let issued_by = |q: &Query, i: &Issuer| q.is_issued_by(&i.subject_der, &i.key_bits);
        // The first certificate names the CA whose responder signs; one
        // of another CA is answered unauthorized (docs/ocsp.md).
        let found = issuers.iter().enumerate().find_map(|(n, i)| {
            i.as_ref()
                .filter(|i| issued_by(&req.queries[0], i))
                .map(|i| (n, i))
        });
        let Some((ca_index, issuer)) = found else {
            return ocsp::error_response(OcspResponseStatus::Unauthorized);
        };
        let now = Utc::now();
        let mut answers = Vec::with_capacity(req.queries.len());
        for q in &req.queries {
            let answer = if issued_by(q, issuer) {
                match self.ocsp_status(ca_index, issuer, q, now) {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "OCSP status unavailable");
                        return ocsp::error_response(OcspResponseStatus::TryLater);
                    }
                }
            } else {
                Answer {
                    status: Status::Unknown,
                    this_update: now,
                    next_update: None,
                }
            };
            answers.push(answer);
        }
        let signed = self.ocsp_responder(ca_index, now).and_then(|r| {
            ocsp::basic_response(&r, &req.queries, &answers, req.nonce.as_deref(), now)
                .map_err(|e| e.to_string())
        });
        match signed {
            Ok(der) => der,
            Err(e) => {
                tracing::error!(error = %e, "OCSP response not signed");
                ocsp::error_response(OcspResponseStatus::InternalError)
            }
        }
    }

    fn ocsp_status(
        &self,
        ca_index: usize,
        issuer: &Issuer,
        q: &Query,
        now: DateTime<Utc>,
    ) -> Result<Answer, StoreError> {
        let key = (ca_index, q.serial.clone());
        let (status, read) = match self.ocsp.cached(&key, now) {
            Some(hit) => hit,
            None => {
                let status = if q.serial.is_empty() {
                    Status::Unknown
                } else {
                    let mut conn = self.pool.get()?;
                    let serial = super::serial_hex(&q.serial);
                    match certificates::revocation_status(&mut conn, &issuer.sha256, &serial)? {
                        None => Status::Unknown,
                        Some(None) => Status::Good,
                        Some(Some(r)) => Status::Revoked {
                            at: r.revoked_at,
                            reason: RevocationReason::from_str(&r.reason).ok(),
                        },
                    }
                };
                self.ocsp.remember(key, status, now);
                (status, now)
            }
        };
        Ok(Answer {
            status,
            this_update: read,
            next_update: self.ocsp.cache_for.map(|ttl| read + ttl),
        })
    }

    /// The responder of the CA at `ca_index`, issued on first use and
    /// replaced when due.
    fn ocsp_responder(
        &self,
        ca_index: usize,
        now: DateTime<Utc>,
    ) -> Result<Arc<Responder>, String> {
        if let Ok(map) = self.ocsp.responders.read() {
            if let Some(r) = map.get(&ca_index).filter(|r| !r.is_due_for_renewal(now)) {
                return Ok(r.clone());
            }
        }
        let ca = self
            .auth
            .cas()
            .nth(ca_index)
            .ok_or("OCSP issuer vanished")?;
        let mut map = self
            .ocsp
            .responders
            .write()
            .map_err(|_| "OCSP responder lock poisoned")?;
        // Another thread may have issued it while this one waited.
        if let Some(r) = map.get(&ca_index).filter(|r| !r.is_due_for_renewal(now)) {
            return Ok(r.clone());
        }
        let r = Arc::new(Responder::issue(ca).map_err(|e| e.to_string())?);
        self.signatures
            .ca
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        map.insert(ca_index, r.clone());
        Ok(r)
    }
}

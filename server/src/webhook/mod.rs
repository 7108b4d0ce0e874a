//! Per-profile HTTP integrations (docs/webhooks.md).
//!
//! - [`challenge`]: asked whether a challengePassword scepd does not know
//!   (no one-time challenge, no access code) may enroll, before anything is
//!   signed; allow (optionally naming organization and department) or deny.
//! - [`sender`]: notification events (issued, declined, revoked, failed)
//!   queued in `webhook_outbox` by the transaction of the change and
//!   delivered by a thread in every `scepd serve`.
//! - [`settings`]: the officer's service to set, show and remove them,
//!   audited, for the console, the CLI and the API alike.
//!
//! Every call is a JSON POST signed with HMAC-SHA256 over
//! `"<timestamp>.<body>"` ([`signature`]); the shared secret is stored
//! sealed ([`Sealer`]) and never logged or shown again.

pub mod challenge;
pub mod sender;
pub mod settings;

use std::io::Read;
use std::time::Duration;

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use zeroize::Zeroizing;

use crate::ca::key_file::Passphrase;

/// Unix seconds when the request was made; part of the signed material.
pub const HEADER_TIMESTAMP: &str = "X-Scepd-Timestamp";
/// `v1=` and the lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"`.
pub const HEADER_SIGNATURE: &str = "X-Scepd-Signature";
/// `challenge` or the notification event (`issued`, ...).
pub const HEADER_EVENT: &str = "X-Scepd-Event";
/// A unique id per delivery; a notification keeps it across retries, so a
/// receiver can drop a repeat.
pub const HEADER_DELIVERY: &str = "X-Scepd-Delivery";

/// Most of a reply that is read; a larger one is refused.
pub const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// The longest a challenge webhook may make a device wait (the database
/// holds the same bounds).
pub const TIMEOUT_MS: (i32, i32) = (100, 10_000);
pub const DEFAULT_TIMEOUT_MS: i32 = 3_000;
/// Shortest shared secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

const NONCE: usize = 12;
const TAG: usize = 16;

/// Seals and opens webhook secrets (AES-256-GCM under a key derived from
/// the key passphrase, so a copy of the database alone yields none).
pub struct Sealer {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SealError(String);

impl Sealer {
    pub fn from_passphrase(pass: &Passphrase) -> Result<Self, crate::ca::CaError> {
        Ok(Self {
            key: pass.derive_key("webhook secrets")?,
        })
    }

    /// The profile and purpose are authenticated with the secret: a sealed
    /// secret copied to another webhook's row does not open.
    fn aad(profile_id: i64, purpose: &str) -> Vec<u8> {
        [&profile_id.to_be_bytes()[..], purpose.as_bytes()].concat()
    }

    pub fn seal(&self, plain: &[u8], profile_id: i64, purpose: &str) -> Result<Vec<u8>, SealError> {
        let failed = |e: openssl::error::ErrorStack| SealError(e.to_string());
        let mut nonce = [0u8; NONCE];
        openssl::rand::rand_bytes(&mut nonce).map_err(failed)?;
        let mut tag = [0u8; TAG];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &*self.key,
            Some(&nonce),
            &Self::aad(profile_id, purpose),
            plain,
            &mut tag,
        )
        .map_err(failed)?;
        Ok([nonce.as_slice(), &ct, &tag].concat())
    }

    pub fn open(
        &self,
        sealed: &[u8],
        profile_id: i64,
        purpose: &str,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let bad = || SealError("the stored webhook secret does not open".into());
        if sealed.len() < NONCE + TAG {
            return Err(bad());
        }
        let (nonce, rest) = sealed.split_at(NONCE);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &*self.key,
            Some(nonce),
            &Self::aad(profile_id, purpose),
            ct,
            tag,
        )
        .map(Zeroizing::new)
        .map_err(|_| bad())
    }
}

/// The `X-Scepd-Signature` value: `v1=` and the hex HMAC-SHA256, keyed
/// with the shared secret, of the timestamp, a dot, and the body.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> Result<String, SealError> {
    let failed = |e: openssl::error::ErrorStack| SealError(e.to_string());
    let key = PKey::hmac(secret).map_err(failed)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key).map_err(failed)?;
    signer
        .update(format!("{timestamp}.").as_bytes())
        .map_err(failed)?;
    signer.update(body).map_err(failed)?;
    Ok(format!(
        "v1={}",
        hex::encode(signer.sign_to_vec().map_err(failed)?)
    ))
}

/// Why a call did not produce a usable reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Timeout, no connection, or an HTTP 5xx: the receiver may be fine
    /// later (a challenge webhook's profile may answer PENDING then).
    #[error("webhook unavailable: {0}")]
    Unavailable(String),
    /// A reply that is no answer: a redirect (never followed), another
    /// non-2xx status, an oversized or malformed body.
    #[error("bad webhook reply: {0}")]
    BadReply(String),
}

/// One signed POST of `body` to `url`, its whole exchange bounded by
/// `timeout`; the reply body (2xx only, at most [`MAX_REPLY_BYTES`]).
pub fn post(
    url: &str,
    secret: &[u8],
    event: &str,
    delivery: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, CallError> {
    let now = chrono::Utc::now().timestamp();
    let sig = signature(secret, now, body).map_err(|e| CallError::BadReply(e.to_string()))?;
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .user_agent(concat!("scepd/", env!("CARGO_PKG_VERSION")))
        .build();
    let res = agent
        .post(url)
        .set("Content-Type", "application/json")
        .set(HEADER_TIMESTAMP, &now.to_string())
        .set(HEADER_SIGNATURE, &sig)
        .set(HEADER_EVENT, event)
        .set(HEADER_DELIVERY, delivery)
        .send_bytes(body);
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) if code >= 500 => {
            return Err(CallError::Unavailable(format!("HTTP {code}")))
        }
        Err(ureq::Error::Status(code, _)) => {
            return Err(CallError::BadReply(format!("HTTP {code}")))
        }
        Err(ureq::Error::Transport(t)) => return Err(CallError::Unavailable(transport_text(&t))),
    };
    let code = resp.status();
    if !(200..300).contains(&code) {
        let what = if (300..400).contains(&code) {
            format!("HTTP {code} redirect (not followed)")
        } else {
            format!("HTTP {code}")
        };
        return Err(CallError::BadReply(what));
    }
    let mut buf = Vec::new();
    resp.into_reader()
        .take(MAX_REPLY_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CallError::Unavailable(format!("reading the reply: {e}")))?;
    if buf.len() as u64 > MAX_REPLY_BYTES {
        return Err(CallError::BadReply(format!(
            "reply larger than {} KiB",
            MAX_REPLY_BYTES / 1024
        )));
    }
    Ok(buf)
}

/// A transport error without the URL's query (it might carry a token).
fn transport_text(t: &ureq::Transport) -> String {
    let mut s = t.kind().to_string();
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    s
}

/// Whether `url` is an http(s) URL with a host (checked before storing).
pub fn url_ok(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && url.len() <= 2000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 style check against an independent computation.
        let sig = signature(b"key", 1700000000, b"{}").unwrap();
        let key = PKey::hmac(b"key").unwrap();
        let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
        s.update(b"1700000000.{}").unwrap();
        assert_eq!(sig, format!("v1={}", hex::encode(s.sign_to_vec().unwrap())));
        assert_ne!(sig, signature(b"key", 1700000001, b"{}").unwrap());
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_webhook_and_key() {
        let pass = Passphrase::generated(b"a passphrase of thirty-two bytes".to_vec(), "t");
        let s = Sealer::from_passphrase(&pass).unwrap();
        let sealed = s.seal(b"shared secret 123", 7, "challenge").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"shared"));
        assert_eq!(
            s.open(&sealed, 7, "challenge").unwrap().as_slice(),
            b"shared secret 123"
        );
        assert!(s.open(&sealed, 8, "challenge").is_err());
        assert!(s.open(&sealed, 7, "notify").is_err());
        assert!(s.open(&sealed[..10], 7, "challenge").is_err());
    }

    #[test]
    fn only_http_urls_with_a_host_pass() {
        assert!(url_ok("https://mdm.example/hook"));
        assert!(url_ok("http://127.0.0.1:8080/x"));
        assert!(!url_ok("ftp://x"));
        assert!(!url_ok("https:///x"));
        assert!(!url_ok("https://a b"));
    }
}

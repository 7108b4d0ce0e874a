//! scepd as a Microsoft Intune third-party CA (docs/intune.md): a profile
//! whose challenges Intune issues has every PKCSReq validated by Intune's
//! SCEP validation service before anything is signed, reports each
//! issuance or failure back, and applies the revocations Intune asks for.
//!
//! `client` speaks the HTTP contract; `settings` is the per-profile
//! configuration (console, CLI and API call the same functions); the
//! enrollment hook and the revocation sync live in `enroll::intune`, next to
//! the state machine they extend.

use std::time::{Duration, Instant};

use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use zeroize::Zeroizing;

use crate::ca::key_file::Passphrase;
use crate::store::intune::IntuneSettings;

pub mod client;
mod reply;
pub mod settings;

pub use client::{Client, Credentials, Endpoints, IntuneError, Target};

const NONCE: usize = 12;
const TAG: usize = 16;

/// HRESULT E_FAIL (MS-ERREF §2.1.1): the request was refused or failed.
pub const HRESULT_FAIL: u32 = 0x8000_4005;

/// Seals and opens the app registrations' client secrets.
pub struct Sealer {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("intune::Sealer(<redacted>)")
    }
}

impl Sealer {
    pub fn from_passphrase(pass: &Passphrase) -> Result<Self, crate::ca::CaError> {
        Ok(Self {
            key: pass.derive_key("Intune client secrets")?,
        })
    }

    /// nonce || ciphertext || tag. The profile's id is authenticated with
    /// it: a sealed secret copied to another profile's row does not open.
    pub fn seal(&self, plain: &[u8], profile_id: i64) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE];
        openssl::rand::rand_bytes(&mut nonce).map_err(|e| e.to_string())?;
        let mut tag = [0u8; TAG];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &*self.key,
            Some(&nonce),
            &profile_id.to_be_bytes(),
            plain,
            &mut tag,
        )
        .map_err(|e| e.to_string())?;
        Ok([nonce.as_slice(), &ct, &tag].concat())
    }

    pub fn open(&self, sealed: &[u8], profile_id: i64) -> Option<Zeroizing<String>> {
        if sealed.len() < NONCE + TAG {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &*self.key,
            Some(nonce),
            &profile_id.to_be_bytes(),
            ct,
            tag,
        )
        .ok()?;
        String::from_utf8(plain).ok().map(Zeroizing::new)
    }
}

/// The integration as a running process holds it: one HTTP client (tokens
/// and discovered services cached), the sealer, and the longest wait.
#[derive(Debug)]
pub struct Intune {
    client: Client,
    sealer: Sealer,
    timeout: Duration,
}

impl Intune {
    /// `ca_bundle`: extra trusted roots (PEM); `timeout`: the longest a
    /// device's request waits for Intune, every call included.
    pub fn new(
        pass: &Passphrase,
        ca_bundle: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(Self {
            client: Client::new(ca_bundle).map_err(|e| e.to_string())?,
            sealer: Sealer::from_passphrase(pass).map_err(|e| e.to_string())?,
            timeout,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// When a call started now must have ended.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// The stored settings as a call target (the secret opened).
    pub fn target(&self, s: &IntuneSettings) -> Result<Target, IntuneError> {
        let secret = self
            .sealer
            .open(&s.client_secret_sealed, s.profile_id)
            .ok_or_else(|| {
                IntuneError::Setting(
                    "the stored client secret does not open with this key passphrase; set it again"
                        .into(),
                )
            })?;
        Ok(Target {
            credentials: Credentials {
                tenant: s.tenant.clone(),
                client_id: s.client_id.clone(),
                client_secret: secret,
            },
            endpoints: Endpoints {
                authority_url: s.authority_url.clone(),
                graph_url: s.graph_url.clone(),
                intune_resource_url: s.intune_resource_url.clone(),
                intune_app_id: s.intune_app_id.clone(),
                validation_url: s.validation_url.clone(),
                pki_connector_url: s.pki_connector_url.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer {
            key: Zeroizing::new([7u8; 32]),
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_profile() {
        let s = sealer();
        let sealed = s.seal(b"app secret", 5).unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"app secret"));
        assert_eq!(s.open(&sealed, 5).unwrap().as_str(), "app secret");
        assert!(s.open(&sealed, 6).is_none());
        let other = Sealer {
            key: Zeroizing::new([8u8; 32]),
        };
        assert!(other.open(&sealed, 5).is_none());
        assert!(s.open(&sealed[..10], 5).is_none());
    }
}

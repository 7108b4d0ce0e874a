//! The signing identities an `Enroll` works with, loaded once at start:
//! the issuing CA, the RA (SCEP recipient and CertRep signer) and, after a
//! rollover, the next CA/RA pair (RFC 8894 §3.5.2).

use crate::ca::{CaError, CaIdentity};
use crate::wire::RaIdentity;

pub struct NextAuthority {
    pub ca: CaIdentity,
    pub ra: RaIdentity,
}

pub struct Authority {
    pub ca: CaIdentity,
    pub ra: RaIdentity,
    pub next: Option<NextAuthority>,
    /// Base URL of this service as devices reach it, e.g. `http://host:8080`.
    pub public_url: String,
    ca_sha256: Vec<u8>,
}

impl Authority {
    pub fn new(
        ca: CaIdentity,
        ra: RaIdentity,
        next: Option<NextAuthority>,
        public_url: &str,
    ) -> Result<Self, CaError> {
        let ca_sha256 =
            hex::decode(ca.fingerprint()).map_err(|e| CaError::BadCertificate(e.to_string()))?;
        Ok(Self {
            ca,
            ra,
            next,
            public_url: public_url.trim_end_matches('/').to_string(),
            ca_sha256,
        })
    }

    /// SHA-256 of the issuing CA certificate (stored with each certificate).
    pub fn ca_sha256(&self) -> &[u8] {
        &self.ca_sha256
    }

    /// The CRL distribution point written into certificates of `ca`.
    pub fn crl_url(&self, ca: &CaIdentity) -> String {
        format!("{}/crl/{}.crl", self.public_url, crl_name(ca))
    }

    /// The CA whose CRL is published under `name` (see `crl_url`).
    pub fn ca_by_crl_name(&self, name: &str) -> Option<&CaIdentity> {
        self.cas()
            .find(|ca| crl_name(ca).eq_ignore_ascii_case(name))
    }

    /// The current CA, then the next one if any.
    pub fn cas(&self) -> impl Iterator<Item = &CaIdentity> {
        std::iter::once(&self.ca).chain(self.next.as_ref().map(|n| &n.ca))
    }

    pub fn is_our_issuer(&self, issuer_der: &[u8]) -> bool {
        self.issuer_by_name(issuer_der).is_some()
    }

    pub fn issuer_by_name(&self, issuer_der: &[u8]) -> Option<&CaIdentity> {
        self.cas().find(|ca| ca.subject_der() == issuer_der)
    }
}

/// A short stable file name per CA: the first 16 hex digits of its SHA-256.
fn crl_name(ca: &CaIdentity) -> String {
    ca.fingerprint()
        .chars()
        .take(16)
        .collect::<String>()
        .to_lowercase()
}

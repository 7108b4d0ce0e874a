//! The signing identities an `Enroll` works with, loaded once at start:
//! the issuing CA, the RA (CertRep signer, and recipient for clients that
//! envelope to it), the RA's encryption certificate (keyEncipherment only,
//! for clients that choose the recipient by keyUsage) and, after a
//! rollover, the next CA and RAs (RFC 8894 §3.5.2). An intermediate CA
//! brings its issuers, for GetCACert and for replies whose profile asks.

use openssl::x509::X509;

use crate::ca::{CaError, CaIdentity};
use crate::wire::RaIdentity;

pub struct NextAuthority {
    pub ca: CaIdentity,
    pub ra: RaIdentity,
    pub ra_enc: RaIdentity,
}

pub struct Authority {
    pub ca: CaIdentity,
    pub ra: RaIdentity,
    pub ra_enc: RaIdentity,
    pub next: Option<NextAuthority>,
    /// Base URL of this service as devices reach it, e.g. `http://host:8080`.
    pub public_url: String,
    ca_sha256: Vec<u8>,
    /// The certificates above `ca` when it is an intermediate, its issuer
    /// first (`<data>/ca/ca-chain.crt`); empty for a root.
    issuers: Vec<X509>,
    /// DER of `ca` and then `issuers`: the chain a CertRep carries when its
    /// profile asks for it.
    chain_der: Vec<Vec<u8>>,
}

impl Authority {
    pub fn new(
        ca: CaIdentity,
        ra: RaIdentity,
        ra_enc: RaIdentity,
        next: Option<NextAuthority>,
        public_url: &str,
    ) -> Result<Self, CaError> {
        let ca_sha256 =
            hex::decode(ca.fingerprint()).map_err(|e| CaError::BadCertificate(e.to_string()))?;
        let chain_der = vec![ca.cert_der()?];
        Ok(Self {
            ca,
            ra,
            ra_enc,
            next,
            public_url: public_url.trim_end_matches('/').to_string(),
            ca_sha256,
            issuers: Vec::new(),
            chain_der,
        })
    }

    /// With the issuers of an intermediate CA, nearest first; refused
    /// unless each issued the certificate before it.
    pub fn with_issuers(mut self, issuers: Vec<X509>) -> Result<Self, CaError> {
        crate::ca::check_chain(self.ca.cert(), &issuers)?;
        for c in &issuers {
            self.chain_der.push(c.to_der()?);
        }
        self.issuers = issuers;
        Ok(self)
    }

    /// The current CA's issuers, nearest first (empty for a root CA).
    pub fn issuers(&self) -> &[X509] {
        &self.issuers
    }

    /// DER of the current CA followed by its issuers.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// The identities whose keys open a request's envelope: the RA's
    /// encryption and signing certificates. Never a CA: its key signs.
    pub fn recipients(&self) -> [&RaIdentity; 2] {
        [&self.ra_enc, &self.ra]
    }

    /// SHA-256 of the issuing CA certificate (stored with each certificate).
    pub fn ca_sha256(&self) -> &[u8] {
        &self.ca_sha256
    }

    /// The CRL distribution point written into certificates of `ca`.
    pub fn crl_url(&self, ca: &CaIdentity) -> String {
        format!("{}/crl/{}.crl", self.public_url, crl_name(ca))
    }

    /// The OCSP responder's URL written into certificates' authorityInfoAccess
    /// (RFC 6960 Appendix A: POST to it, or GET `<url>/<base64 request>`).
    pub fn ocsp_url(&self) -> String {
        ocsp_url(&self.public_url)
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

/// The OCSP responder's URL under `public_url`.
pub fn ocsp_url(public_url: &str) -> String {
    format!("{public_url}/ocsp")
}

//! HTTPS for the console and the JSON API (TLS 1.2 and 1.3 through rustls).
//!
//! The certificate comes from PEM files the operator supplies
//! ([`load_files`]), or this CA issues one itself for the configured names
//! ([`ensure_self_issued`], kept under `<data>/tls/`). The listener's rustls
//! configuration asks [`CertStore`] for the certificate on every handshake,
//! so a reload (SIGHUP) swaps it whole without closing the listener, and
//! files that fail the checks leave the served certificate in place.
//!
//! Why rustls rather than OpenSSL for the listener: actix-web takes a rustls
//! `ServerConfig` whose certificate source is a one-method trait, so a reload
//! is an atomic pointer swap in a few lines. With OpenSSL the acceptor is
//! fixed once built; swapping it needs a servername callback that changes
//! the `SSL_CTX` mid-handshake. Keys and certificates are still parsed and
//! checked with OpenSSL, as everywhere else in scepd, so the error messages
//! and accepted PEM forms are the same as for the CA's own files.

mod files;
mod self_issued;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use openssl::pkey::{PKeyRef, Private};
use openssl::x509::X509;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::csr::San;

pub use files::load_files;
pub use self_issued::{ensure_self_issued, record_issued, IssuedCert, SelfIssued};

/// The console's HTTPS listener and where its certificate comes from.
#[derive(Debug, Clone)]
pub struct ConsoleTls {
    pub listen: SocketAddr,
    pub source: TlsSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files: the certificate (then its chain), and its private key.
    Files { cert: PathBuf, key: PathBuf },
    /// Issued by this CA for these DNS names and addresses.
    SelfIssued { names: Vec<San> },
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("the private key in {key} does not match the certificate in {cert} (the first certificate must be the server's own)")]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate in {path} expired on {not_after}")]
    Expired {
        path: PathBuf,
        not_after: DateTime<Utc>,
    },
    #[error("the certificate in {path} is not valid before {not_before}")]
    NotYetValid {
        path: PathBuf,
        not_before: DateTime<Utc>,
    },
    #[error("TLS key: {0}")]
    Rustls(#[from] rustls::Error),
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error("OpenSSL error: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// A certificate ready to serve, and what the log says about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// Serial of the leaf, upper-case hex.
    pub serial: String,
    pub not_after: DateTime<Utc>,
    /// The leaf's subjectAltNames, as `DNS:…`/`IP:…`.
    pub names: Vec<String>,
}

impl Loaded {
    /// `chain` starts with the leaf that `key` belongs to (checked by the
    /// callers, whose error names the files).
    fn new(chain: &[X509], key: &PKeyRef<Private>) -> Result<Self, TlsError> {
        let leaf = chain.first().ok_or_else(|| TlsError::Invalid {
            path: PathBuf::new(),
            message: "no certificate".into(),
        })?;
        let der = chain
            .iter()
            .map(|c| c.to_der().map(CertificateDer::from))
            .collect::<Result<Vec<_>, _>>()?;
        let pkcs8 = PrivatePkcs8KeyDer::from(key.private_key_to_pkcs8()?);
        let signing = provider()
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(pkcs8))?;
        Ok(Self {
            key: Arc::new(CertifiedKey::new(der, signing)),
            serial: leaf.serial_number().to_bn()?.to_hex_str()?.to_string(),
            not_after: crate::ca::to_chrono(leaf.not_after())?,
            names: sans_of(leaf).iter().map(ToString::to_string).collect(),
        })
    }
}

/// The DNS and IP subjectAltNames of `cert`.
pub(crate) fn sans_of(cert: &X509) -> Vec<San> {
    let Some(names) = cert.subject_alt_names() else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|n| {
            if let Some(d) = n.dnsname() {
                return Some(San::Dns(d.to_ascii_lowercase()));
            }
            match n.ipaddress()? {
                b if b.len() == 4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
                b => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
            }
            .map(San::Ip)
        })
        .collect()
}

/// One crypto provider for keys and handshakes. ring, not aws-lc-rs: it is
/// what the rest of the dependency tree already builds, and it needs no
/// cmake or Go at build time.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate every handshake gets; [`CertStore::replace`] swaps it.
#[derive(Debug)]
pub struct CertStore(ArcSwap<CertifiedKey>);

impl CertStore {
    pub fn new(first: &Loaded) -> Arc<Self> {
        Arc::new(Self(ArcSwap::new(first.key.clone())))
    }

    /// Serve `next` from the next handshake on; open connections keep theirs.
    pub fn replace(&self, next: &Loaded) {
        self.0.store(next.key.clone());
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// The listener's rustls configuration: safe default protocol versions and
/// cipher suites, no client certificates, the certificate from `store`.
/// actix-web adds the ALPN protocols (h2, http/1.1).
pub fn server_config(store: Arc<CertStore>) -> Result<ServerConfig, TlsError> {
    Ok(ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(store))
}

/// Parse a comma-separated list of DNS names and IP addresses (the
/// self-issued certificate's subjectAltNames), lower-cased, without
/// repeats.
pub fn parse_names(list: &str) -> Result<Vec<San>, String> {
    let mut out: Vec<San> = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let san = match entry.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip.to_canonical()),
            Err(_) if is_dns_name(entry) => San::Dns(entry.to_ascii_lowercase()),
            Err(_) => {
                return Err(format!(
                    "{entry:?} is neither an IP address nor a DNS name such as scepd.example.com"
                ))
            }
        };
        if !out.contains(&san) {
            out.push(san);
        }
    }
    if out.is_empty() {
        return Err("names no DNS name or IP address".into());
    }
    Ok(out)
}

/// RFC 1123 host names, optionally with a leading `*.` wildcard label.
fn is_dns_name(name: &str) -> bool {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    !bare.is_empty()
        && name.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Names of the self-issued certificate when none are configured: the
/// loopback names, the console's own address unless it is a wildcard, and
/// the host of the public URL.
pub fn default_names(console: SocketAddr, public_url: &str) -> Vec<San> {
    let mut names = vec![
        San::Dns("localhost".into()),
        San::Ip(IpAddr::from([127, 0, 0, 1])),
        San::Ip(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])),
    ];
    let mut add = |san: San| {
        if !names.contains(&san) {
            names.push(san);
        }
    };
    if !console.ip().is_unspecified() {
        add(San::Ip(console.ip().to_canonical()));
    }
    if let Some(host) = url_host(public_url) {
        if let Ok(found) = parse_names(host) {
            found.into_iter().for_each(&mut add);
        }
    }
    names
}

/// `https://[::1]:8443/x` → `::1`; `http://scepd.example.com/` → the name.
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests;

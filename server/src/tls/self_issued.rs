//! The console's certificate when the operator gives none: issued by this
//! CA (RFC 5280 end entity, serverAuth EKU, subjectAltNames for the
//! configured names) and kept in `<data>/tls/` (directory 0700, key 0600),
//! so browsers that trust the CA trust it and it survives restarts.
//!
//! It is issued again when missing or unreadable, when the configured names
//! change, when another CA now issues, and 30 days before it expires (it is
//! valid for 90). Like the RA and profile-signing certificates it is not a
//! device certificate, so it stays out of the certificate list; each issue
//! is audited (`tls.certificate_issued`, visible to MRAOs).

use std::fs::{self, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use diesel::PgConnection;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};

use crate::ca::key_file::{self, Passphrase};
use openssl::x509::{X509Name, X509};

use super::{sans_of, Loaded, TlsError};
use crate::ca::{self, CaIdentity, Eku, IssueParams, KeySpec, KeyUsage};
use crate::csr::San;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::StoreError;

const VALIDITY_DAYS: i64 = 90;
const RENEW_BEFORE_DAYS: i64 = 30;

/// The certificate to serve, and the one issued now if it is new.
pub struct SelfIssued {
    pub loaded: Loaded,
    pub issued: Option<IssuedCert>,
}

/// What the audit log records about a newly issued certificate.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub serial: String,
    pub names: Vec<String>,
    pub not_after: DateTime<Utc>,
    pub fingerprint_sha256: String,
}

struct Files {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn new(data: &Path) -> Self {
        let dir = data.join("tls");
        Self {
            cert: dir.join("console.crt"),
            key: dir.join("console.key"),
            dir,
        }
    }
}

/// The served chain: the leaf, the CA, then the CA's issuers.
fn chain(leaf: X509, ca: &CaIdentity, issuers: &[X509]) -> Vec<X509> {
    [leaf, ca.cert().clone()]
        .into_iter()
        .chain(issuers.iter().cloned())
        .collect()
}

/// Load the certificate under `<data>/tls/`, issuing a new one when it is
/// missing, unusable, for other names, from another CA or near expiry.
pub fn ensure_self_issued(
    data: &Path,
    ca: &CaIdentity,
    issuers: &[X509],
    names: &[San],
    pass: &Passphrase,
) -> Result<SelfIssued, TlsError> {
    let f = Files::new(data);
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Write { path, source }
    };
    fs::create_dir_all(&f.dir).map_err(write_err(&f.dir))?;
    fs::set_permissions(&f.dir, fs::Permissions::from_mode(0o700)).map_err(write_err(&f.dir))?;
    // Processes sharing the data directory issue one certificate, not one
    // each with crossed keys.
    let lock_path = f.dir.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(write_err(&lock_path))?;
    lock.lock().map_err(write_err(&lock_path))?;

    if f.cert.exists() || f.key.exists() {
        match current(&f, ca, names, pass) {
            Ok(Ok((leaf, key, encrypted))) => {
                if !encrypted {
                    // Written before keys were encrypted at rest.
                    crate::fsutil::write_atomic(&f.key, &key_file::encrypt_pem(&key, pass)?, 0o600)
                        .map_err(write_err(&f.key))?;
                }
                return Ok(SelfIssued {
                    loaded: Loaded::new(&chain(leaf, ca, issuers), &key)?,
                    issued: None,
                });
            }
            Ok(Err(why)) => tracing::info!("issuing a new console TLS certificate: {why}"),
            Err(e) => tracing::warn!(error = %e, "issuing a new console TLS certificate"),
        }
    }
    let (leaf, key) = issue(ca, names)?;
    crate::fsutil::write_atomic(&f.key, &key_file::encrypt_pem(&key, pass)?, 0o600)
        .map_err(write_err(&f.key))?;
    crate::fsutil::write_atomic(&f.cert, &leaf.to_pem()?, 0o644).map_err(write_err(&f.cert))?;
    let loaded = Loaded::new(&chain(leaf.clone(), ca, issuers), &key)?;
    let issued = IssuedCert {
        serial: loaded.serial.clone(),
        names: loaded.names.clone(),
        not_after: loaded.not_after,
        fingerprint_sha256: hex::encode(leaf.digest(MessageDigest::sha256())?),
    };
    tracing::info!(
        serial = %issued.serial,
        names = %issued.names.join(", "),
        not_after = %issued.not_after,
        "issued the console's TLS certificate"
    );
    Ok(SelfIssued {
        loaded,
        issued: Some(issued),
    })
}

/// A stored certificate, its key, and whether the key file was encrypted.
type Stored = (X509, PKey<Private>, bool);

/// The stored certificate and key if they can be served as they are;
/// otherwise why not.
fn current(
    f: &Files,
    ca: &CaIdentity,
    names: &[San],
    pass: &Passphrase,
) -> Result<Result<Stored, String>, TlsError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let leaf = X509::from_pem(&read(&f.cert)?)?;
    let (key, encrypted) = key_file::decrypt_pem(&read(&f.key)?, pass)?;
    if !leaf.public_key()?.public_eq(&key) {
        return Ok(Err("the stored key does not match the certificate".into()));
    }
    let ca_key = ca.public_key()?;
    if !leaf.verify(&ca_key)? {
        return Ok(Err("the CA has changed".into()));
    }
    let mut have: Vec<String> = sans_of(&leaf).iter().map(ToString::to_string).collect();
    let mut want: Vec<String> = names.iter().map(ToString::to_string).collect();
    have.sort();
    want.sort();
    if have != want {
        return Ok(Err(format!(
            "the names changed from {} to {}",
            have.join(", "),
            want.join(", ")
        )));
    }
    let not_after = ca::to_chrono(leaf.not_after())?;
    if not_after - Utc::now() < Duration::days(RENEW_BEFORE_DAYS) {
        return Ok(Err(format!("it expires on {not_after}")));
    }
    Ok(Ok((leaf, key, encrypted)))
}

/// A P-256 key (the fastest handshakes rustls offers with a CA-issued key)
/// and its certificate.
fn issue(ca: &CaIdentity, names: &[San]) -> Result<(X509, PKey<Private>), TlsError> {
    let key = ca::generate_key(KeySpec::EcP256)?;
    let public = PKey::public_key_from_der(&key.public_key_to_der()?)?;
    let mut subject = X509Name::builder()?;
    subject.append_entry_by_nid(Nid::COMMONNAME, "scepd console")?;
    let subject = subject.build();
    let now = Utc::now();
    let serial = ca::random_serial()?;
    let cert = ca::issue(
        ca,
        &IssueParams {
            public_key: &public,
            spki_der: None,
            subject: &subject,
            sans: names,
            // A little slack for clients whose clock is behind.
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(VALIDITY_DAYS),
            key_usage: &[KeyUsage::DigitalSignature],
            extended_key_usage: &[Eku::ServerAuth],
            crl_url: None,
            ocsp_url: None,
            digest: ca.default_digest(),
            serial: &serial,
        },
    )?;
    Ok((cert, key))
}

/// Audit a newly issued console certificate (no organization: MRAOs see it).
pub fn record_issued(conn: &mut PgConnection, cert: &IssuedCert) -> Result<(), StoreError> {
    audit::record(
        conn,
        &AuditEvent::new("system", AuditKind::TlsCertificateIssued)
            .target(format!("tls:{}", cert.serial))
            .details(serde_json::json!({
                "serial": cert.serial,
                "names": cert.names,
                "not_after": cert.not_after,
                "fingerprint_sha256": cert.fingerprint_sha256,
            })),
    )
}

//! The identities under `<data>/ca/`: a certificate (`<name>.crt`, 0644)
//! and its private key (`<name>.key`, 0600, encrypted with the
//! installation's passphrase, `ca::key_file`) or, for a CA key in an HSM,
//! the key's label in the token (`<name>.pkcs11`, 0644), and where the
//! passphrase comes from.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::x509::X509;

use crate::ca::key_file::{self, Passphrase};
use crate::ca::pkcs11::Hsm;
use crate::ca::{CaError, CaIdentity};
use crate::config::Config;
use crate::fsutil::{read_private, write_atomic};

/// The file scepd generates the passphrase into when none is configured.
pub const GENERATED_PASSPHRASE: &str = "key-passphrase";
/// The systemd credential (`LoadCredential=`) scepd looks for.
pub const SYSTEMD_CREDENTIAL: &str = "scepd-key-passphrase";

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Key { path: PathBuf, source: CaError },
    #[error("{0}")]
    Passphrase(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One identity's certificate and key files.
pub struct IdentityFiles<'a> {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Names the key's label in the HSM instead of `key`.
    pub hsm_ref: PathBuf,
    pass: &'a Passphrase,
    hsm: Option<&'a Arc<Hsm>>,
}

impl<'a> IdentityFiles<'a> {
    /// `<data>/ca/<name>.crt` and `.key`.
    pub fn new(data: &Path, name: &str, pass: &'a Passphrase) -> Self {
        let dir = data.join("ca");
        Self::at(
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
            pass,
        )
    }

    pub fn at(cert: PathBuf, key: PathBuf, pass: &'a Passphrase) -> Self {
        let hsm_ref = key.with_extension("pkcs11");
        Self {
            cert,
            key,
            hsm_ref,
            pass,
            hsm: None,
        }
    }

    /// With the token that holds a key named by `<name>.pkcs11`.
    pub fn with_hsm(mut self, hsm: Option<&'a Arc<Hsm>>) -> Self {
        self.hsm = hsm;
        self
    }

    pub fn exists(&self) -> bool {
        self.cert.exists() && (self.key.exists() || self.hsm_ref.exists())
    }

    /// Reads the identity. A key written before keys were encrypted is
    /// encrypted in place now.
    pub fn load(&self) -> Result<CaIdentity, KeyStoreError> {
        let cert_pem = fs::read(&self.cert).map_err(io(&self.cert))?;
        let cert = X509::from_pem(&cert_pem).map_err(|e| KeyStoreError::Key {
            path: self.cert.clone(),
            source: CaError::BadCertificate(e.to_string()),
        })?;
        if self.hsm_ref.exists() {
            return self.load_from_hsm(cert);
        }
        let key_pem = read_private(&self.key).map_err(io(&self.key))?;
        let key_err = |source| KeyStoreError::Key {
            path: self.key.clone(),
            source,
        };
        let (key, encrypted) = key_file::decrypt_pem(&key_pem, self.pass).map_err(key_err)?;
        let id = CaIdentity::new(cert, key).map_err(key_err)?;
        if !encrypted {
            self.save_key(&id)?;
            tracing::info!(key = %self.key.display(), passphrase = self.pass.origin(),
                "encrypted a private key that was stored in the clear");
        }
        Ok(id)
    }

    fn load_from_hsm(&self, cert: X509) -> Result<CaIdentity, KeyStoreError> {
        let path = &self.hsm_ref;
        let err = |source| KeyStoreError::Key {
            path: path.clone(),
            source,
        };
        let text = fs::read_to_string(path).map_err(io(path))?;
        let label = text.trim();
        let Some(hsm) = self.hsm else {
            return Err(err(CaError::Hsm(format!(
                "this key is labelled {label:?} in an HSM, but no PKCS#11 module is \
                 configured (SCEPD_PKCS11_MODULE)"
            ))));
        };
        let key = hsm.key(label).map_err(err)?;
        CaIdentity::with_hsm_key(cert, key).map_err(err)
    }

    pub fn save(&self, id: &CaIdentity) -> Result<(), KeyStoreError> {
        match id.key().hsm() {
            Some(k) => {
                let label = format!("{}\n", k.label());
                write_atomic(&self.hsm_ref, label.as_bytes(), 0o644).map_err(io(&self.hsm_ref))?
            }
            None => self.save_key(id)?,
        }
        let pem = id.cert_pem().map_err(|source| KeyStoreError::Key {
            path: self.cert.clone(),
            source,
        })?;
        write_atomic(&self.cert, &pem, 0o644).map_err(io(&self.cert))
    }

    fn save_key(&self, id: &CaIdentity) -> Result<(), KeyStoreError> {
        let pem = key_file::encrypt_pem(
            id.private_key().map_err(|source| KeyStoreError::Key {
                path: self.key.clone(),
                source,
            })?,
            self.pass,
        )
        .map_err(|source| KeyStoreError::Key {
            path: self.key.clone(),
            source,
        })?;
        write_atomic(&self.key, &pem, 0o600).map_err(io(&self.key))
    }
}

/// The passphrase that encrypts the keys in `<data>/ca/`, from the first
/// of: `SCEPD_KEY_PASSPHRASE`, `SCEPD_KEY_PASSPHRASE_FILE`, the systemd
/// credential `scepd-key-passphrase`, `<data>/key-passphrase`. With none of
/// them scepd generates `<data>/key-passphrase` (0600) and says so, unless
/// keys are already encrypted: then the passphrase was not passed on, and
/// a new one would not open them.
pub fn passphrase(cfg: &Config, data: &Path) -> Result<Passphrase, KeyStoreError> {
    if let Some(p) = cfg.key_passphrase.as_deref() {
        return chosen(p.as_bytes().to_vec(), "SCEPD_KEY_PASSPHRASE");
    }
    if let Some(path) = &cfg.key_passphrase_file {
        let text = fs::read(path).map_err(io(path))?;
        return chosen(text, &path.display().to_string());
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = Path::new(&dir).join(SYSTEMD_CREDENTIAL);
        if path.exists() {
            let text = fs::read(&path).map_err(io(&path))?;
            return chosen(text, &format!("systemd credential {SYSTEMD_CREDENTIAL}"));
        }
    }
    let local = data.join(GENERATED_PASSPHRASE);
    let origin = local.display().to_string();
    if local.exists() {
        let text = read_private(&local).map_err(io(&local))?;
        return Ok(Passphrase::generated(trim_line(text)?, origin));
    }
    if let Some(key) = encrypted_key_in(&data.join("ca")) {
        return Err(KeyStoreError::Passphrase(format!(
            "{} is encrypted, but no passphrase was given: set SCEPD_KEY_PASSPHRASE_FILE \
             (or SCEPD_KEY_PASSPHRASE, or the systemd credential {SYSTEMD_CREDENTIAL}) to the \
             passphrase the keys were encrypted with, or copy {GENERATED_PASSPHRASE} from the \
             data directory of the node these keys came from",
            key.display()
        )));
    }
    let mut secret = [0u8; 32];
    openssl::rand::rand_bytes(&mut secret).map_err(|e| KeyStoreError::Key {
        path: local.clone(),
        source: e.into(),
    })?;
    let text = hex::encode(secret);
    write_atomic(&local, format!("{text}\n").as_bytes(), 0o600).map_err(io(&local))?;
    tracing::warn!(
        passphrase = %local.display(),
        "generated the passphrase that encrypts the private keys in {}; keep it apart from \
         them (move it off this disk and set SCEPD_KEY_PASSPHRASE_FILE, or use the systemd \
         credential {SYSTEMD_CREDENTIAL})",
        data.join("ca").display()
    );
    Ok(Passphrase::generated(text.into_bytes(), origin))
}

fn chosen(text: Vec<u8>, origin: &str) -> Result<Passphrase, KeyStoreError> {
    Ok(Passphrase::chosen(trim_line(text)?, origin))
}

/// The secret without the line end a file usually has; never empty.
fn trim_line(mut text: Vec<u8>) -> Result<Vec<u8>, KeyStoreError> {
    while matches!(text.last(), Some(b'\n' | b'\r')) {
        text.pop();
    }
    if text.is_empty() {
        return Err(KeyStoreError::Passphrase(
            "the key passphrase is empty".into(),
        ));
    }
    Ok(text)
}

/// The first encrypted `*.key` in `dir`, if any.
fn encrypted_key_in(dir: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "key"))
        .find(|p| fs::read(p).is_ok_and(|pem| key_file::is_encrypted(&pem)))
}

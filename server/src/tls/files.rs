//! The operator's certificate and key, from PEM files: checked before they
//! are served, at start (a failure stops start-up) and on every reload (a
//! failure keeps the certificate being served).

use std::fs;
use std::path::{Path, PathBuf};

use chrono::Utc;
use openssl::pkey::PKey;
use openssl::x509::X509;

use super::{Loaded, TlsError};

/// Read and check `cert` (the server's certificate first, then any
/// intermediates) and its unencrypted private key `key`.
pub fn load_files(cert: &Path, key: &Path) -> Result<Loaded, TlsError> {
    let invalid = |path: &Path, message: String| TlsError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let read = |path: &Path| {
        fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let chain = X509::stack_from_pem(&cert_pem)
        .map_err(|e| invalid(cert, format!("not a PEM certificate chain ({e})")))?;
    let Some(leaf) = chain.first() else {
        return Err(invalid(cert, "holds no PEM certificate".into()));
    };
    let pkey = PKey::private_key_from_pem(&key_pem).map_err(|_| {
        invalid(
            key,
            "not an unencrypted PEM private key (PKCS#8, RSA or EC)".into(),
        )
    })?;
    if !leaf.public_key()?.public_eq(&pkey) {
        return Err(TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        });
    }
    let now = Utc::now();
    let not_after = crate::ca::to_chrono(leaf.not_after())?;
    if not_after <= now {
        return Err(TlsError::Expired {
            path: PathBuf::from(cert),
            not_after,
        });
    }
    let not_before = crate::ca::to_chrono(leaf.not_before())?;
    if not_before > now {
        return Err(TlsError::NotYetValid {
            path: PathBuf::from(cert),
            not_before,
        });
    }
    Loaded::new(&chain, &pkey).map_err(|e| match e {
        // rustls takes RSA, P-256, P-384 and Ed25519 keys.
        TlsError::Rustls(r) => invalid(key, format!("key type not usable for TLS ({r})")),
        other => other,
    })
}

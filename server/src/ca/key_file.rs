//! Private keys at rest: PKCS#8 `EncryptedPrivateKeyInfo` (PBES2, scrypt,
//! AES-256-CBC) under the installation's passphrase, written and read by
//! the RustCrypto `pkcs8` crate (OpenSSL reads the files too:
//! `openssl pkey -in ca.key -passin file:...`).
//!
//! The scrypt cost follows the passphrase: one scepd generated (256 random
//! bits) needs no stretching, so it gets scrypt's smallest sensible cost
//! and a start stays fast; one an operator chose gets N = 2^13, r = 8,
//! p = 10, one of OWASP's equivalent minimums for scrypt, and the one of
//! them that OpenSSL 3.0 still reads (it refuses N = 2^14 with p = 5 for
//! exceeding its scrypt memory limit).

use openssl::pkey::{PKey, PKeyRef, Private};
use pkcs8::pkcs5::{pbes2, scrypt};
use pkcs8::{EncryptedPrivateKeyInfoRef, LineEnding, PrivateKeyInfoRef, SecretDocument};
use zeroize::Zeroizing;

use super::CaError;

const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// The secret that encrypts the keys, and where it came from (named in
/// errors; the secret itself never is).
#[derive(Clone)]
pub struct Passphrase {
    secret: Zeroizing<Vec<u8>>,
    origin: String,
    generated: bool,
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passphrase")
            .field("origin", &self.origin)
            .field("generated", &self.generated)
            .finish_non_exhaustive()
    }
}

impl Passphrase {
    /// A passphrase an operator chose; `origin` says where it was read.
    pub fn chosen(secret: Vec<u8>, origin: impl Into<String>) -> Self {
        Self {
            secret: Zeroizing::new(secret),
            origin: origin.into(),
            generated: false,
        }
    }

    /// A passphrase scepd generated (at least 256 random bits).
    pub fn generated(secret: Vec<u8>, origin: impl Into<String>) -> Self {
        Self {
            secret: Zeroizing::new(secret),
            origin: origin.into(),
            generated: true,
        }
    }

    /// Where the passphrase was read from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// A 256-bit key for `purpose` (e.g. sealing officers' TOTP secrets),
    /// derived with scrypt at the passphrase's cost, so a database copy
    /// alone opens nothing and guessing the passphrase stays slow.
    pub fn derive_key(&self, purpose: &str) -> Result<Zeroizing<[u8; 32]>, CaError> {
        let mut out = Zeroizing::new([0u8; 32]);
        let salt = format!("scepd key derivation: {purpose}");
        scrypt::scrypt(
            self.secret.as_slice(),
            salt.as_bytes(),
            &self.scrypt_params()?,
            out.as_mut_slice(),
        )
        .map_err(|e| CaError::Der(e.to_string()))?;
        Ok(out)
    }

    fn scrypt_params(&self) -> Result<scrypt::Params, CaError> {
        let (log_n, r, p) = if self.generated {
            (10, 8, 1)
        } else {
            (13, 8, 10)
        };
        scrypt::Params::new(log_n, r, p).map_err(|e| CaError::Der(e.to_string()))
    }
}

/// `key` as an encrypted PKCS#8 PEM.
pub fn encrypt_pem(key: &PKeyRef<Private>, pass: &Passphrase) -> Result<Vec<u8>, CaError> {
    let der = Zeroizing::new(key.private_key_to_pkcs8()?);
    let info = PrivateKeyInfoRef::try_from(der.as_slice()).map_err(der_err)?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt)?;
    openssl::rand::rand_bytes(&mut iv)?;
    let params = pbes2::Parameters::generate_scrypt_aes256cbc(pass.scrypt_params()?, &salt, iv)
        .map_err(|e| CaError::Der(e.to_string()))?;
    let doc = info
        .encrypt_with_params(params, pass.secret.as_slice())
        .map_err(der_err)?;
    let pem = doc
        .to_pem(ENCRYPTED_LABEL, LineEnding::LF)
        .map_err(|e| CaError::Der(e.to_string()))?;
    Ok(pem.as_bytes().to_vec())
}

/// Whether `pem` holds an encrypted key (PKCS#8 or OpenSSL's traditional
/// `Proc-Type: 4,ENCRYPTED` form).
pub fn is_encrypted(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

/// A key file's key, and whether it was encrypted. An unencrypted file
/// (from before keys were encrypted) is read as it is; the caller
/// re-writes it encrypted.
pub fn decrypt_pem(pem: &[u8], pass: &Passphrase) -> Result<(PKey<Private>, bool), CaError> {
    if !is_encrypted(pem) {
        let key = PKey::private_key_from_pem(pem).map_err(|_| CaError::BadKey)?;
        return Ok((key, false));
    }
    let wrong = || CaError::WrongPassphrase(pass.origin.clone());
    let text = std::str::from_utf8(pem).map_err(|_| CaError::BadKey)?;
    let key = match SecretDocument::from_pem(text) {
        Ok((ENCRYPTED_LABEL, doc)) => {
            let info = EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes()).map_err(der_err)?;
            // A wrong passphrase fails the padding, or (1 in 256) yields
            // bytes that are no PKCS#8: both say the same.
            let plain = info.decrypt(pass.secret.as_slice()).map_err(|_| wrong())?;
            PKey::private_key_from_pkcs8(plain.as_bytes()).map_err(|_| wrong())?
        }
        // The traditional encrypted form, or a label pkcs8 does not take:
        // OpenSSL reads what it can.
        _ => PKey::private_key_from_pem_passphrase(pem, pass.secret.as_slice())
            .map_err(|_| wrong())?,
    };
    Ok((key, true))
}

fn der_err(e: pkcs8::Error) -> CaError {
    CaError::Der(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Rsa;

    fn key() -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
    }

    #[test]
    fn an_encrypted_key_reads_back_with_its_passphrase_only() {
        let k = key();
        for pass in [
            Passphrase::generated(b"0123456789abcdef0123456789abcdef".to_vec(), "test"),
            Passphrase::chosen(b"correct horse".to_vec(), "test"),
        ] {
            let pem = encrypt_pem(&k, &pass).unwrap();
            let text = String::from_utf8(pem.clone()).unwrap();
            assert!(
                text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
                "{text}"
            );
            assert!(is_encrypted(&pem));
            let (back, was) = decrypt_pem(&pem, &pass).unwrap();
            assert!(was);
            assert!(back.public_eq(&k));
            let other = Passphrase::chosen(b"wrong".to_vec(), "SCEPD_KEY_PASSPHRASE");
            let err = decrypt_pem(&pem, &other).unwrap_err();
            assert!(matches!(err, CaError::WrongPassphrase(ref o) if o == "SCEPD_KEY_PASSPHRASE"));
        }
    }

    #[test]
    fn openssl_reads_what_is_written_and_its_own_forms_are_read() {
        let k = key();
        let pass = Passphrase::chosen(b"s3cret".to_vec(), "test");
        let pem = encrypt_pem(&k, &pass).unwrap();
        let by_openssl = PKey::private_key_from_pem_passphrase(&pem, b"s3cret").unwrap();
        assert!(by_openssl.public_eq(&k));
        // OpenSSL's own encrypted PKCS#8 (PBKDF2) and a plain key.
        let theirs = k
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"s3cret")
            .unwrap();
        let (back, was) = decrypt_pem(&theirs, &pass).unwrap();
        assert!(was && back.public_eq(&k));
        let plain = k.private_key_to_pem_pkcs8().unwrap();
        let (back, was) = decrypt_pem(&plain, &pass).unwrap();
        assert!(!was && back.public_eq(&k));
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let pass = Passphrase::chosen(b"hunter2".to_vec(), "a file");
        let shown = format!("{pass:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("a file"));
    }
}

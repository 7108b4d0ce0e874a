//! Officers' second factor: TOTP (RFC 6238: SHA-1, six digits, 30-second
//! steps, one step of skew, each step accepted once) with ten recovery
//! codes shown once. The secret is sealed with AES-256-GCM under a key
//! derived from the installation's key passphrase, so a copy of the
//! database alone yields no secret. Every change is audited in the
//! transaction that makes it.

use diesel::pg::PgConnection;
use diesel::Connection;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use totp_rs::{Secret, Totp};
use zeroize::Zeroizing;

use super::rules::Actor;
use super::AdminError;
use crate::ca::key_file::Passphrase;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::{admins, second_factor as store};

const ISSUER: &str = "scepd";
const RECOVERY_CODES: usize = 10;
const NONCE: usize = 12;
const TAG: usize = 16;

/// Seals and opens TOTP secrets; made once at start-up.
pub struct SecretBox {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<redacted>)")
    }
}

impl SecretBox {
    pub fn from_passphrase(pass: &Passphrase) -> Result<Self, crate::ca::CaError> {
        Ok(Self {
            key: pass.derive_key("officer TOTP secrets")?,
        })
    }

    fn seal(&self, plain: &[u8], admin_id: i64) -> Result<Vec<u8>, AdminError> {
        let mut nonce = [0u8; NONCE];
        openssl::rand::rand_bytes(&mut nonce).map_err(failed)?;
        let mut tag = [0u8; TAG];
        // The officer's id is authenticated with it: a sealed secret copied
        // to another officer's row does not open.
        let aad = admin_id.to_be_bytes();
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &*self.key,
            Some(&nonce),
            &aad,
            plain,
            &mut tag,
        )
        .map_err(failed)?;
        Ok([nonce.as_slice(), &ct, &tag].concat())
    }

    fn open(&self, sealed: &[u8], admin_id: i64) -> Result<Zeroizing<Vec<u8>>, AdminError> {
        let bad = || AdminError::Failed("the stored second-factor secret does not open".into());
        if sealed.len() < NONCE + TAG {
            return Err(bad());
        }
        let (nonce, rest) = sealed.split_at(NONCE);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        let aad = admin_id.to_be_bytes();
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &*self.key,
            Some(nonce),
            &aad,
            ct,
            tag,
        )
        .map(Zeroizing::new)
        .map_err(|_| bad())
    }
}

fn failed(e: impl std::fmt::Display) -> AdminError {
    AdminError::Failed(e.to_string())
}

fn totp(secret: &[u8], account: &str) -> Result<Totp, AdminError> {
    totp_rs::Builder::new()
        .with_secret(Secret::new(secret.to_vec().into_boxed_slice()))
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(failed)
}

/// What the officer's authenticator app needs.
pub struct Enrollment {
    /// The secret in base32, for typing in.
    pub secret_base32: String,
    /// `otpauth://totp/...`, for the QR code.
    pub otpauth_url: String,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrollment(<redacted>)")
    }
}

fn enrollment(secret: &[u8], account: &str) -> Result<Enrollment, AdminError> {
    let t = totp(secret, account)?;
    Ok(Enrollment {
        secret_base32: Secret::new(secret.to_vec().into_boxed_slice()).to_base32(),
        otpauth_url: t.to_url().map_err(failed)?,
    })
}

/// The officer's own account: only the officer itself sets up or removes
/// its second factor.
fn own(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    officer_id: i64,
) -> Result<admins::Admin, AdminError> {
    let me = admins::by_id(conn, officer_id)?;
    if me.username != who.username || !me.enabled {
        return Err(AdminError::NotFound);
    }
    Ok(me)
}

/// Start (or restart) setting up TOTP: a new 160-bit secret, stored sealed
/// and unconfirmed. Refused while a confirmed one is in place.
pub fn begin(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    officer_id: i64,
    sealer: &SecretBox,
) -> Result<Enrollment, AdminError> {
    let mut secret = Zeroizing::new([0u8; 20]);
    openssl::rand::rand_bytes(secret.as_mut_slice()).map_err(failed)?;
    conn.transaction(|conn| {
        let me = own(conn, who, officer_id)?;
        if me.has_second_factor() {
            return Err(AdminError::Conflict(
                "a second factor is already set up; remove it first".into(),
            ));
        }
        store::begin(conn, me.id, &sealer.seal(secret.as_slice(), me.id)?)?;
        enrollment(secret.as_slice(), &me.username)
    })
}

/// The unconfirmed enrollment, to show its QR code again.
pub fn pending(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    officer_id: i64,
    sealer: &SecretBox,
) -> Result<Option<Enrollment>, AdminError> {
    let me = own(conn, who, officer_id)?;
    match (&me.totp_secret, me.has_second_factor()) {
        (Some(sealed), false) => Ok(Some(enrollment(
            &sealer.open(sealed, me.id)?,
            &me.username,
        )?)),
        _ => Ok(None),
    }
}

/// Confirm the enrollment with a current code; returns the recovery codes,
/// which exist only in this answer.
pub fn confirm(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    officer_id: i64,
    code: &str,
    sealer: &SecretBox,
) -> Result<Vec<String>, AdminError> {
    conn.transaction(|conn| {
        let me = own(conn, who, officer_id)?;
        let (Some(sealed), false) = (&me.totp_secret, me.has_second_factor()) else {
            return Err(AdminError::Conflict("there is no set-up to confirm".into()));
        };
        let secret = sealer.open(sealed, me.id)?;
        let Some(step) = totp(&secret, &me.username)?.check_current(code.trim()) else {
            return Err(AdminError::refused(
                "code",
                "that code is not the current one: check the device's clock and try the next",
            ));
        };
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        let mut hashes = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let mut raw = [0u8; 10];
            openssl::rand::rand_bytes(&mut raw).map_err(failed)?;
            let code = data_encoding::BASE32_NOPAD
                .encode(&raw)
                .to_ascii_lowercase();
            hashes.push(openssl::sha::sha256(code.as_bytes()));
            codes.push(code);
        }
        store::enable(
            conn,
            me.id,
            i64::try_from(step).unwrap_or(i64::MAX),
            &hashes,
        )?;
        audit::record(
            conn,
            &AuditEvent::new(who.username, AuditKind::OfficerSecondFactorEnabled)
                .target(format!("admin:{}", me.username)),
        )?;
        Ok(codes)
    })
}

/// Remove the officer's own second factor; refused when the installation
/// requires one of the officer's role.
pub fn remove(
    conn: &mut PgConnection,
    who: &Actor<'_>,
    officer_id: i64,
    required: bool,
) -> Result<(), AdminError> {
    if required {
        return Err(AdminError::Conflict(
            "this installation requires a second factor for your role".into(),
        ));
    }
    conn.transaction(|conn| {
        let me = own(conn, who, officer_id)?;
        store::disable(conn, me.id)?;
        audit::record(
            conn,
            &AuditEvent::new(who.username, AuditKind::OfficerSecondFactorDisabled)
                .target(format!("admin:{}", me.username)),
        )?;
        Ok(())
    })
}

/// How a code was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Totp,
    /// A recovery code, now spent; `left` remain.
    RecoveryCode {
        left: i64,
    },
}

/// Check a login's second factor: a current TOTP code not used before, or
/// an unspent recovery code. `None`: refused.
pub fn check(
    conn: &mut PgConnection,
    officer_id: i64,
    code: &str,
    sealer: &SecretBox,
) -> Result<Option<Accepted>, AdminError> {
    let me = admins::by_id(conn, officer_id)?;
    let (Some(sealed), true) = (&me.totp_secret, me.has_second_factor()) else {
        return Ok(None);
    };
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let secret = sealer.open(sealed, me.id)?;
        let Some(step) = totp(&secret, &me.username)?.check_current(code) else {
            return Ok(None);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        return Ok(store::accept_step(conn, me.id, step)?.then_some(Accepted::Totp));
    }
    let hash = openssl::sha::sha256(code.to_ascii_lowercase().as_bytes());
    if store::use_recovery_code(conn, me.id, &hash)? {
        let left = store::recovery_codes_left(conn, me.id)?;
        return Ok(Some(Accepted::RecoveryCode { left }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> SecretBox {
        let pass = Passphrase::generated(b"0123456789abcdef0123456789abcdef".to_vec(), "t");
        SecretBox::from_passphrase(&pass).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_officer_and_key() {
        let s = sealer();
        let sealed = s.seal(b"twenty bytes secret!", 7).unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"twenty"));
        assert_eq!(
            s.open(&sealed, 7).unwrap().as_slice(),
            b"twenty bytes secret!"
        );
        assert!(s.open(&sealed, 8).is_err());
        let other = SecretBox::from_passphrase(&Passphrase::generated(
            b"another passphrase of 32 bytes!!".to_vec(),
            "t",
        ))
        .unwrap();
        assert!(other.open(&sealed, 7).is_err());
        assert!(s.open(&sealed[..10], 7).is_err());
    }

    #[test]
    fn the_otpauth_url_names_issuer_account_and_secret() {
        let e = enrollment(b"twenty bytes secret!", "alice").unwrap();
        assert!(
            e.otpauth_url.starts_with("otpauth://totp/scepd:alice?"),
            "{}",
            e.otpauth_url
        );
        assert!(e
            .otpauth_url
            .contains(&format!("secret={}", e.secret_base32)));
    }
}

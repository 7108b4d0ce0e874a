//! The profile-signing identity and the CMS SignedData around a profile.
//!
//! Devices show a signed profile as "Verified" when the signer chains to a
//! trusted root, and refuse a profile whose content was altered. The signer
//! lives next to the CA in `<data>/ca/profile-signer.{crt,key}`: created at
//! bootstrap, issued by the CA with digitalSignature and emailProtection
//! (the S/MIME signing purpose that `openssl smime -verify` checks by
//! default). An imported signer may sit there instead, with its
//! intermediates in `profile-signer-chain.pem`.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use openssl::bn::{BigNum, MsbOption};
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::{X509Name, X509};

use super::MobileconfigError;
use crate::ca::key_file::Passphrase;
use crate::ca::{self, CaIdentity, Eku, IssueParams, KeySpec, KeyUsage};
use crate::key_store::IdentityFiles;

/// Certificate, key and chain (without the signer) used to sign profiles.
pub struct ProfileSigner {
    pub identity: CaIdentity,
    pub chain: Vec<X509>,
}

const SIGNER_VALIDITY_DAYS: i64 = 2 * 365;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MobileconfigError + '_ {
    move |source| MobileconfigError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The signer's intermediates, when an imported signer has any.
fn chain_path(data: &Path) -> PathBuf {
    data.join("ca").join("profile-signer-chain.pem")
}

/// Issue a new signing certificate from `ca`.
fn issue_signer(ca: &CaIdentity) -> Result<CaIdentity, MobileconfigError> {
    let key = ca::generate_key(KeySpec::Rsa(2048))?;
    let public = openssl::pkey::PKey::public_key_from_der(&key.public_key_to_der()?)?;
    let ca_cn = ca
        .subject()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_else(|| "scepd".into());
    let mut name = X509Name::builder()?;
    if let Some(org) = ca
        .subject()
        .entries_by_nid(Nid::ORGANIZATIONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
    {
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, &org)?;
    }
    name.append_entry_by_nid(Nid::COMMONNAME, &format!("{ca_cn} Profile Signing"))?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    serial.add_word(1)?;
    let now = Utc::now();
    let cert = ca::issue(
        ca,
        &IssueParams {
            spki_der: None,
            public_key: &public,
            subject: &name,
            sans: &[],
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(SIGNER_VALIDITY_DAYS),
            key_usage: &[KeyUsage::DigitalSignature],
            extended_key_usage: &[Eku::EmailProtection],
            crl_url: None,
            ocsp_url: None,
            digest: ca.default_digest(),
            serial: &serial,
        },
    )?;
    Ok(CaIdentity::new(cert, key)?)
}

fn load_chain(path: &Path) -> Result<Vec<X509>, MobileconfigError> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let pem = fs::read(path).map_err(io(path))?;
    Ok(X509::stack_from_pem(&pem)?)
}

/// Load the signer from `<data>/ca`, or issue one from `ca` when it is
/// missing, expires within 30 days, or (without an imported chain) was not
/// issued by the current CA.
pub fn ensure_signer(
    data: &Path,
    ca: &CaIdentity,
    pass: &Passphrase,
) -> Result<ProfileSigner, MobileconfigError> {
    let files = IdentityFiles::new(data, "profile-signer", pass);
    let chain_file = chain_path(data);
    let extra = load_chain(&chain_file)?;
    if files.exists() {
        let id = files.load()?;
        let fresh = id.not_after() > Utc::now() + Duration::days(30);
        let ca_key = ca.public_key()?;
        let ours = !extra.is_empty() || id.cert().verify(&ca_key)?;
        if fresh && ours {
            let mut chain = extra;
            chain.push(ca.cert().clone());
            return Ok(ProfileSigner {
                identity: id,
                chain,
            });
        }
        tracing::info!("replacing the profile-signing certificate");
    }
    let id = issue_signer(ca)?;
    files.save(&id)?;
    // An imported chain belonged to the replaced signer.
    if chain_file.exists() {
        fs::remove_file(&chain_file).map_err(io(&chain_file))?;
    }
    Ok(ProfileSigner {
        identity: id,
        chain: vec![ca.cert().clone()],
    })
}

/// CMS SignedData (DER) with the profile attached and the signer's
/// certificate and chain included, as Apple devices expect.
pub fn sign(xml: &[u8], signer: &ProfileSigner) -> Result<Vec<u8>, MobileconfigError> {
    let mut certs = Stack::new()?;
    for c in &signer.chain {
        certs.push(c.clone())?;
    }
    // BINARY: the XML is signed byte for byte, not as canonical MIME text.
    let p7 = Pkcs7::sign(
        signer.identity.cert(),
        signer.identity.private_key()?,
        &certs,
        xml,
        Pkcs7Flags::BINARY,
    )?;
    Ok(p7.to_der()?)
}

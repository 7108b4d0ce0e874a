//! CA and RA identities (certificate + private key): creation of a
//! self-signed root (RFC 5280 §4.2.1.9 basicConstraints, §4.2.1.3 keyUsage),
//! the SCEP RA certificate (RFC 8894 §2.1: the CA/RA certificate whose RSA key
//! receives the enveloped request), import of an existing CA and rollover
//! (RFC 8894 §3.5.2 GetNextCACert).

use std::fmt;

use chrono::{DateTime, Duration, TimeZone, Utc};
use der::Decode;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNumRef;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::x509::extension::{BasicConstraints, KeyUsage as KuExt};
use openssl::x509::{
    X509Builder, X509Extension, X509KeyUsage, X509Name, X509NameRef, X509Ref, X509,
};
use x509_cert::ext::pkix::BasicConstraints as BcDer;
use x509_cert::Certificate;

use super::der_ext::{
    aki_extension, aki_value, asn1_time, eku_value, extension, key_identifier, ski_extension,
    OID_EKU,
};
use super::pkcs11::HsmKey;
use super::signer::CaKey;
use super::{generate_key, random_serial, sha256_fingerprint, CaError, KeySpec};

/// Backdating of notBefore so that devices with slightly slow clocks accept
/// a certificate minted a moment ago.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// A certificate with its private key, plus values precomputed once so that
/// per-enrollment issuance does not re-derive them from the certificate.
pub struct CaIdentity {
    cert: X509,
    key: CaKey,
    subject: X509Name,
    subject_der: Vec<u8>,
    key_id: Vec<u8>,
    aki_value: Vec<u8>,
    fingerprint: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    digest: MessageDigest,
}

impl CaIdentity {
    /// Pairs a certificate with its key; fails if the key is not the
    /// certificate's key. Does not require the certificate to be a CA (the
    /// RA identity uses this type too); see [`import_ca`] for that check.
    pub fn new(cert: X509, key: PKey<Private>) -> Result<Self, CaError> {
        if !cert.public_key()?.public_eq(&key) {
            return Err(CaError::KeyMismatch);
        }
        Self::with_key(cert, CaKey::Software(key))
    }

    /// Pairs a certificate with a key in an HSM; fails unless the key signs
    /// what the certificate's public key verifies.
    pub fn with_hsm_key(cert: X509, key: HsmKey) -> Result<Self, CaError> {
        let public = cert.public_key()?;
        let probe = b"scepd: does this key belong to this certificate?";
        let md = digest_for(&public)?;
        let sig = key.sign(md, probe)?;
        let mut v = openssl::sign::Verifier::new(md, &public)?;
        if !public.public_eq(key.public_key()) || !v.verify_oneshot(&sig, probe).unwrap_or(false) {
            return Err(CaError::Hsm(format!(
                "the key labelled {:?} in token {:?} is not the key of this certificate",
                key.label(),
                key.token()
            )));
        }
        Self::with_key(cert, CaKey::Pkcs11(key))
    }

    /// [`new`](Self::new) or [`with_hsm_key`](Self::with_hsm_key).
    pub fn from_ca_key(cert: X509, key: CaKey) -> Result<Self, CaError> {
        match key {
            CaKey::Software(k) => Self::new(cert, k),
            CaKey::Pkcs11(k) => Self::with_hsm_key(cert, k),
        }
    }

    fn with_key(cert: X509, key: CaKey) -> Result<Self, CaError> {
        let public = cert.public_key()?;
        let subject = cert.subject_name().to_owned()?;
        let subject_der = subject.to_der()?;
        // Prefer the SKI the certificate declares so AKIs we write match what
        // path builders look up; fall back to the RFC 5280 method (1) hash.
        let key_id = match cert.subject_key_id() {
            Some(ski) => ski.as_slice().to_vec(),
            None => key_identifier(&public)?,
        };
        let aki_value = aki_value(&key_id)?;
        let fingerprint = sha256_fingerprint(&cert)?;
        let not_before = to_chrono(cert.not_before())?;
        let not_after = to_chrono(cert.not_after())?;
        let digest = digest_for(&public)?;
        Ok(CaIdentity {
            cert,
            key,
            subject,
            subject_der,
            key_id,
            aki_value,
            fingerprint,
            not_before,
            not_after,
            digest,
        })
    }

    /// Loads a certificate and its PEM private key (PKCS#8 or traditional).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CaError> {
        let cert = X509::from_pem(cert_pem).map_err(|e| CaError::BadCertificate(e.to_string()))?;
        // The OpenSSL error could in principle quote key material; keep it out.
        let key = PKey::private_key_from_pem(key_pem).map_err(|_| CaError::BadKey)?;
        Self::new(cert, key)
    }

    pub fn cert(&self) -> &X509 {
        &self.cert
    }

    /// The signing key, in memory or in an HSM.
    pub fn key(&self) -> &CaKey {
        &self.key
    }

    /// The key when it is in memory (RA and signer identities always are);
    /// `KeyInHsm` for a CA key in an HSM.
    pub fn private_key(&self) -> Result<&PKeyRef<Private>, CaError> {
        self.key.software().ok_or(CaError::KeyInHsm)
    }

    pub fn public_key(&self) -> Result<PKey<Public>, CaError> {
        Ok(self.cert.public_key()?)
    }

    pub fn subject(&self) -> &X509NameRef {
        &self.subject
    }

    /// DER of the subject Name (e.g. for PKCS#7 IssuerAndSerialNumber).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The subject key identifier written into issued certificates' AKI.
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// Uppercase hex SHA-256 of the certificate DER.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// Digest this identity signs CRLs and certificates it creates with:
    /// SHA-384 for P-384 keys, SHA-512 for P-521, otherwise SHA-256.
    pub fn default_digest(&self) -> MessageDigest {
        self.digest
    }

    pub fn cert_pem(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.cert.to_pem()?)
    }

    pub fn cert_der(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.cert.to_der()?)
    }

    /// Unencrypted PKCS#8 PEM; the caller is responsible for protecting it.
    pub fn key_pem(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.private_key()?.private_key_to_pem_pkcs8()?)
    }

    pub(crate) fn aki_value(&self) -> &[u8] {
        &self.aki_value
    }
}

impl fmt::Debug for CaIdentity {
    // Never print the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaIdentity")
            .field("subject", &name_to_string(&self.subject))
            .field("fingerprint", &self.fingerprint)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn name_to_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let k = e.object().nid().short_name().unwrap_or("?");
            let v = e.data().to_string().unwrap_or_default();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn to_chrono(t: &openssl::asn1::Asn1TimeRef) -> Result<DateTime<Utc>, CaError> {
    let epoch = Asn1Time::from_unix(0)?;
    let d = epoch.diff(t)?;
    let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
    Utc.timestamp_opt(secs, 0)
        .single()
        .ok_or_else(|| CaError::InvalidValidity(format!("certificate time {t} out of range")))
}

pub(crate) fn digest_for<T: openssl::pkey::HasPublic>(
    key: &PKeyRef<T>,
) -> Result<MessageDigest, CaError> {
    if key.id() == Id::EC {
        let curve = key.ec_key()?.group().curve_name();
        if curve == Some(Nid::SECP384R1) {
            return Ok(MessageDigest::sha384());
        }
        if curve == Some(Nid::SECP521R1) {
            return Ok(MessageDigest::sha512());
        }
    }
    Ok(MessageDigest::sha256())
}

fn build_name(organization: &str, common_name: &str) -> Result<X509Name, CaError> {
    if common_name.trim().is_empty() {
        return Err(CaError::InvalidName("common name must not be empty".into()));
    }
    let mut b = X509Name::builder()?;
    if !organization.trim().is_empty() {
        b.append_entry_by_nid(Nid::ORGANIZATIONNAME, organization)?;
    }
    b.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(b.build())
}

/// Fields shared by every certificate this module mints.
struct CertTemplate<'a> {
    subject: &'a X509NameRef,
    issuer: &'a X509NameRef,
    public_key: &'a PKeyRef<Public>,
    serial: &'a BigNumRef,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    extensions: Vec<X509Extension>,
}

fn build_and_sign(
    t: CertTemplate<'_>,
    signer: &CaKey,
    digest: MessageDigest,
) -> Result<X509, CaError> {
    if t.not_before >= t.not_after {
        return Err(CaError::InvalidValidity(format!(
            "notBefore {} is not before notAfter {}",
            t.not_before, t.not_after
        )));
    }
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    b.set_serial_number(t.serial.to_asn1_integer()?.as_ref())?;
    b.set_subject_name(t.subject)?;
    b.set_issuer_name(t.issuer)?;
    b.set_pubkey(t.public_key)?;
    b.set_not_before(asn1_time(t.not_before)?.as_ref())?;
    b.set_not_after(asn1_time(t.not_after)?.as_ref())?;
    for ext in t.extensions {
        b.append_extension(ext)?;
    }
    signer.sign_x509(b, digest)
}

fn public_of<T: HasPublic>(key: &PKeyRef<T>) -> Result<PKey<Public>, CaError> {
    Ok(PKey::public_key_from_der(&key.public_key_to_der()?)?)
}

fn validity(days: u32) -> (DateTime<Utc>, DateTime<Utc>) {
    let now = Utc::now();
    (now - CLOCK_SKEW, now + Duration::days(i64::from(days)))
}

/// Creates a self-signed root CA certificate for `key`.
///
/// basicConstraints is critical CA:TRUE with pathLenConstraint 0 because this
/// CA only issues end-entity certificates; keyUsage is critical
/// keyCertSign + cRLSign.
pub fn new_root_ca(
    key: &PKeyRef<Private>,
    common_name: &str,
    organization: &str,
    validity_days: u32,
) -> Result<X509, CaError> {
    let key = CaKey::Software(key.to_owned());
    new_root_ca_with(&key, common_name, organization, validity_days)
}

/// As [`new_root_ca`] with a key in memory or in an HSM.
pub fn new_root_ca_with(
    key: &CaKey,
    common_name: &str,
    organization: &str,
    validity_days: u32,
) -> Result<X509, CaError> {
    let name = build_name(organization, common_name)?;
    let public = key.public_key()?;
    let key_id = key_identifier(&public)?;
    let (not_before, not_after) = validity(validity_days);
    let serial = random_serial()?;
    let extensions = vec![
        BasicConstraints::new().critical().ca().pathlen(0).build()?,
        KuExt::new().critical().key_cert_sign().crl_sign().build()?,
        ski_extension(&key_id)?,
        aki_extension(&aki_value(&key_id)?)?,
    ];
    let t = CertTemplate {
        subject: &name,
        issuer: &name,
        public_key: &public,
        serial: &serial,
        not_before,
        not_after,
        extensions,
    };
    build_and_sign(t, key, digest_for(&public)?)
}

/// Creates the RA certificate, signed by `ca`.
///
/// SCEP clients encrypt the request to this certificate with RSA key
/// transport and verify its signature on responses, hence the RSA-only rule
/// and keyUsage digitalSignature + keyEncipherment. Validity is clamped to
/// the CA's notAfter.
pub fn new_ra_cert(
    ca: &CaIdentity,
    ra_key: &PKeyRef<Private>,
    common_name: &str,
    validity_days: u32,
) -> Result<X509, CaError> {
    let usage = KuExt::new()
        .critical()
        .digital_signature()
        .key_encipherment()
        .build()?;
    ra_cert(ca, ra_key, common_name, validity_days, usage)
}

/// The RA's encryption certificate: keyEncipherment alone, as NDES
/// publishes beside its signing certificate. Clients that choose the
/// envelope's recipient by keyUsage look for exactly this, and without it
/// encrypt to the CA, whose key must not decrypt (a PKCS#1 v1.5 decryption
/// oracle on a signing key forges signatures).
pub fn new_ra_encryption_cert(
    ca: &CaIdentity,
    key: &PKeyRef<Private>,
    common_name: &str,
    validity_days: u32,
) -> Result<X509, CaError> {
    let usage = KuExt::new().critical().key_encipherment().build()?;
    ra_cert(ca, key, common_name, validity_days, usage)
}

fn ra_cert(
    ca: &CaIdentity,
    ra_key: &PKeyRef<Private>,
    common_name: &str,
    validity_days: u32,
    usage: X509Extension,
) -> Result<X509, CaError> {
    if ra_key.id() != Id::RSA {
        return Err(CaError::RaKeyNotRsa);
    }
    let org = ca
        .subject()
        .entries_by_nid(Nid::ORGANIZATIONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default();
    let name = build_name(&org, common_name)?;
    let (not_before, not_after) = validity(validity_days);
    let serial = random_serial()?;
    let public = public_of(ra_key)?;
    let extensions = vec![
        BasicConstraints::new().critical().build()?,
        usage,
        ski_extension(&key_identifier(ra_key)?)?,
        aki_extension(ca.aki_value())?,
    ];
    let t = CertTemplate {
        subject: &name,
        issuer: ca.subject(),
        public_key: &public,
        serial: &serial,
        not_before,
        not_after: not_after.min(ca.not_after()),
        extensions,
    };
    build_and_sign(t, ca.key(), ca.default_digest())
}

/// id-kp-OCSPSigning (RFC 6960 §4.2.2.2).
const ID_KP_OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1); its value is NULL.
const ID_PKIX_OCSP_NOCHECK: &str = "1.3.6.1.5.5.7.48.1.5";

/// A delegated OCSP responder certificate (RFC 6960 §4.2.2.2), signed by
/// `ca` for `key`: id-kp-OCSPSigning, keyUsage digitalSignature, and
/// id-pkix-ocsp-nocheck, so clients do not ask about the responder itself
/// (§4.2.2.2.1); hence its short life, clamped to the CA's.
pub fn new_ocsp_responder(
    ca: &CaIdentity,
    key: &PKeyRef<Private>,
    validity: Duration,
) -> Result<X509, CaError> {
    let org = first_entry(ca.cert(), Nid::ORGANIZATIONNAME);
    let cn = first_entry(ca.cert(), Nid::COMMONNAME);
    let name = build_name(&org, &format!("{cn} OCSP responder"))?;
    let now = Utc::now();
    let serial = random_serial()?;
    let public = public_of(key)?;
    let extensions = vec![
        BasicConstraints::new().critical().build()?,
        KuExt::new().critical().digital_signature().build()?,
        extension(OID_EKU, false, &eku_value(&[ID_KP_OCSP_SIGNING])?)?,
        extension(ID_PKIX_OCSP_NOCHECK, false, &[0x05, 0x00])?,
        ski_extension(&key_identifier(key)?)?,
        aki_extension(ca.aki_value())?,
    ];
    let t = CertTemplate {
        subject: &name,
        issuer: ca.subject(),
        public_key: &public,
        serial: &serial,
        not_before: now - CLOCK_SKEW,
        not_after: (now + validity).min(ca.not_after()),
        extensions,
    };
    build_and_sign(t, ca.key(), ca.default_digest())
}

/// Imports an existing CA from PEM and checks it can act as our issuer:
/// key matches, basicConstraints CA:TRUE, keyUsage (if present) includes
/// keyCertSign, and it has not expired.
pub fn import_ca(
    cert_pem: &[u8],
    key_pem: &[u8],
    key_passphrase: Option<&[u8]>,
) -> Result<CaIdentity, CaError> {
    let id = match key_passphrase {
        Some(pass) => {
            let cert =
                X509::from_pem(cert_pem).map_err(|e| CaError::BadCertificate(e.to_string()))?;
            // OpenSSL reads every encrypted form a CA is exported in:
            // PKCS#8 with PBKDF2 or scrypt, and the traditional PEM one.
            let key = PKey::private_key_from_pem_passphrase(key_pem, pass)
                .map_err(|_| CaError::WrongPassphrase("the import's passphrase file".into()))?;
            CaIdentity::new(cert, key)?
        }
        None if super::key_file::is_encrypted(key_pem) => return Err(CaError::KeyNeedsPassphrase),
        None => CaIdentity::from_pem(cert_pem, key_pem)?,
    };
    let der = id.cert_der()?;
    let parsed = Certificate::from_der(&der).map_err(|e| CaError::BadCertificate(e.to_string()))?;
    let is_ca = matches!(
        parsed.tbs_certificate().get_extension::<BcDer>(),
        Ok(Some((_, BcDer { ca: true, .. })))
    );
    if !is_ca {
        return Err(CaError::NotACa);
    }
    if let Some(ku) = id.cert().key_usage() {
        if !ku.contains(X509KeyUsage::KEY_CERT_SIGN) {
            return Err(CaError::CannotSignCertificates);
        }
    }
    if id.not_after() <= Utc::now() {
        return Err(CaError::Expired);
    }
    Ok(id)
}

fn first_entry(cert: &X509Ref, nid: Nid) -> String {
    cert.subject_name()
        .entries_by_nid(nid)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default()
}

/// Creates the next CA (new key of `spec`, self-signed, valid from now) and a
/// new RA certificate under it, for publication via GetNextCACert before the
/// switch. Empty `common_name`/`organization` reuse the current CA's values.
/// The RA key is RSA: the same size as `spec` when that is RSA, else 2048.
pub fn rollover(
    current: &CaIdentity,
    spec: KeySpec,
    common_name: &str,
    organization: &str,
    validity_days: u32,
) -> Result<(CaIdentity, CaIdentity), CaError> {
    let key = CaKey::Software(generate_key(spec)?);
    rollover_with(current, key, spec, common_name, organization, validity_days)
}

/// As [`rollover`] with the next CA's key made by the caller (in an HSM).
pub fn rollover_with(
    current: &CaIdentity,
    ca_key: CaKey,
    spec: KeySpec,
    common_name: &str,
    organization: &str,
    validity_days: u32,
) -> Result<(CaIdentity, CaIdentity), CaError> {
    let cn = if common_name.trim().is_empty() {
        first_entry(current.cert(), Nid::COMMONNAME)
    } else {
        common_name.to_string()
    };
    let org = if organization.trim().is_empty() {
        first_entry(current.cert(), Nid::ORGANIZATIONNAME)
    } else {
        organization.to_string()
    };
    let ca_cert = new_root_ca_with(&ca_key, &cn, &org, validity_days)?;
    let next_ca = CaIdentity::from_ca_key(ca_cert, ca_key)?;

    let ra_spec = match spec {
        KeySpec::Rsa(bits) => KeySpec::Rsa(bits),
        _ => KeySpec::Rsa(2048),
    };
    let ra_key = generate_key(ra_spec)?;
    let ra_cert = new_ra_cert(&next_ca, &ra_key, &format!("{cn} RA"), validity_days)?;
    let next_ra = CaIdentity::new(ra_cert, ra_key)?;
    Ok((next_ca, next_ra))
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;

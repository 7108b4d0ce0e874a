//! CA keys held in an HSM through PKCS#11 (`cryptoki`): opening the
//! token (module, token label or slot, user PIN), finding or generating a
//! key pair by label, and signing with it. The key never leaves the token;
//! scepd keeps an object handle and the public key.
//!
//! Sessions: PKCS#11 allows one operation at a time per session, so the
//! process opens a few (one per CPU) and a signer takes the first free one.
//! A login is per application and token, so one login serves them all.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::Decode;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;

use super::{CaError, KeySpec};

/// Where the token is and how to log in (`SCEPD_PKCS11_*`).
#[derive(Clone)]
pub struct Pkcs11Settings {
    pub module: PathBuf,
    /// The token's label; with neither this nor `slot`, the only
    /// initialized token.
    pub token_label: Option<String>,
    pub slot: Option<u64>,
    pub pin: String,
    /// Label of the CA key created by `scepd init` (or used if present).
    pub key_label: String,
}

impl std::fmt::Debug for Pkcs11Settings {
    // The PIN stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("slot", &self.slot)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

fn hsm_err(msg: impl Into<String>) -> CaError {
    CaError::Hsm(msg.into())
}

/// An open, logged-in token.
pub struct Hsm {
    // Declared before `ctx`: sessions close before the library finalizes.
    sessions: Vec<Mutex<Session>>,
    _ctx: Pkcs11,
    token: String,
}

/// One library initialisation per process: a second `C_Initialize` fails,
/// and finalizing one context would end the other's sessions.
static OPEN: OnceLock<Arc<Hsm>> = OnceLock::new();

impl Hsm {
    /// Opens the token and logs in, or says precisely why not.
    pub fn open(s: &Pkcs11Settings) -> Result<Arc<Hsm>, CaError> {
        if let Some(h) = OPEN.get() {
            return Ok(h.clone());
        }
        let h = Arc::new(Self::open_new(s)?);
        Ok(OPEN.get_or_init(|| h).clone())
    }

    fn open_new(s: &Pkcs11Settings) -> Result<Hsm, CaError> {
        let module = s.module.display();
        if !s.module.exists() {
            return Err(hsm_err(format!(
                "PKCS#11 module {module} does not exist (SCEPD_PKCS11_MODULE)"
            )));
        }
        let ctx = Pkcs11::new(&s.module)
            .map_err(|e| hsm_err(format!("cannot load PKCS#11 module {module}: {e}")))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| hsm_err(format!("PKCS#11 module {module} did not initialize: {e}")))?;
        let slot = find_slot(&ctx, s)?;
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| hsm_err(format!("token in slot {slot}: {e}")))?;
        let token = info.label().trim().to_string();
        if !info.user_pin_initialized() {
            return Err(hsm_err(format!("token {token:?} has no user PIN set")));
        }
        if info.user_pin_locked() {
            return Err(hsm_err(format!(
                "the user PIN of token {token:?} is locked after too many wrong PINs; \
                 the security officer must reset it"
            )));
        }
        let n = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            let session = ctx
                .open_rw_session(slot)
                .map_err(|e| hsm_err(format!("cannot open a session on token {token:?}: {e}")))?;
            sessions.push(Mutex::new(session));
        }
        let first = lock(&sessions[0]);
        match first.login(UserType::User, Some(&AuthPin::new(s.pin.clone().into()))) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(hsm_err(format!(
                    "wrong PIN for token {token:?} (SCEPD_PKCS11_PIN or SCEPD_PKCS11_PIN_FILE)"
                )))
            }
            Err(P11Error::Pkcs11(RvError::PinLocked, _)) => {
                return Err(hsm_err(format!(
                    "the user PIN of token {token:?} is locked; the security officer must \
                     reset it"
                )))
            }
            Err(e) => return Err(hsm_err(format!("cannot log in to token {token:?}: {e}"))),
        }
        drop(first);
        Ok(Hsm {
            sessions,
            _ctx: ctx,
            token,
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// A free session, else waits for the first one.
    fn session(&self) -> MutexGuard<'_, Session> {
        for s in &self.sessions {
            if let Ok(g) = s.try_lock() {
                return g;
            }
        }
        lock(&self.sessions[0])
    }

    fn find(&self, class: ObjectClass, label: &str) -> Result<Option<ObjectHandle>, CaError> {
        let s = self.session();
        let found = s
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(|e| hsm_err(format!("searching token {:?}: {e}", self.token)))?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(hsm_err(format!(
                "token {:?} holds several keys labelled {label:?}; give each a unique label",
                self.token
            ))),
        }
    }

    /// The key pair labelled `label`.
    pub fn key(self: &Arc<Self>, label: &str) -> Result<HsmKey, CaError> {
        self.find_key(label)?.ok_or_else(|| {
            hsm_err(format!(
                "no private key labelled {label:?} in token {:?}",
                self.token
            ))
        })
    }

    /// The key pair labelled `label`, if the token has one.
    pub fn find_key(self: &Arc<Self>, label: &str) -> Result<Option<HsmKey>, CaError> {
        let Some(private) = self.find(ObjectClass::PRIVATE_KEY, label)? else {
            return Ok(None);
        };
        let Some(public) = self.find(ObjectClass::PUBLIC_KEY, label)? else {
            return Err(hsm_err(format!(
                "no public key labelled {label:?} in token {:?} (scepd reads the public half \
                 from its own object)",
                self.token
            )));
        };
        let public = self.public_key(public)?;
        Ok(Some(HsmKey {
            hsm: self.clone(),
            handle: private,
            id: public.id(),
            public,
            label: label.to_string(),
        }))
    }

    /// Generates a key pair labelled `label` in the token, refusing a
    /// label already taken.
    pub fn generate(self: &Arc<Self>, label: &str, spec: KeySpec) -> Result<HsmKey, CaError> {
        if self.find(ObjectClass::PRIVATE_KEY, label)?.is_some() {
            return Err(hsm_err(format!(
                "token {:?} already holds a key labelled {label:?}",
                self.token
            )));
        }
        let label_attr = Attribute::Label(label.as_bytes().to_vec());
        let id = Attribute::Id(label.as_bytes().to_vec());
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            label_attr.clone(),
            id.clone(),
        ];
        let (mechanism, mut public) = match spec {
            KeySpec::Rsa(bits @ (2048 | 3072 | 4096)) => (
                Mechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(u64::from(bits).into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                ],
            ),
            KeySpec::Rsa(_) => return Err(CaError::UnsupportedKeySpec(spec.to_string())),
            KeySpec::EcP256 => (
                Mechanism::EccKeyPairGen,
                vec![ec_params(Nid::X9_62_PRIME256V1)?],
            ),
            KeySpec::EcP384 => (Mechanism::EccKeyPairGen, vec![ec_params(Nid::SECP384R1)?]),
        };
        public.extend([
            Attribute::Token(true),
            Attribute::Verify(true),
            label_attr,
            id,
        ]);
        let generated = self
            .session()
            .generate_key_pair(&mechanism, &public, &private);
        generated.map_err(|e| {
            hsm_err(format!(
                "generating a {spec} key in token {:?}: {e}",
                self.token
            ))
        })?;
        self.key(label)
    }

    fn public_key(&self, handle: ObjectHandle) -> Result<PKey<Public>, CaError> {
        let err = |e: P11Error| hsm_err(format!("reading a public key in {:?}: {e}", self.token));
        let attrs = self
            .session()
            .get_attributes(
                handle,
                &[
                    AttributeType::KeyType,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
            .map_err(err)?;
        let (mut kind, mut n, mut e, mut params, mut point) = (None, None, None, None, None);
        for a in attrs {
            match a {
                Attribute::KeyType(k) => kind = Some(k),
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                Attribute::EcParams(v) => params = Some(v),
                Attribute::EcPoint(v) => point = Some(v),
                _ => {}
            }
        }
        match (kind, n, e, params, point) {
            (Some(KeyType::RSA), Some(n), Some(e), _, _) => {
                let rsa =
                    Rsa::from_public_components(BigNum::from_slice(&n)?, BigNum::from_slice(&e)?)?;
                Ok(PKey::from_rsa(rsa)?)
            }
            (Some(KeyType::EC), _, _, Some(params), Some(point)) => ec_public(&params, &point),
            _ => Err(hsm_err(format!(
                "the key in token {:?} is neither RSA nor EC",
                self.token
            ))),
        }
    }
}

fn lock(m: &Mutex<Session>) -> MutexGuard<'_, Session> {
    // A panic while holding a session leaves nothing half-done in it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn find_slot(ctx: &Pkcs11, s: &Pkcs11Settings) -> Result<Slot, CaError> {
    let module = s.module.display();
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| hsm_err(format!("listing the tokens of {module}: {e}")))?;
    if let Some(id) = s.slot {
        return slots.into_iter().find(|sl| sl.id() == id).ok_or_else(|| {
            hsm_err(format!(
                "no initialized token in slot {id} of {module} (SCEPD_PKCS11_SLOT)"
            ))
        });
    }
    let mut labels = Vec::new();
    for slot in &slots {
        let info = ctx
            .get_token_info(*slot)
            .map_err(|e| hsm_err(format!("token in slot {slot}: {e}")))?;
        labels.push((*slot, info.label().trim().to_string()));
    }
    let names = || {
        labels
            .iter()
            .map(|(_, l)| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &s.token_label {
        Some(want) => labels
            .iter()
            .find(|(_, l)| l == want)
            .map(|(slot, _)| *slot)
            .ok_or_else(|| {
                hsm_err(format!(
                    "no token labelled {want:?} in {module} (tokens present: {})",
                    if labels.is_empty() {
                        "none".into()
                    } else {
                        names()
                    }
                ))
            }),
        None if labels.len() == 1 => Ok(labels[0].0),
        None => Err(hsm_err(format!(
            "{module} has {} initialized tokens ({}): choose one with SCEPD_PKCS11_TOKEN",
            labels.len(),
            names()
        ))),
    }
}

/// CKA_EC_PARAMS: the curve's OID (RFC 5480 namedCurve).
fn ec_params(curve: Nid) -> Result<Attribute, CaError> {
    let group = EcGroup::from_curve_name(curve)?;
    let key = EcKey::generate(&group)?;
    // The AlgorithmIdentifier's parameters of an SPKI are the namedCurve OID.
    let spki = PKey::from_ec_key(key)?.public_key_to_der()?;
    let parsed = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&spki)?;
    let params = parsed
        .algorithm
        .parameters
        .ok_or_else(|| hsm_err("EC key without curve parameters"))?;
    Ok(Attribute::EcParams(der::Encode::to_der(&params)?))
}

fn ec_public(params: &[u8], point: &[u8]) -> Result<PKey<Public>, CaError> {
    let oid: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::from_der(params)?;
    let nid = match oid.to_string().as_str() {
        "1.2.840.10045.3.1.7" => Nid::X9_62_PRIME256V1,
        "1.3.132.0.34" => Nid::SECP384R1,
        "1.3.132.0.35" => Nid::SECP521R1,
        other => return Err(hsm_err(format!("unsupported EC curve {other}"))),
    };
    let group = EcGroup::from_curve_name(nid)?;
    // CKA_EC_POINT is the DER OCTET STRING of the point (PKCS#11 §2.3.3);
    // some modules give the bare point.
    let raw = der::asn1::OctetString::from_der(point)
        .map(|o| o.as_bytes().to_vec())
        .unwrap_or_else(|_| point.to_vec());
    let mut ctx = BigNumContext::new()?;
    let p = EcPoint::from_bytes(&group, &raw, &mut ctx)?;
    Ok(PKey::from_ec_key(EcKey::from_public_key(&group, &p)?)?)
}

/// A private key in the token.
pub struct HsmKey {
    hsm: Arc<Hsm>,
    handle: ObjectHandle,
    public: PKey<Public>,
    id: Id,
    label: String,
}

impl HsmKey {
    pub fn public_key(&self) -> &PKey<Public> {
        &self.public
    }

    pub fn id(&self) -> Id {
        self.id
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn token(&self) -> &str {
        self.hsm.token()
    }

    /// The signature of `data` with `md`: PKCS#1 v1.5 for RSA (the token
    /// hashes), DER ECDSA-Sig-Value for EC (we hash, the token signs the
    /// digest and returns r||s).
    pub fn sign(&self, md: MessageDigest, data: &[u8]) -> Result<Vec<u8>, CaError> {
        let err = |e: P11Error| {
            hsm_err(format!(
                "signing with key {:?} in token {:?}: {e}",
                self.label,
                self.hsm.token()
            ))
        };
        if self.id == Id::RSA {
            let mechanism = match md.type_() {
                Nid::SHA256 => Mechanism::Sha256RsaPkcs,
                Nid::SHA384 => Mechanism::Sha384RsaPkcs,
                Nid::SHA512 => Mechanism::Sha512RsaPkcs,
                Nid::SHA1 => Mechanism::Sha1RsaPkcs,
                n => return Err(hsm_err(format!("no PKCS#11 RSA mechanism for {n:?}"))),
            };
            return self
                .hsm
                .session()
                .sign(&mechanism, self.handle, data)
                .map_err(err);
        }
        let digest = hash(md, data)?;
        let rs = self
            .hsm
            .session()
            .sign(&Mechanism::Ecdsa, self.handle, &digest)
            .map_err(err)?;
        let (r, s) = rs.split_at(rs.len() / 2);
        let sig =
            EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
        Ok(sig.to_der()?)
    }
}

//! The PKIOperation handler under hostile input, end to end against a real
//! PostgreSQL: `Enroll::pki_operation(profile_name, body, client_ip)` exactly as
//! `POST /scep/<profile>?operation=PKIOperation` calls it (RFC 8894 §3.3).
//!
//! Shared by the `pki_operation` and `pki_operation_signed` fuzz targets and
//! by the replay test the main workspace runs (`tests/it/fuzz_replay.rs`
//! includes this file with `#[path]`), so CI checks the same invariants on
//! the corpus without the sanitizer build.
//!
//! Set up once per process: a migrated database, an EC P-256 CA (issuing
//! costs microseconds, so the rate is bounded by the RA's RSA operations
//! and PostgreSQL, not by the CA), the checked-in fuzzing RA
//! (`fuzz/fixtures/ra.*`, so seeds enveloped to it decrypt), the default
//! organization, four profiles (auto-approve `default`, `manual`, a
//! permissive `wide` one, a disabled one), a pool of minted one-time
//! challenges and the fixed secret `seed-challenge` the seeds carry.
//!
//! Invariants checked on every call (RFC 8894 §3.3.2 and scepd's contract
//! in `Enroll::pki_operation`): the result is `Err(BadRequest)` (HTTP 400)
//! or an `Ok` CertRep signed by the RA whose transactionID and
//! recipientNonce echo the request; with the device key known it must
//! parse with `server::wire::client::parse_cert_rep`, and an issued
//! certificate must be signed by the CA and certify the requested key. Any
//! other `Err` while PostgreSQL answers is an internal error for bad input,
//! i.e. a bug, and panics.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509NameBuilder, X509};
use server::ca::{self, CaIdentity, KeySpec};
use server::challenge::gate::Gate;
use server::challenge::{self, MintRequest};
use server::enroll::{Authority, Enroll, EnrollError};
use server::store::challenges::{self as challenge_rows, NewChallenge};
use server::store::profiles::{self, NewProfile, Profile};
use server::store::{self, orgs, PgPool};
use server::wire::client::{build_request, parse_cert_rep, ClientContent, ClientRequest};
use server::wire::pkcs7_ffi::{scep_nids, sign_with_attributes, AttrKind, AttrSpec};
use server::wire::{
    ContentCipher, DigestAlg, KeyTransport, MessageType, Nonce, PkiStatus, RaIdentity,
    TransactionId,
};

/// The challenge password the seed corpus carries; the harness keeps a
/// one-time challenge with this secret unused before every call.
pub const SEED_CHALLENGE: &str = "seed-challenge";

/// Calls between two truncations of the per-request tables, which keeps a
/// long fuzzing run's database (and the cost of its lookups) bounded.
pub const RESET_EVERY: u64 = 5_000;

/// One-time challenges minted per refill of the pool.
const POOL_REFILL: u32 = 500;

pub fn fixture_ra() -> RaIdentity {
    RaIdentity::new(
        X509::from_pem(include_bytes!("../fixtures/ra.crt")).expect("fixture RA certificate"),
        PKey::private_key_from_pem(include_bytes!("../fixtures/ra.key")).expect("fixture RA key"),
    )
    .expect("fixture RA identity")
}

/// The fixed RSA device key the `pki_operation` seeds are signed with
/// (a throwaway made for fuzzing), so their SUCCESS replies decrypt.
pub fn fixture_device_key() -> PKey<Private> {
    PKey::private_key_from_pem(include_bytes!("../fixtures/device.key"))
        .expect("fixture device key")
}

/// A self-signed signer certificate for `key` (RFC 8894 §2.3).
pub fn self_signed(key: &PKey<Private>, cn: &str) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", cn).expect("CN");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_serial_number(
        &BigNum::from_u32(1)
            .expect("bn")
            .to_asn1_integer()
            .expect("int"),
    )
    .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(key).expect("key");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(2).expect("time"))
        .expect("na");
    b.sign(key, MessageDigest::sha256()).expect("sign");
    b.build()
}

/// A throwaway signer as certmonger writes it: X.509 v1 with a 33-octet
/// serial, which `x509-cert` refuses and OpenSSL reads.
pub fn field_signed(key: &PKey<Private>, cn: &str) -> X509 {
    let plain = self_signed(key, cn);
    let mut b = X509::builder().expect("builder");
    b.set_version(0).expect("version");
    let mut serial = vec![0x5a; 33];
    serial[0] = 0x01;
    b.set_serial_number(
        &BigNum::from_slice(&serial)
            .expect("bn")
            .to_asn1_integer()
            .expect("int"),
    )
    .expect("serial");
    b.set_subject_name(plain.subject_name()).expect("subject");
    b.set_issuer_name(plain.subject_name()).expect("issuer");
    b.set_pubkey(key).expect("key");
    b.set_not_before(plain.not_before()).expect("nb");
    b.set_not_after(plain.not_after()).expect("na");
    b.sign(key, MessageDigest::sha256()).expect("sign");
    b.build()
}

/// A device: its key and the certificates it signs with.
pub struct Device {
    pub key: PKey<Private>,
    pub cert: X509,
    /// The same key in a field-style certificate (`field_signed`).
    pub field_cert: X509,
}

impl Device {
    fn new(key: PKey<Private>, cn: &str) -> Self {
        let cert = self_signed(&key, cn);
        let field_cert = field_signed(&key, cn);
        Self {
            key,
            cert,
            field_cert,
        }
    }
}

/// Creates `scepd_fuzz_<pid>` on the server of `admin_url` (dropping those
/// of fuzzing processes that are gone) and returns its URL.
pub fn scratch_database(admin_url: &str) -> String {
    let mut admin = PgConnection::establish(admin_url).expect("PostgreSQL for fuzzing");
    #[derive(diesel::QueryableByName)]
    struct Db {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let dbs: Vec<Db> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'scepd\\_fuzz\\_%'")
            .load(&mut admin)
            .expect("list databases");
    for db in dbs {
        let alive = db
            .datname
            .rsplit('_')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                db.datname
            ));
        }
    }
    let name = format!("scepd_fuzz_{}", std::process::id());
    // One statement each: DROP/CREATE DATABASE refuse a transaction block.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
        format!("ALTER DATABASE {name} SET synchronous_commit = off"),
    ] {
        admin
            .batch_execute(&sql)
            .expect("create the fuzzing database");
    }
    let base = admin_url.split('?').next().unwrap_or(admin_url);
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    format!("{base}/{name}")
}

/// What was sent, so that the reply can be checked against it.
pub struct Sent<'a> {
    pub body: &'a [u8],
    pub profile: usize,
    /// Use the Enroll with the default failed-attempt gate (limit 20).
    pub gated: bool,
    pub client_ip: Option<&'a str>,
}

pub struct Harness {
    pub enroll: Enroll,
    /// The same service with the production gate and single DES refused.
    pub gated: Enroll,
    /// default, manual, wide, disabled.
    pub profiles: Vec<Profile>,
    pub ra: RaIdentity,
    pub ca_cert: X509,
    pub ca_name_der: Vec<u8>,
    pub device: Device,
    pub ec_device: Device,
    pub dsa_device: Device,
    /// The last certificate issued to `device` (a renewal signer).
    pub issued: Mutex<Option<X509>>,
    pool: PgPool,
    org_id: i64,
    seed_challenge_id: Mutex<i64>,
    /// Unused minted challenges per profile (default, manual, wide).
    challenge_pool: Mutex<[Vec<String>; 3]>,
    calls: AtomicU64,
    pub reset_every: Option<u64>,
}

impl Harness {
    /// The process-wide harness for a fuzz target: a scratch database on
    /// `SCEPD_FUZZ_DATABASE_URL` (default: the local server as postgres).
    pub fn global() -> &'static Harness {
        static H: OnceLock<Harness> = OnceLock::new();
        H.get_or_init(|| {
            let admin = std::env::var("SCEPD_FUZZ_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let mut h = Harness::new(&scratch_database(&admin));
            h.reset_every = Some(RESET_EVERY);
            h
        })
    }

    /// Sets up the service on the (empty or migrated) database at `url`.
    pub fn new(url: &str) -> Harness {
        let pool = store::pool(url, 2).expect("pool");
        let mut conn = pool.get().expect("connection");
        store::run_migrations(&mut conn).expect("migrations");
        let org = orgs::create_org(&mut conn, "Default").expect("organization");
        let mk = |conn: &mut PgConnection, id: &str, edit: &dyn Fn(&mut NewProfile<'_>)| {
            let mut p = NewProfile::with_defaults(id, id);
            edit(&mut p);
            let p = profiles::create(conn, &p).expect("profile");
            profiles::enable_for(conn, p.id, org.id, None).expect("scope");
            p.id
        };
        let ids = [
            mk(&mut conn, "default", &|_| {}),
            mk(&mut conn, "manual", &|p| p.approval_mode = "manual"),
            mk(&mut conn, "wide", &|p| {
                p.allowed_ec_curves = vec!["P-256".into(), "P-384".into()];
                p.min_rsa_bits = 1024;
                p.subject_template = "CN={{DeviceId}},O=Fuzz,serialNumber={{SerialNumber}}";
                p.san_pattern = Some("[a-z0-9.@:/-]+");
                p.max_active_per_device = 1;
                p.revoke_on_replace = true;
                p.renewal_window_days = 400;
                p.hash_alg = "sha512";
            }),
            mk(&mut conn, "disabled", &|_| {}),
        ];
        conn.batch_execute(&format!(
            "UPDATE device_profiles SET enabled = false WHERE id = {}",
            ids[3]
        ))
        .expect("disable profile");
        let profiles = ids
            .iter()
            .map(|id| profiles::by_id(&mut conn, *id).expect("profile"))
            .collect();
        drop(conn);

        let ca_key = ca::generate_key(KeySpec::EcP256).expect("CA key");
        let ca_cert = ca::new_root_ca(&ca_key, "scepd fuzz CA", "scepd fuzz", 3650).expect("CA");
        let ca_name_der = ca_cert.subject_name().to_der().expect("name");
        let ca = CaIdentity::new(ca_cert.clone(), ca_key).expect("CA identity");
        let ra = fixture_ra();
        let auth = Arc::new(
            Authority::new(ca, fixture_ra(), fixture_ra(), None, "http://fuzz.invalid")
                .expect("authority"),
        );
        // Failed challenges would lock every client out within seconds and
        // hide the challenge path; `gated` keeps the production limit.
        let enroll = Enroll::new(pool.clone(), auth.clone())
            .with_gate(Gate::new(0, chrono::Duration::minutes(15)));
        let gated = Enroll::new(pool.clone(), auth).with_single_des(false);
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("P-256"),
        )
        .expect("EC key");
        let dsa = openssl::dsa::Dsa::generate(2048).expect("DSA key");
        let h = Harness {
            enroll,
            gated,
            profiles,
            ra,
            ca_cert,
            ca_name_der,
            device: Device::new(fixture_device_key(), "fuzz device"),
            ec_device: Device::new(PKey::from_ec_key(ec).expect("EC"), "fuzz ec device"),
            dsa_device: Device::new(PKey::from_dsa(dsa).expect("DSA"), "fuzz dsa device"),
            issued: Mutex::new(None),
            pool,
            org_id: org.id,
            seed_challenge_id: Mutex::new(0),
            challenge_pool: Mutex::new(Default::default()),
            calls: AtomicU64::new(0),
            reset_every: None,
        };
        h.insert_seed_challenge();
        h
    }

    fn insert_seed_challenge(&self) {
        let mut conn = self.pool.get().expect("connection");
        let c = challenge_rows::insert(
            &mut conn,
            &NewChallenge {
                secret_hash: &challenge::hash_secret(SEED_CHALLENGE),
                profile_id: self.profiles[0].id,
                organization_id: self.org_id,
                department_id: None,
                device_identity: None,
                expires_at: chrono::Utc::now() + chrono::Duration::days(30),
                created_by: "fuzz",
            },
        )
        .expect("seed challenge");
        *self
            .seed_challenge_id
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = c.id;
    }

    /// An unused one-time challenge for profile `profile` (the disabled
    /// one gets the default profile's).
    pub fn fresh_challenge(&self, profile: usize) -> String {
        let profile = if profile < 3 { profile } else { 0 };
        let mut pools = self
            .challenge_pool
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let pool = &mut pools[profile];
        if pool.is_empty() {
            let mut conn = self.pool.get().expect("connection");
            let minted = challenge::mint(
                &mut conn,
                &MintRequest {
                    profile: &self.profiles[profile].profile_id,
                    organization_id: self.org_id,
                    department_id: None,
                    device_identity: None,
                    ttl: chrono::Duration::days(1),
                    count: POOL_REFILL,
                    actor: "fuzz",
                },
            )
            .expect("mint challenges");
            pool.extend(minted.into_iter().map(|m| m.secret));
        }
        pool.pop().unwrap_or_default()
    }

    /// Before each call: the seed challenge unused again and, every
    /// `reset_every` calls, the per-request tables emptied.
    fn prepare(&self) {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let mut conn = self.pool.get().expect("connection");
        if self
            .reset_every
            .is_some_and(|every| n.is_multiple_of(every))
        {
            conn.batch_execute(
                "TRUNCATE enrollment_requests, request_events, certificates, revocations, \
                 audit_log, challenge_failures, outbox, challenges CASCADE",
            )
            .expect("truncate");
            drop(conn);
            self.challenge_pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter_mut()
                .for_each(Vec::clear);
            *self.issued.lock().unwrap_or_else(|p| p.into_inner()) = None;
            self.insert_seed_challenge();
            return;
        }
        let id = *self
            .seed_challenge_id
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        conn.batch_execute(&format!(
            "UPDATE challenges SET used_at = NULL WHERE id = {id}"
        ))
        .expect("re-arm the seed challenge");
    }

    fn db_up(&self) -> bool {
        self.pool
            .get()
            .ok()
            .is_some_and(|mut c| store::ping(&mut c).is_ok())
    }

    /// The device whose key signed `cert`, if it is one of ours.
    fn key_for(&self, cert: &openssl::x509::X509Ref) -> Option<&PKey<Private>> {
        let spki = cert.public_key().ok()?.public_key_to_der().ok()?;
        [&self.device, &self.ec_device, &self.dsa_device]
            .into_iter()
            .find(|d| d.key.public_key_to_der().ok().as_deref() == Some(&spki[..]))
            .map(|d| &d.key)
    }

    /// Sends a PKIMessage body and checks the invariants; panics on a
    /// violation. Returns the reply's status (None for HTTP 4xx).
    pub fn call(&self, sent: &Sent<'_>) -> Option<PkiStatus> {
        self.prepare();
        let svc = if sent.gated {
            &self.gated
        } else {
            &self.enroll
        };
        let profile = &self.profiles[sent.profile % self.profiles.len()];
        let res = svc.pki_operation(&profile.profile_id, sent.body, sent.client_ip);
        let out = match res {
            Ok(out) => out,
            Err(EnrollError::BadRequest(_)) => return None,
            // HTTP 429 for a client out of failed challenge attempts.
            Err(EnrollError::LockedOut { .. }) if sent.gated => return None,
            // HTTP 404, as for a profile that does not exist.
            Err(EnrollError::NotFound(_)) if !profile.enabled => return None,
            Err(e) => {
                if self.db_up() {
                    panic!("invariant: internal error for client input (HTTP 5xx): {e:?}");
                }
                eprintln!("database unavailable: {e}");
                return None;
            }
        };
        self.check_reply(sent.body, &out.der, out.status);
        Some(out.status)
    }

    fn check_reply(&self, body: &[u8], der: &[u8], status: PkiStatus) {
        // The handler answered, so the request's header decoded.
        let req = server::wire::decode(body).expect("an answered request decodes");
        let rh = req.header();
        let p7 = Pkcs7::from_der(der).expect("invariant: CertRep is PKCS#7");
        let mut certs = Stack::new().expect("stack");
        certs.push(self.ra.cert().clone()).expect("push");
        let store = X509StoreBuilder::new().expect("store").build();
        p7.verify(
            &certs,
            &store,
            None,
            None,
            Pkcs7Flags::NOVERIFY | Pkcs7Flags::NOINTERN,
        )
        .expect("invariant: CertRep is signed by the RA");
        let signer = req.signer_cert().x509().expect("invariant: signer parses");
        let Some(key) = self.key_for(signer) else {
            // Not one of our devices (scepclient captures): the reply can
            // not be decrypted here, but its header must echo the request.
            let rep = server::wire::decode(der).expect("invariant: CertRep header decodes");
            assert_eq!(rep.header().message_type, MessageType::CertRep);
            assert_eq!(rep.header().transaction_id, rh.transaction_id);
            return;
        };
        if key.id() != openssl::pkey::Id::RSA {
            // wire::client reads key transport envelopes only; for an EC
            // signer scepd envelopes by key agreement (RFC 5652 §6.2.2),
            // which OpenSSL's CMS opens.
            self.check_key_agreement_reply(&p7, der, rh, key, signer, status);
            return;
        }
        let rep = parse_cert_rep(der, self.ra.cert(), signer, key)
            .unwrap_or_else(|e| panic!("invariant: CertRep parses with wire::client: {e}"));
        assert_eq!(rep.status, status, "invariant: reported status");
        assert_eq!(
            rep.transaction_id, rh.transaction_id,
            "invariant: transactionID"
        );
        assert_eq!(
            rep.recipient_nonce, rh.sender_nonce,
            "invariant: recipientNonce"
        );
        assert_eq!(rep.status == PkiStatus::Failure, rep.fail_info.is_some());
        if rep.status == PkiStatus::Success
            && matches!(
                rh.message_type,
                MessageType::PkcsReq | MessageType::RenewalReq | MessageType::CertPoll
            )
        {
            let ca_key = self.ca_cert.public_key().expect("CA key");
            assert_eq!(rep.certs.len(), 1, "invariant: one certificate");
            let cert = &rep.certs[0];
            assert!(
                cert.verify(&ca_key).unwrap_or(false),
                "invariant: issued certificate is signed by the CA"
            );
            if cert
                .public_key()
                .ok()
                .and_then(|k| k.public_key_to_der().ok())
                == self.device.key.public_key_to_der().ok()
            {
                *self.issued.lock().unwrap_or_else(|p| p.into_inner()) = Some(cert.clone());
            }
        }
    }
}

impl Harness {
    fn check_key_agreement_reply(
        &self,
        p7: &Pkcs7,
        der: &[u8],
        rh: &server::wire::Header,
        key: &PKey<Private>,
        signer: &openssl::x509::X509Ref,
        status: PkiStatus,
    ) {
        let rep = server::wire::decode(der).expect("invariant: CertRep header decodes");
        assert_eq!(rep.header().message_type, MessageType::CertRep);
        assert_eq!(rep.header().transaction_id, rh.transaction_id);
        if status != PkiStatus::Success {
            return;
        }
        let mut certs = Stack::new().expect("stack");
        certs.push(self.ra.cert().clone()).expect("push");
        let store = X509StoreBuilder::new().expect("store").build();
        let mut content = Vec::new();
        p7.verify(
            &certs,
            &store,
            None,
            Some(&mut content),
            Pkcs7Flags::NOVERIFY | Pkcs7Flags::NOINTERN,
        )
        .expect("invariant: CertRep is signed by the RA");
        let cms = openssl::cms::CmsContentInfo::from_der(&content)
            .expect("invariant: SUCCESS carries an EnvelopedData");
        let plain = cms
            .decrypt(key, &signer.to_owned())
            .expect("invariant: the requester can open the SUCCESS envelope");
        server::wire::client::parse_certs_only(&plain)
            .expect("invariant: the envelope holds a certs-only PKCS#7");
    }
}

/// Reads the structured input; past the end every read yields zeros.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    /// A length byte, then that many bytes.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.take(n)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }
}

/// Minimal DER: tag, definite length, content.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xff {
        out.extend([0x81, n as u8]);
    } else if n <= 0xffff {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    } else {
        out.extend([0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn oid(dotted: &str) -> Vec<u8> {
    let obj = openssl::asn1::Asn1Object::from_str(dotted).expect("OID");
    tlv(0x06, obj.as_slice())
}

/// String types a DirectoryString (or an attribute) may be written with.
const STRING_TAGS: [u8; 6] = [0x0c, 0x13, 0x16, 0x14, 0x1e, 0x1c];

/// Subject attributes the structured input may set.
const NAME_OIDS: [&str; 8] = [
    "2.5.4.3",                    // CN
    "2.5.4.5",                    // serialNumber
    "2.5.4.10",                   // O
    "2.5.4.11",                   // OU
    "2.5.4.6",                    // C
    "1.2.840.113549.1.9.1",       // emailAddress
    "0.9.2342.19200300.100.1.25", // DC
    "0.9.2342.19200300.100.1.1",  // UID
];

/// A PKCS#10 request signed by `key` (RFC 2986) whose subject, SANs and
/// challengePassword come from the input, written with any string type
/// and any bytes, so that hostile values pass the CSR's signature check.
pub fn build_csr(
    input: &mut Input<'_>,
    key: &PKey<Private>,
    challenge: Option<(u8, &[u8])>,
) -> Option<Vec<u8>> {
    let mut rdns = Vec::new();
    for _ in 0..input.byte() % 5 {
        let sel = input.byte();
        let value = input.chunk();
        let atv = tlv(
            0x30,
            &[
                oid(NAME_OIDS[usize::from(sel) % NAME_OIDS.len()]),
                tlv(
                    STRING_TAGS[usize::from(sel >> 3) % STRING_TAGS.len()],
                    value,
                ),
            ]
            .concat(),
        );
        rdns.extend(tlv(0x31, &atv));
    }
    let name = tlv(0x30, &rdns);
    let mut sans = Vec::new();
    for _ in 0..input.byte() % 4 {
        let sel = input.byte();
        let value = input.chunk();
        sans.extend(match sel % 6 {
            0 => tlv(0x82, value), // dNSName
            1 => tlv(0x81, value), // rfc822Name
            2 => tlv(0x86, value), // URI
            3 => tlv(0x87, value), // iPAddress
            4 => tlv(
                0xa0,
                &[
                    oid("1.3.6.1.4.1.311.20.2.3"), // UPN
                    tlv(0xa0, &tlv(0x0c, value)),
                ]
                .concat(),
            ),
            _ => value.to_vec(), // raw GeneralName bytes
        });
    }
    let mut attrs = Vec::new();
    if let Some((tag, pw)) = challenge {
        attrs.extend(tlv(
            0x30,
            &[
                oid("1.2.840.113549.1.9.7"),
                tlv(
                    0x31,
                    &tlv(STRING_TAGS[usize::from(tag) % STRING_TAGS.len()], pw),
                ),
            ]
            .concat(),
        ));
    }
    if !sans.is_empty() {
        let ext = tlv(
            0x30,
            &[oid("2.5.29.17"), tlv(0x04, &tlv(0x30, &sans))].concat(),
        );
        attrs.extend(tlv(
            0x30,
            &[oid("1.2.840.113549.1.9.14"), tlv(0x31, &tlv(0x30, &ext))].concat(),
        ));
    }
    let spki = key.public_key_to_der().ok()?;
    let info = tlv(
        0x30,
        &[tlv(0x02, &[0]), name, spki, tlv(0xa0, &attrs)].concat(),
    );
    let alg = match key.id() {
        openssl::pkey::Id::RSA => tlv(
            0x30,
            &[oid("1.2.840.113549.1.1.11"), vec![0x05, 0x00]].concat(),
        ),
        openssl::pkey::Id::EC => tlv(0x30, &oid("1.2.840.10045.4.3.2")),
        _ => tlv(0x30, &oid("2.16.840.1.101.3.4.3.2")), // dsa-with-sha256
    };
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key).ok()?;
    signer.update(&info).ok()?;
    let sig = signer.sign_to_vec().ok()?;
    let mut bits = vec![0u8];
    bits.extend(sig);
    Some(tlv(0x30, &[info, alg, tlv(0x03, &bits)].concat()))
}

const MESSAGE_TYPES: [MessageType; 6] = [
    MessageType::PkcsReq,
    MessageType::RenewalReq,
    MessageType::CertPoll,
    MessageType::GetCert,
    MessageType::GetCrl,
    MessageType::CertRep,
];

const CIPHERS: [ContentCipher; 4] = [
    ContentCipher::Aes128Cbc,
    ContentCipher::Aes256Cbc,
    ContentCipher::Des3Cbc,
    ContentCipher::DesCbc,
];

const CLIENT_IPS: [Option<&str>; 4] = [
    None,
    Some("192.0.2.1"),
    Some("2001:db8::1"),
    Some("198.51.100.7"),
];

/// The `pki_operation_signed` input (docs/FUZZING.md):
///
/// * byte 0: messageType (low 3 bits: PKCSReq, RenewalReq, CertPoll,
///   GetCert, GetCRL, CertRep, then 2 × a free string); signer (bits 3–4:
///   the fixed RSA device, the P-256 device, the last certificate issued
///   here to the RSA device, the DSA device); bit 5 signs with the other
///   device's key than the CSR's; bit 6 makes the message field-style:
///   the transactionID as UTF8String instead of PrintableString, and a
///   self-signed device's certificate as certmonger writes it
///   (`field_signed`); bit 7 skips the envelope (content sent in clear
///   inside the signature).
/// * byte 1: cipher (bits 0–1), OAEP (bit 2), digest (bits 3–4: SHA-256,
///   SHA-1, SHA-512, SHA-384), profile (bits 5–6), gate (bit 7).
/// * byte 2: client address (bits 0–1); content (bits 2–3: built from
///   fields, raw bytes, IssuerAndSerial/Subject with our CA's name, the
///   same with the input's issuer); challenge (bits 4–5: none, a fresh
///   minted one, `seed-challenge`, the input's bytes); its string type
///   (bits 6–7).
/// * chunks (length byte + bytes): transactionID (empty: the key's hash),
///   senderNonce (empty: 16 fixed bytes), [free messageType], then the
///   content: CSR fields (see `build_csr`), or serial/subject chunks, or
///   the rest as raw bytes.
pub fn signed_message(
    h: &Harness,
    data: &[u8],
) -> Option<(Vec<u8>, usize, bool, Option<&'static str>)> {
    let mut input = Input(data);
    let b0 = input.byte();
    let b1 = input.byte();
    let b2 = input.byte();
    let issued = h.issued.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let field_style = b0 & 0x40 != 0;
    let cert_of = |d: &Device| {
        if field_style {
            d.field_cert.clone()
        } else {
            d.cert.clone()
        }
    };
    let (signer_cert, signer_key) = match (b0 >> 3) & 3 {
        0 => (cert_of(&h.device), &h.device.key),
        1 => (cert_of(&h.ec_device), &h.ec_device.key),
        2 => (issued.unwrap_or_else(|| cert_of(&h.device)), &h.device.key),
        _ => (cert_of(&h.dsa_device), &h.dsa_device.key),
    };
    let csr_key = if b0 & 0x20 != 0 {
        if signer_key.id() == openssl::pkey::Id::RSA {
            &h.ec_device.key
        } else {
            &h.device.key
        }
    } else {
        signer_key
    };
    let txid_kind = if field_style {
        AttrKind::Utf8String
    } else {
        AttrKind::PrintableString
    };
    let cipher = CIPHERS[usize::from(b1 & 3)];
    let transport = if b1 & 4 != 0 {
        KeyTransport::RsaOaep
    } else {
        KeyTransport::RsaPkcs1v15
    };
    let digest = [
        DigestAlg::Sha256,
        DigestAlg::Sha1,
        DigestAlg::Sha512,
        DigestAlg::Sha384,
    ][usize::from((b1 >> 3) & 3)];
    let profile = usize::from((b1 >> 5) & 3);
    let gated = b1 & 0x80 != 0;
    let ip = CLIENT_IPS[usize::from(b2 & 3)];

    let txid_in = input.chunk();
    let txid = if txid_in.is_empty() {
        hex::encode_upper(openssl::sha::sha256(&signer_key.public_key_to_der().ok()?)).into_bytes()
    } else {
        txid_in.to_vec()
    };
    let nonce_in = input.chunk();
    let nonce = if nonce_in.is_empty() {
        vec![7u8; 16]
    } else {
        nonce_in.to_vec()
    };
    let mt_index = usize::from(b0 & 7);
    let free_type;
    let mt_code: &[u8] = match MESSAGE_TYPES.get(mt_index) {
        Some(mt) => mt.code().as_bytes(),
        None => {
            free_type = input.chunk().to_vec();
            &free_type
        }
    };
    let mt = MESSAGE_TYPES
        .get(mt_index)
        .copied()
        .unwrap_or(MessageType::PkcsReq);

    let fresh;
    let challenge: Option<(u8, &[u8])> = match (b2 >> 4) & 3 {
        0 => None,
        1 => {
            fresh = h.fresh_challenge(profile);
            Some((b2 >> 6, fresh.as_bytes()))
        }
        2 => Some((b2 >> 6, SEED_CHALLENGE.as_bytes())),
        _ => Some((b2 >> 6, input.chunk())),
    };
    let issuer_chunk;
    let content: Vec<u8> = match (b2 >> 2) & 3 {
        0 => match mt {
            MessageType::CertPoll => {
                let subject = signer_cert.subject_name().to_der().ok()?;
                tlv(0x30, &[h.ca_name_der.clone(), subject].concat())
            }
            MessageType::GetCert | MessageType::GetCrl => {
                // The serial of the certificate issued last, if any.
                let serial = h
                    .issued
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .and_then(|c| c.serial_number().to_bn().ok())
                    .map(|bn| bn.to_vec())
                    .unwrap_or_else(|| vec![1]);
                tlv(
                    0x30,
                    &[h.ca_name_der.clone(), tlv(0x02, &unsigned(&serial))].concat(),
                )
            }
            _ => build_csr(&mut input, csr_key, challenge)?,
        },
        1 => input.rest().to_vec(),
        sel => {
            let issuer: &[u8] = if sel == 2 {
                &h.ca_name_der
            } else {
                issuer_chunk = input.chunk().to_vec();
                &issuer_chunk
            };
            let second = input.chunk();
            let second = if mt == MessageType::CertPoll {
                second.to_vec()
            } else {
                tlv(0x02, second)
            };
            tlv(0x30, &[issuer, &second[..]].concat())
        }
    };
    let body = if b0 & 0x80 != 0 {
        sign(
            &signer_cert,
            signer_key,
            digest,
            txid_kind,
            &txid,
            mt_code,
            &nonce,
            &content,
        )?
    } else if matches!(txid_kind, AttrKind::PrintableString)
        && std::str::from_utf8(&txid).is_ok()
        && MESSAGE_TYPES.get(mt_index).is_some()
    {
        // The project's client: the common case, as devices build it.
        build_request(&ClientRequest {
            message_type: mt,
            transaction_id: TransactionId(String::from_utf8(txid).ok()?),
            sender_nonce: Nonce(nonce),
            signer_cert: &signer_cert,
            signer_key,
            recipient: h.ra.cert(),
            cipher,
            key_transport: transport,
            digest,
            content: ClientContent::Csr(&content),
        })
        .ok()?
    } else {
        let env = envelope(&content, h.ra.cert(), cipher)?;
        sign(
            &signer_cert,
            signer_key,
            digest,
            txid_kind,
            &txid,
            mt_code,
            &nonce,
            &env,
        )?
    };
    Some((body, profile, gated, ip))
}

/// A big-endian INTEGER content: a leading zero keeps it non-negative.
fn unsigned(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    v
}

fn envelope(content: &[u8], to: &X509, cipher: ContentCipher) -> Option<Vec<u8>> {
    let mut certs = Stack::new().ok()?;
    certs.push(to.clone()).ok()?;
    Pkcs7::encrypt(&certs, content, cipher.cipher(), Pkcs7Flags::BINARY)
        .ok()?
        .to_der()
        .ok()
}

#[allow(clippy::too_many_arguments)]
fn sign(
    cert: &X509,
    key: &PKey<Private>,
    digest: DigestAlg,
    txid_kind: AttrKind,
    txid: &[u8],
    mt: &[u8],
    nonce: &[u8],
    content: &[u8],
) -> Option<Vec<u8>> {
    let nids = scep_nids().ok()?;
    let attrs = [
        AttrSpec {
            nid: nids.transaction_id,
            kind: txid_kind,
            value: txid,
        },
        AttrSpec {
            nid: nids.message_type,
            kind: AttrKind::PrintableString,
            value: mt,
        },
        AttrSpec {
            nid: nids.sender_nonce,
            kind: AttrKind::OctetString,
            value: nonce,
        },
    ];
    sign_with_attributes(cert, key, digest.message_digest(), &[], &attrs, content).ok()
}

/// One structured execution: build, send, check.
pub fn run_signed(h: &Harness, data: &[u8]) {
    if let Some((body, profile, gated, ip)) = signed_message(h, data) {
        h.call(&Sent {
            body: &body,
            profile,
            gated,
            client_ip: ip,
        });
    }
}

/// One raw execution: the input is the POSTed body, to the default profile.
pub fn run_raw(h: &Harness, data: &[u8]) {
    h.call(&Sent {
        body: data,
        profile: 0,
        gated: false,
        client_ip: Some("192.0.2.1"),
    });
}

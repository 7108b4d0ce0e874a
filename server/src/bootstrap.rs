//! First start and every start: the data directory, the CA/RA identities
//! (generated, imported or loaded from `<data>/ca/`; an imported
//! intermediate CA's issuers in `ca-chain.crt`), the database (given,
//! or a private cluster under `<data>/postgres`), migrations, and the seed
//! rows a new installation needs: a default organization and profile and a
//! first MRAO, whose generated password goes to a 0600 file and must be
//! changed at its first login.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use diesel::pg::PgConnection;
use diesel::Connection;
use openssl::x509::X509;

use crate::ca::pkcs11::Hsm;
use crate::ca::{self, CaError, CaIdentity, CaKey};
use crate::config::Config;
use crate::enroll::{Authority, NextAuthority};
use crate::key_store::{self, IdentityFiles, KeyStoreError};
use crate::pgcluster::{ClusterOptions, PgCluster, PgClusterError};
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::{self, admins, orgs, profiles, StoreError};
use crate::wire::RaIdentity;

pub mod pin;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    #[error(transparent)]
    Cluster(#[from] PgClusterError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    /// This node's `<data>/ca/` differs from the identity the database
    /// records; the message says what differs and what to copy where.
    #[error("{0}")]
    IdentityMismatch(String),
}

impl From<diesel::result::Error> for BootstrapError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Store(e.into())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BootstrapError + '_ {
    move |source| BootstrapError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Create the data directory. It is traversable but not listable by others
/// (0711) so that an unprivileged PostgreSQL can reach its own
/// subdirectory; keys live in `ca/` (0700) in files of mode 0600.
pub fn data_dir(cfg: &Config) -> Result<PathBuf, BootstrapError> {
    let dir = &cfg.data_dir;
    fs::create_dir_all(dir).map_err(io(dir))?;
    let dir = dir.canonicalize().map_err(io(dir))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).map_err(io(&dir))?;
    let ca = dir.join("ca");
    fs::create_dir_all(&ca).map_err(io(&ca))?;
    fs::set_permissions(&ca, fs::Permissions::from_mode(0o700)).map_err(io(&ca))?;
    Ok(dir)
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), BootstrapError> {
    crate::fsutil::write_atomic(path, data, mode).map_err(io(path))
}

/// An exclusive lock on `<data>/.lock` while identities are created, so two
/// processes starting together agree on one CA.
fn lock(data: &Path) -> Result<File, BootstrapError> {
    let p = data.join(".lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io(&p))?;
    f.lock().map_err(io(&p))?;
    Ok(f)
}

fn ra_identity(id: CaIdentity) -> Result<RaIdentity, CaError> {
    Ok(RaIdentity::new(
        id.cert().clone(),
        id.private_key()?.to_owned(),
    )?)
}

/// A CA to import instead of generating one (`scepd init --import-ca`).
pub struct ImportCa {
    /// The CA certificate, optionally followed by its issuers (nearest
    /// first) when it is an intermediate.
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// The passphrase of an encrypted key.
    pub key_passphrase: Option<Vec<u8>>,
}

/// How a start treats the identity: an import, or adopting this node's CA
/// over an older database's certificates of other CAs (`scepd ca adopt`).
#[derive(Default)]
pub struct IdentityOptions {
    pub import: Option<ImportCa>,
    pub adopt_foreign: bool,
}

/// The CA, RA and any next CA of this node, checked against the identity
/// the database records (`pin`). On the database's first start they are
/// loaded from `<data>/ca` or created there, and recorded in the same
/// transaction; once recorded, nothing is created: a node whose
/// certificates differ refuses to start. An advisory lock makes nodes
/// bootstrapping one empty database together agree on one CA (the first
/// records it; the others find it recorded).
pub fn authority(
    cfg: &Config,
    data: &Path,
    opts: IdentityOptions,
    conn: &mut PgConnection,
) -> Result<Authority, BootstrapError> {
    let _lock = lock(data)?;
    conn.transaction(|conn| {
        store::ca_identity::lock(conn)?;
        match store::ca_identity::get(conn)? {
            Some(recorded) => {
                pin::refuse_change(&recorded, &opts)?;
                pin::check(&recorded, &pin::LocalCerts::read(data)?, data)?;
                load_authority(cfg, data, None, false)
            }
            None => {
                if !opts.adopt_foreign {
                    pin::check_issued(conn, data, opts.import.as_ref())?;
                }
                let auth = load_authority(cfg, data, opts.import, true)?;
                pin::record(conn, &auth, &load_chain(data)?, opts.adopt_foreign)?;
                Ok(auth)
            }
        }
    })
}

/// Load the CA, RA and any next CA from `<data>/ca`; with `create`, make
/// what is missing (a new CA, or an imported one, with new RAs).
fn load_authority(
    cfg: &Config,
    data: &Path,
    import: Option<ImportCa>,
    create: bool,
) -> Result<Authority, BootstrapError> {
    let pass = key_store::passphrase(cfg, data)?;
    let hsm = open_hsm(cfg)?;
    let ca_files = IdentityFiles::new(data, "ca", &pass).with_hsm(hsm.as_ref());
    let ra_files = IdentityFiles::new(data, "ra", &pass);
    let ra_enc_files = IdentityFiles::new(data, "ra-enc", &pass);
    let ca = match (ca_files.exists() || !create, import) {
        (true, Some(_)) => {
            return Err(BootstrapError::Invalid(format!(
                "a CA already exists in {}; refusing to replace it",
                ca_files.cert.display()
            )))
        }
        (true, None) => ca_files.load()?,
        (false, Some(_)) if hsm.is_some() => {
            return Err(BootstrapError::Invalid(
                "--import-ca with SCEPD_PKCS11_MODULE: put the key into the token with its \
                 own tools, then run init with SCEPD_PKCS11_KEY_LABEL naming it"
                    .into(),
            ))
        }
        (false, Some(imp)) => {
            let (ca, issuers) =
                ca::import_ca_chain(&imp.cert_pem, &imp.key_pem, imp.key_passphrase.as_deref())?;
            // The chain first: a CA saved without it would start without it.
            save_chain(data, &issuers)?;
            ca_files.save(&ca)?;
            // A new CA needs new RA certificates.
            let _ = fs::remove_file(&ra_files.cert);
            let _ = fs::remove_file(&ra_enc_files.cert);
            ca
        }
        (false, None) => {
            let key = match (&hsm, &cfg.pkcs11) {
                (Some(hsm), Some(p11)) => CaKey::Pkcs11(match hsm.find_key(&p11.key_label)? {
                    Some(k) => k,
                    None => hsm.generate(&p11.key_label, cfg.ca_key_type)?,
                }),
                _ => CaKey::Software(ca::generate_key(cfg.ca_key_type)?),
            };
            let cert = ca::new_root_ca_with(
                &key,
                &cfg.ca_common_name,
                &cfg.ca_organization,
                cfg.ca_validity_days,
            )?;
            let ca = CaIdentity::from_ca_key(cert, key)?;
            ca_files.save(&ca)?;
            save_chain(data, &[])?;
            tracing::info!(fingerprint = ca.fingerprint(), "created CA");
            let _ = fs::remove_file(&ra_files.cert);
            let _ = fs::remove_file(&ra_enc_files.cert);
            ca
        }
    };
    let ra = if ra_files.exists() || !create {
        ra_files.load()?
    } else {
        let key = ca::generate_key(cfg.ra_key_type)?;
        let cn = format!("{} RA", cfg.ca_common_name);
        let cert = ca::new_ra_cert(&ca, &key, &cn, cfg.ra_validity_days)?;
        let ra = CaIdentity::new(cert, key)?;
        ra_files.save(&ra)?;
        ra
    };
    let ra_enc = ra_encryption(cfg, &ra_enc_files, &ca, create)?;
    // The signer of exported .mobileconfig files, issued by this CA; each
    // node's own, so not part of the recorded identity.
    crate::mobileconfig::ensure_signer(data, &ca, &pass)
        .map_err(|e| BootstrapError::Invalid(e.to_string()))?;
    let next_ca = IdentityFiles::new(data, "next-ca", &pass).with_hsm(hsm.as_ref());
    let next_ra = IdentityFiles::new(data, "next-ra", &pass);
    let next = if next_ca.exists() && next_ra.exists() {
        let ca = next_ca.load()?;
        let files = IdentityFiles::new(data, "next-ra-enc", &pass);
        let ra_enc = ra_encryption(cfg, &files, &ca, create)?;
        Some(NextAuthority {
            ca,
            ra: ra_identity(next_ra.load()?)?,
            ra_enc: ra_identity(ra_enc)?,
        })
    } else {
        None
    };
    let issuers = load_chain(data)?;
    Authority::new(
        ca,
        ra_identity(ra)?,
        ra_identity(ra_enc)?,
        next,
        &cfg.public_url,
    )?
    .with_issuers(issuers)
    .map_err(|e| BootstrapError::Invalid(format!("{}: {e}", chain_path(data).display())))
}

/// Where an intermediate CA's issuers are kept, nearest first, beside the
/// CA (public, like the CA certificate); absent for a root CA.
fn chain_path(data: &Path) -> PathBuf {
    data.join("ca").join("ca-chain.crt")
}

fn save_chain(data: &Path, issuers: &[X509]) -> Result<(), BootstrapError> {
    let path = chain_path(data);
    if issuers.is_empty() {
        // A chain left from an earlier CA would belong to another CA.
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        };
    }
    write_file(&path, &ca::certs_to_pem(issuers)?, 0o644)
}

fn load_chain(data: &Path) -> Result<Vec<X509>, BootstrapError> {
    let path = chain_path(data);
    match fs::read(&path) {
        Ok(pem) => ca::certs_from_pem(&pem)
            .map_err(|e| BootstrapError::Invalid(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(io(&path)(e)),
    }
}

/// The RA's encryption identity under `ca` (see
/// `ca::new_ra_encryption_cert`), created (with `create`) on first start
/// and for data directories made before it existed.
fn ra_encryption(
    cfg: &Config,
    files: &IdentityFiles,
    ca: &CaIdentity,
    create: bool,
) -> Result<CaIdentity, BootstrapError> {
    if files.exists() || !create {
        return Ok(files.load()?);
    }
    let id = new_ra_encryption(cfg, ca)?;
    files.save(&id)?;
    Ok(id)
}

/// The token holding the CA key, when one is configured; every failure
/// (module, token, PIN) stops start-up with its reason.
fn open_hsm(cfg: &Config) -> Result<Option<Arc<Hsm>>, BootstrapError> {
    match &cfg.pkcs11 {
        Some(p11) => Ok(Some(Hsm::open(p11)?)),
        None => Ok(None),
    }
}

/// The rollover CA's key: generated in the token when an HSM holds the
/// CA key, labelled `<SCEPD_PKCS11_KEY_LABEL>-<UTC time>`, else in memory.
fn next_ca_key(cfg: &Config, hsm: Option<&Arc<Hsm>>) -> Result<CaKey, BootstrapError> {
    Ok(match (hsm, &cfg.pkcs11) {
        (Some(hsm), Some(p11)) => {
            let label = format!(
                "{}-{}",
                p11.key_label,
                chrono::Utc::now().format("%Y%m%d%H%M%S")
            );
            CaKey::Pkcs11(hsm.generate(&label, cfg.ca_key_type)?)
        }
        _ => CaKey::Software(ca::generate_key(cfg.ca_key_type)?),
    })
}

fn new_ra_encryption(cfg: &Config, ca: &CaIdentity) -> Result<CaIdentity, BootstrapError> {
    let key = ca::generate_key(cfg.ra_key_type)?;
    let cn = format!("{} RA encryption", cfg.ca_common_name);
    let cert = ca::new_ra_encryption_cert(ca, &key, &cn, cfg.ra_validity_days)?;
    Ok(CaIdentity::new(cert, key)?)
}

/// The rollover files, `next-ca` last: its presence marks a rollover.
const NEXT_FILES: [&str; 3] = ["next-ra-enc", "next-ra", "next-ca"];

/// Create the rollover CA and its RAs (RFC 8894 §3.5.2 GetNextCACert) in
/// `<data>/ca` and record them in the database in one transaction, which
/// first checks that this node holds the recorded identity and that no
/// rollover is recorded yet. Files written for a transaction that then
/// fails are removed again.
pub fn rollover(
    cfg: &Config,
    data: &Path,
    common_name: &str,
    conn: &mut PgConnection,
) -> Result<String, BootstrapError> {
    let _lock = lock(data)?;
    let pass = key_store::passphrase(cfg, data)?;
    let hsm = open_hsm(cfg)?;
    let mut written = false;
    let res = conn.transaction(|conn| {
        store::ca_identity::lock(conn)?;
        let recorded = store::ca_identity::get(conn)?.ok_or_else(|| {
            BootstrapError::Invalid("the database records no CA yet; start scepd first".into())
        })?;
        if let Some(next) = &recorded.next_ca_sha256 {
            return Err(BootstrapError::Invalid(format!(
                "a next CA is already recorded in the database: {}",
                hex::encode_upper(next)
            )));
        }
        pin::check(&recorded, &pin::LocalCerts::read(data)?, data)?;
        let current = IdentityFiles::new(data, "ca", &pass)
            .with_hsm(hsm.as_ref())
            .load()?;
        let key = next_ca_key(cfg, hsm.as_ref())?;
        let (ca, ra) = ca::rollover_with(
            &current,
            key,
            cfg.ca_key_type,
            common_name,
            &cfg.ca_organization,
            cfg.ca_validity_days,
        )?;
        let ra_enc = new_ra_encryption(cfg, &ca)?;
        let (ca_der, ra_der, ra_enc_der) = (ca.cert_der()?, ra.cert_der()?, ra_enc.cert_der()?);
        written = true;
        for (name, id) in NEXT_FILES.iter().zip([&ra_enc, &ra, &ca]) {
            IdentityFiles::new(data, name, &pass)
                .with_hsm(hsm.as_ref())
                .save(id)?;
        }
        let next = store::ca_identity::NextIdentity {
            ca: &ca_der,
            ra: &ra_der,
            ra_enc: &ra_enc_der,
        };
        store::ca_identity::set_next(conn, &next)?;
        pin::audit_rollover(conn, &current, &ca)?;
        Ok(ca.fingerprint().to_string())
    });
    if res.is_err() && written {
        for name in NEXT_FILES.iter().rev() {
            let files = IdentityFiles::new(data, name, &pass);
            let _ = fs::remove_file(&files.cert);
            let _ = fs::remove_file(&files.key);
            let _ = fs::remove_file(&files.hsm_ref);
        }
    }
    res
}

/// Make the rollover CA current: in one transaction the database's record
/// takes the next CA and its RAs as the current identity, and the next
/// files take the place of the current ones, which move to
/// `<data>/ca/retired/<fingerprint>/`. Refused unless this node holds the
/// recorded identity with a recorded rollover. Returns the new CA's
/// fingerprint; processes pick it up on restart (others after a copy of
/// `<data>/ca/`, which their start asks for).
pub fn switch_to_next(
    cfg: &Config,
    data: &Path,
    conn: &mut PgConnection,
) -> Result<String, BootstrapError> {
    let _lock = lock(data)?;
    let pass = key_store::passphrase(cfg, data)?;
    let hsm = open_hsm(cfg)?;
    conn.transaction(|conn| {
        store::ca_identity::lock(conn)?;
        let recorded = store::ca_identity::get(conn)?.ok_or_else(|| {
            BootstrapError::Invalid("the database records no CA yet; start scepd first".into())
        })?;
        pin::check(&recorded, &pin::LocalCerts::read(data)?, data)?;
        let next = IdentityFiles::new(data, "next-ca", &pass).with_hsm(hsm.as_ref());
        if recorded.next_ca_cert.is_none() || !next.exists() {
            return Err(BootstrapError::Invalid(
                "there is no next CA: run `scepd ca rollover` first".into(),
            ));
        }
        // Proves the next CA's key is usable before anything moves.
        let next = next.load()?;
        let current = IdentityFiles::new(data, "ca", &pass)
            .with_hsm(hsm.as_ref())
            .load()?;
        store::ca_identity::promote_next(conn)?;
        pin::audit_switch(conn, &current, &next)?;
        move_next_into_place(data, current.fingerprint())?;
        Ok(next.fingerprint().to_string())
    })
}

/// The file moves of [`switch_to_next`], undone if one fails so that the
/// rolled-back record and the files still agree.
fn move_next_into_place(data: &Path, current_fp: &str) -> Result<(), BootstrapError> {
    let dir = data.join("ca");
    let retired = dir.join("retired").join(&current_fp[..16]);
    fs::create_dir_all(&retired).map_err(io(&retired))?;
    fs::set_permissions(&retired, fs::Permissions::from_mode(0o700)).map_err(io(&retired))?;
    let mut moves = Vec::new();
    for name in ["ca", "ra", "ra-enc", "ca-chain", "profile-signer"] {
        for ext in ["crt", "key", "pkcs11"] {
            moves.push((
                dir.join(format!("{name}.{ext}")),
                retired.join(format!("{name}.{ext}")),
            ));
        }
    }
    for name in ["ca", "ra", "ra-enc"] {
        for ext in ["crt", "key", "pkcs11"] {
            moves.push((
                dir.join(format!("next-{name}.{ext}")),
                dir.join(format!("{name}.{ext}")),
            ));
        }
    }
    let mut done: Vec<(&PathBuf, &PathBuf)> = Vec::new();
    for (from, to) in &moves {
        if !from.exists() {
            continue;
        }
        if let Err(e) = fs::rename(from, to) {
            for (f, t) in done.iter().rev() {
                let _ = fs::rename(t, f);
            }
            return Err(io(from)(e));
        }
        done.push((from, to));
    }
    Ok(())
}

/// Where the database is: the configured URL, or a private cluster.
pub struct Database {
    pub url: String,
    pub cluster: Option<PgCluster>,
}

pub fn database(cfg: &Config, data: &Path) -> Result<Database, BootstrapError> {
    if let Some(url) = &cfg.database_url {
        return Ok(Database {
            url: url.clone(),
            cluster: None,
        });
    }
    let dir = data.join("postgres");
    // A `serve` already runs the cluster: share it rather than fail on its lock.
    if let Some(url) = PgCluster::running_url(&dir, "scepd") {
        return Ok(Database { url, cluster: None });
    }
    let cluster = PgCluster::start(&dir, ClusterOptions::default())?;
    Ok(Database {
        url: cluster.database_url("scepd"),
        cluster: Some(cluster),
    })
}

/// Where the first MRAO's generated password is written (0600), instead
/// of a terminal or a container log.
pub fn write_initial_password(data: &Path, password: &str) -> Result<PathBuf, BootstrapError> {
    let path = data.join("initial-admin-password");
    write_file(&path, format!("{password}\n").as_bytes(), 0o600)?;
    Ok(path)
}

/// Hash an officer password (argon2id, random salt).
pub fn hash_password(password: &str) -> Result<String, BootstrapError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| BootstrapError::Invalid(format!("password hashing failed: {e}")))
}

/// What seeding created that the operator must learn once.
#[derive(Default)]
pub struct Seeded {
    /// The first MRAO's generated password (None when taken from config or
    /// when officers already exist).
    pub admin_password: Option<String>,
    pub created_admin: Option<String>,
}

/// Create the default organization, profile and first MRAO if the database
/// is new (after `store::run_migrations`). Safe to run from several
/// processes at once.
pub fn seed(conn: &mut PgConnection, cfg: &Config) -> Result<Seeded, BootstrapError> {
    conn.transaction(|conn| {
        use diesel::RunQueryDsl;
        // Serialise seeding between processes starting together.
        diesel::sql_query("SELECT pg_advisory_xact_lock(4240002)").execute(conn)?;
        let mut out = Seeded::default();
        if orgs::list_orgs(conn)?.is_empty() {
            let org = orgs::create_org(conn, "Default")?;
            let profile = match profiles::by_profile_id(conn, "default")? {
                Some(p) => p,
                None => profiles::create(
                    conn,
                    &profiles::NewProfile::with_defaults("default", "Default device profile"),
                )?,
            };
            profiles::enable_for(conn, profile.id, org.id, None)?;
            audit::record(
                conn,
                &AuditEvent {
                    actor: "bootstrap",
                    kind: AuditKind::OrganizationCreated,
                    target: Some(format!("organization:{}", org.id)),
                    details: serde_json::json!({ "name": org.name, "profile": profile.profile_id }),
                    client_ip: None,
                    organization_id: Some(org.id),
                    department_id: None,
                },
            )?;
        }
        if admins::count(conn)? == 0 {
            let (password, generated) = match &cfg.admin_password {
                Some(p) => (p.clone(), false),
                None => (
                    crate::challenge::generate_secret()
                        .map_err(|e| BootstrapError::Invalid(e.to_string()))?,
                    true,
                ),
            };
            let hash = hash_password(&password)?;
            let admin = admins::create(conn, &cfg.admin_username, &hash, admins::Role::Mrao, None)?;
            // A generated password has been on disk: it is for the first
            // login only.
            admins::set_must_change_password(conn, admin.id, generated)?;
            audit::record(
                conn,
                &AuditEvent {
                    actor: "bootstrap",
                    kind: AuditKind::AdminCreated,
                    target: Some(format!("admin:{}", cfg.admin_username)),
                    details: serde_json::json!({ "role": "mrao" }),
                    client_ip: None,
                    organization_id: None,
                    department_id: None,
                },
            )?;
            out.created_admin = Some(cfg.admin_username.clone());
            if generated {
                out.admin_password = Some(password);
            }
        }
        Ok(out)
    })
}

//! The CA identity pinned in the database (`store::ca_identity`): the CA,
//! its issuers, the RA's signing and encryption certificates and a waiting
//! rollover CA with its RAs. The first node to bootstrap a database records
//! its own; every later start compares `<data>/ca/` with the record and
//! refuses to start on any difference, so no node issues under a CA the
//! others do not know (whose certificates they could not renew, and whose
//! revocations no CRL of theirs would list).

use std::path::{Path, PathBuf};

use diesel::pg::PgConnection;
use openssl::x509::X509;

use super::{chain_path, load_chain, BootstrapError, IdentityOptions, ImportCa};
use crate::ca::{self, CaIdentity};
use crate::enroll::Authority;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::store::ca_identity::{self as record, CaIdentityRow, NewIdentity, NextIdentity};
use crate::store::certificates;

/// The certificates `<data>/ca/` holds (a certificate counts only beside
/// its key or its key's token reference `<name>.pkcs11`, as a start loads it); keys are checked when the node loads them.
pub struct LocalCerts {
    pub ca: Option<X509>,
    pub issuers: Vec<X509>,
    pub ra: Option<X509>,
    pub ra_enc: Option<X509>,
    pub next_ca: Option<X509>,
    pub next_ra: Option<X509>,
    pub next_ra_enc: Option<X509>,
}

impl LocalCerts {
    pub fn read(data: &Path) -> Result<Self, BootstrapError> {
        let cert = |name: &str| -> Result<Option<X509>, BootstrapError> {
            // Certificates only: no key is read (or decrypted) to compare.
            let dir = data.join("ca");
            let (crt, key, token_ref) = (
                dir.join(format!("{name}.crt")),
                dir.join(format!("{name}.key")),
                dir.join(format!("{name}.pkcs11")),
            );
            if !(crt.exists() && (key.exists() || token_ref.exists())) {
                return Ok(None);
            }
            let pem = std::fs::read(&crt).map_err(super::io(&crt))?;
            X509::from_pem(&pem)
                .map(Some)
                .map_err(|e| BootstrapError::Invalid(format!("{}: {e}", crt.display())))
        };
        let ca = cert("ca")?;
        let issuers = load_chain(data)?;
        if let Some(ca) = &ca {
            // The same check (and message) as the start's, before comparing.
            ca::check_chain(ca, &issuers).map_err(|e| {
                BootstrapError::Invalid(format!("{}: {e}", chain_path(data).display()))
            })?;
        }
        Ok(Self {
            ca,
            issuers,
            ra: cert("ra")?,
            ra_enc: cert("ra-enc")?,
            next_ca: cert("next-ca")?,
            next_ra: cert("next-ra")?,
            next_ra_enc: cert("next-ra-enc")?,
        })
    }
}

/// One part of the identity: its name, its files, and the SHA-256
/// fingerprints (uppercase hex) the database and this node hold.
pub struct Part {
    pub label: &'static str,
    pub files: &'static str,
    pub recorded: Vec<String>,
    pub local: Vec<String>,
}

fn fingerprints<'a>(
    certs: impl IntoIterator<Item = &'a X509>,
) -> Result<Vec<String>, BootstrapError> {
    certs
        .into_iter()
        .map(|c| Ok(ca::sha256_fingerprint(c)?))
        .collect()
}

fn hex_of(fp: &Option<Vec<u8>>) -> Vec<String> {
    fp.iter().map(hex::encode_upper).collect()
}

/// The recorded issuers of an intermediate CA, nearest first.
pub fn recorded_issuers(recorded: &CaIdentityRow) -> Result<Vec<X509>, BootstrapError> {
    if recorded.ca_chain_pem.trim().is_empty() {
        return Ok(vec![]);
    }
    Ok(ca::certs_from_pem(recorded.ca_chain_pem.as_bytes())?)
}

/// Every part, recorded against local, in the order `scepd ca show` prints.
pub fn parts(recorded: &CaIdentityRow, local: &LocalCerts) -> Result<Vec<Part>, BootstrapError> {
    let part = |label, files, recorded, local: &Option<X509>| -> Result<Part, BootstrapError> {
        Ok(Part {
            label,
            files,
            recorded,
            local: fingerprints(local)?,
        })
    };
    Ok(vec![
        part(
            "CA",
            "ca.crt, ca.key",
            vec![hex::encode_upper(&recorded.ca_sha256)],
            &local.ca,
        )?,
        Part {
            label: "CA issuers",
            files: "ca-chain.crt",
            recorded: fingerprints(&recorded_issuers(recorded)?)?,
            local: fingerprints(&local.issuers)?,
        },
        part(
            "RA signing",
            "ra.crt, ra.key",
            vec![hex::encode_upper(&recorded.ra_sha256)],
            &local.ra,
        )?,
        part(
            "RA encryption",
            "ra-enc.crt, ra-enc.key",
            vec![hex::encode_upper(&recorded.ra_enc_sha256)],
            &local.ra_enc,
        )?,
        part(
            "next CA",
            "next-ca.crt, next-ca.key",
            hex_of(&recorded.next_ca_sha256),
            &local.next_ca,
        )?,
        part(
            "next RA signing",
            "next-ra.crt, next-ra.key",
            hex_of(&recorded.next_ra_sha256),
            &local.next_ra,
        )?,
        part(
            "next RA encryption",
            "next-ra-enc.crt, next-ra-enc.key",
            hex_of(&recorded.next_ra_enc_sha256),
            &local.next_ra_enc,
        )?,
    ])
}

fn shown(fps: &[String]) -> String {
    if fps.is_empty() {
        "none".into()
    } else {
        fps.join(", ")
    }
}

fn ca_dir(data: &Path) -> PathBuf {
    data.join("ca")
}

/// Refuse to start unless `<data>/ca/` holds exactly the recorded identity.
pub fn check(
    recorded: &CaIdentityRow,
    local: &LocalCerts,
    data: &Path,
) -> Result<(), BootstrapError> {
    let differ: Vec<Part> = parts(recorded, local)?
        .into_iter()
        .filter(|p| p.recorded != p.local)
        .collect();
    if differ.is_empty() {
        return Ok(());
    }
    let mut msg = String::from(
        "this node's CA identity is not the one recorded in the database; refusing to start\n",
    );
    for p in &differ {
        msg.push_str(&format!(
            "  {} ({}): database {}, this node {}\n",
            p.label,
            p.files,
            shown(&p.recorded),
            shown(&p.local)
        ));
    }
    msg.push_str(&format!(
        "Every scepd serving one database holds the same CA and RA keys. Replace the \
         contents of {dir} on this node with a copy of <data>/ca/ of a node that already \
         serves this database (ca.crt, ca.key, ra.crt, ra.key, ra-enc.crt, ra-enc.key, and \
         ca-chain.crt and next-ca.*, next-ra.*, next-ra-enc.* where present; keep the .key \
         files mode 0600) and give it the passphrase those keys are encrypted with (the \
         other node's <data>/key-passphrase, or the same SCEPD_KEY_PASSPHRASE_FILE), then \
         start again. `scepd ca show` prints what the database holds.",
        dir = ca_dir(data).display()
    ));
    Err(BootstrapError::IdentityMismatch(msg))
}

/// With an identity recorded, an import or an adoption would change it.
pub fn refuse_change(
    recorded: &CaIdentityRow,
    opts: &IdentityOptions,
) -> Result<(), BootstrapError> {
    let fp = hex::encode_upper(&recorded.ca_sha256);
    if opts.import.is_some() {
        return Err(BootstrapError::Invalid(format!(
            "the database already records CA {fp}; an installation keeps its CA \
             (a different CA needs its own database)"
        )));
    }
    if opts.adopt_foreign {
        return Err(BootstrapError::Invalid(format!(
            "the database already records CA {fp}; nothing to adopt"
        )));
    }
    Ok(())
}

/// Before recording on a database that already holds certificates (one
/// from before the record): refuse, before any key is created, unless the
/// CA this node would record issued all of them. `import` is the CA about
/// to be imported, else the CA in `<data>/ca/`.
pub fn check_issued(
    conn: &mut PgConnection,
    data: &Path,
    import: Option<&ImportCa>,
) -> Result<(), BootstrapError> {
    let issued = certificates::issuers(conn)?;
    if issued.is_empty() {
        return Ok(());
    }
    let local = LocalCerts::read(data)?;
    let ours: Vec<String> = match import {
        Some(imp) => fingerprints(ca::certs_from_pem(&imp.cert_pem)?.first())?,
        None => fingerprints(local.ca.iter().chain(&local.next_ca))?,
    };
    let foreign: Vec<(String, i64)> = issued
        .into_iter()
        .map(|(fp, n)| (hex::encode_upper(fp), n))
        .filter(|(fp, _)| !ours.contains(fp))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let mut msg = String::from(
        "the database records no CA identity yet (it predates the record) but holds \
         certificates issued by a CA this node does not hold; refusing to start\n",
    );
    for (fp, n) in &foreign {
        msg.push_str(&format!("  database: CA {fp} issued {n} certificates\n"));
    }
    msg.push_str(&format!(
        "  this node ({}): CA {}\n",
        ca_dir(data).display(),
        shown(&ours)
    ));
    msg.push_str(
        "Start first a node whose <data>/ca/ holds the CA that issued them: it records \
         its identity, and its <data>/ca/ is then what to copy to every other node. If \
         several CAs issued them and this node's CA is the one to keep, `scepd ca adopt` \
         on this node records it anyway.",
    );
    Err(BootstrapError::IdentityMismatch(msg))
}

/// Record `auth` as the installation's identity, with its audit entry.
pub fn record(
    conn: &mut PgConnection,
    auth: &Authority,
    issuers: &[X509],
    adopted_over: bool,
) -> Result<(), BootstrapError> {
    let chain_pem = if issuers.is_empty() {
        String::new()
    } else {
        String::from_utf8(ca::certs_to_pem(issuers)?)
            .map_err(|e| BootstrapError::Invalid(e.to_string()))?
    };
    let (ca, ra, ra_enc) = (
        auth.ca.cert_der()?,
        auth.ra.cert().to_der().map_err(ca::CaError::from)?,
        auth.ra_enc.cert().to_der().map_err(ca::CaError::from)?,
    );
    let next = match &auth.next {
        Some(n) => Some((
            n.ca.cert_der()?,
            n.ra.cert().to_der().map_err(ca::CaError::from)?,
            n.ra_enc.cert().to_der().map_err(ca::CaError::from)?,
        )),
        None => None,
    };
    record::insert(
        conn,
        &NewIdentity {
            ca: &ca,
            ca_chain_pem: &chain_pem,
            ra: &ra,
            ra_enc: &ra_enc,
        },
        next.as_ref()
            .map(|(ca, ra, ra_enc)| NextIdentity { ca, ra, ra_enc })
            .as_ref(),
    )?;
    let fp = |der: &[u8]| hex::encode_upper(openssl::sha::sha256(der));
    audit::record(
        conn,
        &AuditEvent {
            actor: "bootstrap",
            kind: AuditKind::CaRecorded,
            target: Some(format!("ca:{}", auth.ca.fingerprint())),
            details: serde_json::json!({
                "ca": fp(&ca),
                "issuers": fingerprints(issuers)?,
                "ra": fp(&ra),
                "ra_enc": fp(&ra_enc),
                "next_ca": next.as_ref().map(|n| fp(&n.0)),
                "adopted_over_other_cas": adopted_over,
            }),
            client_ip: None,
            organization_id: None,
            department_id: None,
        },
    )?;
    tracing::info!(
        fingerprint = auth.ca.fingerprint(),
        "recorded the CA identity in the database"
    );
    Ok(())
}

/// The audit entry of `scepd ca rollover`, in its transaction.
pub fn audit_rollover(
    conn: &mut PgConnection,
    current: &CaIdentity,
    next: &CaIdentity,
) -> Result<(), BootstrapError> {
    audit::record(
        conn,
        &AuditEvent {
            actor: "cli",
            kind: AuditKind::CaRolloverPrepared,
            target: Some(format!("ca:{}", next.fingerprint())),
            details: serde_json::json!({
                "current_ca": current.fingerprint(),
                "next_ca": next.fingerprint(),
            }),
            client_ip: None,
            organization_id: None,
            department_id: None,
        },
    )?;
    Ok(())
}

/// The audit entry of `scepd ca switch`, in its transaction.
pub fn audit_switch(
    conn: &mut PgConnection,
    old: &CaIdentity,
    new: &CaIdentity,
) -> Result<(), BootstrapError> {
    audit::record(
        conn,
        &AuditEvent {
            actor: "cli",
            kind: AuditKind::CaSwitched,
            target: Some(format!("ca:{}", new.fingerprint())),
            details: serde_json::json!({
                "previous_ca": old.fingerprint(),
                "ca": new.fingerprint(),
            }),
            client_ip: None,
            organization_id: None,
            department_id: None,
        },
    )?;
    Ok(())
}

/// The recorded identity, if any.
pub fn recorded(conn: &mut PgConnection) -> Result<Option<CaIdentityRow>, BootstrapError> {
    Ok(record::get(conn)?)
}

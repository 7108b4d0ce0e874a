//! `scepd ca`: the installation's CA identity as the database records it
//! (and whether this node holds it), the rollover CA, adopting an older
//! database's CA, and the CRL.

use std::path::PathBuf;

use clap::Subcommand;
use diesel::pg::PgConnection;
use openssl::x509::X509;
use server::bootstrap::{self, pin};
use server::config::Config;
use server::store;

use crate::commands::{err, with_db};
use crate::serve::start;

#[derive(Subcommand)]
pub enum CaCmd {
    /// Print the CA identity the database records (CA, its issuers, the RA's
    /// signing and encryption certificates, a waiting rollover CA) with
    /// SHA-256 fingerprints, and whether this node's <data>/ca/ holds it
    /// (exit status 1 when it does not: such a node refuses to start).
    Show,
    /// Create the next CA and its RAs and record them in the database
    /// (served by GetNextCACert once each node holds them and restarts).
    Rollover {
        #[arg(long, default_value = "")]
        common_name: String,
    },
    /// Record this node's CA as the installation's in a database from
    /// before the record that holds certificates of other CAs as well
    /// (those can then no longer be renewed or revoked here).
    Adopt,
    /// Write the current CRL (DER) to a file.
    Crl { out: PathBuf },
    /// Make the rollover CA current, in the database's record and in
    /// <data>/ca/ (the old CA's files move to <data>/ca/retired/); every
    /// node issues under it from its next start.
    Switch,
}

type CmdResult = Result<(), String>;

pub fn ca(cfg: &Config, cmd: CaCmd) -> CmdResult {
    match cmd {
        CaCmd::Show => show(cfg),
        CaCmd::Rollover { common_name } => {
            let fp = with_db(cfg, |running, conn| {
                bootstrap::rollover(cfg, &running.data, &common_name, conn).map_err(err)
            })?;
            println!("next CA fingerprint (SHA-256): {fp}");
            eprintln!(
                "copy next-ca.*, next-ra.* and next-ra-enc.* from <data>/ca/ to every other \
                 node, then restart each to advertise GetNextCACert"
            );
            Ok(())
        }
        CaCmd::Switch => {
            let fp = with_db(cfg, |running, conn| {
                bootstrap::switch_to_next(cfg, &running.data, conn).map_err(err)
            })?;
            println!("CA fingerprint (SHA-256): {fp}");
            eprintln!(
                "restart scepd to issue under this CA; copy <data>/ca/ from this node to every \
                 other node first, or they refuse to start"
            );
            Ok(())
        }
        CaCmd::Adopt => {
            let running = start(
                cfg,
                bootstrap::IdentityOptions {
                    import: None,
                    adopt_foreign: true,
                },
            )?;
            println!(
                "recorded CA (SHA-256): {}",
                running.enroll.authority().ca.fingerprint()
            );
            if let Some(c) = running.db.cluster {
                let _ = c.stop();
            }
            Ok(())
        }
        CaCmd::Crl { out } => with_db(cfg, |running, _| {
            let crl = running
                .enroll
                .crl_for(&running.enroll.authority().ca)
                .map_err(err)?;
            std::fs::write(&out, crl).map_err(|e| format!("{}: {e}", out.display()))
        }),
    }
}

/// What the database records, read without bootstrapping this node (so it
/// also works on a node that would refuse to start), then this node's
/// comparison with it.
fn show(cfg: &Config) -> CmdResult {
    let data = bootstrap::data_dir(cfg).map_err(err)?;
    let db = bootstrap::database(cfg, &data).map_err(err)?;
    let res = (|| {
        let pool = store::pool(&db.url, 1).map_err(err)?;
        let mut conn = pool
            .get()
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        store::run_migrations(&mut conn).map_err(err)?;
        print_recorded(cfg, &data, &mut conn)
    })();
    if let Some(c) = db.cluster {
        let _ = c.stop();
    }
    res
}

fn print_recorded(cfg: &Config, data: &std::path::Path, conn: &mut PgConnection) -> CmdResult {
    let recorded = pin::recorded(conn).map_err(err)?.ok_or(
        "the database records no CA identity yet: the first `scepd serve` or `scepd init` \
         records its own",
    )?;
    let line = |label: &str, der: &[u8]| -> CmdResult {
        let cert = X509::from_der(der).map_err(err)?;
        println!(
            "{label:<19} {}  {}",
            server::ca::sha256_fingerprint(&cert).map_err(err)?,
            server::enroll::name_text(cert.subject_name())
        );
        Ok(())
    };
    line("CA", &recorded.ca_cert)?;
    // An intermediate CA's issuers, nearest first.
    for c in pin::recorded_issuers(&recorded).map_err(err)? {
        line("issuer", &c.to_der().map_err(err)?)?;
    }
    line("RA signing", &recorded.ra_cert)?;
    line("RA encryption", &recorded.ra_enc_cert)?;
    for (label, der) in [
        ("next CA", &recorded.next_ca_cert),
        ("next RA signing", &recorded.next_ra_cert),
        ("next RA encryption", &recorded.next_ra_enc_cert),
    ] {
        if let Some(der) = der {
            line(label, der)?;
        }
    }
    println!(
        "recorded {}, updated {}",
        recorded.recorded_at.to_rfc3339(),
        recorded.updated_at.to_rfc3339()
    );
    println!("SCEP URL: {}/scep", cfg.public_url);
    println!("OCSP URL: {}", server::enroll::ocsp_url(&cfg.public_url));
    let local = pin::LocalCerts::read(data).map_err(err)?;
    pin::check(&recorded, &local, data).map_err(err)?;
    println!(
        "this node ({}): holds this identity",
        data.join("ca").display()
    );
    Ok(())
}

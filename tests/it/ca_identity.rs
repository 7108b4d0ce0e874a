//! The CA identity pinned in the database: every `scepd` serving one
//! database holds the CA, RA and RA encryption certificates (and a waiting
//! rollover CA) that the first node recorded; a node whose `<data>/ca/`
//! differs refuses to start and says what to copy where.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use openssl::x509::X509;
use server::wire::{ContentCipher, PkiStatus};

use crate::device::Device;
use crate::support::{free_port, Scepd, Scepd2, BIN};

fn fp(cert: &X509) -> String {
    server::ca::sha256_fingerprint(cert).unwrap()
}

fn cert_in(dir: &std::path::Path, name: &str) -> X509 {
    X509::from_pem(&std::fs::read(dir.join("ca").join(name)).unwrap()).unwrap()
}

/// Enroll a fresh device through `node` (a second process of `s`'s
/// installation); the reply is checked with `s`'s RA certificate.
fn enroll_via(s: &Scepd, node: &Scepd2, cn: &str) -> X509 {
    let dev = Device::new(cn, 2048);
    let csr = dev.csr(Some(&s.mint("default")));
    let msg = dev.pkcs_req_message(s, &csr, ContentCipher::Aes128Cbc);
    let body = ureq::post(&format!("{}/scep/default?operation=PKIOperation", node.url))
        .send_bytes(&msg)
        .unwrap();
    let mut der = vec![];
    std::io::Read::read_to_end(&mut body.into_reader(), &mut der).unwrap();
    let rep =
        server::wire::client::parse_cert_rep(&der, &s.ra_cert(), &dev.signer, &dev.key).unwrap();
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    rep.certs[0].clone()
}

/// The recorded fingerprints, uppercase hex, straight from the table.
fn recorded(s: &Scepd) -> Vec<Option<String>> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        ca: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        ra: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        ra_enc: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        next_ca: Option<String>,
    }
    let r: Row = diesel::sql_query(
        "SELECT upper(encode(ca_sha256, 'hex')) AS ca, upper(encode(ra_sha256, 'hex')) AS ra,
                upper(encode(ra_enc_sha256, 'hex')) AS ra_enc,
                upper(encode(next_ca_sha256, 'hex')) AS next_ca
           FROM ca_identity",
    )
    .get_result(&mut s.pg())
    .unwrap();
    vec![Some(r.ca), Some(r.ra), Some(r.ra_enc), r.next_ca]
}

/// The fingerprint on the `scepd ca show` line starting with `label`.
fn shown(out: &str, label: &str) -> Option<String> {
    out.lines()
        .find(|l| {
            l.strip_prefix(label)
                .is_some_and(|rest| rest.starts_with("  "))
        })
        .and_then(|l| l[label.len()..].split_whitespace().next())
        .map(str::to_string)
}

#[test]
fn a_node_with_a_fresh_data_dir_refuses_to_start_and_creates_nothing() {
    let s = Scepd::start();
    let fresh = tempfile::tempdir().unwrap();
    let (status, err) = s.serve_refused(fresh.path());
    assert!(!status.success());
    assert_eq!(status.code(), Some(1), "an error exit, not a panic: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(&fp(&s.ca_cert())), "the database's CA: {err}");
    assert!(err.contains("CA (ca.crt, ca.key): database"), "{err}");
    assert!(err.contains("this node none"), "{err}");
    // What to copy, from where, to where.
    assert!(err.contains("<data>/ca/ of a node"), "{err}");
    assert!(
        err.contains(&fresh.path().join("ca").display().to_string()),
        "{err}"
    );
    assert!(err.contains("ra-enc.key"), "{err}");
    assert!(
        err.contains("<data>/key-passphrase"),
        "the keys' passphrase: {err}"
    );
    assert!(
        !fresh.path().join("ca/ca.key").exists() && !fresh.path().join("ca/ra.key").exists(),
        "no key is created for an installation that has its CA"
    );
    assert_eq!(s.count("ca_identity"), 1);
}

#[test]
fn a_node_holding_another_ca_refuses_naming_both_fingerprints() {
    let s = Scepd::start();
    // A data directory of another installation (its own database).
    let other = Scepd::start();
    let other_dir = tempfile::tempdir().unwrap();
    other.copy_ca_dir(other_dir.path());
    drop(other);
    let (status, err) = s.serve_refused(other_dir.path());
    assert!(!status.success());
    let (ours, theirs) = (fp(&s.ca_cert()), fp(&cert_in(other_dir.path(), "ca.crt")));
    assert_ne!(ours, theirs);
    assert!(
        err.contains(&format!("database {ours}, this node {theirs}")),
        "{err}"
    );
    assert!(err.contains("RA signing (ra.crt, ra.key)"), "{err}");
    // Its keys are left as they were.
    assert_eq!(fp(&cert_in(other_dir.path(), "ca.crt")), theirs);
}

#[test]
fn a_node_with_a_copy_of_the_ca_directory_starts_and_enrolls() {
    let s = Scepd::start();
    let node = tempfile::tempdir().unwrap();
    s.copy_ca_dir(node.path());
    let b = s.second_in(node.path());
    let cert = enroll_via(&s, &b, "via-second-node");
    let (ok, msg) = crate::support::openssl_verify(&s.ca_pem_path(), &cert, &[]);
    assert!(ok, "issued under the one CA: {msg}");
    assert_eq!(
        s.count("certificates"),
        1,
        "stored in the installation's database"
    );
}

#[test]
fn two_nodes_bootstrapping_one_empty_database_agree_on_one_ca() {
    let db = server::testdb::test_db().unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ports = [free_port(), free_port()];
    let mut children: Vec<_> = dirs
        .iter()
        .zip(ports)
        .map(|(dir, port)| {
            Command::new(BIN)
                .arg("serve")
                .env("DATABASE_URL", &db.url)
                .env("SCEPD_DATA_DIR", dir.path())
                .env("SCEPD_LISTEN", format!("127.0.0.1:{port}"))
                .env("SCEPD_CA_KEY_TYPE", "rsa2048")
                .env("SCEPD_ADMIN_PASSWORD", "race-admin-password")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // One exits (refused); the other serves.
    let deadline = Instant::now() + Duration::from_secs(90);
    let loser = loop {
        if let Some(i) = (0..2).find(|&i| children[i].try_wait().unwrap().is_some()) {
            break i;
        }
        assert!(Instant::now() < deadline, "neither node refused");
        std::thread::sleep(Duration::from_millis(50));
    };
    let winner = 1 - loser;
    let ready = format!("http://127.0.0.1:{}/readyz", ports[winner]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ureq::get(&ready).call().is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "the winner never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(children[winner].try_wait().unwrap().is_none());
    let mut out = String::new();
    std::io::Read::read_to_string(children[loser].stderr.as_mut().unwrap(), &mut out).unwrap();
    assert!(!children[loser].wait().unwrap().success());
    let won = fp(&cert_in(dirs[winner].path(), "ca.crt"));
    assert!(out.contains(&format!("database {won}")), "{out}");
    assert!(!dirs[loser].path().join("ca/ca.key").exists(), "{out}");
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    #[derive(diesel::QueryableByName)]
    struct Fp {
        #[diesel(sql_type = diesel::sql_types::Text)]
        ca: String,
    }
    let rows: Vec<Fp> =
        diesel::sql_query("SELECT upper(encode(ca_sha256, 'hex')) AS ca FROM ca_identity")
            .load(&mut <diesel::PgConnection as diesel::Connection>::establish(&db.url).unwrap())
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].ca, won);
}

#[test]
fn ca_show_prints_what_the_database_records() {
    let s = Scepd::start();
    let out = s.cli_ok(&["ca", "show"]);
    let rec = recorded(&s);
    assert_eq!(shown(&out, "CA"), rec[0], "{out}");
    assert_eq!(shown(&out, "RA signing"), rec[1], "{out}");
    assert_eq!(shown(&out, "RA encryption"), rec[2], "{out}");
    assert_eq!(shown(&out, "next CA"), None, "{out}");
    assert_eq!(rec[0].as_deref(), Some(fp(&s.ca_cert()).as_str()));
    assert_eq!(
        rec[2].as_deref(),
        Some(fp(&cert_in(s.dir.path(), "ra-enc.crt")).as_str())
    );
    assert!(out.contains("holds this identity"), "{out}");

    // From a node without the keys: the record still, then the refusal.
    let fresh = tempfile::tempdir().unwrap();
    let other = s.cli_in(fresh.path(), &["ca", "show"]);
    assert!(!other.status.success());
    let stdout = String::from_utf8_lossy(&other.stdout);
    assert_eq!(shown(&stdout, "CA"), rec[0], "{stdout}");
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(stderr.contains("this node none"), "{stderr}");
    assert!(!fresh.path().join("ca/ca.key").exists());
}

#[test]
fn rollover_updates_the_record_and_a_node_with_only_the_old_keys_is_refused() {
    let s = Scepd::start();
    // A second node, set up before the rollover.
    let node = tempfile::tempdir().unwrap();
    s.copy_ca_dir(node.path());
    let before = recorded(&s);

    let printed = s.cli_ok(&["ca", "rollover", "--common-name", "scepd CA 2"]);
    let next = printed.trim().rsplit(' ').next().unwrap().to_string();
    let rec = recorded(&s);
    assert_eq!(rec[..3], before[..3], "the current CA and RAs stay");
    assert_eq!(rec[3].as_deref(), Some(next.as_str()));
    assert_eq!(next, fp(&cert_in(s.dir.path(), "next-ca.crt")));
    let out = s.cli_ok(&["ca", "show"]);
    assert_eq!(shown(&out, "CA"), before[0], "{out}");
    assert_eq!(shown(&out, "next CA"), Some(next.clone()), "{out}");
    assert_eq!(
        shown(&out, "next RA encryption"),
        Some(fp(&cert_in(s.dir.path(), "next-ra-enc.crt"))),
        "the rollover's encryption certificate is made and recorded with it: {out}"
    );
    assert_eq!(s.count("audit_log WHERE event = 'ca.rollover'"), 1);

    // A second rollover is refused and changes nothing.
    let again = s.cli(&["ca", "rollover"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains(&next));
    assert_eq!(recorded(&s), rec);

    // The node holding only the old keys does not start...
    let (status, err) = s.serve_refused(node.path());
    assert!(!status.success());
    assert!(
        err.contains(&format!(
            "next CA (next-ca.crt, next-ca.key): database {next}, this node none"
        )),
        "{err}"
    );
    // ...until it has the rollover's files too.
    s.copy_ca_dir(node.path());
    let b = s.second_in(node.path());
    let caps = ureq::get(&format!("{}/scep/default?operation=GetCACaps", b.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(caps.contains("GetNextCACert"), "{caps}");
    enroll_via(&s, &b, "after-rollover");
}

/// Forget the record, as on a database from before it existed.
fn forget_record(s: &Scepd) {
    diesel::sql_query("DELETE FROM ca_identity")
        .execute(&mut s.pg())
        .unwrap();
}

#[test]
fn an_older_database_is_adopted_only_by_the_ca_that_issued_its_certificates() {
    let s = Scepd::start();
    Device::enrolled(&s, "default", "issued-before-upgrade");
    forget_record(&s);
    let ours = fp(&s.ca_cert());

    // A node with a fresh data dir would create a CA that issued nothing.
    let fresh = tempfile::tempdir().unwrap();
    let (status, err) = s.serve_refused(fresh.path());
    assert!(!status.success());
    assert!(
        err.contains(&format!("CA {ours} issued 1 certificates")),
        "{err}"
    );
    assert!(err.contains("this node ("), "{err}");
    assert!(!fresh.path().join("ca/ca.key").exists());
    assert_eq!(s.count("ca_identity"), 0);

    // The node whose CA issued them adopts the database on restart.
    let s = s.restart();
    assert_eq!(recorded(&s)[0].as_deref(), Some(ours.as_str()));
    assert_eq!(
        s.count("audit_log WHERE event = 'ca.recorded'"),
        2,
        "first start and adoption"
    );
}

#[test]
fn ca_adopt_records_this_nodes_ca_over_other_cas_certificates() {
    let s = Scepd::start();
    Device::enrolled(&s, "default", "issued-by-the-first-ca");
    forget_record(&s);
    let fresh = tempfile::tempdir().unwrap();
    let out = s.cli_in(fresh.path(), &["ca", "adopt"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let adopted = fp(&cert_in(fresh.path(), "ca.crt"));
    assert_ne!(adopted, fp(&s.ca_cert()));
    assert_eq!(recorded(&s)[0].as_deref(), Some(adopted.as_str()));
    // Adopting twice is refused.
    let again = s.cli_in(fresh.path(), &["ca", "adopt"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already records"));
    // The first node is now the odd one out.
    let (status, err) = s.serve_refused(s.dir.path());
    assert!(!status.success());
    assert!(err.contains(&format!("database {adopted}")), "{err}");
}

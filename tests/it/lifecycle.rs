//! Start-up and operations: zero-configuration serve on a private
//! PostgreSQL, key file permissions, health probes, CA import, CA rollover
//! (RFC 8894 §3.5.2 GetNextCACert) and the switch to the next CA, and two
//! processes on one database.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use openssl::hash::MessageDigest;
use server::wire::PkiStatus;

use crate::device::Device;
use crate::support::{openssl_verify, scepclient, Scepd, BIN};

#[test]
fn zero_config_serve_runs_its_own_postgres_and_enrolls_scepclient() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scepd::start_private(dir);
    // It says where the console is and who logs in.
    let log = s.log();
    assert!(log.contains(&format!("RA console: {}/", s.url)), "{log}");
    assert!(log.contains("the first one is \"admin\""), "{log}");
    // The CLI shares the running private cluster.
    let challenge = s.mint("default");
    assert_eq!(challenge.len(), 32, "{challenge}");
    let work = tempfile::tempdir().unwrap();
    let run = scepclient(
        work.path(),
        &format!("{}/scep", s.url),
        &challenge,
        "newcomer",
    );
    assert!(run.ok, "{}\n{}", run.output, s.log());
    let (ok, msg) = openssl_verify(&s.ca_pem_path(), &run.cert.unwrap(), &[]);
    assert!(ok, "{msg}");
    assert!(s.dir.path().join("postgres/pgdata/PG_VERSION").exists());
    // Keys are private to the service user.
    for f in ["ca/ca.key", "ca/ra.key"] {
        let mode = std::fs::metadata(s.dir.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let mode = std::fs::metadata(s.dir.path().join("ca"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn health_and_readiness_probes_answer() {
    let s = Scepd::start();
    assert_eq!(
        ureq::get(&format!("{}/healthz", s.url))
            .call()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        ureq::get(&format!("{}/readyz", s.url))
            .call()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn help_documents_every_setting_with_its_environment_variable() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "SCEPD_LISTEN",
        "SCEPD_DATA_DIR",
        "DATABASE_URL",
        "SCEPD_PUBLIC_URL",
        "SCEPD_CA_KEY_TYPE",
        "SCEPD_RA_KEY_TYPE",
        "SCEPD_ADMIN_PASSWORD",
        "SCEPD_CONFIG",
        "SCEPD_ALLOW_SINGLE_DES",
        "SCEPD_CONSOLE_LISTEN",
        "SCEPD_TLS_CERT",
        "SCEPD_TLS_KEY",
        "SCEPD_TLS_NAMES",
        "SCEPD_CONSOLE_INSECURE_HTTP",
    ] {
        assert!(help.contains(var), "{var} missing from --help:\n{help}");
    }
}

fn make_ca(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (crt, key) = (dir.join("imported.crt"), dir.join("imported.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=Imported Test CA/O=Acme",
        ])
        .args([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (crt, key)
}

#[test]
fn init_imports_an_existing_ca_and_issues_under_it() {
    let work = tempfile::tempdir().unwrap();
    let (crt, key) = make_ca(work.path());
    let db = server::testdb::test_db().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let init = Command::new(BIN)
        .args(["init", "--import-ca"])
        .arg(&crt)
        .arg("--import-ca-key")
        .arg(&key)
        .env("DATABASE_URL", &db.url)
        .env("SCEPD_DATA_DIR", dir.path())
        .env("SCEPD_ADMIN_PASSWORD", "x-admin-password")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let s = Scepd::start_with(db, dir, &[]);
    let dev = Device::new("under-imported", 2048);
    let rep = dev.pkcs_req(&s, "default", Some(&s.mint("default")));
    assert_eq!(rep.status, PkiStatus::Success);
    let (ok, msg) = openssl_verify(&crt, &rep.certs[0], &[]);
    assert!(ok, "issued certificate chains to the imported CA: {msg}");
}

#[test]
fn import_with_a_key_that_does_not_match_is_refused_clearly() {
    let work = tempfile::tempdir().unwrap();
    let (crt, _) = make_ca(work.path());
    let other = tempfile::tempdir().unwrap();
    let (_, wrong_key) = make_ca(other.path());
    let db = server::testdb::test_db().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let init = Command::new(BIN)
        .args(["init", "--import-ca"])
        .arg(&crt)
        .arg("--import-ca-key")
        .arg(&wrong_key)
        .env("DATABASE_URL", &db.url)
        .env("SCEPD_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!init.status.success());
    let err = String::from_utf8_lossy(&init.stderr);
    assert!(err.contains("does not match"), "{err}");
    assert!(
        !dir.path().join("ca/ca.key").exists(),
        "nothing written on failure"
    );
}

#[test]
fn rollover_ca_is_served_by_get_next_ca_cert_signed_by_the_current_ca() {
    let s = Scepd::start();
    let caps = ureq::get(&format!("{}?operation=GetCACaps", s.scep_url("default")))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(!caps.contains("GetNextCACert"));
    let fp = s.cli_ok(&["ca", "rollover", "--common-name", "scepd CA 2"]);
    let s = s.restart();
    let caps = ureq::get(&format!("{}?operation=GetCACaps", s.scep_url("default")))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(caps.contains("GetNextCACert"), "{caps}");
    let r = ureq::get(&format!(
        "{}?operation=GetNextCACert",
        s.scep_url("default")
    ))
    .call()
    .unwrap();
    assert_eq!(r.content_type(), "application/x-x509-next-ca-cert");
    let mut der = vec![];
    std::io::Read::read_to_end(&mut r.into_reader(), &mut der).unwrap();
    let certs = server::wire::client::parse_signed_next_ca(&der, &s.ca_cert()).unwrap();
    let next = certs
        .iter()
        .find(|c| {
            hex::encode_upper(c.digest(openssl::hash::MessageDigest::sha256()).unwrap())
                == fp.trim().rsplit(' ').next().unwrap()
        })
        .expect("the next CA is in the reply");
    assert_ne!(next.to_der().unwrap(), s.ca_cert().to_der().unwrap());
}

#[test]
fn two_processes_on_one_database_issue_distinct_certificates() {
    let s = Scepd::start();
    let b = s.second();
    let challenges: Vec<String> = s
        .cli_ok(&["challenge", "mint", "--count", "12"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(challenges.len(), 12);
    let urls = [s.url.clone(), b.url.clone()];
    let serials: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = challenges
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let url = urls[i % 2].clone();
                let s = &s;
                scope.spawn(move || {
                    let dev = Device::new(&format!("multi-{i}"), 2048);
                    let csr = dev.csr(Some(c));
                    let msg = dev.pkcs_req_message(s, &csr, server::wire::ContentCipher::Aes128Cbc);
                    let body = ureq::post(&format!("{url}/scep/default?operation=PKIOperation"))
                        .send_bytes(&msg)
                        .unwrap();
                    let mut der = vec![];
                    std::io::Read::read_to_end(&mut body.into_reader(), &mut der).unwrap();
                    let rep = server::wire::client::parse_cert_rep(
                        &der,
                        &s.ra_cert(),
                        &dev.signer,
                        &dev.key,
                    )
                    .unwrap();
                    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
                    hex::encode(rep.certs[0].serial_number().to_bn().unwrap().to_vec())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique = serials.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 12);
}

#[test]
fn ca_switch_promotes_the_rollover_ca_and_retires_the_old_one() {
    let s = Scepd::start();
    let old_fp = hex::encode_upper(s.ca_cert().digest(MessageDigest::sha256()).unwrap());
    let refused = s.cli(&["ca", "switch"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("there is no next CA"), "{err}");
    let fp = s.cli_ok(&["ca", "rollover", "--common-name", "scepd CA 2"]);
    let fp = fp.trim().rsplit(' ').next().unwrap().to_string();
    s.cli_ok(&["ca", "switch"]);
    // The database's record moved with the files: the new CA is current,
    // no rollover waits, and this node holds what is recorded.
    let show = s.cli_ok(&["ca", "show"]);
    let current = show.lines().find(|l| l.starts_with("CA ")).unwrap_or("");
    assert!(current.contains(&fp), "{show}");
    assert!(!show.contains("next CA"), "{show}");
    assert!(show.contains("holds this identity"), "{show}");
    let s = s.restart();
    let ca = s.ca_cert();
    assert_eq!(
        hex::encode_upper(ca.digest(MessageDigest::sha256()).unwrap()),
        fp
    );
    let retired = s.dir.path().join("ca/retired").join(&old_fp[..16]);
    assert!(retired.join("ca.crt").exists() && retired.join("ca.key").exists());
    assert!(!s.dir.path().join("ca/next-ca.crt").exists());
    let work = tempfile::tempdir().unwrap();
    let run = scepclient(
        work.path(),
        &s.scep_url("default"),
        &s.mint("default"),
        "after-switch",
    );
    assert!(run.ok, "{}\n{}", run.output, s.log());
    let (ok, msg) = openssl_verify(&s.ca_pem_path(), &run.cert.unwrap(), &[]);
    assert!(ok, "{msg}");
}

//! The CA key in an HSM through PKCS#11, end to end with SoftHSM2 (Debian
//! `softhsm2`): init creates the key in the token, enrollment and CRLs are
//! signed by it, rollover makes the next key there, and every HSM failure
//! stops start-up with its reason. Each test has its own token directory
//! (`SOFTHSM2_CONF`), so tests run in parallel.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::x509::X509Crl;
use server::testdb;

use crate::support::{openssl_verify, scepclient, Scepd, BIN};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4711-user";

/// A SoftHSM2 token in a directory of its own.
struct Token {
    dir: tempfile::TempDir,
    label: String,
}

impl Token {
    fn new(label: &str) -> Token {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        std::fs::write(
            conf(dir.path()),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", conf(dir.path()))
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", PIN, "--so-pin", "4711-so"])
            .output()
            .expect("softhsm2-util is installed (Debian package softhsm2)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Token {
            dir,
            label: label.to_string(),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "SOFTHSM2_CONF".into(),
                conf(self.dir.path()).display().to_string(),
            ),
            ("SCEPD_PKCS11_MODULE".into(), MODULE.into()),
            ("SCEPD_PKCS11_TOKEN".into(), self.label.clone()),
            ("SCEPD_PKCS11_PIN".into(), PIN.into()),
        ]
    }
}

fn conf(dir: &Path) -> PathBuf {
    dir.join("softhsm2.conf")
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn with(mut env: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != key);
    env.push((key.into(), value.into()));
    env
}

fn bytes(url: &str) -> Vec<u8> {
    let r = ureq::get(url).call().unwrap();
    let mut der = vec![];
    std::io::Read::read_to_end(&mut r.into_reader(), &mut der).unwrap();
    der
}

fn crl_uri(cert: &openssl::x509::X509) -> String {
    cert.crl_distribution_points()
        .expect("CRL distribution point")
        .iter()
        .flat_map(|p| {
            p.distpoint()
                .and_then(|n| n.fullname())
                .into_iter()
                .flatten()
        })
        .find_map(|g| g.uri().map(str::to_string))
        .unwrap()
}

/// `openssl <args>`: its stderr and stdout together.
fn openssl(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

fn enroll(s: &Scepd, cn: &str) -> openssl::x509::X509 {
    let work = tempfile::tempdir().unwrap();
    let run = scepclient(work.path(), &s.scep_url("default"), &s.mint("default"), cn);
    assert!(
        run.ok,
        "scepclient failed:\n{}\nlog:\n{}",
        run.output,
        s.log()
    );
    run.cert.expect("certificate written")
}

#[test]
fn ca_key_in_softhsm_issues_signs_crls_and_rolls_over() {
    let token = Token::new("scepd-e2e");
    let env = token.env();
    let s = Scepd::start_keeping_env(
        testdb::test_db().unwrap(),
        tempfile::tempdir().unwrap(),
        &borrowed(&env),
    );
    let ca_dir = s.dir.path().join("ca");
    assert!(
        !ca_dir.join("ca.key").exists(),
        "no CA key file with an HSM"
    );
    assert_eq!(
        std::fs::read_to_string(ca_dir.join("ca.pkcs11"))
            .unwrap()
            .trim(),
        "scepd-ca"
    );
    // The self-signed CA certificate was signed in the token.
    let ca = s.ca_cert();
    assert!(ca.verify(&ca.public_key().unwrap()).unwrap());

    // Enrollment: the certificate chains to the CA.
    let cert = enroll(&s, "hsm-device-1");
    let (ok, msg) = openssl_verify(&s.ca_pem_path(), &cert, &[]);
    assert!(ok, "{msg}");

    // Revocation: the CRL is signed in the token and lists the serial.
    let serial = hex::encode(cert.serial_number().to_bn().unwrap().to_vec());
    s.cli_ok(&["cert", "revoke", &serial, "--reason", "keyCompromise"]);
    let crl = X509Crl::from_der(&bytes(&crl_uri(&cert))).unwrap();
    assert!(crl.verify(&ca.public_key().unwrap()).unwrap());
    let listed: Vec<String> = crl
        .get_revoked()
        .into_iter()
        .flatten()
        .map(|r| hex::encode(r.serial_number().to_bn().unwrap().to_vec()))
        .collect();
    assert_eq!(listed, vec![serial]);
    let crl_file = s.dir.path().join("ca.crl");
    s.cli_ok(&["ca", "crl", crl_file.to_str().unwrap()]);
    let ca_pem = s.ca_pem_path();
    let text = openssl(&[
        "crl".as_ref(),
        "-inform".as_ref(),
        "DER".as_ref(),
        "-noout".as_ref(),
        "-in".as_ref(),
        crl_file.as_os_str(),
        "-CAfile".as_ref(),
        ca_pem.as_os_str(),
    ]);
    assert!(text.contains("verify OK"), "{text}");

    // OCSP: the responder's certificate was issued in the token, so the
    // answer verifies against the CA and says revoked.
    let leaf = s.dir.path().join("leaf.pem");
    std::fs::write(&leaf, cert.to_pem().unwrap()).unwrap();
    let url = cert
        .ocsp_responders()
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .to_string();
    let text = openssl(&[
        "ocsp".as_ref(),
        "-url".as_ref(),
        url.as_ref(),
        "-issuer".as_ref(),
        ca_pem.as_os_str(),
        "-cert".as_ref(),
        leaf.as_os_str(),
        "-CAfile".as_ref(),
        ca_pem.as_os_str(),
    ]);
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains("leaf.pem: revoked"), "{text}");

    // Rollover: the next CA's key is made in the token under a new label.
    let fp = s.cli_ok(&["ca", "rollover", "--common-name", "scepd HSM CA 2"]);
    let fp = fp.trim().rsplit(' ').next().unwrap().to_string();
    let label = std::fs::read_to_string(ca_dir.join("next-ca.pkcs11")).unwrap();
    assert!(label.trim().starts_with("scepd-ca-"), "{label}");
    assert!(!ca_dir.join("next-ca.key").exists());
    let s = s.restart();
    let der = bytes(&format!(
        "{}?operation=GetNextCACert",
        s.scep_url("default")
    ));
    // Signed by the RA: OpenSSL's CMS signer needs the key in memory.
    let certs = server::wire::client::parse_signed_next_ca(&der, &s.ra_cert()).unwrap();
    let next = certs
        .iter()
        .find(|c| hex::encode_upper(c.digest(MessageDigest::sha256()).unwrap()) == fp)
        .expect("the next CA is in the reply");
    assert!(next.verify(&next.public_key().unwrap()).unwrap());

    // The switch: enrollment issues under the new CA.
    s.cli_ok(&["ca", "switch"]);
    let s = s.restart();
    let new_ca = s.ca_cert();
    assert_eq!(
        hex::encode_upper(new_ca.digest(MessageDigest::sha256()).unwrap()),
        fp
    );
    assert_eq!(
        std::fs::read_to_string(ca_dir.join("ca.pkcs11")).unwrap(),
        label
    );
    let cert = enroll(&s, "hsm-device-2");
    let (ok, msg) = openssl_verify(&s.ca_pem_path(), &cert, &[]);
    assert!(ok, "{msg}");
    assert!(!cert.verify(&ca.public_key().unwrap()).unwrap());
}

/// Runs `scepd <args>` to its end (at most a minute); status and stderr.
fn run(data: &Path, db_url: &str, env: &[(String, String)], args: &[&str]) -> (bool, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("SCEPD_DATA_DIR", data)
        .env("DATABASE_URL", db_url)
        .env(
            "SCEPD_LISTEN",
            format!("127.0.0.1:{}", crate::support::free_port()),
        )
        .env("SCEPD_CA_KEY_TYPE", "rsa2048")
        .env("SCEPD_ADMIN_PASSWORD", "test-admin-password")
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("scepd {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn hsm_failures_stop_start_up_with_their_reason() {
    let token = Token::new("scepd-errors");
    let db = testdb::test_db().unwrap();
    let data = tempfile::tempdir().unwrap();
    let env = token.env();

    let (ok, err) = run(
        data.path(),
        &db.url,
        &with(env.clone(), "SCEPD_PKCS11_PIN", "0000"),
        &["init"],
    );
    assert!(!ok);
    assert!(
        err.contains("wrong PIN for token \"scepd-errors\""),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let (ok, err) = run(
        data.path(),
        &db.url,
        &with(env.clone(), "SCEPD_PKCS11_TOKEN", "absent"),
        &["init"],
    );
    assert!(!ok);
    assert!(err.contains("no token labelled \"absent\""), "{err}");
    assert!(err.contains("tokens present: \"scepd-errors\""), "{err}");

    let (ok, err) = run(
        data.path(),
        &db.url,
        &with(env.clone(), "SCEPD_PKCS11_MODULE", "/nonexistent/p11.so"),
        &["init"],
    );
    assert!(!ok);
    assert!(
        err.contains("PKCS#11 module /nonexistent/p11.so does not exist"),
        "{err}"
    );
    assert!(!data.path().join("ca/ca.crt").exists(), "nothing created");

    let (ok, err) = run(data.path(), &db.url, &env, &["init"]);
    assert!(ok, "{err}");
    // A key label the token does not hold: `serve` exits at start-up.
    std::fs::write(data.path().join("ca/ca.pkcs11"), "scepd-ca-gone\n").unwrap();
    let (ok, err) = run(data.path(), &db.url, &env, &["serve"]);
    assert!(!ok);
    assert!(
        err.contains("no private key labelled \"scepd-ca-gone\" in token \"scepd-errors\""),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // The key is in the token: without the HSM settings there is no key.
    std::fs::write(data.path().join("ca/ca.pkcs11"), "scepd-ca\n").unwrap();
    let (ok, err) = run(data.path(), &db.url, &[], &["serve"]);
    assert!(!ok);
    assert!(err.contains("no PKCS#11 module is configured"), "{err}");
}

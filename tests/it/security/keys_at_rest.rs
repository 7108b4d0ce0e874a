//! The private keys in `<data>/ca/` are encrypted at rest (PKCS#8, scrypt,
//! AES-256-CBC) with a passphrase kept elsewhere, or generated on first
//! start into `<data>/key-passphrase` and named in the log. Without the
//! right passphrase scepd refuses to start, saying which one it tried.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::x509::X509;

use crate::support::{Scepd, BIN};

const KEYS: [&str; 4] = ["ca.key", "ra.key", "ra-enc.key", "profile-signer.key"];

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `scepd serve` with `s`'s environment plus `env`: `Ok(output)` if it
/// exited, `Err(())` once it answered GetCACaps (it is then stopped).
fn serve_once(s: &Scepd, env: &[(&str, &str)], remove: &[&str]) -> Result<Output, ()> {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .envs(s.cli_env())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in remove {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().unwrap();
    let caps = format!("{}/scep/default?operation=GetCACaps", s.url);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return Ok(child.wait_with_output().unwrap());
        }
        if ureq::get(&caps).call().is_ok_and(|r| r.status() == 200) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(());
        }
        assert!(Instant::now() < deadline, "scepd neither served nor exited");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stderr(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

#[test]
fn keys_are_encrypted_and_the_generated_passphrase_is_named_and_private() {
    let mut s = Scepd::start();
    let ca_dir = s.dir.path().join("ca");
    for k in KEYS {
        let pem = read(&ca_dir.join(k));
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{k} is not encrypted:\n{}",
            &pem[..pem.len().min(60)]
        );
    }
    let pass_file = s.dir.path().join("key-passphrase");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&pass_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        s.log().contains(&pass_file.display().to_string()),
        "{}",
        s.log()
    );
    // Any tool reads the key with that passphrase: OpenSSL's CLI.
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(ca_dir.join("ca.key"))
        .arg("-passin")
        .arg(format!("file:{}", pass_file.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let from_key = PKey::public_key_from_pem(&out.stdout).unwrap();
    let cert = X509::from_pem(read(&ca_dir.join("ca.crt")).as_bytes()).unwrap();
    assert!(cert.public_key().unwrap().public_eq(&from_key));
    s.stop();
}

#[test]
fn without_the_right_passphrase_scepd_refuses_to_start_and_says_why() {
    let mut s = Scepd::start();
    s.stop();
    let elsewhere = tempfile::tempdir().unwrap();
    let moved = elsewhere.path().join("pass");
    std::fs::rename(s.dir.path().join("key-passphrase"), &moved).unwrap();

    // No passphrase anywhere: a new one would not open the keys.
    let out = serve_once(&s, &[], &[]).expect("started without a passphrase");
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("is encrypted, but no passphrase was given"),
        "{text}"
    );
    assert!(text.contains("SCEPD_KEY_PASSPHRASE_FILE"), "{text}");
    assert!(
        !s.dir.path().join("key-passphrase").exists(),
        "generated a new one"
    );

    // A wrong one: the message names where it came from, never the value.
    let out = serve_once(&s, &[("SCEPD_KEY_PASSPHRASE", "not-it-7f3a")], &[])
        .expect("started with a wrong passphrase");
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("passphrase from SCEPD_KEY_PASSPHRASE"),
        "{text}"
    );
    assert!(!text.contains("not-it-7f3a"), "{text}");

    // The right one, from a file outside the data directory.
    let file = moved.display().to_string();
    let started = serve_once(&s, &[("SCEPD_KEY_PASSPHRASE_FILE", &file)], &[]);
    assert!(started.is_err(), "{}", stderr(&started.unwrap()));
}

#[test]
fn a_key_stored_in_the_clear_is_encrypted_at_the_next_start() {
    let mut s = Scepd::start();
    s.stop();
    let key = s.dir.path().join("ca").join("ra.key");
    let pass_file = s.dir.path().join("key-passphrase");
    let out = Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(&key)
        .arg("-passin")
        .arg(format!("file:{}", pass_file.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let plain = PKey::private_key_from_pem(&out.stdout).unwrap();
    std::fs::write(&key, plain.private_key_to_pem_pkcs8().unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(read(&key).starts_with("-----BEGIN PRIVATE KEY-----"));

    let s = s.restart();
    let pem = read(&key);
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    let again = PKey::private_key_from_pem_passphrase(
        pem.as_bytes(),
        read(&pass_file).trim_end().as_bytes(),
    )
    .unwrap();
    assert!(again.public_eq(&plain));
    assert!(s.log().contains("encrypted a private key"), "{}", s.log());
}

/// `scepd init --import-ca` with an encrypted CA key, its passphrase from a
/// file; without it, a clear refusal.
#[test]
fn init_imports_an_encrypted_ca_key_with_its_passphrase_file() {
    let work = tempfile::tempdir().unwrap();
    let (crt, key, pw) = (
        work.path().join("ca.pem"),
        work.path().join("ca.key"),
        work.path().join("pw"),
    );
    std::fs::write(&pw, "export pass\n").unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-days",
            "30",
            "-subj",
            "/CN=Imported CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .arg("-passout")
        .arg(format!("file:{}", pw.display()))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(read(&key).contains("ENCRYPTED"));

    let init = |with_pass: bool| {
        let db = server::testdb::test_db().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["init", "--import-ca"])
            .arg(&crt)
            .arg("--import-ca-key")
            .arg(&key)
            .env("DATABASE_URL", &db.url)
            .env("SCEPD_DATA_DIR", dir.path())
            .env("SCEPD_ADMIN_PASSWORD", "x-admin-password");
        if with_pass {
            cmd.arg("--import-ca-key-passphrase-file").arg(&pw);
        }
        let out = cmd.output().unwrap();
        let stored = read(&dir.path().join("ca").join("ca.key"));
        (out, stored)
    };
    let (out, stored) = init(false);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--import-ca-key-passphrase-file"),
        "{}",
        stderr(&out)
    );
    assert!(stored.is_empty(), "a key was stored");

    let (out, stored) = init(true);
    assert!(out.status.success(), "{}", stderr(&out));
    let cert = X509::from_pem(read(&crt).as_bytes()).unwrap();
    let fp = hex::encode_upper(cert.digest(openssl::hash::MessageDigest::sha256()).unwrap());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&fp),
        "{}",
        stderr(&out)
    );
    // Stored under the installation's passphrase, not the export's.
    assert!(stored.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert!(PKey::private_key_from_pem_passphrase(stored.as_bytes(), b"export pass").is_err());
}

//! strongSwan's `pki` (Debian package `strongswan-pki`, 5.9.8 in bookworm;
//! its HTTP fetcher is the curl plugin of `libstrongswan-extra-plugins`,
//! DES3 comes from the openssl plugin of `libstrongswan-standard-plugins`)
//! enrolling with a real scepd: `pki --scepca` for the CA and RA
//! certificates, `pki --scep` for a first enrollment with a one-time
//! challenge under both of its ciphers (`--cipher des3` and its default,
//! `--cipher aes`), PENDING followed by an officer's approval while `pki`
//! polls, and renewal (`--cert` and `--key`: a RenewalReq signed with the
//! certificate being renewed, for a new key).
//!
//! `pki --scep` needs the RA certificate to encrypt to (`--cacert-enc`) and
//! the one that signs replies (`--cacert-sig`): the tests pick them from
//! what `pki --scepca` wrote by keyUsage, keyEncipherment for the first and
//! digitalSignature for the second (one RA certificate may be both).
//!
//! 5.9.8 reads GetCACaps into a bit set but tests it with the capabilities'
//! indexes instead of their bits, so its AES check passes only when the
//! server lists SHA-384 and its DES3 check passes when it lists AES
//! (fixed upstream in 5.9.9).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use openssl::x509::X509;
use server::store::certificates;

use super::clients::{
    assert_issued_to, poll_until, read_cert, require, run_bounded, serial_hex, tail, Background,
    Run,
};
use crate::support::Scepd;

/// How long one `pki` run may take (a poll loop included).
const PKI_LIMIT: Duration = Duration::from_secs(60);

/// A working directory for `pki`, with the CA and RA certificates that
/// `pki --scepca` fetched from a profile's URL.
struct Pki {
    dir: tempfile::TempDir,
    url: String,
    ca: PathBuf,
    ra_enc: PathBuf,
    ra_sig: PathBuf,
    scepca: Run,
}

/// Where Debian's libstrongswan loads its plugins from.
const PLUGINS: &str = "/usr/lib/ipsec/plugins";

fn pki() -> Command {
    let bin = require("pki", "strongswan-pki");
    // strongswan-pki depends on neither: without curl, pki cannot fetch
    // anything ("no capable fetcher found"); without openssl, no DES3.
    for (plugin, package) in [
        ("curl", "libstrongswan-extra-plugins"),
        ("openssl", "libstrongswan-standard-plugins"),
    ] {
        require(&format!("{PLUGINS}/libstrongswan-{plugin}.so"), package);
    }
    Command::new(bin)
}

/// `pki` prints a line per plugin it cannot load (TPM, PKCS#11, ...):
/// leave those out of failure messages.
fn quiet(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("plugin '") && !l.starts_with("TPM 2.0"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn has_key_usage(cert: &X509, usage: &str) -> bool {
    crate::support::openssl_text(cert)
        .lines()
        .skip_while(|l| !l.contains("X509v3 Key Usage"))
        .nth(1)
        .is_some_and(|l| l.contains(usage))
}

impl Pki {
    /// `pki --scepca` against `url`; fails the test unless it wrote the CA
    /// and at least one RA certificate.
    fn fetch(url: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let run = run_bounded(
            pki()
                .current_dir(dir.path())
                .args(["--scepca", "--url", url])
                .args(["--caout", "ca.pem", "--raout", "ra.pem", "--outform", "pem"]),
            PKI_LIMIT,
        );
        if run.stderr.contains("no capable fetcher found") {
            panic!(
                "pki has no HTTP fetcher: install the Debian package libstrongswan-extra-plugins (its curl plugin)\n{}",
                quiet(&run.text())
            );
        }
        assert!(run.ok, "pki --scepca failed: {}", quiet(&run.text()));
        let ca = dir.path().join("ca.pem");
        assert!(ca.exists(), "no CA written: {}", quiet(&run.text()));
        // One RA certificate is ra.pem; several are ra.pem, ra-2.pem, ...
        let ras: Vec<(PathBuf, X509)> = std::iter::once(dir.path().join("ra.pem"))
            .chain((2..10).map(|i| dir.path().join(format!("ra-{i}.pem"))))
            .filter_map(|p| read_cert(&p).map(|c| (p, c)))
            .collect();
        assert!(!ras.is_empty(), "no RA written: {}", quiet(&run.text()));
        let pick = |want: &str, rather_not: &str| -> PathBuf {
            let with: Vec<&(PathBuf, X509)> =
                ras.iter().filter(|(_, c)| has_key_usage(c, want)).collect();
            with.iter()
                .find(|(_, c)| !has_key_usage(c, rather_not))
                .or(with.first())
                .map(|(p, _)| p.clone())
                .unwrap_or_else(|| panic!("no RA certificate for {want}: {}", quiet(&run.text())))
        };
        let ra_enc = pick("Key Encipherment", "Digital Signature");
        let ra_sig = pick("Digital Signature", "Key Encipherment");
        Pki {
            url: url.to_string(),
            ca,
            ra_enc,
            ra_sig,
            scepca: run,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new RSA key made by `pki --gen`.
    fn gen_key(&self, name: &str) -> PathBuf {
        let run = run_bounded(
            pki().current_dir(self.dir.path()).args([
                "--gen",
                "--type",
                "rsa",
                "--size",
                "2048",
                "--outform",
                "pem",
            ]),
            PKI_LIMIT,
        );
        assert!(run.ok, "pki --gen: {}", quiet(&run.text()));
        let path = self.path(name);
        std::fs::write(&path, &run.stdout).unwrap();
        path
    }

    /// `pki --scep` for `key`; `extra` adds the cipher, the password, the
    /// old certificate and key.
    fn scep_cmd(&self, key: &Path, cn: &str, extra: &[&str]) -> Command {
        let mut cmd = pki();
        cmd.current_dir(self.dir.path())
            .args(["--scep", "--url", &self.url])
            .arg("--in")
            .arg(key)
            .args(["--dn", &format!("CN={cn}")])
            .arg("--cacert-enc")
            .arg(&self.ra_enc)
            .arg("--cacert-sig")
            .arg(&self.ra_sig)
            .arg("--cacert")
            .arg(&self.ca)
            .args(["--outform", "pem", "--interval", "1", "--maxpolltime", "50"])
            .args(extra);
        cmd
    }

    /// Run `pki --scep` to its end; the certificate it printed, if any.
    fn scep(&self, key: &Path, cn: &str, extra: &[&str]) -> (Run, Option<X509>) {
        let run = run_bounded(&mut self.scep_cmd(key, cn, extra), PKI_LIMIT);
        let cert = X509::from_pem(run.stdout.as_bytes()).ok();
        (run, cert)
    }
}

fn context(s: &Scepd, run: &Run) -> String {
    format!(
        "pki:\n{}\nscepd log (tail):\n{}",
        quiet(&run.text()),
        tail(&s.log(), 20)
    )
}

#[test]
fn strongswan_fetches_the_ca_and_ra_certificates() {
    let s = Scepd::start();
    let p = Pki::fetch(&s.scep_url("default"));
    let ca = read_cert(&p.ca).expect("CA certificate");
    assert_eq!(ca.to_der().unwrap(), s.ca_cert().to_der().unwrap());
    // The RA certificates chain to the CA that pki was given.
    let out = quiet(&p.scepca.text());
    assert!(out.contains("RA cert is trusted"), "{out}");
    for ra in [&p.ra_enc, &p.ra_sig] {
        let cert = read_cert(ra).unwrap();
        assert!(cert.verify(&ca.public_key().unwrap()).unwrap(), "{out}");
    }
    assert!(has_key_usage(
        &read_cert(&p.ra_enc).unwrap(),
        "Key Encipherment"
    ));
    assert!(has_key_usage(
        &read_cert(&p.ra_sig).unwrap(),
        "Digital Signature"
    ));
}

#[test]
fn strongswan_enrolls_with_a_one_time_challenge_over_des3() {
    let s = Scepd::start();
    let p = Pki::fetch(&s.scep_url("default"));
    let key = p.gen_key("des3.key");
    let challenge = s.mint("default");
    let (run, cert) = p.scep(
        &key,
        "strongswan-des3",
        &["--cipher", "des3", "--password", &challenge],
    );
    assert!(run.ok, "{}", context(&s, &run));
    let cert = cert.expect("pki printed the certificate");
    assert_issued_to(&s, &cert, &key, "strongswan-des3", &context(&s, &run));
    assert_eq!(s.count("certificates"), 1);
}

/// AES-128-CBC is pki's default cipher. strongSwan 5.9.8 decides whether
/// the server offers it from the wrong bit of GetCACaps (SHA-384's), so
/// it enrolls over AES only with a server that lists SHA-384.
#[test]
fn strongswan_enrolls_with_a_one_time_challenge_over_aes_its_default() {
    let s = Scepd::start();
    let p = Pki::fetch(&s.scep_url("default"));
    let key = p.gen_key("aes.key");
    let challenge = s.mint("default");
    let (run, cert) = p.scep(
        &key,
        "strongswan-aes",
        &["--cipher", "aes", "--password", &challenge],
    );
    assert!(run.ok, "{}", context(&s, &run));
    let cert = cert.expect("pki printed the certificate");
    assert_issued_to(&s, &cert, &key, "strongswan-aes", &context(&s, &run));
    assert_eq!(s.count("certificates"), 1);
}

#[test]
fn strongswan_polls_while_pending_and_gets_the_approved_certificate() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
    let p = Pki::fetch(&s.scep_url("manual"));
    let key = p.gen_key("pending.key");
    let challenge = s.mint("manual");
    let mut client = Background::start(
        &mut p.scep_cmd(
            &key,
            "strongswan-pending",
            &["--cipher", "des3", "--password", &challenge],
        ),
        p.dir.path(),
        "pending",
    );

    // The request waits for an officer; pki keeps polling (CertPoll).
    let id = poll_until(Duration::from_secs(30), Duration::from_millis(200), || {
        let list = s.cli_ok(&["request", "list", "--status", "requested"]);
        list.lines()
            .find(|l| l.contains("strongswan-pending"))
            .map(|l| l.split('\t').next().unwrap().trim().to_string())
    })
    .unwrap_or_else(|| {
        panic!(
            "no pending request in scepd\npki:\n{}\nscepd log:\n{}",
            quiet(&client.output()),
            tail(&s.log(), 20)
        )
    });
    // Polled at least once and is still waiting.
    let polled = poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
        client.output().contains("going to sleep").then_some(())
    });
    assert!(polled.is_some(), "{}", quiet(&client.output()));
    assert!(client.running(), "{}", quiet(&client.output()));
    assert_eq!(s.count("certificates"), 0);

    s.cli_ok(&["request", "approve", &id, "--actor", "officer1"]);

    let run = client.finish(PKI_LIMIT);
    assert!(run.ok, "{}", context(&s, &run));
    let cert = X509::from_pem(run.stdout.as_bytes()).expect("pki printed the certificate");
    assert_issued_to(&s, &cert, &key, "strongswan-pending", &context(&s, &run));
    assert_eq!(s.count("certificates"), 1);
}

#[test]
fn strongswan_renews_with_the_old_certificate_and_key_for_a_new_key() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
    let p = Pki::fetch(&s.scep_url("renew"));
    let old_key = p.gen_key("old.key");
    let challenge = s.mint("renew");
    let (run, old) = p.scep(
        &old_key,
        "strongswan-renewer",
        &["--cipher", "des3", "--password", &challenge],
    );
    assert!(run.ok, "{}", context(&s, &run));
    let old = old.expect("first certificate");
    let old_cert = p.path("old.crt");
    std::fs::write(&old_cert, old.to_pem().unwrap()).unwrap();

    // No challenge: the old certificate authenticates the RenewalReq.
    let new_key = p.gen_key("new.key");
    let (run, new) = p.scep(
        &new_key,
        "strongswan-renewer",
        &[
            "--cipher",
            "des3",
            "--cert",
            old_cert.to_str().unwrap(),
            "--key",
            old_key.to_str().unwrap(),
        ],
    );
    assert!(run.ok, "{}", context(&s, &run));
    assert_eq!(
        s.count("enrollment_requests WHERE message_type = 'RenewalReq' AND status = 'issued'"),
        1,
        "sent as a RenewalReq and issued"
    );
    let new = new.expect("renewed certificate");
    assert_issued_to(&s, &new, &new_key, "strongswan-renewer", &context(&s, &run));
    let stored = certificates::by_serial(&mut s.pg(), &serial_hex(&new))
        .unwrap()
        .expect("renewed certificate stored");
    let replaced = certificates::by_serial(&mut s.pg(), &serial_hex(&old))
        .unwrap()
        .expect("old certificate stored");
    assert_eq!(stored.replaces_id, Some(replaced.id));
}

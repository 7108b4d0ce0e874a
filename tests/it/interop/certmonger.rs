//! certmonger (Debian package `certmonger`, 0.79.17 in bookworm) enrolling
//! with a real scepd through its bundled SCEP helper: the first enrollment
//! with a one-time challenge, PENDING on a manual-approval profile and the
//! poll that collects the certificate once an officer approved, renewal by
//! `getcert resubmit` (the same key) and `getcert rekey` (a new key), both
//! signed with the certificate being renewed, of a certificate certmonger
//! enrolled or one it was given to track, and its helper `scep-submit` run
//! directly for GetCACaps and GetCACert.
//!
//! Each test runs its own certmonger, isolated from the system's: a private
//! D-Bus session bus (`dbus-daemon --config-file`, no service activation),
//! `certmonger -s -n -d3` on it with its requests, CAs, configuration,
//! temporary files and lock file in a temporary directory
//! (`CERTMONGER_REQUESTS_DIR`, `CERTMONGER_CAS_DIR`, `CERTMONGER_CONFIG_DIR`,
//! `CERTMONGER_TMPDIR`, `CERTMONGER_LOCAL_CA_DIR`,
//! `CERTMONGER_SYSTEM_LOCK_FILE`: without the last, every certmonger waits
//! for the lock on /var/lib/certmonger/lock, the system daemon's), and
//! `getcert ... -s`.
//! Both daemons are ended with their process groups when the test ends.
//!
//! What certmonger sends: PKIOperation by GET (although POSTPKIOperation is
//! advertised), signed with a self-signed "mini certificate" whose serial is
//! 33 octets long for a first enrollment, and with the issued certificate
//! and its key (messageType PKCSReq, not RenewalReq) when it renews. Its
//! transactionID is the SHA-256 of the request's SubjectPublicKeyInfo as a
//! decimal number, so every request for one key carries the same one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use openssl::hash::MessageDigest;
use server::store::certificates;

use super::clients::{
    assert_issued_to, end_group, poll_until, read_cert, require, run_bounded, serial_hex,
    spawn_group, tail, Run,
};
use crate::device::Device;
use crate::support::Scepd;

const SCEP_SUBMIT: &str = "/usr/lib/certmonger/scep-submit";

/// How long any single getcert call may take.
const GETCERT_LIMIT: Duration = Duration::from_secs(30);
/// How long certmonger may take to reach a state.
const STATE_LIMIT: Duration = Duration::from_secs(60);

/// A private certmonger on a private session bus.
struct Certmonger {
    state: tempfile::TempDir,
    bus_address: String,
    bus: Child,
    daemon: Child,
}

impl Certmonger {
    fn start() -> Certmonger {
        let dbus_daemon = require("dbus-daemon", "dbus");
        let certmonger = require("certmonger", "certmonger");
        require("getcert", "certmonger");

        let state = tempfile::tempdir().unwrap();
        let root = state.path();
        for d in ["requests", "cas", "tmp", "local", "config", "home", "keys"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        // A session bus of our own: listens in the temporary directory and
        // activates no services, so the certmonger we start is the only one.
        let socket = root.join("bus");
        let config = root.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut bus = spawn_group(
            Command::new(dbus_daemon)
                .arg(format!("--config-file={}", config.display()))
                .arg("--nofork")
                .arg("--nopidfile")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(root.join("bus.log")).unwrap()),
        )
        .expect("start dbus-daemon");
        if poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
            socket.exists().then_some(())
        })
        .is_none()
        {
            end_group(&mut bus, Duration::from_secs(1));
            panic!(
                "dbus-daemon did not listen on {}: {}",
                socket.display(),
                std::fs::read_to_string(root.join("bus.log")).unwrap_or_default()
            );
        }
        let bus_address = format!("unix:path={}", socket.display());

        let mut cmd = Command::new(certmonger);
        cmd.args(["-s", "-n", "-d3"])
            .envs(Self::env_for(root, &bus_address))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("certmonger.log")).unwrap());
        let daemon = match spawn_group(&mut cmd) {
            Ok(c) => c,
            Err(e) => {
                end_group(&mut bus, Duration::from_secs(1));
                panic!("start certmonger: {e}");
            }
        };
        let cm = Certmonger {
            state,
            bus_address,
            bus,
            daemon,
        };
        // Ready when it answers on the bus.
        let ready = poll_until(STATE_LIMIT, Duration::from_millis(100), || {
            cm.getcert(&["list-cas"]).ok.then_some(())
        });
        assert!(
            ready.is_some(),
            "certmonger did not answer on its bus:\n{}",
            cm.log()
        );
        cm
    }

    fn env_for(root: &Path, bus_address: &str) -> Vec<(String, String)> {
        let p = |d: &str| root.join(d).display().to_string();
        vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), bus_address.into()),
            ("CERTMONGER_REQUESTS_DIR".into(), p("requests")),
            ("CERTMONGER_CAS_DIR".into(), p("cas")),
            ("CERTMONGER_TMPDIR".into(), p("tmp")),
            ("CERTMONGER_LOCAL_CA_DIR".into(), p("local")),
            ("CERTMONGER_CONFIG_DIR".into(), p("config")),
            // The daemon's lock, /var/lib/certmonger/lock unless told.
            ("CERTMONGER_SYSTEM_LOCK_FILE".into(), p("lock")),
            ("HOME".into(), p("home")),
            ("XDG_CONFIG_HOME".into(), p("home/.config")),
            ("XDG_DATA_HOME".into(), p("home/.local/share")),
        ]
    }

    /// `getcert <sub> -s <args>`: the subcommand on our session bus.
    fn getcert(&self, args: &[&str]) -> Run {
        let (sub, rest) = args.split_first().unwrap();
        run_bounded(
            Command::new("getcert")
                .arg(sub)
                .arg("-s")
                .args(rest)
                .envs(Self::env_for(self.state.path(), &self.bus_address)),
            GETCERT_LIMIT,
        )
    }

    fn getcert_ok(&self, args: &[&str]) -> String {
        let run = self.getcert(args);
        assert!(
            run.ok,
            "getcert {args:?} failed: {}\ncertmonger:\n{}",
            run.text(),
            tail(&self.log(), 40)
        );
        run.stdout
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("certmonger.log")).unwrap_or_default()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.state.path().join("keys").join(name)
    }

    /// `getcert add-scep-ca`, then wait until certmonger fetched the CA's
    /// certificates (GetCACaps, GetCACert); the CA's listing.
    fn add_scep_ca(&self, name: &str, url: &str) -> String {
        self.getcert_ok(&["add-scep-ca", "-c", name, "-u", url]);
        poll_until(STATE_LIMIT, Duration::from_millis(200), || {
            let out = self.getcert(&["list-cas", "-c", name]).stdout;
            out.contains("SCEP CA certificate thumbprint (SHA1)")
                .then_some(out)
        })
        .unwrap_or_else(|| {
            panic!(
                "certmonger never fetched the CA certificates of {url}:\n{}\ncertmonger:\n{}",
                self.getcert(&["list-cas", "-c", name]).text(),
                tail(&self.log(), 60)
            )
        })
    }

    /// `getcert request` for a new RSA key (generated by certmonger) and a
    /// certificate file, with a challenge password; returns at once.
    fn request(&self, id: &str, ca: &str, cn: &str, challenge: &str) {
        let key = self.path(&format!("{id}.key"));
        let cert = self.path(&format!("{id}.crt"));
        self.getcert_ok(&[
            "request",
            "-I",
            id,
            "-c",
            ca,
            "-k",
            key.to_str().unwrap(),
            "-f",
            cert.to_str().unwrap(),
            "-N",
            &format!("CN={cn}"),
            "-L",
            challenge,
        ]);
    }

    fn listing(&self, id: &str) -> String {
        self.getcert(&["list", "-i", id]).stdout
    }

    /// The `status:` of a tracked request.
    fn status(&self, id: &str) -> Option<String> {
        status_of(&self.listing(id))
    }

    /// Wait until the request's status is one of `want`, or certmonger
    /// gave up on it ("stuck: yes"); the last listing.
    fn wait_status(&self, id: &str, want: &[&str]) -> String {
        let mut last = String::new();
        poll_until(STATE_LIMIT, Duration::from_millis(250), || {
            last = self.listing(id);
            let st = status_of(&last)?;
            (want.contains(&st.as_str()) || last.contains("stuck: yes")).then_some(())
        });
        last
    }

    fn cert(&self, id: &str) -> Option<openssl::x509::X509> {
        read_cert(&self.path(&format!("{id}.crt")))
    }

    /// Everything a failure message needs.
    fn context(&self, s: &Scepd, id: &str) -> String {
        format!(
            "getcert list:\n{}\ncertmonger log (tail):\n{}\nscepd log (tail):\n{}",
            self.listing(id),
            tail(&self.log(), 60),
            tail(&s.log(), 20)
        )
    }
}

impl Drop for Certmonger {
    fn drop(&mut self) {
        end_group(&mut self.daemon, Duration::from_secs(5));
        end_group(&mut self.bus, Duration::from_secs(2));
    }
}

fn status_of(listing: &str) -> Option<String> {
    listing
        .lines()
        .find_map(|l| l.trim().strip_prefix("status: "))
        .map(str::to_string)
}

/// SHA-1 of the certificate, as getcert prints thumbprints (upper-case hex).
fn sha1_hex(cert: &openssl::x509::X509) -> String {
    hex::encode_upper(cert.digest(MessageDigest::sha1()).unwrap())
}

#[test]
fn certmonger_fetches_the_ca_certificate_it_will_trust() {
    let s = Scepd::start();
    let cm = Certmonger::start();
    let listing = cm.add_scep_ca("scepd", &s.scep_url("default"));
    let thumbprint: String = listing
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("SCEP CA certificate thumbprint (SHA1): ")
        })
        .expect("SHA1 thumbprint")
        .split_whitespace()
        .collect();
    assert_eq!(thumbprint, sha1_hex(&s.ca_cert()), "{listing}");
}

#[test]
fn certmonger_enrolls_with_a_one_time_challenge() {
    let s = Scepd::start();
    let cm = Certmonger::start();
    cm.add_scep_ca("scepd", &s.scep_url("default"));
    cm.request("first", "scepd", "certmonger-dev-1", &s.mint("default"));
    let listing = cm.wait_status("first", &["MONITORING"]);
    assert_eq!(
        status_of(&listing).as_deref(),
        Some("MONITORING"),
        "{}",
        cm.context(&s, "first")
    );
    let cert = cm.cert("first").expect("certificate file written");
    assert_issued_to(
        &s,
        &cert,
        &cm.path("first.key"),
        "certmonger-dev-1",
        &cm.context(&s, "first"),
    );
    // certmonger read back what it saved.
    assert!(
        listing.contains("subject: CN=certmonger-dev-1"),
        "{listing}"
    );
    assert_eq!(s.count("certificates"), 1);
}

#[test]
fn certmonger_is_told_pending_then_polls_and_gets_the_approved_certificate() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "manual", "--approval", "manual"]);
    let cm = Certmonger::start();
    cm.add_scep_ca("manual", &s.scep_url("manual"));
    cm.request("pending", "manual", "certmonger-pending", &s.mint("manual"));

    // PENDING: certmonger keeps the request and waits for the CA.
    let listing = cm.wait_status("pending", &["CA_WORKING"]);
    assert_eq!(
        status_of(&listing).as_deref(),
        Some("CA_WORKING"),
        "{}",
        cm.context(&s, "pending")
    );
    assert!(cm.cert("pending").is_none());
    let waiting = s.cli_ok(&["request", "list", "--status", "requested"]);
    let line = waiting
        .lines()
        .find(|l| l.contains("certmonger-pending"))
        .unwrap_or_else(|| panic!("no pending request in scepd:\n{waiting}"));
    let id = line.split('\t').next().unwrap().trim().to_string();
    assert_eq!(s.count("certificates"), 0);

    s.cli_ok(&["request", "approve", &id, "--actor", "officer1"]);

    // The next poll (GetCertInitial) collects the certificate; `refresh`
    // makes certmonger poll now instead of at its own pace.
    let done = poll_until(STATE_LIMIT, Duration::from_secs(2), || {
        if cm.status("pending").as_deref() == Some("MONITORING") {
            return Some(());
        }
        cm.getcert(&["refresh", "-i", "pending"]);
        None
    });
    assert!(done.is_some(), "{}", cm.context(&s, "pending"));
    let cert = cm.cert("pending").expect("certificate file written");
    assert_issued_to(
        &s,
        &cert,
        &cm.path("pending.key"),
        "certmonger-pending",
        &cm.context(&s, "pending"),
    );
    assert_eq!(s.count("certificates"), 1);
}

/// Renew the issued certificate of request `id` with `getcert <action>`
/// (`resubmit`: the same key; `rekey`: a new one). certmonger signs the
/// new request with the certificate being renewed and its key (messageType
/// PKCSReq); scepd must take it as a renewal, issue a new certificate and
/// record which one it replaces.
fn assert_renews(s: &Scepd, cm: &Certmonger, id: &str, cn: &str, action: &str) {
    let old = cm.cert(id).expect("issued certificate");
    let old_serial = serial_hex(&old);
    let key_path = cm.path(&format!("{id}.key"));
    let old_key = std::fs::read(&key_path).unwrap();
    cm.getcert_ok(&[action, "-i", id]);
    let renewed = poll_until(STATE_LIMIT, Duration::from_millis(250), || {
        let cert = cm.cert(id)?;
        (serial_hex(&cert) != old_serial && cm.status(id).as_deref() == Some("MONITORING"))
            .then_some(cert)
    });
    let new = renewed.unwrap_or_else(|| {
        panic!(
            "getcert {action} did not renew: the certificate file still holds serial {old_serial}\n\
             scepd's issued requests (id, time, transactionID, subject, status):\n{}\n{}",
            s.cli_ok(&["request", "list", "--status", "issued"]),
            cm.context(s, id)
        )
    });
    assert_issued_to(s, &new, &key_path, cn, &cm.context(s, id));
    let new_key = std::fs::read(&key_path).unwrap();
    assert_eq!(
        new_key != old_key,
        action == "rekey",
        "only rekey replaces the key"
    );
    let stored = certificates::by_serial(&mut s.pg(), &serial_hex(&new))
        .unwrap()
        .expect("renewed certificate stored");
    let replaced = certificates::by_serial(&mut s.pg(), &old_serial)
        .unwrap()
        .expect("old certificate stored");
    assert_eq!(
        stored.replaces_id,
        Some(replaced.id),
        "the new certificate records the one it renews"
    );
}

/// A first enrollment on a profile whose renewal window is open at once;
/// the request `id` is MONITORING its certificate when this returns.
fn enroll_for_renewal(s: &Scepd, cm: &Certmonger, id: &str, cn: &str) {
    s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
    cm.add_scep_ca("renew", &s.scep_url("renew"));
    cm.request(id, "renew", cn, &s.mint("renew"));
    let listing = cm.wait_status(id, &["MONITORING"]);
    assert_eq!(
        status_of(&listing).as_deref(),
        Some("MONITORING"),
        "{}",
        cm.context(s, id)
    );
}

/// certmonger's own renewal (what it does near expiry): the same key. Its
/// transactionID is derived from the key, so this request carries the
/// transactionID of the first enrollment, signed by the issued certificate
/// instead of the self-signed one; it is a new request, not a
/// retransmission of the first.
#[test]
fn certmonger_enrolls_then_renews_with_resubmit() {
    let s = Scepd::start();
    let cm = Certmonger::start();
    enroll_for_renewal(&s, &cm, "renewer", "certmonger-renewer");
    assert_renews(&s, &cm, "renewer", "certmonger-renewer", "resubmit");
    assert_eq!(s.count("certificates"), 2);
}

/// Renewal with a new key pair (`getcert rekey`).
#[test]
fn certmonger_enrolls_then_renews_with_rekey() {
    let s = Scepd::start();
    let cm = Certmonger::start();
    enroll_for_renewal(&s, &cm, "rekeyer", "certmonger-rekeyer");
    assert_renews(&s, &cm, "rekeyer", "certmonger-rekeyer", "rekey");
    assert_eq!(s.count("certificates"), 2);
}

/// A certificate enrolled by another client and handed to certmonger to
/// track (`getcert start-tracking`) is renewed the same way.
#[test]
fn certmonger_renews_a_certificate_it_started_tracking() {
    let s = Scepd::start();
    s.cli_ok(&["profile", "create", "renew", "--renewal-window-days", "400"]);
    let dev = Device::enrolled(&s, "renew", "tracked-dev");
    let cm = Certmonger::start();
    let key = cm.path("tracked.key");
    let cert = cm.path("tracked.crt");
    std::fs::write(&key, dev.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::write(&cert, dev.signer.to_pem().unwrap()).unwrap();
    cm.add_scep_ca("renew", &s.scep_url("renew"));
    cm.getcert_ok(&[
        "start-tracking",
        "-I",
        "tracked",
        "-c",
        "renew",
        "-k",
        key.to_str().unwrap(),
        "-f",
        cert.to_str().unwrap(),
    ]);
    let listing = cm.wait_status("tracked", &["MONITORING"]);
    assert_eq!(
        status_of(&listing).as_deref(),
        Some("MONITORING"),
        "{}",
        cm.context(&s, "tracked")
    );
    assert_renews(&s, &cm, "tracked", "tracked-dev", "resubmit");
}

/// The helper certmonger runs for every SCEP exchange, run by hand.
#[test]
fn scep_submit_reads_capabilities_and_ca_certificates() {
    require(SCEP_SUBMIT, "certmonger");
    let s = Scepd::start();
    let url = s.scep_url("default");

    let caps = run_bounded(
        Command::new(SCEP_SUBMIT).args(["-u", &url, "-c"]),
        GETCERT_LIMIT,
    );
    assert!(caps.ok, "{}", caps.text());
    let lines: Vec<&str> = caps.stdout.lines().map(str::trim).collect();
    for cap in ["POSTPKIOperation", "SHA-256", "AES", "DES3", "Renewal"] {
        assert!(lines.contains(&cap), "{cap} missing: {}", caps.text());
    }

    // -C prints the RA certificate first, then the CA, then the rest.
    let certs = run_bounded(
        Command::new(SCEP_SUBMIT).args(["-u", &url, "-C"]),
        GETCERT_LIMIT,
    );
    assert!(certs.ok, "{}", certs.text());
    let printed = openssl::x509::X509::stack_from_pem(certs.stdout.as_bytes()).unwrap();
    assert!(printed.len() >= 2, "{}", certs.text());
    let ca = s.ca_cert();
    let ca_der = ca.to_der().unwrap();
    assert_eq!(
        printed[1].to_der().unwrap(),
        ca_der,
        "second is the CA: {}",
        certs.text()
    );
    let ra = &printed[0];
    assert_ne!(ra.to_der().unwrap(), ca_der);
    assert!(
        ra.verify(&ca.public_key().unwrap()).unwrap(),
        "the RA certificate is issued by the CA"
    );
}

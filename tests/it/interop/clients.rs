//! Plumbing shared by the tests that drive the Debian SCEP clients
//! (certmonger, strongSwan's `pki`): every run bounded in time, every
//! process started in its own process group and ended with it, and the
//! checks an issued certificate must pass.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::x509::X509;

use crate::support::{openssl_verify, Scepd};

/// The finished run of a client command.
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Run {
    /// stdout and stderr, for failure messages.
    pub fn text(&self) -> String {
        format!(
            "exit {:?}{}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Fail with the Debian package to install when `binary` is missing.
pub fn require(binary: &str, package: &str) -> PathBuf {
    let found = if binary.contains('/') {
        Some(PathBuf::from(binary)).filter(|p| p.is_file())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(binary))
                .find(|p| p.is_file())
        })
    };
    found.unwrap_or_else(|| {
        panic!(
            "{binary} not found: install the Debian package {package} (apt-get install {package})"
        )
    })
}

/// Send `sig` to the process group `pgid` (a child started by `spawn_group`).
pub fn kill_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(Stdio::null())
        .status();
}

/// Start `cmd` as the leader of a new process group, so that it and every
/// helper it forks can be ended together.
pub fn spawn_group(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.process_group(0).spawn()
}

/// End a child started by `spawn_group` and everything it forked: TERM,
/// then KILL after `grace`.
pub fn end_group(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        kill_group(child.id(), "KILL");
        return;
    }
    kill_group(child.id(), "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            kill_group(child.id(), "KILL");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_group(child.id(), "KILL");
    let _ = child.kill();
    let _ = child.wait();
}

/// Run `cmd` to its end, or kill it (with its process group) after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = format!("{cmd:?}");
    let mut child = spawn_group(cmd).unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() >= deadline {
            timed_out = true;
            end_group(&mut child, Duration::from_secs(2));
            break child.try_wait().ok().flatten();
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    // A grandchild may still hold the pipes open: end the group first.
    kill_group(child.id(), "KILL");
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
    Run {
        ok: !timed_out && status.map(|s| s.success()).unwrap_or(false),
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        timed_out,
    }
}

/// A client process left running in the background (a client that polls),
/// its output in files; ended with its process group when dropped.
pub struct Background {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Background {
    /// Start `cmd` with stdout and stderr in `<dir>/<name>.out|.err`.
    pub fn start(cmd: &mut Command, dir: &Path, name: &str) -> Background {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let program = format!("{cmd:?}");
        let child = spawn_group(cmd).unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Background {
            child,
            stdout,
            stderr,
        }
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the process to end by itself within `limit`; killed after.
    pub fn finish(mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        let mut timed_out = false;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break Some(st);
            }
            if Instant::now() >= deadline {
                timed_out = true;
                end_group(&mut self.child, Duration::from_secs(2));
                break self.child.try_wait().ok().flatten();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Run {
            ok: !timed_out && status.map(|s| s.success()).unwrap_or(false),
            code: status.and_then(|s| s.code()),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
            timed_out,
        }
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        end_group(&mut self.child, Duration::from_secs(2));
    }
}

/// Call `f` every `every` until it returns `Some`, at most for `limit`.
pub fn poll_until<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What every certificate a client enrolled for must show: it chains to
/// scepd's CA, certifies the client's own key (PEM private key at
/// `key_pem`), and carries the subject the client asked for.
pub fn assert_issued_to(s: &Scepd, cert: &X509, key_pem: &Path, cn: &str, context: &str) {
    let (ok, msg) = openssl_verify(&s.ca_pem_path(), cert, &[]);
    assert!(ok, "does not chain to the CA: {msg}\n{context}");
    let key = PKey::private_key_from_pem(&std::fs::read(key_pem).unwrap())
        .unwrap_or_else(|e| panic!("client key {}: {e}", key_pem.display()));
    assert!(
        cert.public_key().unwrap().public_eq(&key),
        "the certificate does not carry the client's key\n{context}"
    );
    let cns: Vec<String> = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .map(|e| e.data().to_string().unwrap())
        .collect();
    assert_eq!(cns, [cn], "subject CN\n{context}");
}

/// Upper-case hex of a certificate's serial, as `store::certificates` keys it.
pub fn serial_hex(cert: &X509) -> String {
    hex::encode_upper(cert.serial_number().to_bn().unwrap().to_vec())
}

/// Read a PEM or DER certificate file, if there is a certificate in it.
pub fn read_cert(path: &Path) -> Option<X509> {
    let bytes = std::fs::read(path).ok()?;
    X509::from_pem(&bytes)
        .or_else(|_| X509::from_der(&bytes))
        .ok()
}

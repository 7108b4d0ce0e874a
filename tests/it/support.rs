//! Test support: a real `scepd serve` process on a fresh database (real
//! PostgreSQL via `server::testdb`), its CLI, and helpers around OpenSSL
//! and micromdm's `scepclient`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use openssl::x509::X509;
use server::testdb::{self, TestDb};

pub const BIN: &str = env!("CARGO_BIN_EXE_scepd");

/// A running `scepd serve` with its own database and data directory.
pub struct Scepd {
    pub url: String,
    pub dir: tempfile::TempDir,
    /// None: scepd runs its own private cluster under `dir`.
    pub db: Option<TestDb>,
    /// A database URL not managed by `testdb` (a test's own cluster).
    external_db: Option<String>,
    child: Child,
    port: u16,
    /// Environment that `cli` and `restart` pass on too (`start_keeping_env`).
    sticky_env: Vec<(String, String)>,
}

/// A TCP port on 127.0.0.1 free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Scepd {
    pub fn start() -> Scepd {
        let db = testdb::test_db().expect("test database");
        let dir = tempfile::tempdir().unwrap();
        Self::start_with(db, dir, &[])
    }

    pub fn start_with(db: TestDb, dir: tempfile::TempDir, extra_env: &[(&str, &str)]) -> Scepd {
        Self::spawn(Some(db), dir, extra_env)
    }

    /// As `start_with`, and the CLI and restarts get `env` too (settings
    /// every process needs, such as an HSM's).
    pub fn start_keeping_env(db: TestDb, dir: tempfile::TempDir, env: &[(&str, &str)]) -> Scepd {
        let mut s = Self::spawn(Some(db), dir, env);
        s.sticky_env = owned(env);
        s
    }

    /// On a database the test manages itself (e.g. its own PostgreSQL
    /// cluster that it stops and starts).
    pub fn start_on(url: &str, dir: tempfile::TempDir, extra_env: &[(&str, &str)]) -> Scepd {
        Self::spawn_on(None, Some(url.to_string()), dir, extra_env)
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Zero configuration: no DATABASE_URL, scepd runs its own PostgreSQL.
    pub fn start_private(dir: tempfile::TempDir) -> Scepd {
        Self::spawn(None, dir, &[])
    }

    /// Stop this process and start another on the same database and data dir.
    pub fn restart(self) -> Scepd {
        self.restart_with(&[])
    }

    /// As [`Scepd::restart`], with `extra_env` for the new process.
    pub fn restart_with(mut self, extra_env: &[(&str, &str)]) -> Scepd {
        self.stop();
        let db = self.db.take();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let sticky = std::mem::take(&mut self.sticky_env);
        let mut env: Vec<(&str, &str)> = sticky.iter().map(|(k, v)| (&**k, &**v)).collect();
        env.extend_from_slice(extra_env);
        let mut s = Self::spawn_on(db, self.external_db.take(), dir, &env);
        s.sticky_env = sticky;
        s
    }

    /// A second process on the same database and data directory.
    pub fn second(&self) -> Scepd2 {
        self.second_in(self.dir.path())
    }

    /// A second process on the same database with the data directory
    /// `dir` (another node of the installation when it holds a copy of
    /// `<data>/ca/`, see [`Scepd::copy_ca_dir`]).
    pub fn second_in(&self, dir: &Path) -> Scepd2 {
        let port = free_port();
        let log = dir.join(format!("scepd-{port}.log"));
        let child = Command::new(BIN)
            .arg("serve")
            .envs(base_env(self.db_url(), dir, port))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        let s = Scepd2 {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        wait_ready(&s.url, || std::fs::read_to_string(&log).unwrap_or_default());
        s
    }

    /// `scepd serve` on this server's database with the data directory
    /// `dir`, which must refuse to start: its exit status and stderr.
    pub fn serve_refused(&self, dir: &Path) -> (std::process::ExitStatus, String) {
        let mut child = Command::new(BIN)
            .arg("serve")
            .envs(base_env(self.db_url(), dir, free_port()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "scepd started on {}: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A CLI command on this server's database with the data directory `dir`.
    pub fn cli_in(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .envs(base_env(self.db_url(), dir, self.port))
            .output()
            .expect("run scepd cli")
    }

    /// Copy this server's `<data>/ca/` into `to` (created), modes kept,
    /// and the passphrase its keys are encrypted with: what an operator
    /// does to add a node to the installation.
    pub fn copy_ca_dir(&self, to: &Path) {
        let (from, ca) = (self.dir.path().join("ca"), to.join("ca"));
        std::fs::create_dir_all(&ca).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, ca.join(path.file_name().unwrap())).unwrap();
        }
        let pass = self.dir.path().join("key-passphrase");
        if pass.exists() {
            std::fs::copy(&pass, to.join("key-passphrase")).unwrap();
        }
    }

    fn db_url(&self) -> Option<&str> {
        self.db
            .as_ref()
            .map(|d| d.url.as_str())
            .or(self.external_db.as_deref())
    }

    /// SIGTERM and wait, so a private PostgreSQL is stopped by scepd itself.
    pub fn stop(&mut self) {
        nix_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn(db: Option<TestDb>, dir: tempfile::TempDir, extra_env: &[(&str, &str)]) -> Scepd {
        Self::spawn_on(db, None, dir, extra_env)
    }

    fn spawn_on(
        db: Option<TestDb>,
        external_db: Option<String>,
        dir: tempfile::TempDir,
        extra_env: &[(&str, &str)],
    ) -> Scepd {
        let db_url = db.as_ref().map(|d| d.url.clone()).or(external_db.clone());
        let port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("scepd.log"))
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .envs(base_env(db_url.as_deref(), dir.path(), port))
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if db_url.is_none() {
            cmd.env_remove("DATABASE_URL");
        }
        let child = cmd.spawn().expect("spawn scepd");
        let s = Scepd {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            db,
            external_db,
            child,
            port,
            sticky_env: Vec::new(),
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        wait_ready(&self.url, || self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("scepd.log")).unwrap_or_default()
    }

    /// The environment a CLI command needs to reach this server's database.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        let mut env = base_env(self.db_url(), self.dir.path(), self.port);
        env.extend(self.sticky_env.iter().cloned());
        env
    }

    /// Run a `scepd` CLI command against the same data dir and database.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .envs(base_env(self.db_url(), self.dir.path(), self.port))
            .envs(self.sticky_env.iter().cloned());
        if self.db_url().is_none() {
            cmd.env_remove("DATABASE_URL");
        }
        cmd.output().expect("run scepd cli")
    }

    /// Run a CLI command that must succeed; its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "scepd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn mint(&self, profile: &str) -> String {
        self.cli_ok(&["challenge", "mint", "--profile", profile])
            .trim()
            .to_string()
    }

    pub fn scep_url(&self, profile: &str) -> String {
        format!("{}/scep/{profile}", self.url)
    }

    pub fn ca_cert(&self) -> X509 {
        X509::from_pem(&std::fs::read(self.dir.path().join("ca/ca.crt")).unwrap()).unwrap()
    }

    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("ca/ca.crt")
    }

    pub fn ra_cert(&self) -> X509 {
        X509::from_pem(&std::fs::read(self.dir.path().join("ca/ra.crt")).unwrap()).unwrap()
    }

    pub fn pg(&self) -> diesel::PgConnection {
        use diesel::Connection;
        diesel::PgConnection::establish(self.db_url().expect("test database")).unwrap()
    }

    /// `SELECT count(*) FROM {from}` in scepd's database; `from` may carry
    /// a WHERE clause or be a subquery with its alias.
    pub fn count(&self, from: &str) -> i64 {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let r: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {from}"))
            .get_result(&mut self.pg())
            .unwrap();
        r.n
    }
}

impl Drop for Scepd {
    fn drop(&mut self) {
        // TERM, so a private PostgreSQL cluster is shut down by scepd itself.
        self.stop();
    }
}

/// A second `scepd serve` sharing the first one's database and data dir.
pub struct Scepd2 {
    pub url: String,
    child: Child,
}

impl Drop for Scepd2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(url: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = ureq::get(&format!("{url}/readyz")).call() {
            if r.status() == 200 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("scepd did not become ready; log:\n{}", log());
}

/// Send a signal with the `kill` command (no libc in the tests).
pub fn nix_kill(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn base_env(db_url: Option<&str>, dir: &Path, port: u16) -> Vec<(String, String)> {
    let mut env = vec![
        ("SCEPD_DATA_DIR".into(), dir.display().to_string()),
        ("SCEPD_LISTEN".into(), format!("127.0.0.1:{port}")),
        ("SCEPD_CA_KEY_TYPE".into(), "rsa2048".into()),
        ("SCEPD_ADMIN_PASSWORD".into(), "test-admin-password".into()),
        ("SCEPD_DB_POOL_SIZE".into(), "4".into()),
        ("SCEPD_WORKERS".into(), "2".into()),
        ("RUST_LOG".into(), "info".into()),
    ];
    if let Some(url) = db_url {
        env.push(("DATABASE_URL".into(), url.into()));
    }
    env
}

/// Result of running micromdm's scepclient.
pub struct ScepClientRun {
    pub ok: bool,
    pub output: String,
    pub cert: Option<X509>,
}

/// Run `scepclient` in `dir` (keys and certificate files live there).
pub fn scepclient(dir: &Path, url: &str, challenge: &str, cn: &str) -> ScepClientRun {
    let out = Command::new("scepclient")
        .current_dir(dir)
        .args([
            "-server-url",
            url,
            "-challenge",
            challenge,
            "-cn",
            cn,
            "-private-key",
            "key.pem",
            "-certificate",
            "cert.pem",
            "-debug",
        ])
        .output()
        .expect("scepclient is installed (Debian package scep)");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = std::fs::read(dir.join("cert.pem"))
        .ok()
        .and_then(|p| X509::from_pem(&p).ok());
    ScepClientRun {
        ok: out.status.success(),
        output,
        cert,
    }
}

/// `openssl verify -CAfile ca cert`: true when the chain verifies.
pub fn openssl_verify(ca: &Path, cert: &X509, extra: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("leaf.pem");
    std::fs::write(&p, cert.to_pem().unwrap()).unwrap();
    let out = Command::new("openssl")
        .arg("verify")
        .args(extra)
        .arg("-CAfile")
        .arg(ca)
        .arg(&p)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `openssl x509 -text` of a certificate.
pub fn openssl_text(cert: &X509) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.pem");
    std::fs::write(&p, cert.to_pem().unwrap()).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The reason of the newest `request.refused` audit entry ("" if none).
pub fn last_refusal(s: &Scepd) -> String {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct R {
        #[diesel(sql_type = diesel::sql_types::Text)]
        reason: String,
    }
    let rows: Vec<R> = diesel::sql_query(
        "SELECT coalesce(details->>'reason', '') AS reason FROM audit_log \
         WHERE event = 'request.refused' ORDER BY id DESC LIMIT 1",
    )
    .load(&mut s.pg())
    .unwrap();
    rows.into_iter()
        .next()
        .map(|r| r.reason)
        .unwrap_or_default()
}

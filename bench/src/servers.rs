//! The servers under test, started by the bench itself on 127.0.0.1:
//! `scepd serve` (release binary, RSA-2048 CA and RA, its private
//! PostgreSQL cluster unless a database URL is given, the auto-approve
//! default profile) and micromdm's `scepserver` (CA made with
//! `ca -init -keySize 2048`, one static challenge).

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::x509::X509;

type R<T> = Result<T, String>;

/// Which implementation a server is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Scepd,
    Scepserver,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Scepd => "scepd",
            Kind::Scepserver => "scepserver",
        }
    }
}

/// A running server; killed on drop.
pub struct Server {
    pub kind: Kind,
    /// Base URL of the SCEP endpoint, without query.
    pub scep_url: String,
    pub dir: tempfile::TempDir,
    child: Child,
    scepd_bin: PathBuf,
    env: Vec<(String, String)>,
}

/// The static challenge scepserver is started with.
pub const SCEPSERVER_CHALLENGE: &str = "BENCHSTATICCHALLENGE";

fn free_port() -> R<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn log_file(dir: &Path, name: &str) -> R<Stdio> {
    let f = std::fs::File::create(dir.join(name)).map_err(|e| e.to_string())?;
    Ok(Stdio::from(f))
}

impl Server {
    /// `scepd serve`; `database_url` None lets scepd run its private cluster.
    pub fn scepd(
        bin: &Path,
        database_url: Option<&str>,
        log: &str,
        extra_env: &[(&str, &str)],
    ) -> R<Server> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        let mut env = vec![
            (
                "SCEPD_DATA_DIR".to_string(),
                dir.path().display().to_string(),
            ),
            ("SCEPD_LISTEN".into(), format!("127.0.0.1:{port}")),
            (
                "SCEPD_PUBLIC_URL".into(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("SCEPD_CA_KEY_TYPE".into(), "rsa2048".into()),
            ("SCEPD_RA_KEY_TYPE".into(), "rsa2048".into()),
            ("SCEPD_ADMIN_PASSWORD".into(), "bench-admin-password".into()),
            ("RUST_LOG".into(), log.into()),
        ];
        if let Some(url) = database_url {
            env.push(("DATABASE_URL".into(), url.into()));
        }
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let child = Command::new(bin)
            .arg("serve")
            .env_remove("DATABASE_URL")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log_file(dir.path(), "scepd.log")?)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let s = Server {
            kind: Kind::Scepd,
            scep_url: format!("http://127.0.0.1:{port}/scep"),
            dir,
            child,
            scepd_bin: bin.to_path_buf(),
            env,
        };
        s.wait_ready(&format!("http://127.0.0.1:{port}/readyz"))?;
        Ok(s)
    }

    /// micromdm's `scepserver` with a fresh RSA-2048 CA.
    pub fn scepserver() -> R<Server> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let depot = dir.path().join("depot");
        let out = Command::new("scepserver")
            .args(["ca", "-init", "-keySize", "2048", "-depot"])
            .arg(&depot)
            .output()
            .map_err(|e| format!("scepserver (Debian package scep): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "scepserver ca -init: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port()?;
        let child = Command::new("scepserver")
            .arg("-depot")
            .arg(&depot)
            .args([
                "-port",
                &port.to_string(),
                "-challenge",
                SCEPSERVER_CHALLENGE,
            ])
            .stdout(Stdio::null())
            .stderr(log_file(dir.path(), "scepserver.log")?)
            .spawn()
            .map_err(|e| format!("spawn scepserver: {e}"))?;
        let s = Server {
            kind: Kind::Scepserver,
            scep_url: format!("http://127.0.0.1:{port}/scep"),
            dir,
            child,
            scepd_bin: PathBuf::new(),
            env: vec![],
        };
        s.wait_ready(&format!("{}?operation=GetCACaps", s.scep_url))?;
        Ok(s)
    }

    fn wait_ready(&self, url: &str) -> R<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(r) = ureq::get(url).call() {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "{} did not become ready; see {}",
            self.kind.name(),
            self.dir.path().display()
        ))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GetCACert: (CA, RA). scepserver's CA is also its RA.
    pub fn ca_and_ra(&self) -> R<(X509, X509)> {
        let url = format!("{}?operation=GetCACert", self.scep_url);
        let r = ureq::get(&url).call().map_err(|e| e.to_string())?;
        let mut body = vec![];
        r.into_reader()
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        let certs = server::wire::client::parse_certs_only(&body).map_err(|e| e.to_string())?;
        let self_signed = |c: &X509| {
            c.issuer_name()
                .to_der()
                .ok()
                .zip(c.subject_name().to_der().ok())
                .is_some_and(|(i, s)| i == s)
        };
        let ca = certs
            .iter()
            .find(|c| self_signed(c))
            .or(certs.first())
            .ok_or("GetCACert returned no certificate")?
            .clone();
        let ra = certs
            .iter()
            .find(|c| !self_signed(c))
            .unwrap_or(&ca)
            .clone();
        Ok((ca, ra))
    }

    /// `scepd challenge mint` for the default profile, `n` secrets.
    pub fn mint(&self, n: usize) -> R<Vec<String>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let batch = (n - out.len()).min(10_000);
            let o = self
                .cli(&["challenge", "mint", "--count", &batch.to_string()])
                .output()
                .map_err(|e| e.to_string())?;
            if !o.status.success() {
                return Err(format!(
                    "scepd challenge mint: {}",
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
            out.extend(
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
        }
        Ok(out)
    }

    /// A `scepd` CLI command on the served data directory and database.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.scepd_bin);
        c.args(args)
            .env_remove("DATABASE_URL")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn");
        c
    }

    /// The database scepd uses: the given URL, or its private cluster's.
    pub fn database_url(&self) -> R<String> {
        if let Some((_, url)) = self.env.iter().find(|(k, _)| k == "DATABASE_URL") {
            return Ok(url.clone());
        }
        let pid_file = self.dir.path().join("postgres/pgdata/postmaster.pid");
        let text = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("{}: {e}", pid_file.display()))?;
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let port = lines.get(3).ok_or("postmaster.pid without a port")?;
        // Line 5: the socket directory (private clusters listen there
        // only); empty for a build whose cluster listened on 127.0.0.1.
        match lines.get(4).filter(|d| !d.is_empty()) {
            Some(dir) => Ok(format!("postgresql://scepd@/scepd?host={dir}&port={port}")),
            None => Ok(format!("postgres://scepd@127.0.0.1:{port}/scepd")),
        }
    }

    /// Peak and current resident set of the server process, in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first so scepd stops its private PostgreSQL cluster.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

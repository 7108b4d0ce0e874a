//! A private PostgreSQL cluster run from the system's server binaries, so
//! `scepd serve` (and the test suite) work without any database set up.
//!
//! Layout under the directory given to [`PgCluster::start`]:
//! `pgdata/` (the cluster), `socket/` (mode 0700) and `postgres.log` (the
//! server's output). The server listens on no TCP address at all, only on
//! a unix socket in `socket/`: trust authentication for the superuser
//! `scepd` then admits exactly the accounts that can open that directory
//! (its owner and root), so no other local user can connect, read the
//! tables or run `COPY ... TO PROGRAM`.
//!
//! The postmaster runs under a small `sh` watchdog whose stdin is a pipe
//! from us: when our process dies, however it dies, the pipe closes and the
//! watchdog asks the postmaster for a fast shutdown, so no server outlives
//! its owner.

mod host;
mod replica;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::sql_types::{Bool, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use host::RunAs;

/// The superuser initdb creates; also the database created for scepd.
const SUPERUSER: &str = "scepd";
/// The database `start` makes sure exists.
const DEFAULT_DB: &str = "scepd";
/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take before it is forced.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The port in the socket's name (`.s.PGSQL.<port>`). Nothing listens on
/// TCP, and the socket lives in the cluster's own directory, so clusters
/// cannot collide on it.
const DEFAULT_PORT: u16 = 5432;
/// The socket directory, inside the cluster directory.
const SOCKET_DIR: &str = "socket";
/// `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Runs the postmaster ($3...) in the background, signals it (SIGINT: fast
/// shutdown) when our stdin reaches end of file, and removes the cluster
/// directory ($1) afterwards when $2 is 1. fd 3 keeps the pipe because a
/// background job's stdin is /dev/null in a non-interactive shell.
const WATCHDOG: &str = r#"dir=$1; remove=$2; shift 2
exec 3<&0 </dev/null
"$@" 3<&- &
pg=$!
( read -r _ <&3; kill -INT "$pg" 2>/dev/null ) &
guard=$!
exec 3<&-
wait "$pg"; rc=$?
kill "$guard" 2>/dev/null
if [ "$remove" = 1 ]; then rm -rf -- "$dir"; fi
exit "$rc"
"#;

/// Everything that can go wrong running the private cluster or the test
/// databases on it.
#[derive(Debug, thiserror::Error)]
pub enum PgClusterError {
    #[error(
        "PostgreSQL server binaries not found: install the `postgresql` package \
         (apt-get install postgresql) or set DATABASE_URL"
    )]
    BinariesNotFound,
    #[error("running as root, but there is neither a `postgres` nor a `nobody` user to run PostgreSQL as")]
    NoUnprivilegedUser,
    #[error(
        "{dir} is not reachable by user `{user}`, which runs the private PostgreSQL: \
         make every parent directory traversable (chmod o+x) or choose another data directory"
    )]
    NotAccessible { dir: PathBuf, user: String },
    #[error(
        "the private PostgreSQL's socket {path} would be longer than the {MAX_SOCKET_PATH} bytes \
         a unix socket path may have: choose a data directory with a shorter path"
    )]
    SocketPathTooLong { path: PathBuf },
    #[error("another PostgreSQL (pid {pid}) is still running on {dir}")]
    AlreadyRunning { pid: i32, dir: PathBuf },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("initdb failed ({status}); end of {log}:\n{tail}")]
    Initdb {
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("PostgreSQL did not start: {reason}; end of {log}:\n{tail}")]
    Start {
        reason: String,
        log: PathBuf,
        tail: String,
    },
    #[error("database error: {0}")]
    Sql(String),
    #[error("migrating the test template failed: {0}")]
    Migrate(String),
    #[error("the test database server is unavailable: {0}")]
    Unavailable(String),
}

/// How the cluster trades safety for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `false` (tests) turns off fsync, synchronous_commit and
    /// full_page_writes: a crash may then lose or corrupt data.
    pub durable: bool,
    /// Remove the whole cluster directory once the server has stopped,
    /// including after our process was killed (test clusters).
    pub remove_on_exit: bool,
    /// The port in the socket's name instead of 5432.
    pub port: Option<u16>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            durable: true,
            remove_on_exit: false,
            port: None,
        }
    }
}

impl ClusterOptions {
    /// Throw-away settings for tests: not durable, removed on exit.
    pub fn ephemeral() -> Self {
        ClusterOptions {
            durable: false,
            remove_on_exit: true,
            port: None,
        }
    }
}

/// A running private PostgreSQL server; stopped on [`PgCluster::stop`] or
/// drop, and by its watchdog if our process dies first.
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    pgdata: PathBuf,
    bindir: PathBuf,
    port: u16,
    /// The watchdog shell; `None` once stopped.
    child: Option<Child>,
    /// Our end of the watchdog's pipe: closing it stops the server.
    pipe: Option<ChildStdin>,
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

impl PgCluster {
    /// Initialises the cluster in `dir` if it is new, starts the server and
    /// waits until it accepts connections, then creates database `scepd` if
    /// it is missing.
    pub fn start(dir: &Path, opts: ClusterOptions) -> Result<PgCluster, PgClusterError> {
        fs::create_dir_all(dir).map_err(|e| host::io_err(dir, "creating", e))?;
        let dir = fs::canonicalize(dir).map_err(|e| host::io_err(dir, "resolving", e))?;
        let pgdata = dir.join("pgdata");
        let log = dir.join("postgres.log");
        let port = opts.port.unwrap_or(DEFAULT_PORT);
        let socket_dir = dir.join(SOCKET_DIR);
        let socket = socket_dir.join(format!(".s.PGSQL.{port}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(PgClusterError::SocketPathTooLong { path: socket });
        }
        host::create_private_dir(&socket_dir)?;
        let version = fs::read_to_string(pgdata.join("PG_VERSION")).ok();
        let bindir = host::find_bindir(
            "pg_config",
            Path::new(host::DEBIAN_PG_ROOT),
            version.as_deref().map(str::trim),
        )?;
        let who = host::run_as()?;
        if let Some(who) = &who {
            host::chown_tree(&dir, who)?;
            host::check_accessible(&dir, who)?;
        }
        if version.is_none() {
            initdb(&dir, &bindir, who.as_ref(), &log)?;
        }
        host::wait_for_previous(&pgdata, Duration::from_secs(15))?;

        let mut cluster = PgCluster {
            dir: dir.clone(),
            pgdata,
            bindir,
            port,
            child: None,
            pipe: None,
        };
        cluster.spawn(who.as_ref(), opts, &log)?;
        cluster.wait_ready(&log)?;
        cluster.ensure_database(DEFAULT_DB)?;
        tracing::info!(socket = %socket_dir.display(), "private PostgreSQL started");
        Ok(cluster)
    }

    /// A URL for database `db` on this cluster.
    pub fn database_url(&self, db: &str) -> String {
        socket_url(&self.socket_dir().to_string_lossy(), self.port, db)
    }

    /// The URL of database `db` on a cluster in `dir` that another process
    /// runs, read from its `postmaster.pid` (line 1: pid, 4: port, 5: socket
    /// directory); `None` when no live server runs there.
    pub fn running_url(dir: &Path, db: &str) -> Option<String> {
        let text = fs::read_to_string(dir.join("pgdata").join("postmaster.pid")).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        let pid: i32 = lines.first()?.trim().parse().ok()?;
        let port: u16 = lines.get(3)?.trim().parse().ok()?;
        let socket_dir = lines.get(4)?.trim();
        if socket_dir.is_empty() {
            return None;
        }
        kill(Pid::from_raw(pid), None).ok()?;
        Some(socket_url(socket_dir, port, db))
    }

    /// The directory holding the server's unix socket (mode 0700).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join(SOCKET_DIR)
    }

    /// The port in the socket's name.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// The directory holding the binaries in use.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// Fast shutdown (SIGINT to the postmaster); waits until it has exited.
    pub fn stop(mut self) -> Result<(), PgClusterError> {
        self.shutdown()
    }

    fn spawn(
        &mut self,
        who: Option<&RunAs>,
        opts: ClusterOptions,
        log: &Path,
    ) -> Result<(), PgClusterError> {
        let out = open_log(log)?;
        let err = out
            .try_clone()
            .map_err(|e| host::io_err(log, "opening", e))?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(&self.dir)
            .arg(if opts.remove_on_exit { "1" } else { "0" })
            .arg(self.bindir.join("postgres"))
            .arg("-D")
            .arg(&self.pgdata)
            .arg("-p")
            .arg(self.port.to_string());
        for setting in server_settings(opts, &self.socket_dir()) {
            cmd.arg("-c").arg(setting);
        }
        cmd.current_dir(&self.dir)
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            // Own process group: a terminal's Ctrl-C reaches scepd, which
            // then stops the server in order, not the server directly.
            .process_group(0);
        if let Some(who) = who {
            who.apply(&mut cmd);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| host::io_err(&self.bindir.join("postgres"), "starting", e))?;
        self.pipe = child.stdin.take();
        self.child = Some(child);
        Ok(())
    }

    fn wait_ready(&mut self, log: &Path) -> Result<(), PgClusterError> {
        let url = self.database_url("postgres");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    self.pipe = None;
                    return Err(PgClusterError::Start {
                        reason: format!("the server exited ({status})"),
                        log: log.to_path_buf(),
                        tail: host::log_tail(log),
                    });
                }
            }
            if PgConnection::establish(&url).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PgClusterError::Start {
                    reason: format!(
                        "no connection on {} within {}s",
                        self.socket_dir().display(),
                        START_TIMEOUT.as_secs()
                    ),
                    log: log.to_path_buf(),
                    tail: host::log_tail(log),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn ensure_database(&self, db: &str) -> Result<(), PgClusterError> {
        let mut conn = PgConnection::establish(&self.database_url("postgres"))
            .map_err(|e| PgClusterError::Sql(e.to_string()))?;
        let found: Exists = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists",
        )
        .bind::<Text, _>(db)
        .get_result(&mut conn)
        .map_err(|e| PgClusterError::Sql(e.to_string()))?;
        if !found.exists {
            diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(db)))
                .execute(&mut conn)
                .map_err(|e| PgClusterError::Sql(e.to_string()))?;
        }
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), PgClusterError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // EOF on the watchdog's stdin makes it send SIGINT to the postmaster.
        self.pipe = None;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => break,
                Err(e) => {
                    return Err(host::io_err(&self.pgdata, "waiting for PostgreSQL in", e));
                }
            }
        }
        // Fast shutdown hung (stuck client?): immediate shutdown, then force.
        tracing::warn!(dir = %self.dir.display(), "PostgreSQL fast shutdown timed out; forcing");
        if let Some(pid) = host::recorded_pid(&self.pgdata) {
            if host::postgres_alive(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
            }
        }
        thread::sleep(Duration::from_secs(2));
        if let Ok(id) = i32::try_from(child.id()) {
            let _ = killpg(Pid::from_raw(id), Signal::SIGKILL);
        }
        child
            .wait()
            .map(|_| ())
            .map_err(|e| host::io_err(&self.pgdata, "waiting for PostgreSQL in", e))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "stopping the private PostgreSQL");
        }
    }
}

/// `-c` settings: no TCP, the unix socket in our own directory only (so
/// no dependency on /var/run/postgresql) and reachable by its owner alone,
/// and the speed-over-safety trio for tests.
fn server_settings(opts: ClusterOptions, socket_dir: &Path) -> Vec<String> {
    let mut s = vec![
        "listen_addresses=".to_string(),
        format!("unix_socket_directories={}", socket_dir.display()),
        "unix_socket_permissions=0700".to_string(),
        // Parallel tests each hold a pool; the default 100 runs out.
        "max_connections=300".to_string(),
    ];
    if !opts.durable {
        s.extend(
            // Test databases live seconds: vacuuming them is wasted work.
            [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "autovacuum=off",
            ]
            .iter()
            .map(|x| x.to_string()),
        );
    }
    s
}

/// initdb into a scratch directory renamed into place on success, so an
/// interrupted initdb never leaves a half-made cluster behind.
fn initdb(
    dir: &Path,
    bindir: &Path,
    who: Option<&RunAs>,
    log: &Path,
) -> Result<(), PgClusterError> {
    let tmp = dir.join("pgdata.initdb");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| host::io_err(&tmp, "removing", e))?;
    }
    let mut cmd = Command::new(bindir.join("initdb"));
    cmd.arg("-D").arg(&tmp).args([
        "-A",
        "trust",
        "-U",
        SUPERUSER,
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    let status = run_logged(cmd, dir, who, log, &bindir.join("initdb"))?;
    if !status.success() {
        return Err(PgClusterError::Initdb {
            status: status.to_string(),
            log: log.to_path_buf(),
            tail: host::log_tail(log),
        });
    }
    let pgdata = dir.join("pgdata");
    fs::rename(&tmp, &pgdata).map_err(|e| host::io_err(&pgdata, "creating", e))
}

/// Runs a server tool (initdb, pg_ctl, pg_basebackup) in `dir` as `who`,
/// its output appended to `log`; its exit status.
fn run_logged(
    mut cmd: Command,
    dir: &Path,
    who: Option<&RunAs>,
    log: &Path,
    program: &Path,
) -> Result<std::process::ExitStatus, PgClusterError> {
    let out = open_log(log)?;
    let err = out
        .try_clone()
        .map_err(|e| host::io_err(log, "opening", e))?;
    cmd.current_dir(dir)
        .env_remove("PGDATA")
        .env_remove("PGPORT")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if let Some(who) = who {
        who.apply(&mut cmd);
    }
    cmd.status()
        .map_err(|e| host::io_err(program, "running", e))
}

fn open_log(log: &Path) -> Result<fs::File, PgClusterError> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| host::io_err(log, "opening", e))
}

/// A libpq URI for database `db` over the socket in `socket_dir`.
fn socket_url(socket_dir: &str, port: u16, db: &str) -> String {
    format!(
        "postgresql://{SUPERUSER}@/{db}?host={}&port={port}",
        percent_encode(socket_dir)
    )
}

/// A libpq URI component: everything but unreserved characters and `/`
/// percent-encoded (a data directory may hold spaces, `&` or `#`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Double-quotes an SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests;

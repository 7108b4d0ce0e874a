//! What the private cluster needs from the host: the PostgreSQL server
//! binaries, the account to run them as, file ownership, stale lock files,
//! the private socket directory and the tail of the log.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{chown, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::kill;
use nix::unistd::{geteuid, Gid, Pid, Uid, User};

use super::PgClusterError;

/// Where Debian and Ubuntu install versioned server binaries.
pub(super) const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// Binaries a cluster cannot do without.
const REQUIRED: [&str; 2] = ["initdb", "postgres"];

fn has_server_binaries(dir: &Path) -> bool {
    REQUIRED.iter().all(|b| dir.join(b).is_file())
}

/// Finds the server binaries: the version an existing cluster was created
/// with, then `pg_config --bindir`, then the newest Debian-style install,
/// then `$PATH`.
pub(super) fn find_bindir(
    pg_config: &str,
    debian_root: &Path,
    cluster_version: Option<&str>,
) -> Result<PathBuf, PgClusterError> {
    // An existing cluster only starts with the major version that made it.
    if let Some(v) = cluster_version {
        let dir = debian_root.join(v).join("bin");
        if has_server_binaries(&dir) {
            return Ok(dir);
        }
    }
    if let Ok(out) = Command::new(pg_config).arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server_binaries(&dir) {
                return Ok(dir);
            }
        }
    }
    if let Some(dir) = newest_versioned(debian_root) {
        return Ok(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_server_binaries(&dir) {
                return Ok(dir);
            }
        }
    }
    Err(PgClusterError::BinariesNotFound)
}

/// `<root>/<major>/bin` with the highest numeric major that has binaries.
fn newest_versioned(root: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(root).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let major: f64 = name.parse().ok()?;
            let bin = e.path().join("bin");
            has_server_binaries(&bin).then_some((major, bin))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// The account PostgreSQL runs as; `None` means "ourselves".
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

impl RunAs {
    pub(super) fn apply(&self, cmd: &mut Command) {
        cmd.uid(self.uid.as_raw()).gid(self.gid.as_raw());
    }
}

/// PostgreSQL refuses to run as root, so root hands it to `postgres`, or
/// `nobody` where there is no `postgres` account.
pub(super) fn run_as() -> Result<Option<RunAs>, PgClusterError> {
    if !geteuid().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        let user = User::from_name(name).map_err(|e| PgClusterError::Io {
            context: format!("looking up user `{name}`"),
            source: e.into(),
        })?;
        if let Some(u) = user {
            return Ok(Some(RunAs {
                name: u.name,
                uid: u.uid,
                gid: u.gid,
            }));
        }
    }
    Err(PgClusterError::NoUnprivilegedUser)
}

/// Gives `path` (and, when it was made by someone else, everything under it)
/// to the account PostgreSQL runs as.
pub(super) fn chown_tree(path: &Path, who: &RunAs) -> Result<(), PgClusterError> {
    let meta = fs::symlink_metadata(path).map_err(|e| io_err(path, "reading", e))?;
    if meta.uid() == who.uid.as_raw() && meta.gid() == who.gid.as_raw() {
        return Ok(());
    }
    chown(path, Some(who.uid.as_raw()), Some(who.gid.as_raw())).map_err(|e| {
        PgClusterError::Io {
            context: format!("giving {} to user `{}`", path.display(), who.name),
            source: e,
        }
    })?;
    if meta.is_dir() {
        let entries = fs::read_dir(path).map_err(|e| io_err(path, "listing", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err(path, "listing", e))?;
            // Symlinks are left alone: chown would follow them elsewhere.
            if !entry.file_type().is_ok_and(|t| t.is_symlink()) {
                chown_tree(&entry.path(), who)?;
            }
        }
    }
    Ok(())
}

/// Checks, as the account itself, that it can reach and write `dir`: a
/// parent without `x` for others (such as /root) fails only later and
/// obscurely inside initdb.
pub(super) fn check_accessible(dir: &Path, who: &RunAs) -> Result<(), PgClusterError> {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "cd -- \"$1\" && test -w .", "sh"])
        .arg(dir)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    who.apply(&mut cmd);
    let status = cmd
        .status()
        .map_err(|e| io_err(dir, "checking access to", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(PgClusterError::NotAccessible {
            dir: dir.to_path_buf(),
            user: who.name.clone(),
        })
    }
}

/// Whether `pid` is a live (not zombie) process named `postgres`. Without
/// /proc any live process counts, which errs on the side of waiting.
pub(super) fn postgres_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(_) => return false,
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) state ..."; comm may contain spaces, so split at ')'.
        Ok(stat) => match stat.rsplit_once(')') {
            Some((head, tail)) => {
                let comm = head.split_once('(').map_or("", |(_, c)| c);
                let zombie = tail.trim_start().starts_with('Z');
                !zombie && comm.starts_with("postgres")
            }
            None => true,
        },
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// The postmaster pid recorded in `<pgdata>/postmaster.pid`, if any.
pub(super) fn recorded_pid(pgdata: &Path) -> Option<i32> {
    let text = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// A postmaster from an earlier run that is still shutting down (its owner
/// was killed and the watchdog has just signalled it) gets time to go;
/// one that stays is another live server on the same directory.
pub(super) fn wait_for_previous(pgdata: &Path, patience: Duration) -> Result<(), PgClusterError> {
    let Some(pid) = recorded_pid(pgdata) else {
        return Ok(());
    };
    let deadline = Instant::now() + patience;
    while postgres_alive(pid) {
        if Instant::now() >= deadline {
            return Err(PgClusterError::AlreadyRunning {
                pid,
                dir: pgdata.to_path_buf(),
            });
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Creates `dir` (if missing) with mode 0700, and makes an existing one
/// 0700: it holds the server's socket, and whoever can open it can connect.
pub(super) fn create_private_dir(dir: &Path) -> Result<(), PgClusterError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err(dir, "creating", e))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| io_err(dir, "securing", e))
}

/// The last few lines of a log file, for error messages.
pub(super) fn log_tail(path: &Path) -> String {
    const MAX: u64 = 4096;
    let Ok(mut f) = fs::File::open(path) else {
        return String::from("(no log)");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if f.seek(SeekFrom::Start(len.saturating_sub(MAX))).is_err() {
        return String::from("(log unreadable)");
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return String::from("(log unreadable)");
    }
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(15);
    lines[start..].join("\n")
}

pub(super) fn io_err(path: &Path, what: &str, source: std::io::Error) -> PgClusterError {
    PgClusterError::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "scepd-host-{tag}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn missing_binaries_give_the_one_line_hint() {
        let root = scratch("nobin");
        // Clear PATH lookups by pointing at an empty root and a bogus pg_config;
        // PATH may really contain postgres, so only assert when it does not.
        let err = find_bindir("/nonexistent/pg_config", &root, None);
        let on_path = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| has_server_binaries(&d)));
        if !on_path {
            let msg = err.unwrap_err().to_string();
            assert_eq!(
                msg,
                "PostgreSQL server binaries not found: install the `postgresql` package \
                 (apt-get install postgresql) or set DATABASE_URL"
            );
            assert!(!msg.contains('\n'));
        }
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn newest_numeric_version_wins_and_cluster_version_is_preferred() {
        let root = scratch("versions");
        for v in ["9.6", "13", "16", "notaversion"] {
            let bin = root.join(v).join("bin");
            fs::create_dir_all(&bin).unwrap();
            for b in REQUIRED {
                fs::write(bin.join(b), "").unwrap();
            }
        }
        // 17 exists but without binaries: it must not be picked.
        fs::create_dir_all(root.join("17").join("bin")).unwrap();
        let got = find_bindir("/nonexistent/pg_config", &root, None).unwrap();
        assert_eq!(got, root.join("16").join("bin"));
        let got = find_bindir("/nonexistent/pg_config", &root, Some("13")).unwrap();
        assert_eq!(got, root.join("13").join("bin"));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn dead_or_foreign_pids_are_not_postgres() {
        assert!(!postgres_alive(0));
        assert!(!postgres_alive(-5));
        // Our own process is alive but is not a postmaster.
        assert!(!postgres_alive(std::process::id() as i32));
        let mut child = Command::new("/bin/true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!postgres_alive(pid));
    }

    #[test]
    fn stale_pid_file_does_not_wait() {
        let dir = scratch("stale");
        fs::write(dir.join("postmaster.pid"), "999999999\n/x\n").unwrap();
        assert_eq!(recorded_pid(&dir), Some(999_999_999));
        let t = Instant::now();
        wait_for_previous(&dir, Duration::from_secs(5)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(1));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = scratch("log");
        let log = dir.join("postgres.log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        fs::write(&log, text).unwrap();
        let tail = log_tail(&log);
        assert!(tail.ends_with("line 99"));
        assert!(!tail.contains("line 80\n"));
        assert_eq!(log_tail(&dir.join("absent")), "(no log)");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn root_hands_the_cluster_to_an_unprivileged_account() {
        let who = run_as().unwrap();
        assert_eq!(who.is_some(), geteuid().is_root());
        if let Some(who) = who {
            assert!(!who.uid.is_root());
            let parent = scratch("locked");
            let inner = parent.join("cluster");
            fs::create_dir_all(&inner).unwrap();
            chown_tree(&inner, &who).unwrap();
            assert_eq!(fs::metadata(&inner).unwrap().uid(), who.uid.as_raw());
            check_accessible(&inner, &who).unwrap();
            // A parent closed to others makes the cluster unreachable.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&parent, fs::Permissions::from_mode(0o700)).unwrap();
            let err = check_accessible(&inner, &who).unwrap_err();
            assert!(matches!(err, PgClusterError::NotAccessible { .. }), "{err}");
            fs::remove_dir_all(parent).unwrap();
        }
    }
}

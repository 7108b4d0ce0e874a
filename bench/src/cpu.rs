//! CPU accounting across the processes that share the machine during a
//! run: the server under test, the PostgreSQL processes serving it, and the
//! bench itself (its HTTP client threads), from `/proc/<pid>/stat`
//! utime+stime. When scepd runs its private cluster, only that cluster's
//! processes (descendants of scepd) count, so other work on the machine's
//! PostgreSQL servers does not leak into the figure; with `--database-url`
//! every `postgres` process on the machine counts.
//! Dividing by the enrollments gives CPU milliseconds per enrollment,
//! which tells where two cores' worth of time goes.

use std::fs;

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system) consumed so far by one process, all threads.
fn process_cpu(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// The parent of `pid`, from field 4 of `/proc/<pid>/stat`.
fn parent(pid: &str) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}

/// Whether `pid` descends from `ancestor` (a private cluster runs under
/// scepd, possibly through `runuser`).
fn descends_from(pid: &str, ancestor: &str) -> bool {
    let mut p = pid.to_string();
    for _ in 0..6 {
        match parent(&p) {
            Some(pp) if pp == ancestor => return true,
            Some(pp) if pp != "0" && pp != "1" => p = pp,
            _ => return false,
        }
    }
    false
}

fn comm(pid: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A snapshot of CPU seconds: (server, postgres, bench).
#[derive(Clone, Copy, Default)]
pub struct Snapshot {
    pub server: f64,
    pub postgres: f64,
    pub bench: f64,
}

/// Take a snapshot; `server_pid` is the server under test. Exited
/// PostgreSQL backends are not counted (connections are pooled and live
/// for the whole run). `own_cluster`: count only PostgreSQL processes
/// under `server_pid`.
pub fn snapshot(server_pid: u32, own_cluster: bool) -> Snapshot {
    let server = server_pid.to_string();
    let mut s = Snapshot {
        server: process_cpu(&server_pid.to_string()).unwrap_or(0.0),
        bench: process_cpu("self").unwrap_or(0.0),
        ..Snapshot::default()
    };
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.bytes().all(|b| b.is_ascii_digit())
                && comm(&name) == "postgres"
                && (!own_cluster || descends_from(&name, &server))
            {
                s.postgres += process_cpu(&name).unwrap_or(0.0);
            }
        }
    }
    s
}

impl Snapshot {
    /// CPU milliseconds per item between `self` (before) and `after`.
    pub fn per_item_ms(&self, after: &Snapshot, items: usize) -> Snapshot {
        let k = 1000.0 / items.max(1) as f64;
        Snapshot {
            server: (after.server - self.server) * k,
            postgres: (after.postgres - self.postgres) * k,
            bench: (after.bench - self.bench) * k,
        }
    }
}

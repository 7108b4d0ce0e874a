//! `scepd-bench`: the load benchmark of issue 7. It starts scepd and/or
//! micromdm's scepserver on 127.0.0.1, prepares PKCSReq messages with
//! distinct RSA-2048 device keys before the clock starts, fires them with
//! bounded concurrency, then verifies every CertRep, and prints
//! enrollments/s and p50/p99 latency per concurrency, failures, scepd's
//! peak RSS and the scepd/scepserver ratio. With `--ocsp-requests` it
//! then measures scepd's OCSP answers/s (`ocsp.rs`). See docs/BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use server::wire::ContentCipher;

mod cpu;
mod device;
mod keys;
mod load;
mod ocsp;
mod rsa_floor;
mod seed;
mod servers;
mod verify_db;

use servers::{Kind, Server};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Target {
    Scepd,
    Scepserver,
    Both,
}

#[derive(Clone, Copy, ValueEnum)]
enum Cipher {
    Aes128,
    Aes256,
    Des3,
    Des,
}

impl Cipher {
    fn wire(self) -> ContentCipher {
        match self {
            Cipher::Aes128 => ContentCipher::Aes128Cbc,
            Cipher::Aes256 => ContentCipher::Aes256Cbc,
            Cipher::Des3 => ContentCipher::Des3Cbc,
            Cipher::Des => ContentCipher::DesCbc,
        }
    }
}

/// Load benchmark: PKCSReq enrollments against scepd and micromdm's scepserver.
#[derive(Parser)]
#[command(name = "scepd-bench")]
struct Args {
    #[arg(long, value_enum, default_value = "both")]
    target: Target,
    /// Enrollments per concurrency level.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrency levels, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Before a last scepd run at --seed-concurrency, insert this many
    /// certificates and used challenges (0: skip).
    #[arg(long, default_value_t = 0)]
    seed_rows: u64,
    #[arg(long, default_value_t = 16)]
    seed_concurrency: usize,
    /// Run the level on the seeded database this many times (the first
    /// run after the seed pays for its checkpoint: whole pages in the WAL).
    #[arg(long, default_value_t = 1)]
    seed_repeat: usize,
    /// The scepd binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/scepd")]
    scepd_bin: PathBuf,
    /// PostgreSQL for scepd (an empty database); unset: its private cluster.
    #[arg(long)]
    database_url: Option<String>,
    /// RUST_LOG for scepd (its default is info: one access line per request).
    #[arg(long, default_value = "info")]
    scepd_log: String,
    /// Content cipher of the requests' envelopes.
    #[arg(long, value_enum, default_value = "aes128")]
    cipher: Cipher,
    /// Cache of generated device keys, reused between runs.
    #[arg(long, default_value = "target/scepd-bench/keys.bin")]
    key_cache: PathBuf,
    /// Keep the servers' temporary directories (logs, databases).
    #[arg(long)]
    keep: bool,
    /// Only fill the key cache.
    #[arg(long)]
    keys_only: bool,
    /// After each scepd level, check the database against what clients
    /// received: every certificate stored, no duplicate serial, no
    /// challenge used twice, no request without its certificate.
    #[arg(long)]
    verify_db: bool,
    /// Use only this many distinct device keys, each for several
    /// enrollments (distinct CN, transactionID and challenge): 10,000
    /// fresh RSA-2048 keys take ~20 minutes to make on two cores.
    #[arg(long)]
    key_pool: Option<usize>,
    /// Append every request's send time (ms from the level's start) and
    /// latency to this CSV, one line per request, tagged with the level.
    #[arg(long)]
    latency_log: Option<PathBuf>,
    /// After scepd's enrollment levels, this many OCSP requests per
    /// --ocsp-concurrency level about the certificates enrolled (0: none).
    #[arg(long, default_value_t = 0)]
    ocsp_requests: usize,
    #[arg(long, value_delimiter = ',', default_value = "16")]
    ocsp_concurrency: Vec<usize>,
    /// scepd's SCEPD_OCSP_CACHE_SECONDS (0: every answer reads PostgreSQL).
    #[arg(long, default_value_t = 0)]
    ocsp_cache_seconds: u32,
}

/// The result of one level against one server.
struct Row {
    kind: Kind,
    label: String,
    concurrency: usize,
    requests: usize,
    failed: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    peak_rss_kib: u64,
    /// CPU ms per enrollment while firing.
    cpu: cpu::Snapshot,
    /// RSA private-key operations one answer costs: 3 for an enrollment,
    /// 1 for an OCSP answer (`rsa_floor.rs`).
    ops: f64,
}

impl Row {
    /// Answers of any kind per second (valid or not).
    fn answer_rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Verified enrollments per second.
    fn rate(&self) -> f64 {
        (self.requests - self.failed) as f64 / self.elapsed.as_secs_f64()
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("scepd-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let levels = &args.concurrency;
    let n = args.requests;
    if n == 0 || levels.is_empty() || levels.contains(&0) {
        return Err("--requests and every --concurrency must be positive".into());
    }
    // Distinct keys within a level; levels (and servers) reuse the pool
    // with fresh transactionIDs, nonces and challenges.
    let distinct = args.key_pool.unwrap_or(n).clamp(1, n);
    let keys = keys::pool(&args.key_cache, distinct)?;
    let keys: Vec<keys::Key> = keys.iter().cycle().take(n).cloned().collect();
    if args.keys_only {
        return Ok(());
    }
    // Measured before and after the servers run: the host's speed drifts.
    let probe = || rsa_floor::RsaSpeed::measure(&keys[0], Duration::from_secs(1));
    let speed_before = probe()?;
    let mut rows = vec![];
    let kinds: &[Kind] = match args.target {
        Target::Scepd => &[Kind::Scepd],
        Target::Scepserver => &[Kind::Scepserver],
        Target::Both => &[Kind::Scepd, Kind::Scepserver],
    };
    for &kind in kinds {
        let mut server = match kind {
            Kind::Scepd => Server::scepd(
                &args.scepd_bin,
                args.database_url.as_deref(),
                &args.scepd_log,
                &[(
                    "SCEPD_OCSP_CACHE_SECONDS",
                    &args.ocsp_cache_seconds.to_string(),
                )],
            )?,
            Kind::Scepserver => Server::scepserver()?,
        };
        eprintln!("{} up, pid {}", kind.name(), server.pid());
        for &c in levels {
            rows.push(level(args, &server, &keys, c, &format!("c{c}"))?);
        }
        if kind == Kind::Scepd && args.seed_rows > 0 {
            seed::seed(&server.database_url()?, args.seed_rows)?;
            let label = format!("c{} +{} rows", args.seed_concurrency, args.seed_rows);
            for _ in 0..args.seed_repeat.max(1) {
                rows.push(level(args, &server, &keys, args.seed_concurrency, &label)?);
            }
        }
        if kind == Kind::Scepd && args.ocsp_requests > 0 {
            let (ca, _) = server.ca_and_ra()?;
            let subjects = ocsp::subjects(&server)?;
            let own_cluster = args.database_url.is_none();
            for &c in &args.ocsp_concurrency {
                rows.push(ocsp::level(
                    &server,
                    own_cluster,
                    &ca,
                    &subjects,
                    args.ocsp_requests,
                    c.max(1),
                )?);
            }
        }
        if args.keep {
            server.dir.disable_cleanup(true);
            eprintln!("kept {}", server.dir.path().display());
        }
        drop(server);
    }
    report(&rows, [speed_before, probe()?]);
    if rows.iter().any(|r| r.failed > 0) {
        return Err("some requests failed".into());
    }
    Ok(())
}

/// Prepare, fire and verify `keys.len()` enrollments at concurrency `c`.
fn level(
    args: &Args,
    server: &Server,
    keys: &[keys::Key],
    c: usize,
    label: &str,
) -> Result<Row, String> {
    let (ca, ra) = server.ca_and_ra()?;
    let challenges = match server.kind {
        Kind::Scepd => server.mint(keys.len())?,
        Kind::Scepserver => vec![servers::SCEPSERVER_CHALLENGE.to_string(); keys.len()],
    };
    let t = Instant::now();
    let tag = format!(
        "bench-{}-{label}-{}",
        server.kind.name(),
        std::process::id()
    )
    .replace([' ', '+'], "");
    let prepared = load::prepare(keys, &challenges, &ra, &tag, args.cipher.wire())?;
    eprintln!(
        "{} {label}: {} requests prepared in {:.1}s, firing",
        server.kind.name(),
        prepared.len(),
        t.elapsed().as_secs_f64()
    );
    // scepd's private cluster runs under it: count only its processes.
    let own_cluster = server.kind == Kind::Scepd && args.database_url.is_none();
    let before = cpu::snapshot(server.pid(), own_cluster);
    let bodies: Vec<&[u8]> = prepared.iter().map(|p| &p.body[..]).collect();
    let (outcomes, elapsed) = load::fire(
        &format!("{}?operation=PKIOperation", server.scep_url),
        &bodies,
        "application/x-pki-message",
        c,
    );
    let mut cpu = before.per_item_ms(&cpu::snapshot(server.pid(), own_cluster), prepared.len());
    if server.kind == Kind::Scepserver {
        // scepserver has no database: any postgres time is someone else's.
        cpu.postgres = f64::NAN;
    }
    let mut failed = 0;
    let mut reasons: Vec<String> = vec![];
    let mut serials = std::collections::HashSet::new();
    let mut received = vec![];
    for (p, o) in prepared.iter().zip(&outcomes) {
        let res = match &o.answer {
            Ok(body) => load::verify(p, body, &ca, &ra).and_then(|(serial, der_sha256)| {
                if serials.insert(serial) {
                    received.push(der_sha256);
                    Ok(())
                } else {
                    Err("serial number already issued in this run".to_string())
                }
            }),
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = res {
            failed += 1;
            if reasons.len() < 5 && !reasons.contains(&e) {
                reasons.push(e);
            }
        }
    }
    if args.verify_db && server.kind == Kind::Scepd {
        match verify_db::check(&server.database_url()?, &received) {
            Ok(summary) => eprintln!("  {summary}"),
            Err(e) => {
                failed += 1;
                reasons.push(format!("database check: {e}"));
            }
        }
    }
    for r in &reasons {
        eprintln!("  failure: {r}");
    }
    if let Some(path) = &args.latency_log {
        latency_log(path, server.kind, label, &outcomes)?;
    }
    let row = row(server, label, c, failed, elapsed, &outcomes, cpu, 3.0);
    eprintln!(
        "  {:.0} enrollments/s, p50 {:.1} ms, p99 {:.1} ms, {} failed, peak RSS {} MiB, \
         CPU ms/enrollment: server {:.2}, postgres {}, client {:.2}",
        row.rate(),
        ms(row.p50),
        ms(row.p99),
        row.failed,
        row.peak_rss_kib / 1024,
        cpu.server,
        pg_cell(cpu.postgres),
        cpu.bench
    );
    Ok(row)
}

/// The row of a level whose `outcomes` took `elapsed`, `failed` of them
/// not verified; each answer costs `ops` RSA private-key operations.
#[allow(clippy::too_many_arguments)]
fn row(
    server: &Server,
    label: &str,
    c: usize,
    failed: usize,
    elapsed: Duration,
    outcomes: &[load::Outcome],
    cpu: cpu::Snapshot,
    ops: f64,
) -> Row {
    let mut lat: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len().max(1)) - 1)
            .copied()
            .unwrap_or_default()
    };
    Row {
        kind: server.kind,
        label: label.to_string(),
        concurrency: c,
        requests: outcomes.len(),
        failed,
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        max: lat.last().copied().unwrap_or_default(),
        peak_rss_kib: server.rss_kib().0,
        cpu,
        ops,
    }
}

/// Appends one `server,level,sent_ms,latency_ms` line per request.
fn latency_log(
    path: &Path,
    kind: Kind,
    label: &str,
    outcomes: &[load::Outcome],
) -> Result<(), String> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = String::new();
    for o in outcomes {
        out.push_str(&format!(
            "{},{label},{:.3},{:.3}\n",
            kind.name(),
            ms(o.sent),
            ms(o.latency)
        ));
    }
    f.write_all(out.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// PostgreSQL CPU per enrollment, or a dash for a server without one.
fn pg_cell(ms: f64) -> String {
    if ms.is_nan() {
        "–".into()
    } else {
        format!("{ms:.2}")
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(rows: &[Row], speed: [rsa_floor::RsaSpeed; 2]) {
    let floor = (speed[0].floor() + speed[1].floor()) / 2.0;
    let ops = (speed[0].ops_per_second() + speed[1].ops_per_second()) / 2.0;
    println!(
        "RSA-2048 private-key operations per core: {:.0}/s before, {:.0}/s after; \
         floor of {} cores at 3 per enrollment: {floor:.0} enrollments/s\n",
        speed[0].per_core, speed[1].per_core, speed[0].cores
    );
    println!(
        "| server | run | concurrency | requests | failed | enrollments/s | answers/s | p50 ms | p99 ms \
         | max ms | peak RSS MiB | CPU ms/enr server | postgres | client | % of RSA floor |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {} | {:.2} | {:.0} |",
            r.kind.name(),
            r.label,
            r.concurrency,
            r.requests,
            r.failed,
            r.rate(),
            r.answer_rate(),
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.peak_rss_kib as f64 / 1024.0,
            r.cpu.server,
            pg_cell(r.cpu.postgres),
            r.cpu.bench,
            r.rate() / (ops / r.ops) * 100.0
        );
    }
    let lines = summary(rows);
    if !lines.is_empty() {
        println!();
    }
    for line in lines {
        println!("{line}");
    }
    if rows.iter().any(|r| r.ops == 1.0) {
        println!(
            "OCSP rows: verified answers/s; their floor is one RSA-2048 signature per answer: {ops:.0}/s"
        );
    }
}

/// The closing lines: scepd against scepserver per level, and the seeded
/// runs against the empty level at their concurrency.
fn summary(rows: &[Row]) -> Vec<String> {
    let find = |k: Kind, l: &str| rows.iter().find(|r| r.kind == k && r.label == l);
    let mut lines = vec![];
    // Both ratios: a peer that answers quickly with FAILUREs looks close in
    // answers/s and far behind in verified enrollments/s.
    let ratios: Vec<String> = rows
        .iter()
        .filter(|r| r.kind == Kind::Scepd)
        .filter_map(|r| {
            let m = find(Kind::Scepserver, &r.label)?;
            let enrollments = if m.rate() > 0.0 {
                format!("{:.2}x enrollments", r.rate() / m.rate())
            } else {
                "no verified enrollment from scepserver".to_string()
            };
            Some(format!(
                "{}: {enrollments}, {:.2}x answers",
                r.label,
                r.answer_rate() / m.answer_rate()
            ))
        })
        .collect();
    if !ratios.is_empty() {
        lines.push(format!(
            "scepd / scepserver per second: {}",
            ratios.join("; ")
        ));
    }
    // Every run on the seeded database (--seed-repeat), against the empty
    // level at the same concurrency (--seed-concurrency).
    let seeded: Vec<&Row> = rows
        .iter()
        .filter(|r| r.kind == Kind::Scepd && r.label.contains("rows"))
        .collect();
    let base = seeded.first().and_then(|first| {
        rows.iter().find(|r| {
            r.kind == Kind::Scepd && r.concurrency == first.concurrency && !r.label.contains("rows")
        })
    });
    if let Some(b) = base {
        let seeded: Vec<String> = seeded
            .iter()
            .map(|s| {
                format!(
                    "{:.0} ({:+.1}%)",
                    s.rate(),
                    (s.rate() / b.rate() - 1.0) * 100.0
                )
            })
            .collect();
        lines.push(format!(
            "seeded vs empty database at {}: {} vs {:.0} enrollments/s",
            b.label,
            seeded.join(", "),
            b.rate()
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A level at concurrency `c` whose `requests` were answered in one
    /// second, `failed` of them not verified.
    fn row(kind: Kind, c: usize, label: &str, requests: usize, failed: usize) -> Row {
        Row {
            kind,
            label: label.into(),
            concurrency: c,
            requests,
            failed,
            elapsed: Duration::from_secs(1),
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            max: Duration::ZERO,
            peak_rss_kib: 0,
            cpu: cpu::Snapshot::default(),
            ops: 3.0,
        }
    }

    #[test]
    fn summary_gives_both_ratios_against_the_peer() {
        let rows = [
            row(Kind::Scepd, 16, "c16", 500, 0),
            row(Kind::Scepserver, 16, "c16", 200, 195),
        ];
        assert_eq!(
            summary(&rows),
            ["scepd / scepserver per second: c16: 100.00x enrollments, 2.50x answers"]
        );
    }

    #[test]
    fn summary_says_so_when_the_peer_verified_nothing() {
        let rows = [
            row(Kind::Scepd, 64, "c64", 500, 0),
            row(Kind::Scepserver, 64, "c64", 250, 250),
        ];
        assert_eq!(
            summary(&rows),
            ["scepd / scepserver per second: c64: no verified enrollment from scepserver, 2.00x answers"]
        );
    }

    #[test]
    fn summary_lists_every_seeded_run_against_the_empty_level() {
        let rows = [
            row(Kind::Scepd, 16, "c16", 500, 0),
            row(Kind::Scepd, 16, "c16 +1000000 rows", 450, 0),
            row(Kind::Scepd, 16, "c16 +1000000 rows", 520, 0),
        ];
        assert_eq!(
            summary(&rows),
            ["seeded vs empty database at c16: 450 (-10.0%), 520 (+4.0%) vs 500 enrollments/s"]
        );
    }

    #[test]
    fn seeded_runs_compare_with_the_empty_level_at_their_own_concurrency() {
        let rows = [
            row(Kind::Scepd, 16, "c16", 500, 0),
            row(Kind::Scepd, 64, "c64", 600, 0),
            row(Kind::Scepd, 64, "c64 +1000000 rows", 540, 0),
        ];
        assert_eq!(
            summary(&rows),
            ["seeded vs empty database at c64: 540 (-10.0%) vs 600 enrollments/s"]
        );
    }
}

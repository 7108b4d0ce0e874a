//! Console list pages at scale (issue 4): seed 1,000,000 certificates and
//! 100,000 enrollment requests with `generate_series`, log in as the MRAO
//! and report p50/p95 latency of the request queue and certificate list
//! pages with filters, over real HTTP against a release `scepd serve`.
//!
//! `cargo build --release && target/release/console_pages [--certificates N]
//! [--requests N] [--samples N]`; needs `psql` and a PostgreSQL server
//! (`--database-url`, default the local one at 127.0.0.1:5432 as postgres).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    certificates: u64,
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Timed fetches per page.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Server where a scratch database is created (and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    database_url: String,
    #[arg(long, default_value = "target/release/scepd")]
    scepd_bin: String,
}

const PASSWORD: &str = "bench-admin-password";

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql");
    if !out.status.success() {
        eprintln!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(1);
    }
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Session {
    agent: ureq::Agent,
    base: String,
    cookies: HashMap<String, String>,
}

impl Session {
    fn call(&mut self, req: ureq::Request, form: Option<&[(&str, &str)]>) -> (u16, String) {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = req.set("Cookie", &cookie.join("; "));
        let r = match form {
            Some(f) => req.send_form(f),
            None => req.call(),
        };
        let r = match r {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                eprintln!("transport error: {e}");
                std::process::exit(1);
            }
        };
        for c in r.all("set-cookie") {
            if let Some((k, v)) = c.split(';').next().and_then(|p| p.split_once('=')) {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        (r.status(), r.into_string().unwrap_or_default())
    }

    fn get(&mut self, path: &str) -> (u16, String) {
        let req = self.agent.get(&format!("{}{path}", self.base));
        self.call(req, None)
    }

    fn login(&mut self) {
        let (_, form) = self.get("/login");
        let token = form
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_string();
        let req = self.agent.post(&format!("{}/login", self.base));
        let (status, _) = self.call(
            req,
            Some(&[
                ("csrf", &token),
                ("username", "admin"),
                ("password", PASSWORD),
            ]),
        );
        if status != 303 {
            eprintln!("login failed: HTTP {status}");
            std::process::exit(1);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let a = Args::parse();
    let db = format!("scepd_pages_{}", std::process::id());
    psql(
        &format!("{}/postgres", a.database_url),
        &format!("CREATE DATABASE {db}"),
    );
    let url = format!("{}/{db}", a.database_url);
    let data = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080);
    let server = Server(
        Command::new(&a.scepd_bin)
            .arg("serve")
            .env("DATABASE_URL", &url)
            .env("SCEPD_DATA_DIR", data.path())
            .env("SCEPD_LISTEN", format!("127.0.0.1:{port}"))
            .env("SCEPD_ADMIN_PASSWORD", PASSWORD)
            .env("SCEPD_CA_KEY_TYPE", "rsa2048")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("scepd binary (cargo build --release)"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&format!("{base}/readyz")).call().is_err() {
        if Instant::now() > deadline {
            eprintln!("scepd did not start");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let t = Instant::now();
    psql(&url, &format!(
        "INSERT INTO certificates (serial, profile_id, organization_id, subject, common_name, sans, \
         not_before, not_after, status, fingerprint_sha256, public_key_sha256, issuer_sha256, der, created_at) \
         SELECT upper(md5(i::text)), 1, 1, 'CN=dev-' || i, 'dev-' || i, '{{}}', \
         now() - (i % 365) * interval '1 day', now() + ((i % 400) + 1) * interval '1 day', \
         CASE WHEN i % 50 = 0 THEN 'revoked' ELSE 'valid' END, \
         decode(md5(i::text) || md5('f' || i), 'hex'), decode(md5('k' || i), 'hex'), '\\x00', '\\x00', \
         now() - (i % 365) * interval '1 day' FROM generate_series(1, {}) i",
        a.certificates
    ));
    psql(&url, &format!(
        "INSERT INTO enrollment_requests (transaction_id, public_key_sha256, message_type, profile_id, \
         organization_id, status, subject, common_name, sans, key_desc, csr_der, created_at, updated_at) \
         SELECT 'tx-' || i, decode(md5('r' || i), 'hex'), 'PKCSReq', 1, 1, \
         (ARRAY['requested','applied','issued','declined'])[1 + i % 4], 'CN=req-' || i, 'req-' || i, '{{}}', \
         'RSA 2048', '\\x00', now() - (i % 30) * interval '1 day', now() FROM generate_series(1, {}) i",
        a.requests
    ));
    psql(&url, "VACUUM ANALYZE");
    println!(
        "seeded {} certificates and {} requests in {:.0} s",
        a.certificates,
        a.requests,
        t.elapsed().as_secs_f64()
    );

    let mut s = Session {
        agent: ureq::AgentBuilder::new().redirects(0).build(),
        base: base.clone(),
        cookies: HashMap::new(),
    };
    s.login();
    let pages = [
        "/requests?status=requested",
        "/requests?status=requested&q=req-4242",
        "/requests?status=issued",
        "/certificates",
        "/certificates?state=valid&expiring=30",
        "/certificates?state=revoked",
        "/certificates?q=dev-424242",
        "/certificates?q=dev-4",
    ];
    println!("| page | p50 ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for page in pages {
        let (status, _) = s.get(page);
        if status != 200 {
            eprintln!("{page}: HTTP {status}");
            std::process::exit(1);
        }
        let mut times: Vec<f64> = (0..a.samples)
            .map(|_| {
                let t = Instant::now();
                s.get(page);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(|x, y| x.total_cmp(y));
        println!(
            "| `{page}` | {:.1} | {:.1} | {:.1} |",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times.last().copied().unwrap_or(0.0)
        );
    }
    drop(server);
    psql(
        &format!("{}/postgres", a.database_url),
        &format!("DROP DATABASE {db} WITH (FORCE)"),
    );
}

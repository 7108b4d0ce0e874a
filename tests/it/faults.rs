//! Faults under load (issue 7), against real scepd processes and real
//! PostgreSQL: the database stopped and restarted mid-load, scepd killed
//! with SIGKILL mid-load and restarted, two scepd processes racing on one
//! database. Clients behave as RFC 8894 §3.3.1 asks: on no answer (or 503)
//! they resend the same message, and must get their certificate exactly once.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use server::pgcluster::{ClusterOptions, PgCluster};
use server::wire::client::{parse_cert_rep, ClientContent};
use server::wire::{ContentCipher, MessageType, Nonce, PkiStatus, TransactionId};

use crate::device::Device;
use crate::support::{free_port, Scepd};

/// RSA-2048 keys are slow to make; devices share a small pool. Distinct
/// CNs and transactionIDs keep every enrollment distinct (the profile sets
/// no per-device limit).
pub(crate) fn keys() -> &'static [PKey<Private>] {
    static KEYS: OnceLock<Vec<PKey<Private>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        std::thread::scope(|scope| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        (0..8)
                            .map(|_| PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        })
    })
}

/// One simulated client: its device, its PKCSReq bytes (resent verbatim).
pub(crate) struct Client {
    pub(crate) dev: Device,
    pub(crate) txid: TransactionId,
    pub(crate) msg: Vec<u8>,
}

pub(crate) fn clients(s: &Scepd, tag: &str, challenges: &[String]) -> Vec<Client> {
    let keys = keys();
    challenges
        .iter()
        .enumerate()
        .map(|(i, ch)| {
            let dev = Device::with_key(&format!("{tag}-{i}"), keys[i % keys.len()].clone());
            let csr = dev.csr(Some(ch));
            let txid = TransactionId(hex::encode(Nonce::random().unwrap().0));
            let msg = dev.request(
                s,
                MessageType::PkcsReq,
                &txid,
                ClientContent::Csr(&csr),
                ContentCipher::Aes128Cbc,
            );
            Client { dev, txid, msg }
        })
        .collect()
}

pub(crate) fn mint(s: &Scepd, n: usize) -> Vec<String> {
    s.cli_ok(&["challenge", "mint", "--count", &n.to_string()])
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// What one POST got.
#[derive(Debug)]
pub(crate) enum Sent {
    Ok(Vec<u8>),
    Status(u16),
    /// No HTTP answer (connection refused or reset).
    Transport,
}

pub(crate) fn send(url: &str, msg: &[u8]) -> Sent {
    let r = ureq::post(&format!("{url}/scep/default?operation=PKIOperation"))
        .timeout(Duration::from_secs(30))
        .set("Content-Type", "application/x-pki-message")
        .send_bytes(msg);
    match r {
        Ok(r) => {
            let mut v = vec![];
            std::io::Read::read_to_end(&mut r.into_reader(), &mut v).unwrap();
            Sent::Ok(v)
        }
        Err(ureq::Error::Status(code, _)) => Sent::Status(code),
        Err(_) => Sent::Transport,
    }
}

/// The certificate in a SUCCESS CertRep for `c`, checked against its key.
pub(crate) fn certificate(s: &Scepd, c: &Client, body: &[u8]) -> Vec<u8> {
    let rep = parse_cert_rep(body, &s.ra_cert(), &c.dev.signer, &c.dev.key).unwrap();
    assert_eq!(rep.status, PkiStatus::Success, "{rep:?}");
    assert_eq!(rep.transaction_id, c.txid);
    assert!(rep.certs[0].public_key().unwrap().public_eq(&c.dev.key));
    rep.certs[0].to_der().unwrap()
}

/// Every certificate a client received is in the database, once, and no
/// enrollment was left half-written (auto-approve: every request issued
/// with its certificate, every used challenge has its request).
pub(crate) fn assert_consistent(s: &Scepd, received: &[Vec<u8>]) {
    let n = received.len() as i64;
    assert_eq!(s.count("certificates"), n);
    assert_eq!(s.count("enrollment_requests"), n);
    assert_eq!(
        s.count("enrollment_requests WHERE status <> 'issued' OR certificate_id IS NULL"),
        0
    );
    assert_eq!(s.count("challenges WHERE used_at IS NOT NULL"), n);
    assert_eq!(s.count("(SELECT DISTINCT serial FROM certificates) d"), n);
    let mut conn = s.pg();
    for der in received {
        let cert = openssl::x509::X509::from_der(der).unwrap();
        let serial = hex::encode_upper(cert.serial_number().to_bn().unwrap().to_vec());
        let stored = server::store::certificates::by_serial(&mut conn, &serial)
            .unwrap()
            .unwrap_or_else(|| panic!("certificate {serial} a client holds is not stored"));
        assert_eq!(&stored.der, der);
    }
}

/// A cluster directory PostgreSQL's user can reach (a `tempdir` is 0700),
/// removed at the end.
pub(crate) struct ClusterDir(pub(crate) std::path::PathBuf);

impl Drop for ClusterDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// PostgreSQL stopped during load: answers are 503 (never 500, never a
/// dropped connection), and scepd recovers on its own within 5 s of the
/// database returning, with no enrollment half-written.
#[test]
fn database_stopped_during_load_gives_503_then_recovers_within_5_s() {
    let dir = ClusterDir(std::env::temp_dir().join(format!(
        "scepd-faults-{}-{}",
        std::process::id(),
        free_port()
    )));
    let opts = ClusterOptions {
        durable: false,
        remove_on_exit: false,
        port: Some(free_port()),
    };
    let cluster = PgCluster::start(&dir.0, opts).unwrap();
    let url = cluster.database_url("scepd");
    let s = Scepd::start_on(&url, tempfile::tempdir().unwrap(), &[]);
    let clients = clients(&s, "pgstop", &mint(&s, 48));

    // (time the attempt started, status) for every attempt.
    let attempts: Mutex<Vec<(Instant, u16)>> = Mutex::new(vec![]);
    let received: Mutex<Vec<Vec<u8>>> = Mutex::new(vec![]);
    let deadline = Instant::now() + Duration::from_secs(40);
    let (stopped, up, cluster) = std::thread::scope(|scope| {
        for part in clients.chunks(6) {
            let (attempts, received, s) = (&attempts, &received, &s);
            scope.spawn(move || {
                for c in part {
                    loop {
                        assert!(
                            Instant::now() < deadline,
                            "no certificate for {}\n{}",
                            c.dev.cn,
                            s.log()
                        );
                        let t = Instant::now();
                        match send(&s.url, &c.msg) {
                            Sent::Ok(body) => {
                                attempts.lock().unwrap().push((t, 200));
                                received.lock().unwrap().push(certificate(s, c, &body));
                                break;
                            }
                            Sent::Status(code) => attempts.lock().unwrap().push((t, code)),
                            Sent::Transport => attempts.lock().unwrap().push((t, 0)),
                        }
                        // Retry-After says 5 s; a test client is impatient.
                        std::thread::sleep(Duration::from_millis(150));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        let stopped = Instant::now();
        cluster.stop().unwrap();
        // Twice the pool's 3 s connection timeout: after the first lost
        // connection the pool tests the others before handing them out, so
        // the 503s are those of attempts that waited out the timeout while
        // the database was still down, and every client thread meets one.
        std::thread::sleep(Duration::from_millis(6000));
        let cluster = PgCluster::start(&dir.0, opts).unwrap();
        let up = Instant::now();
        // The scope joins the clients before returning the cluster.
        (stopped, up, cluster)
    });
    let attempts = attempts.into_inner().unwrap();
    let bad: Vec<_> = attempts
        .iter()
        .filter(|(_, code)| ![200, 503].contains(code))
        .collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", s.log());
    let outage = attempts
        .iter()
        .filter(|(t, c)| *c == 503 && *t > stopped)
        .count();
    // A 503 takes the pool's 3 s connection timeout, and only as many
    // requests as there are blocking threads (pool size per worker) wait
    // at once, so a 6 s outage yields a handful of them, at least one.
    assert!(outage >= 1, "the load saw the outage: {outage}");
    let first_after = attempts
        .iter()
        .filter(|(t, c)| *c == 200 && *t > up)
        .map(|(t, _)| t.duration_since(up))
        .min();
    eprintln!(
        "{} attempts, {outage} answered 503 during the outage, first 200 begun {first_after:?} after the database returned",
        attempts.len()
    );
    // Recovery: every attempt begun 5 s after the database returned got 200,
    // and some attempt got through before that.
    let late_failures = attempts
        .iter()
        .filter(|(t, c)| *t > up + Duration::from_secs(5) && *c != 200)
        .count();
    assert_eq!(late_failures, 0, "{}", s.log());
    assert!(
        attempts
            .iter()
            .any(|(t, c)| *c == 200 && *t > up && *t < up + Duration::from_secs(5)),
        "an enrollment succeeded within 5 s of the database returning"
    );
    let received = received.into_inner().unwrap();
    assert_eq!(received.len(), clients.len());
    assert_consistent(&s, &received);
    let metrics = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(metrics
        .lines()
        .any(|l| l == "scepd_requests_total{operation=\"PKIOperation\",outcome=\"error\"} 0"));
    // Every 503 the clients saw was counted as unavailable.
    let unavailable: usize = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "scepd_requests_total{operation=\"PKIOperation\",outcome=\"unavailable\"} ",
            )
        })
        .unwrap()
        .parse()
        .unwrap();
    let seen_503 = attempts.iter().filter(|(_, c)| *c == 503).count();
    assert_eq!(unavailable, seen_503);
    drop(s);
    cluster.stop().unwrap();
}

/// scepd killed with SIGKILL mid-load and restarted: the database stays
/// consistent, and clients that resend their message get their
/// certificate exactly once (the one they may already have).
#[test]
fn sigkill_mid_load_then_retries_get_each_certificate_exactly_once() {
    let s = Scepd::start();
    let clients = clients(&s, "sigkill", &mint(&s, 64));
    let answered: Mutex<Vec<Option<Vec<u8>>>> = Mutex::new(vec![None; clients.len()]);
    let url = s.url.clone();
    let pid = s.pid();
    std::thread::scope(|scope| {
        for (k, part) in clients.chunks(8).enumerate() {
            let (answered, url, s) = (&answered, &url, &s);
            scope.spawn(move || {
                for (j, c) in part.iter().enumerate() {
                    match send(url, &c.msg) {
                        Sent::Ok(body) => {
                            answered.lock().unwrap()[k * 8 + j] = Some(certificate(s, c, &body))
                        }
                        Sent::Status(code) => panic!("HTTP {code} before the kill"),
                        // Killed: this client never got an answer.
                        Sent::Transport => return,
                    }
                }
            });
        }
        // Kill once some enrollments are through, while others are in flight.
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered.lock().unwrap().iter().flatten().count() < 12 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        crate::support::nix_kill(pid, "KILL");
    });
    let answered = answered.into_inner().unwrap();
    let before = answered.iter().flatten().count();
    assert!(
        before >= 12 && before < clients.len(),
        "killed mid-load: {before}"
    );
    eprintln!("{before} of {} answered before SIGKILL", clients.len());

    let s = s.restart();
    let mut received = vec![];
    for (c, earlier) in clients.iter().zip(&answered) {
        let body = match send(&s.url, &c.msg) {
            Sent::Ok(b) => b,
            other => panic!("{other:?}\n{}", s.log()),
        };
        let der = certificate(&s, c, &body);
        if let Some(earlier) = earlier {
            assert_eq!(
                &der, earlier,
                "a retry returns the certificate issued before"
            );
        }
        received.push(der);
    }
    assert_consistent(&s, &received);
    assert_eq!(
        s.count(
            "(SELECT transaction_id FROM certificates c JOIN enrollment_requests r \
             ON r.certificate_id = c.id GROUP BY transaction_id HAVING count(*) > 1) d"
        ),
        0
    );
}

/// Two scepd processes on one database under load: distinct serials, and
/// a challenge raced from both processes by two devices is used once.
#[test]
fn two_processes_under_load_never_duplicate_a_serial_or_a_challenge() {
    let s = Scepd::start();
    let second = s.second();
    let challenges = mint(&s, 100);
    let clients = clients(&s, "twoproc", &challenges);
    // Rivals: another device presenting each of the first 15 challenges
    // (under the failed-attempt limit of 20 per client address).
    let rivals = self::clients(&s, "rival", &challenges[..15]);
    let urls = [s.url.clone(), second.url.clone()];
    let results: Mutex<Vec<(usize, bool, Sent)>> = Mutex::new(vec![]);
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (clients, rivals, urls, results) = (&clients, &rivals, &urls, &results);
            scope.spawn(move || {
                for i in (t..clients.len()).step_by(8) {
                    let r = send(&urls[i % 2], &clients[i].msg);
                    results.lock().unwrap().push((i, false, r));
                    if i < rivals.len() {
                        let r = send(&urls[(i + 1) % 2], &rivals[i].msg);
                        results.lock().unwrap().push((i, true, r));
                    }
                }
            });
        }
    });
    let mut received = vec![];
    let mut winners = vec![0; clients.len()];
    for (i, rival, r) in results.into_inner().unwrap() {
        let c = if rival { &rivals[i] } else { &clients[i] };
        let body = match r {
            Sent::Ok(b) => b,
            other => panic!("{other:?}\n{}", s.log()),
        };
        let rep = parse_cert_rep(&body, &s.ra_cert(), &c.dev.signer, &c.dev.key).unwrap();
        if rep.status == PkiStatus::Success {
            winners[i] += 1;
            received.push(certificate(&s, c, &body));
        }
    }
    assert!(
        winners.iter().all(|w| *w == 1),
        "each challenge enrolled exactly one device: {winners:?}"
    );
    let serials: HashSet<_> = received
        .iter()
        .map(|d| {
            openssl::x509::X509::from_der(d)
                .unwrap()
                .serial_number()
                .to_bn()
                .unwrap()
                .to_vec()
        })
        .collect();
    assert_eq!(serials.len(), received.len());
    assert_consistent(&s, &received);
    assert_eq!(
        s.count(
            "(SELECT challenge_id FROM enrollment_requests WHERE challenge_id IS NOT NULL \
             GROUP BY challenge_id HAVING count(*) > 1) d"
        ),
        0
    );
}

//! PostgreSQL failover ("Beyond one machine", part 2): a primary and a
//! synchronous standby made from the system's server binaries, scepd on a
//! libpq connection string naming both (`host=a,b ...
//! target_session_attrs=read-write`), clients
//! enrolling from several threads. The primary crashes while commits wait
//! for the standby (their outcome unknown to scepd), the standby is
//! promoted, and scepd, never restarted, carries on. Clients behave as
//! RFC 8894 §3.3.1 asks: on a 503 they resend the same message.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use server::pgcluster::{ClusterOptions, PgCluster};

use crate::faults::{
    assert_consistent, certificate, clients, mint, send, Client, ClusterDir, Sent,
};
use crate::mail_sink::{poll_until, Smtp};
use crate::support::{free_port, nix_kill, Scepd};

/// One PKIOperation: the HTTP status (0: no answer); a 200 must carry
/// the client's certificate.
fn enroll_once(s: &Scepd, c: &Client) -> u16 {
    match send(&s.url, &c.msg) {
        Sent::Ok(body) => {
            certificate(s, c, &body);
            200
        }
        Sent::Status(code) => code,
        Sent::Transport => 0,
    }
}

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

/// The standby's WAL receiver (its pid), which the test stops so that the
/// primary's commits wait for it.
fn wal_receiver(standby: &PgCluster) -> u32 {
    let mut conn = PgConnection::establish(&standby.database_url("postgres")).unwrap();
    let pid = poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let n = count(
            &mut conn,
            "SELECT coalesce(max(pid), 0)::bigint AS n FROM pg_stat_wal_receiver \
             WHERE status = 'streaming'",
        );
        (n > 0).then_some(n)
    })
    .expect("the standby streams from the primary");
    u32::try_from(pid).unwrap()
}

/// A primary whose commits wait for the standby: `synchronous_commit=on`
/// (the durable default) and the standby named synchronous.
fn make_synchronous(primary: &PgCluster) {
    let mut conn = PgConnection::establish(&primary.database_url("postgres")).unwrap();
    diesel::sql_query("ALTER SYSTEM SET synchronous_standby_names = '*'")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("SELECT pg_reload_conf()")
        .execute(&mut conn)
        .unwrap();
    poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let sync = count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_stat_replication WHERE sync_state = 'sync'",
        );
        (sync == 1).then_some(())
    })
    .expect("the standby became synchronous");
}

/// A primary and its streaming standby, each listening on the unix socket
/// in its own directory.
struct Pair {
    primary: PgCluster,
    standby: PgCluster,
    /// Last: removed once both servers have stopped.
    root: ClusterDir,
}

impl Pair {
    fn start(tag: &str) -> Pair {
        let root = ClusterDir(std::env::temp_dir().join(format!(
            "scepd-{tag}-{}-{}",
            std::process::id(),
            free_port()
        )));
        // Durable: a primary with synchronous_commit=off would acknowledge
        // commits the standby never saw.
        let opts = ClusterOptions {
            durable: true,
            remove_on_exit: false,
            port: None,
        };
        let primary = PgCluster::start(&root.0.join("primary"), opts).unwrap();
        primary.base_backup(&root.0.join("standby")).unwrap();
        let standby = PgCluster::start(&root.0.join("standby"), opts).unwrap();
        Pair {
            primary,
            standby,
            root,
        }
    }

    /// libpq's keyword/value connection string naming both servers, with
    /// `params` (more keywords) after them.
    fn url(&self, params: &str) -> String {
        format!(
            "host={},{} port={},{} user=scepd dbname=scepd{params}",
            self.primary.socket_dir().display(),
            self.standby.socket_dir().display(),
            self.primary.port(),
            self.standby.port()
        )
    }
}

#[test]
fn failover_to_a_synchronous_standby_answers_503_then_loses_no_acknowledged_enrollment() {
    let pair = Pair::start("failover");
    let url = pair.url(" target_session_attrs=read-write");
    let Pair {
        primary,
        standby,
        root: _root,
        ..
    } = pair;
    let receiver = wal_receiver(&standby);
    make_synchronous(&primary);

    let smtp = Smtp::start();
    let env = smtp.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Scepd::start_on(&url, tempfile::tempdir().unwrap(), &env);
    s.cli_ok(&[
        "notify",
        "contact",
        "add",
        "--org",
        "Default",
        "--email",
        "ops@example.test",
        "--events",
        "issued",
    ]);
    let clients = clients(&s, "failover", &mint(&s, 48));

    // (time the attempt started, status; 0: no HTTP answer) for every attempt.
    let attempts: Mutex<Vec<(Instant, u16)>> = Mutex::new(vec![]);
    let received: Mutex<Vec<Vec<u8>>> = Mutex::new(vec![]);
    let deadline = Instant::now() + Duration::from_secs(45);
    let (killed, promoted) = std::thread::scope(|scope| {
        for part in clients.chunks(8) {
            let (attempts, received, s) = (&attempts, &received, &s);
            scope.spawn(move || {
                for c in part {
                    loop {
                        assert!(Instant::now() < deadline, "no certificate for {}", c.dev.cn);
                        let t = Instant::now();
                        let code = match send(&s.url, &c.msg) {
                            Sent::Ok(body) => {
                                received.lock().unwrap().push(certificate(s, c, &body));
                                200
                            }
                            Sent::Status(code) => code,
                            Sent::Transport => 0,
                        };
                        attempts.lock().unwrap().push((t, code));
                        if code == 200 {
                            break;
                        }
                        // Retry-After says 5 s; a test client is impatient.
                        std::thread::sleep(Duration::from_millis(150));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
        poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
            (received.lock().unwrap().len() >= 8).then_some(())
        })
        .expect("enrollments before the failover");
        // Stop the standby's receiver: the primary's next commits wait for
        // it, so the crash finds them acknowledged to nobody, their outcome
        // unknown to scepd (the group-commit writer's connection dies
        // during the commit).
        assert!(nix_kill(receiver, "STOP"));
        let mut watch = PgConnection::establish(&primary.database_url("postgres")).unwrap();
        poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
            let waiting = count(
                &mut watch,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
            );
            (waiting > 0).then_some(())
        })
        .expect("a commit waits for the standby");
        drop(watch);
        let killed = Instant::now();
        primary.stop_immediate().unwrap();
        assert!(nix_kill(receiver, "CONT"));
        // No writable server for a while: clients get 503s. Twice the
        // pool's 3 s connection timeout, so that even on a loaded machine
        // a request that waits for a connection is answered inside it.
        std::thread::sleep(Duration::from_secs(8));
        standby.promote().unwrap();
        (killed, Instant::now())
    });

    let log = s.log();
    let attempts = attempts.into_inner().unwrap();
    let bad: Vec<_> = attempts
        .iter()
        .filter(|(_, c)| ![200, 503].contains(c))
        .collect();
    assert!(bad.is_empty(), "only 200 or 503: {bad:?}\n{log}");
    let outage = attempts
        .iter()
        .filter(|(t, c)| *c == 503 && *t > killed && *t < promoted)
        .count();
    assert!(outage >= 1, "503s while no server was writable\n{log}");
    let first_after = attempts
        .iter()
        .filter(|(t, c)| *c == 200 && *t > promoted)
        .map(|(t, _)| t.duration_since(promoted))
        .min();
    eprintln!(
        "{} attempts, {outage} answered 503 between the crash and the promotion, \
         first 200 begun {first_after:?} after the promotion",
        attempts.len()
    );
    assert!(
        first_after.is_some_and(|d| d < Duration::from_secs(10)),
        "enrolling again within 10 s of the promotion\n{log}"
    );
    let late_failures = attempts
        .iter()
        .filter(|(t, c)| *t > promoted + Duration::from_secs(10) && *c != 200)
        .count();
    assert_eq!(late_failures, 0, "{log}");

    // The promoted database (the only writable host the URL names now)
    // holds every certificate a client received, each serial and each
    // challenge once.
    let received = received.into_inner().unwrap();
    assert_eq!(received.len(), clients.len());
    assert_consistent(&s, &received);
    assert_eq!(
        s.count(
            "(SELECT challenge_id FROM enrollment_requests WHERE challenge_id IS NOT NULL \
             GROUP BY challenge_id HAVING count(*) > 1) d"
        ),
        0
    );
    let mut promoted_db = PgConnection::establish(&standby.database_url("scepd")).unwrap();
    assert_eq!(
        count(&mut promoted_db, "SELECT count(*) AS n FROM certificates"),
        clients.len() as i64,
        "the URL reached the promoted standby"
    );

    // Every mail not leased by the crashed primary goes out from the
    // promoted one (a leased row waits for its lease, 10 minutes).
    poll_until(Duration::from_secs(15), Duration::from_millis(200), || {
        let waiting = count(
            &mut promoted_db,
            "SELECT count(*) AS n FROM outbox WHERE status <> 'sent' \
             AND (locked_until IS NULL OR locked_until <= now())",
        );
        (waiting == 0).then_some(())
    })
    .expect("the mail sender delivers after the failover");
    let sent = count(
        &mut promoted_db,
        "SELECT count(*) AS n FROM outbox WHERE status = 'sent'",
    );
    assert!(sent > 0);
    assert!(smtp.mails().len() as i64 >= sent);

    // The writer and the mail sender said they lost the database and
    // carried on without a restart (the sender polls once a second, so
    // its news may come after the clients finished).
    for line in [
        "batch writer lost the database",
        "batch writer reconnected",
        "mail sender lost the database",
        "mail sender reconnected to the database",
    ] {
        let said = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            s.log().contains(line).then_some(())
        });
        assert!(said.is_some(), "log says {line:?}:\n{}", s.log());
    }
    let log = s.log();
    for line in ["batch writer lost the database", "batch writer reconnected"] {
        assert!(
            log.lines()
                .any(|l| l.contains(line) && l.contains("worker=\"scepd-commit\"")),
            "the group-commit writer says {line:?}:\n{log}"
        );
    }
    let metrics = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "scepd_requests_total{operation=\"PKIOperation\",outcome=\"error\"} 0"),
        "{metrics}"
    );
    drop(promoted_db);
    drop(s);
    standby.stop().unwrap();
}

/// Without `target_session_attrs=read-write` libpq takes the first server
/// that answers, which after the crash is the standby, still read-only:
/// writes fail there with SQLSTATE 25006. scepd answers 503 (not 500),
/// drops those connections, and enrolls again once the standby is promoted.
#[test]
fn a_pool_that_reaches_the_standby_before_its_promotion_answers_503_not_500() {
    let pair = Pair::start("readonly");
    let s = Scepd::start_on(&pair.url(""), tempfile::tempdir().unwrap(), &[]);
    let Pair {
        primary,
        standby,
        root: _root,
        ..
    } = pair;
    let clients = clients(&s, "readonly", &mint(&s, 6));
    let enroll = |c: &Client| enroll_once(&s, c);
    assert_eq!(enroll(&clients[0]), 200);
    primary.stop_immediate().unwrap();
    // The pool's connections to the crashed primary fail once each; then
    // it connects to the standby (the primary refuses connections), where
    // reading works and the write does not.
    let mut codes = vec![];
    while !s.log().contains("read-only server") {
        assert!(
            codes.len() < 12,
            "no write reached the standby: {codes:?}\n{}",
            s.log()
        );
        codes.push(enroll(&clients[1]));
    }
    assert!(codes.iter().all(|c| *c == 503), "{codes:?}\n{}", s.log());
    // And it stays so while there is no primary.
    assert_eq!(enroll(&clients[1]), 503, "{}", s.log());
    standby.promote().unwrap();
    let promoted = Instant::now();
    for c in &clients[1..] {
        let code = poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            (enroll(c) == 200).then_some(200)
        });
        assert_eq!(code, Some(200), "{}", s.log());
    }
    assert!(promoted.elapsed() < Duration::from_secs(10));
    let metrics = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "scepd_requests_total{operation=\"PKIOperation\",outcome=\"error\"} 0"),
        "{metrics}"
    );
    assert_eq!(s.count("certificates"), clients.len() as i64);
    drop(s);
    standby.stop().unwrap();
}

/// Connections idling in the pool when the primary crashed are dead after
/// the promotion. Only the first request that meets one pays a 503: the
/// pool then tests connections before handing them out, for a while.
#[test]
fn idle_connections_to_a_crashed_primary_cost_one_503_at_most() {
    let pair = Pair::start("idle");
    let s = Scepd::start_on(
        &pair.url(" target_session_attrs=read-write"),
        tempfile::tempdir().unwrap(),
        &[],
    );
    let Pair {
        primary,
        standby,
        root: _root,
        ..
    } = pair;
    let clients = clients(&s, "idle", &mint(&s, 4));
    // Fill the pool (4 connections in the tests) with concurrent probes.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..25 {
                    ureq::get(&format!("{}/readyz", s.url)).call().unwrap();
                }
            });
        }
    });
    let mut watch = PgConnection::establish(&primary.database_url("postgres")).unwrap();
    let idle = count(
        &mut watch,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'scepd'",
    );
    assert!(idle >= 3, "the pool holds several connections: {idle}");
    drop(watch);
    primary.stop_immediate().unwrap();
    standby.promote().unwrap();

    let mut codes = vec![];
    for c in &clients {
        loop {
            let code = enroll_once(&s, c);
            codes.push(code);
            if code != 503 || codes.len() > 20 {
                break;
            }
        }
    }
    assert!(codes.iter().all(|c| [200, 503].contains(c)), "{codes:?}");
    assert!(
        codes.iter().filter(|c| **c == 503).count() <= 1,
        "{idle} dead connections cost {codes:?}\n{}",
        s.log()
    );
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), clients.len());
    drop(s);
    standby.stop().unwrap();
}

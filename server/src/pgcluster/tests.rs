//! Tests that start real clusters from the system's PostgreSQL binaries.

use super::*;
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use std::time::Duration;

fn scratch(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "scepd-pgc-{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

fn quick() -> ClusterOptions {
    ClusterOptions {
        durable: false,
        remove_on_exit: false,
        port: None,
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn wait_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !host::postgres_alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn starts_creates_scepd_database_and_keeps_data_across_restarts() {
    let dir = scratch("restart");
    let c = PgCluster::start(&dir, quick()).unwrap();
    let url = c.database_url("scepd");
    assert!(url.starts_with("postgres://scepd@127.0.0.1:"));
    assert!(url.ends_with(&format!(":{}/scepd", c.port())));
    let mut conn = PgConnection::establish(&url).unwrap();
    conn.batch_execute("CREATE TABLE kept (v BIGINT); INSERT INTO kept VALUES (7)")
        .unwrap();
    drop(conn);
    let pid = host::recorded_pid(&dir.join("pgdata")).unwrap();
    assert!(host::postgres_alive(pid));
    c.stop().unwrap();
    assert!(
        !host::postgres_alive(pid),
        "stop returned before the postmaster exited"
    );
    assert!(!dir.join("pgdata").join("postmaster.pid").exists());

    let c = PgCluster::start(&dir, quick()).unwrap();
    let mut conn = PgConnection::establish(&c.database_url("scepd")).unwrap();
    let got: Count = diesel::sql_query("SELECT sum(v)::bigint AS n FROM kept")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(got.n, 7);
    // Nothing but loopback TCP: no unix socket file anywhere in the cluster.
    let sockets = fs::read_dir(dir.join("pgdata"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".s.PGSQL"))
        .count();
    assert_eq!(sockets, 0);
    drop(conn);
    drop(c);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_settings_are_applied_only_when_not_durable() {
    let fast = server_settings(quick());
    assert!(fast.iter().any(|s| s == "fsync=off"));
    assert!(fast.iter().any(|s| s == "full_page_writes=off"));
    let safe = server_settings(ClusterOptions::default());
    assert!(!safe.iter().any(|s| s.contains("fsync")));
    assert!(safe.iter().any(|s| s == "listen_addresses=127.0.0.1"));
    assert!(safe.iter().any(|s| s == "unix_socket_directories="));
}

#[test]
fn stale_postmaster_pid_does_not_block_start() {
    let dir = scratch("stale");
    PgCluster::start(&dir, quick()).unwrap().stop().unwrap();
    // As if a previous server was killed: a pid file naming a dead process.
    let mut gone = Command::new("/bin/true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let pidfile = dir.join("pgdata").join("postmaster.pid");
    fs::write(&pidfile, format!("{dead}\n{}\n0\n0\n", dir.display())).unwrap();
    let c = PgCluster::start(&dir, quick()).unwrap();
    assert!(PgConnection::establish(&c.database_url("postgres")).is_ok());
    drop(c);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fixed_port_survives_a_restart_so_clients_reconnect_to_the_same_url() {
    let dir = scratch("fixed-port");
    let port = host::free_port().unwrap();
    let opts = ClusterOptions {
        port: Some(port),
        ..quick()
    };
    let c = PgCluster::start(&dir, opts).unwrap();
    assert_eq!(c.port(), port);
    let url = c.database_url("scepd");
    c.stop().unwrap();
    let c = PgCluster::start(&dir, opts).unwrap();
    assert_eq!(c.database_url("scepd"), url);
    assert!(PgConnection::establish(&url).is_ok());
    c.stop().unwrap();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn remove_on_exit_deletes_the_directory() {
    let dir = scratch("ephemeral");
    let c = PgCluster::start(&dir, ClusterOptions::ephemeral()).unwrap();
    assert!(dir.join("pgdata").join("PG_VERSION").exists());
    c.stop().unwrap();
    assert!(!dir.exists());
}

/// Not a test by itself: the child process that
/// `watchdog_stops_postgres_when_owner_is_killed` SIGKILLs.
#[test]
#[ignore = "helper process for watchdog_stops_postgres_when_owner_is_killed"]
fn hold_cluster_helper() {
    let Some(dir) = std::env::var_os("SCEPD_PGCLUSTER_HOLD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let c = PgCluster::start(&dir, quick()).unwrap();
    fs::write(dir.join("ready"), c.port().to_string()).unwrap();
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn watchdog_stops_postgres_when_owner_is_killed() {
    let dir = scratch("orphan");
    fs::create_dir_all(&dir).unwrap();
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "pgcluster::tests::hold_cluster_helper",
            "--ignored",
            "--nocapture",
        ])
        .env("SCEPD_PGCLUSTER_HOLD", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("ready").exists() {
        assert!(
            Instant::now() < deadline,
            "helper never started its cluster"
        );
        assert!(holder.try_wait().unwrap().is_none(), "helper exited early");
        thread::sleep(Duration::from_millis(50));
    }
    let pid = host::recorded_pid(&dir.join("pgdata")).unwrap();
    assert!(host::postgres_alive(pid));
    holder.kill().unwrap(); // SIGKILL: no destructor runs in the holder
    holder.wait().unwrap();
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "postmaster {pid} outlived its owner"
    );
    // The same directory starts again straight away.
    let c = PgCluster::start(&dir, quick()).unwrap();
    drop(c);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn start_waits_out_a_previous_server_that_is_shutting_down() {
    let dir = scratch("overlap");
    let first = PgCluster::start(&dir, quick()).unwrap();
    let pid = host::recorded_pid(&dir.join("pgdata")).unwrap();
    // A second start while the first runs must not succeed on the same data.
    let stopper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        first.stop().unwrap();
    });
    let second = PgCluster::start(&dir, quick()).unwrap();
    stopper.join().unwrap();
    assert!(!host::postgres_alive(pid));
    assert!(PgConnection::establish(&second.database_url("scepd")).is_ok());
    drop(second);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn quote_ident_doubles_quotes() {
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    assert_eq!(quote_ident("scepd"), "\"scepd\"");
}

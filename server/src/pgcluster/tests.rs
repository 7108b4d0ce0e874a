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
    assert!(url.starts_with("postgresql://scepd@/scepd?host=/"), "{url}");
    assert!(url.ends_with(&format!("&port={}", c.port())), "{url}");
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
    // The socket, and only the socket: nothing listens on TCP, and the
    // socket is where scepd put it.
    assert!(dir.join("socket").join(".s.PGSQL.5432").exists());
    let pid_file = fs::read_to_string(dir.join("pgdata").join("postmaster.pid")).unwrap();
    let lines: Vec<&str> = pid_file.lines().collect();
    assert_eq!(lines[4], dir.join("socket").to_string_lossy(), "{pid_file}");
    assert_eq!(lines[5].trim(), "", "a TCP listen address: {pid_file}");
    drop(conn);
    drop(c);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_settings_are_applied_only_when_not_durable() {
    let fast = server_settings(quick(), Path::new("/d/socket"));
    assert!(fast.iter().any(|s| s == "fsync=off"));
    assert!(fast.iter().any(|s| s == "full_page_writes=off"));
    let safe = server_settings(ClusterOptions::default(), Path::new("/d/socket"));
    assert!(!safe.iter().any(|s| s.contains("fsync")));
    assert!(safe.iter().any(|s| s == "listen_addresses="));
    assert!(safe
        .iter()
        .any(|s| s == "unix_socket_directories=/d/socket"));
    assert!(safe.iter().any(|s| s == "unix_socket_permissions=0700"));
}

/// The private cluster admits only the accounts that can open its socket
/// directory: another local user cannot connect, whatever it knows.
#[test]
fn another_local_user_cannot_connect() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("closed");
    let c = PgCluster::start(&dir, quick()).unwrap();
    let socket_dir = c.socket_dir();
    let mode = fs::metadata(&socket_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "socket directory mode {mode:o}");
    assert!(PgConnection::establish(&c.database_url("scepd")).is_ok());
    if nix::unistd::geteuid().is_root() {
        // As root the test can be the other user: `nobody`, with psql.
        let psql = c.bindir().join("psql");
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&psql)
            .arg(c.database_url("scepd"))
            .args(["-c", "SELECT 1"])
            .current_dir("/")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "nobody connected: {err}");
        assert!(err.contains("Permission denied"), "{err}");
    } else {
        // Not root: the socket directory belongs to us alone.
        use std::os::unix::fs::MetadataExt;
        let owner = fs::metadata(&socket_dir).unwrap().uid();
        assert_eq!(owner, nix::unistd::geteuid().as_raw());
    }
    drop(c);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_data_directory_too_deep_for_a_socket_is_refused_clearly() {
    let dir = std::env::temp_dir().join("d".repeat(100));
    let err = PgCluster::start(&dir, quick()).unwrap_err();
    assert!(
        matches!(err, PgClusterError::SocketPathTooLong { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("shorter path"), "{err}");
    assert!(!dir.join("pgdata").exists(), "initdb ran anyway");
    let _ = fs::remove_dir_all(&dir);
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
fn a_restart_keeps_the_url_so_clients_reconnect_to_it() {
    let dir = scratch("fixed-port");
    let port = 6543;
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

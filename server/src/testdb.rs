//! Throw-away databases for tests: each [`TestDb`] is a fresh database
//! copied from a migrated template, dropped again when the `TestDb` goes.
//!
//! With `DATABASE_URL` set, the databases live on that server (its user
//! needs CREATEDB). Without it, the first call starts one private cluster
//! ([`crate::pgcluster`]) for the whole test process, in
//! `$TMPDIR/scepd-test-<pid>`; its watchdog stops it and removes the
//! directory when the process exits.
//!
//! The template is named after a hash of the migration files, so a changed
//! migration gets a new template, and is built under a PostgreSQL advisory
//! lock so that concurrent test processes sharing a server don't race.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sql_types::{Bool, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};

use crate::pgcluster::{quote_ident, ClusterOptions, PgCluster, PgClusterError};

/// Prepares a template database's schema.
pub type MigrateFn = fn(&mut PgConnection) -> Result<(), String>;

/// Key of the advisory lock that serialises template builds ("SCEPDTPL").
const TEMPLATE_LOCK: i64 = 0x5343_4550_4454_504c;

/// The migrations in the source tree; tests always run from it.
const MIGRATIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDb {
    /// Connection URL of this database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDb {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // FORCE (PostgreSQL 13+) ends connections a test's pool still holds.
        let Ok(mut conn) = PgConnection::establish(&self.admin_url) else {
            return;
        };
        let name = quote_ident(&self.name);
        if conn
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .is_err()
        {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"));
        }
    }
}

/// A fresh database with the project's migrations applied (read from the
/// `migrations/` directory of the source tree).
pub fn test_db() -> Result<TestDb, PgClusterError> {
    test_db_with(run_file_migrations)
}

/// A fresh database whose template was prepared by `migrate`, which must
/// apply exactly the project's migrations (the template is shared by name
/// with [`test_db`]).
pub fn test_db_with(migrate: MigrateFn) -> Result<TestDb, PgClusterError> {
    create_on(server()?, "", migrate)
}

/// Applies the migrations in the source tree's `migrations/` directory.
pub fn run_file_migrations(conn: &mut PgConnection) -> Result<(), String> {
    let source = FileBasedMigrations::from_path(MIGRATIONS_DIR).map_err(|e| e.to_string())?;
    conn.run_pending_migrations(source)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The server test databases are made on.
#[derive(Debug)]
struct Server {
    /// URL with the database part to be replaced.
    base_url: String,
    /// Held so the private cluster lives as long as the process.
    _cluster: Option<PgCluster>,
}

impl Server {
    fn url(&self, db: &str) -> String {
        with_database(&self.base_url, db)
    }
}

/// The process-wide server; a failure is kept too, so every test reports it
/// instead of each trying to start a cluster again.
fn server() -> Result<&'static Server, PgClusterError> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| start_server().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| PgClusterError::Unavailable(e.clone()))
}

fn start_server() -> Result<Server, PgClusterError> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        if !url.is_empty() {
            return Ok(Server {
                base_url: url,
                _cluster: None,
            });
        }
    }
    let dir = std::env::temp_dir().join(format!("scepd-test-{}", std::process::id()));
    // Left by an earlier process that had our pid: nothing can be using it.
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| PgClusterError::Io {
            context: format!("removing {}", dir.display()),
            source: e,
        })?;
    }
    let cluster = PgCluster::start(&dir, ClusterOptions::ephemeral())?;
    Ok(Server {
        base_url: cluster.database_url("postgres"),
        _cluster: Some(cluster),
    })
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

fn sql(e: impl std::fmt::Display) -> PgClusterError {
    PgClusterError::Sql(e.to_string())
}

fn database_exists(conn: &mut PgConnection, name: &str) -> Result<bool, PgClusterError> {
    let row: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(name)
            .get_result(conn)
            .map_err(sql)?;
    Ok(row.exists)
}

/// Copies the template for (`tag`, migrations) into a new database.
fn create_on(server: &Server, tag: &str, migrate: MigrateFn) -> Result<TestDb, PgClusterError> {
    let template = template_name(tag, &migrations_hash(Path::new(MIGRATIONS_DIR)));
    let admin_url = server.url("postgres");
    let mut admin = PgConnection::establish(&admin_url).map_err(sql)?;
    ensure_template(server, &mut admin, &template, migrate)?;
    let name = format!("scepd_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(&template)
        ))
        .map_err(sql)?;
    Ok(TestDb {
        url: server.url(&name),
        name,
        admin_url,
    })
}

/// Builds the template unless it exists: into a scratch database that is
/// renamed only once migrated, so a build that died halfway is never used.
fn ensure_template(
    server: &Server,
    admin: &mut PgConnection,
    template: &str,
    migrate: MigrateFn,
) -> Result<(), PgClusterError> {
    // (server, template) pairs known to exist: skips the lock round trip.
    static READY: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let ready = READY.get_or_init(|| Mutex::new(HashSet::new()));
    let mut ready = ready.lock().unwrap_or_else(|p| p.into_inner());
    let key = format!("{} {template}", server.base_url);
    if ready.contains(&key) {
        return Ok(());
    }
    admin
        .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .map_err(sql)?;
    let built = build_template(server, admin, template, migrate);
    let unlocked = admin
        .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .map_err(sql);
    built?;
    unlocked?;
    ready.insert(key);
    Ok(())
}

fn build_template(
    server: &Server,
    admin: &mut PgConnection,
    template: &str,
    migrate: MigrateFn,
) -> Result<(), PgClusterError> {
    if database_exists(admin, template)? {
        return Ok(());
    }
    let scratch = format!("{template}_build");
    let (t, s) = (quote_ident(template), quote_ident(&scratch));
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {s}"))
        .map_err(sql)?;
    admin
        .batch_execute(&format!("CREATE DATABASE {s}"))
        .map_err(sql)?;
    let migrated = PgConnection::establish(&server.url(&scratch))
        .map_err(sql)
        .and_then(|mut conn| migrate(&mut conn).map_err(PgClusterError::Migrate));
    if let Err(e) = migrated {
        // Best effort: the next build drops it anyway.
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {s} WITH (FORCE)"));
        return Err(e);
    }
    // No connections afterwards: a connected template cannot be copied.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {s} RENAME TO {t}; \
             ALTER DATABASE {t} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
        ))
        .map_err(sql)
}

fn template_name(tag: &str, hash: &str) -> String {
    if tag.is_empty() {
        format!("scepd_test_template_{hash}")
    } else {
        format!("scepd_test_template_{tag}_{hash}")
    }
}

/// First 16 hex digits of a SHA-256 over the migration files' relative
/// paths and contents; stable across machines and checkouts.
fn migrations_hash(dir: &Path) -> String {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files);
    files.sort();
    let mut input = Vec::new();
    for (rel, content) in files {
        input.extend_from_slice(rel.as_bytes());
        input.push(0);
        input.extend_from_slice(&content);
        input.push(0);
    }
    hex::encode(&openssl::sha::sha256(&input)[..8])
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else if let Ok(content) = fs::read(&path) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().into_owned(), content));
        }
    }
}

/// `url` with its database (the path) replaced by `db`, keeping any query.
fn with_database(url: &str, db: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (url, None),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let base = match main[authority_start..].find('/') {
        Some(i) => &main[..authority_start + i],
        None => main,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::BigInt;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn probe_migrate(conn: &mut PgConnection) -> Result<(), String> {
        conn.batch_execute("CREATE TABLE probe (v BIGINT); INSERT INTO probe VALUES (41)")
            .map_err(|e| e.to_string())
    }

    fn count(url: &str, sql: &str) -> Result<i64, diesel::result::Error> {
        let mut conn = PgConnection::establish(url).unwrap();
        diesel::sql_query(sql)
            .get_result::<Count>(&mut conn)
            .map(|c| c.n)
    }

    /// Two databases on `server` are separate copies of the template.
    fn check_isolation(server: &Server) {
        let a = create_on(server, "probe", probe_migrate).unwrap();
        let b = create_on(server, "probe", probe_migrate).unwrap();
        assert_ne!(a.name(), b.name());
        assert_ne!(a.url, b.url);
        // The template ran the callback: both copies have its row.
        assert_eq!(
            count(&a.url, "SELECT sum(v)::bigint AS n FROM probe").unwrap(),
            41
        );
        assert_eq!(
            count(&b.url, "SELECT sum(v)::bigint AS n FROM probe").unwrap(),
            41
        );
        let mut conn = PgConnection::establish(&a.url).unwrap();
        conn.batch_execute("CREATE TABLE only_in_a (x INT); INSERT INTO probe VALUES (1)")
            .unwrap();
        drop(conn);
        assert!(count(&b.url, "SELECT count(*) AS n FROM only_in_a").is_err());
        assert_eq!(
            count(&b.url, "SELECT sum(v)::bigint AS n FROM probe").unwrap(),
            41
        );
        // Dropping removes the database, even with a connection still open.
        let admin = server.url("postgres");
        let name = a.name().to_string();
        let lingering = PgConnection::establish(&a.url).unwrap();
        drop(a);
        drop(lingering);
        let mut conn = PgConnection::establish(&admin).unwrap();
        assert!(!database_exists(&mut conn, &name).unwrap());
        assert!(database_exists(&mut conn, b.name()).unwrap());
    }

    #[test]
    fn test_databases_are_isolated_copies_of_the_template() {
        check_isolation(server().unwrap());
    }

    #[test]
    fn external_server_mode_works_through_a_url() {
        // The same path DATABASE_URL takes, against a cluster of our own.
        let dir = std::env::temp_dir().join(format!(
            "scepd-testdb-ext-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let cluster = PgCluster::start(&dir, ClusterOptions::ephemeral()).unwrap();
        let server = Server {
            base_url: cluster.database_url("scepd") + "&sslmode=disable",
            _cluster: None,
        };
        check_isolation(&server);
        drop(cluster);
        assert!(!dir.exists());
    }

    #[test]
    fn parallel_first_use_builds_one_template() {
        let handles: Vec<_> = (0..6)
            .map(|_| std::thread::spawn(|| create_on(server().unwrap(), "parallel", probe_migrate)))
            .collect();
        let dbs: Vec<TestDb> = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect();
        let names: HashSet<&str> = dbs.iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), 6);
    }

    #[test]
    fn project_migrations_apply() {
        let db = test_db().unwrap();
        let n = count(
            &db.url,
            "SELECT count(*) AS n FROM __diesel_schema_migrations",
        )
        .unwrap();
        let dirs = fs::read_dir(MIGRATIONS_DIR)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().join("up.sql").exists())
            .count();
        assert_eq!(n as usize, dirs);
    }

    #[test]
    fn failing_migration_is_reported_and_not_kept() {
        fn broken(conn: &mut PgConnection) -> Result<(), String> {
            conn.batch_execute("CREATE TABLE half (x INT)")
                .map_err(|e| e.to_string())?;
            Err("boom".into())
        }
        let err = create_on(server().unwrap(), "broken", broken).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        let mut admin = PgConnection::establish(&server().unwrap().url("postgres")).unwrap();
        let hash = migrations_hash(Path::new(MIGRATIONS_DIR));
        let template = template_name("broken", &hash);
        assert!(!database_exists(&mut admin, &template).unwrap());
        assert!(!database_exists(&mut admin, &format!("{template}_build")).unwrap());
    }

    #[test]
    fn migrations_hash_follows_content() {
        let dir =
            std::env::temp_dir().join(format!("scepd-mhash-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(dir.join("2026-01-01-000000_a")).unwrap();
        fs::write(dir.join("2026-01-01-000000_a/up.sql"), "CREATE TABLE a ();").unwrap();
        let first = migrations_hash(&dir);
        assert_eq!(first.len(), 16);
        assert_eq!(first, migrations_hash(&dir));
        fs::write(dir.join("2026-01-01-000000_a/up.sql"), "CREATE TABLE b ();").unwrap();
        assert_ne!(first, migrations_hash(&dir));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/scepd?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(with_database("postgres://u@h/", "x"), "postgres://u@h/x");
    }
}

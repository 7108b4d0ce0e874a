//! Streaming replication between private clusters, as the failover test
//! runs it: a standby copied from a running primary with `pg_basebackup
//! -R`, the primary crashed with an immediate shutdown, the standby
//! promoted. Production deployments use their own PostgreSQL tooling
//! (docs/deploying.md); these are the same PostgreSQL steps, run with the
//! cluster's binaries as the account that owns it.

use std::path::Path;
use std::process::Command;

use diesel::pg::PgConnection;
use diesel::sql_types::Bool;
use diesel::{Connection, QueryableByName, RunQueryDsl};

use super::{host, run_logged, PgCluster, PgClusterError, SUPERUSER};

#[derive(QueryableByName)]
struct Promoted {
    #[diesel(sql_type = Bool)]
    promoted: bool,
}

impl PgCluster {
    /// Copies this running cluster into `<dir>/pgdata` as a streaming
    /// standby of it (`pg_basebackup -R`: `standby.signal` and
    /// `primary_conninfo`); [`PgCluster::start`] on `dir` then runs it.
    pub fn base_backup(&self, dir: &Path) -> Result<(), PgClusterError> {
        std::fs::create_dir_all(dir).map_err(|e| host::io_err(dir, "creating", e))?;
        // Only `pgdata` goes to PostgreSQL's account here: `start` hands
        // over the rest (the socket directory it makes) when it finds the
        // cluster directory still ours.
        let pgdata = dir.join("pgdata");
        host::create_private_dir(&pgdata)?;
        let who = host::run_as()?;
        if let Some(who) = &who {
            host::chown_tree(&pgdata, who)?;
            host::check_accessible(&pgdata, who)?;
        }
        let log = dir.join("postgres.log");
        let port = self.port.to_string();
        let mut cmd = Command::new(self.bindir.join("pg_basebackup"));
        // Through the primary's socket: its directory is also where the
        // standby's `primary_conninfo` will look.
        cmd.arg("-D")
            .arg(&pgdata)
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &port, "-U", SUPERUSER])
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"]);
        self.run_tool(cmd, who.as_ref(), &log, "pg_basebackup")
    }

    /// Promotes this standby to a primary and waits until it accepts
    /// writes (`pg_promote`, at most 30 s).
    pub fn promote(&self) -> Result<(), PgClusterError> {
        let sql = |e: diesel::result::Error| PgClusterError::Sql(e.to_string());
        let mut conn = PgConnection::establish(&self.database_url("postgres"))
            .map_err(|e| PgClusterError::Sql(e.to_string()))?;
        let done: Promoted = diesel::sql_query("SELECT pg_promote(true, 30) AS promoted")
            .get_result(&mut conn)
            .map_err(sql)?;
        if done.promoted {
            Ok(())
        } else {
            Err(PgClusterError::Sql(
                "pg_promote did not finish within 30 s".into(),
            ))
        }
    }

    /// `pg_ctl stop -m immediate`: every backend is killed at once and no
    /// shutdown checkpoint is written, which is how a crashed primary looks
    /// to its clients and its standby.
    pub fn stop_immediate(mut self) -> Result<(), PgClusterError> {
        let who = host::run_as()?;
        let mut cmd = Command::new(self.bindir.join("pg_ctl"));
        cmd.arg("stop")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", "immediate", "-w"]);
        let log = self.log_path();
        self.run_tool(cmd, who.as_ref(), &log, "pg_ctl stop -m immediate")?;
        // The watchdog exits with the postmaster.
        self.shutdown()
    }

    fn run_tool(
        &self,
        cmd: Command,
        who: Option<&host::RunAs>,
        log: &Path,
        what: &str,
    ) -> Result<(), PgClusterError> {
        let status = run_logged(cmd, &self.dir, who, log, &self.bindir)?;
        if status.success() {
            Ok(())
        } else {
            Err(PgClusterError::Start {
                reason: format!("{what} failed ({status})"),
                log: log.to_path_buf(),
                tail: host::log_tail(log),
            })
        }
    }
}

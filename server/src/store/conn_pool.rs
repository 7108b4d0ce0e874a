//! The connection manager behind [`super::PgPool`]: diesel's, plus the one
//! thing it misses. diesel marks a connection broken when a statement
//! leaves libpq unsure of the transaction state, but not when a statement
//! could not even be sent (preparing a statement on a connection whose
//! server went away while it sat idle: `UnableToSendCommand`). Such a
//! connection went back to the pool and failed every caller it was handed
//! to (the group-commit writer never recovered from a database restart).
//! Testing every connection before it is handed out costs a round trip per
//! checkout (5-8 % of the enrollment rate, measured); instead each
//! connection watches its own statements, and one that failed because the
//! connection is gone is dropped when it is returned.
//!
//! The same goes for a connection whose server turned out to be a standby
//! (a write refused with SQLSTATE 25006, or a statement cancelled by
//! recovery): during a failover the pool may hold one, and only a fresh
//! connection, through libpq's `target_session_attrs=read-write`, finds
//! the new primary.
//!
//! One lost connection means its siblings idling in the pool are most
//! likely lost too (the server crashed or failed over), and each would
//! cost a request its 503. So for a while after a loss the pool tests a
//! connection (`SELECT 1`) before handing it out, and drops the dead ones
//! unseen; the rest of the time checkout costs nothing.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error};
use diesel::Connection;

thread_local! {
    // Statements run on the thread that holds the connection, and the
    // connection goes back to the pool from that thread, so a flag per
    // thread carries the news from the failed statement to the return.
    // A thread that holds two connections at once may drop the healthy
    // one instead: that costs a reconnect, and the dead one fails again
    // and goes the next time.
    static CONNECTION_LOST: Cell<bool> = const { Cell::new(false) };
}

/// Whether a failed statement means the connection itself is gone.
pub(crate) fn connection_lost(e: &Error) -> bool {
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        // libpq: "no connection to the server", "server closed the
        // connection unexpectedly", "terminating connection due to
        // administrator command", "could not send data to server: ...".
        Error::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("connection")
                || m.contains("could not send")
                || m.contains("could not receive")
        }
        // COMMIT failed and so did the ROLLBACK after it: the connection
        // died during the commit, whose outcome is unknown. The caller
        // must not answer as if it had committed, nor as a bug: 503, and
        // the client's resend finds out (a stored request is answered from
        // the database).
        Error::RollbackErrorOnCommit {
            commit_error,
            rollback_error,
        } => connection_lost(commit_error) || connection_lost(rollback_error),
        // diesel gave up on the connection's transaction state after such
        // a failure; the pool drops the connection on its return.
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}

/// Whether the connection cannot serve writes any more: gone, or on a
/// server in recovery ("canceling statement due to conflict with
/// recovery", "... in a read-only transaction" on a hot standby).
pub(crate) fn server_unusable(e: &Error) -> bool {
    match e {
        Error::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => true,
        Error::DatabaseError(_, info) if info.message().contains("recovery") => true,
        other => connection_lost(other),
    }
}

/// How long after a lost connection the pool tests connections before
/// handing them out: long enough for a failover manager to promote a
/// standby while requests keep coming; a later loss starts it again.
const SUSPICION: Duration = Duration::from_secs(60);

/// When the pool last lost a connection, as milliseconds after `epoch`
/// (0: never), shared by the manager and every connection's watch.
#[derive(Debug)]
struct LastLoss {
    epoch: Instant,
    at_ms: AtomicU64,
}

impl LastLoss {
    fn note(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.at_ms.store(ms.max(1), Ordering::Relaxed);
    }

    fn recent(&self) -> bool {
        let at = self.at_ms.load(Ordering::Relaxed);
        at != 0 && self.epoch.elapsed() < Duration::from_millis(at) + SUSPICION
    }
}

/// Notes a statement that failed because its connection is gone.
struct LossWatch(Arc<LastLoss>);

impl Instrumentation for LossWatch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { error: Some(e), .. } = event {
            if server_unusable(e) {
                CONNECTION_LOST.with(|lost| lost.set(true));
                self.0.note();
            }
        }
    }
}

/// diesel's connection manager whose connections report their own loss.
#[derive(Debug)]
pub struct Manager {
    inner: ConnectionManager<PgConnection>,
    last_loss: Arc<LastLoss>,
}

impl Manager {
    pub(super) fn new(url: String) -> Self {
        Self {
            inner: ConnectionManager::new(url),
            last_loss: Arc::new(LastLoss {
                epoch: Instant::now(),
                at_ms: AtomicU64::new(0),
            }),
        }
    }
}

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        let mut conn = self.inner.connect()?;
        conn.set_instrumentation(LossWatch(Arc::clone(&self.last_loss)));
        Ok(conn)
    }

    /// Called at every checkout (the pool is built with
    /// `test_on_check_out`): free unless a connection was lost lately.
    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        if !self.last_loss.recent() {
            return Ok(());
        }
        // A failed test drops the connection here, not on a return: the
        // thread's flag must not make it drop the next healthy one.
        let flagged = CONNECTION_LOST.with(Cell::get);
        let res = self.inner.is_valid(conn);
        CONNECTION_LOST.with(|lost| lost.set(flagged));
        res
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        let lost = CONNECTION_LOST.with(|lost| lost.replace(false));
        lost || self.inner.has_broken(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_error(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_string()))
    }

    #[test]
    fn a_connection_to_a_standby_is_dropped_like_a_lost_one() {
        for (kind, message) in [
            (
                DatabaseErrorKind::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction",
            ),
            (
                DatabaseErrorKind::SerializationFailure,
                "canceling statement due to conflict with recovery",
            ),
            (
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            (
                DatabaseErrorKind::Unknown,
                "terminating connection due to immediate shutdown command",
            ),
        ] {
            assert!(server_unusable(&db_error(kind, message)), "{message}");
        }
        // The connection died during COMMIT: outcome unknown.
        let lost = || {
            Box::new(db_error(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection unexpectedly",
            ))
        };
        assert!(server_unusable(&Error::RollbackErrorOnCommit {
            commit_error: lost(),
            rollback_error: lost(),
        }));
        assert!(server_unusable(&Error::BrokenTransactionManager));
        // A refused row says nothing about the connection.
        assert!(!server_unusable(&db_error(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint"
        )));
    }
}

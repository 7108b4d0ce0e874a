//! Group commit for the one-statement enrollment (`issue_tx`): enrollments
//! that reach the database while another batch is being written go
//! together in the next statement (`batcher`), one WAL flush for all.
//!
//! The same statement carries the checks before signing
//! (`challenges::SigningCheck`) of the requests that arrive meanwhile, so
//! that an enrollment costs PostgreSQL one statement, not one for its check
//! and one for its write. A batch of checks alone runs the read-only check.
//!
//! Each enrollment's reply is sent only after its batch committed, so a
//! client never holds a certificate the database lost; a process killed
//! mid-batch loses an uncommitted transaction and callers whose clients
//! retry.

use super::batcher::{BatchStatement, Batcher, Ticket};
use super::challenges::{SigningCheck, SigningChecks};
use super::issue_tx::{self, IssueRow, Issued};
use super::StoreError;

/// What a caller hands the writer.
pub enum Job {
    /// Write this enrollment.
    Write(Box<IssueRow>),
    /// Ask whether an enrollment is worth signing for.
    Check(SigningCheck),
}

/// The answer to a [`Job`] of the same kind.
#[derive(Debug)]
pub enum Done {
    /// `None`: nothing was written (see `issue_tx::issue_batch`).
    Written(Option<Issued>),
    Checked(bool),
}

/// The statement of `issue_tx` with the checks that came along, batched.
pub struct EnrollStatement;

impl BatchStatement for EnrollStatement {
    type Row = Job;
    type Out = Done;
    const NAME: &'static str = "scepd-commit";

    fn run(conn: &mut diesel::PgConnection, rows: &[Job]) -> Result<Vec<Done>, StoreError> {
        let mut writes = Vec::new();
        let mut checks = Vec::new();
        for row in rows {
            match row {
                Job::Write(w) => writes.push(&**w),
                Job::Check(c) => checks.push(c),
            }
        }
        let (mut written, mut checked) = if writes.is_empty() {
            (Vec::new(), SigningChecks::run_refs(conn, &checks)?)
        } else {
            issue_tx::issue_and_check(conn, &writes, &checks)?
        };
        // Back into the callers' order.
        written.reverse();
        checked.reverse();
        rows.iter()
            .map(|row| {
                let missing = || StoreError::Unavailable("a batch answer is missing".into());
                Ok(match row {
                    Job::Write(_) => Done::Written(written.pop().ok_or_else(missing)?),
                    Job::Check(_) => Done::Checked(checked.pop().ok_or_else(missing)?),
                })
            })
            .collect()
    }

    fn counted(row: &Job) -> bool {
        matches!(row, Job::Write(_))
    }
}

/// The writers' queue (see `batcher`); cheap to clone.
#[derive(Clone)]
pub struct GroupCommit(Batcher<EnrollStatement>);

/// An enrollment handed to the writer; [`WriteTicket::wait`] gives the
/// outcome.
#[must_use = "the outcome says whether the enrollment was written"]
pub struct WriteTicket(Ticket<EnrollStatement>);

impl WriteTicket {
    pub fn wait(self) -> Result<Option<Issued>, StoreError> {
        match self.0.wait()? {
            Done::Written(w) => Ok(w),
            Done::Checked(_) => Err(StoreError::Unavailable(
                "a check's answer to a write".into(),
            )),
        }
    }
}

impl GroupCommit {
    /// `workers` threads on `pool`, each running up to `max_batch` jobs
    /// per statement.
    pub fn start(pool: super::PgPool, workers: usize, max_batch: usize) -> Self {
        Self(Batcher::start(pool, workers, max_batch))
    }

    /// Queue an enrollment and return without waiting for its batch.
    pub fn submit(&self, row: IssueRow) -> WriteTicket {
        WriteTicket(self.0.submit(Job::Write(Box::new(row))))
    }

    /// Write an enrollment with whatever else is waiting.
    pub fn run(&self, row: IssueRow) -> Result<Option<Issued>, StoreError> {
        self.submit(row).wait()
    }

    /// Whether an enrollment is worth signing for, asked with whatever
    /// else is waiting.
    pub fn check(&self, check: SigningCheck) -> Result<bool, StoreError> {
        match self.0.run(Job::Check(check))? {
            Done::Checked(ok) => Ok(ok),
            Done::Written(_) => Err(StoreError::Unavailable(
                "a write's answer to a check".into(),
            )),
        }
    }

    /// Statements that wrote enrollments, and the enrollments they carried.
    pub fn stats(&self) -> (u64, u64) {
        self.0.stats()
    }
}

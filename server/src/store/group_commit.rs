//! Group commit for the one-statement enrollment (`issue_tx`). Enrollments
//! that reach the database while another batch is being written wait for
//! the writer and go together in the next statement: one round trip, one
//! plan start and one WAL flush for all of them. Nothing waits on a timer:
//! a lone enrollment is written at once, a crowd is written in batches as
//! large as the crowd (up to `max_batch`).
//!
//! Each enrollment's reply is sent only after its batch committed, so a
//! client never holds a certificate the database lost. A batch that fails
//! as a whole (a retransmission racing us, a deadlock with a racing batch)
//! is retried one enrollment at a time, so one bad row cannot cost the
//! others their certificate; a database that is down fails them all with
//! `Unavailable` (HTTP 503, clients retry).
//!
//! The writers hold no state beyond the queue of callers blocked on them:
//! a process killed mid-batch loses an uncommitted transaction and callers
//! whose clients retry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

use super::issue_tx::{self, IssueRow, Issued};
use super::{PgPool, StoreError};

type Answer = Result<Option<Issued>, StoreError>;

struct Job {
    row: IssueRow,
    done: SyncSender<Answer>,
}

/// The writers' queue; cheap to clone. The writer threads stop when the
/// last clone is dropped.
#[derive(Clone)]
pub struct GroupCommit {
    queue: SyncSender<Job>,
    stats: Arc<Stats>,
}

/// Statements run and enrollments they carried, for `/metrics`.
#[derive(Default)]
struct Stats {
    batches: AtomicU64,
    enrollments: AtomicU64,
}

impl GroupCommit {
    /// Start `writers` writer threads on `pool`, each writing up to
    /// `max_batch` enrollments per statement.
    pub fn start(pool: PgPool, writers: usize, max_batch: usize) -> Self {
        let (queue, rx) = sync_channel::<Job>(4096);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::<Stats>::default();
        for k in 0..writers.max(1) {
            let (rx, pool, st) = (Arc::clone(&rx), pool.clone(), Arc::clone(&stats));
            let spawned = std::thread::Builder::new()
                .name(format!("scepd-commit-{k}"))
                .spawn(move || writer(&pool, &rx, &st, max_batch.max(1)));
            // With no writer at all the queue's receiver is gone and every
            // enrollment fails with `Unavailable` instead of hanging.
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a group-commit writer");
            }
        }
        Self { queue, stats }
    }

    /// Batches written so far by this process, and the enrollments in them.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.batches.load(Ordering::Relaxed),
            self.stats.enrollments.load(Ordering::Relaxed),
        )
    }

    /// Write one enrollment with whatever else is waiting; blocks until its
    /// batch committed. Same answers as [`issue_tx::issue_batch`] for a
    /// batch of one.
    pub fn issue(&self, row: IssueRow) -> Answer {
        self.submit(row).wait()
    }

    /// Queue one enrollment and return without waiting for its batch, so
    /// the caller can do work that does not depend on the outcome (sign
    /// the reply) while the batch is written. Nothing may leave the
    /// process before [`Ticket::wait`] says the row committed.
    pub fn submit(&self, row: IssueRow) -> Ticket {
        let (done, answer) = sync_channel(1);
        match self.queue.send(Job { row, done }) {
            Ok(()) => Ticket(Some(answer)),
            Err(_) => Ticket(None),
        }
    }
}

/// An enrollment handed to a writer; [`Ticket::wait`] gives its outcome.
#[must_use = "the outcome says whether the enrollment committed"]
pub struct Ticket(Option<Receiver<Answer>>);

impl Ticket {
    /// Blocks until the enrollment's batch committed or failed.
    pub fn wait(self) -> Answer {
        let stopped = || StoreError::Unavailable("group commit writer stopped".into());
        let answer = self.0.ok_or_else(stopped)?;
        answer.recv().map_err(|_| stopped())?
    }
}

fn writer(pool: &PgPool, rx: &Mutex<Receiver<Job>>, stats: &Stats, max_batch: usize) {
    loop {
        // Hold the queue only while taking a batch: another writer, if
        // there is one, takes the next one while this one is in the
        // database.
        let jobs = {
            let rx = rx.lock().unwrap_or_else(PoisonError::into_inner);
            let Ok(first) = rx.recv() else { return };
            let mut jobs = vec![first];
            while jobs.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            jobs
        };
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .enrollments
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        let (rows, dones): (Vec<IssueRow>, Vec<SyncSender<Answer>>) =
            jobs.into_iter().map(|j| (j.row, j.done)).unzip();
        for (done, answer) in dones.into_iter().zip(write(pool, &rows)) {
            // A caller that went away (its thread panicked) needs no answer.
            let _ = done.send(answer);
        }
    }
}

/// One answer per row, in order.
fn write(pool: &PgPool, rows: &[IssueRow]) -> Vec<Answer> {
    let unavailable = |msg: &str| {
        rows.iter()
            .map(|_| Err(StoreError::Unavailable(msg.to_string())))
            .collect()
    };
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => return unavailable(&e.to_string()),
    };
    match issue_tx::issue_batch(&mut conn, rows) {
        Ok(written) => written.into_iter().map(Ok).collect(),
        Err(StoreError::Unavailable(msg)) => unavailable(&msg),
        Err(e) if rows.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::debug!(error = %e, rows = rows.len(), "batch refused; writing one by one");
            rows.iter()
                .map(|row| {
                    issue_tx::issue_batch(&mut conn, std::slice::from_ref(row))
                        .map(|mut w| w.pop().flatten())
                })
                .collect()
        }
    }
}

//! One statement for the requests that need the same one at once. Rows
//! that reach the database while a batch is in it wait for the worker and
//! go together in the next statement: one round trip and one plan start
//! for all of them (one WAL flush too, for a statement that writes).
//! Nothing waits on a timer: a lone row goes at once, a crowd in batches as
//! large as the crowd (up to `max_batch`).
//!
//! A batch that fails as a whole (a retransmission racing it, a deadlock
//! with a racing batch) is run again one row at a time, so one bad row
//! costs the others nothing; a database that is down fails them all with
//! `Unavailable` (HTTP 503, clients retry). The workers hold no state
//! beyond the queue of callers blocked on them (and whether their last
//! batch found the database, so that the log says once when a worker
//! lost it and once when it writes again, as after a failover).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

use diesel::PgConnection;

use super::{PgPool, StoreError};

/// A statement run for a batch of rows.
pub trait BatchStatement: 'static {
    type Row: Send + 'static;
    type Out: Send + 'static;
    /// The worker threads' name.
    const NAME: &'static str;
    /// One answer per row, in order.
    fn run(conn: &mut PgConnection, rows: &[Self::Row]) -> Result<Vec<Self::Out>, StoreError>;
    /// Whether `/metrics` counts the row (and a batch holding one).
    fn counted(_row: &Self::Row) -> bool {
        true
    }
}

type Answer<S> = Result<<S as BatchStatement>::Out, StoreError>;

struct Job<S: BatchStatement> {
    row: S::Row,
    done: SyncSender<Answer<S>>,
}

/// The workers' queue; cheap to clone. The workers stop when the last
/// clone is dropped.
pub struct Batcher<S: BatchStatement> {
    queue: SyncSender<Job<S>>,
    stats: Arc<Stats>,
    statement: PhantomData<fn() -> S>,
}

impl<S: BatchStatement> Clone for Batcher<S> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            stats: Arc::clone(&self.stats),
            statement: PhantomData,
        }
    }
}

/// Statements run and rows they carried, for `/metrics`.
#[derive(Default)]
struct Stats {
    batches: AtomicU64,
    rows: AtomicU64,
}

impl<S: BatchStatement> Batcher<S> {
    /// Start `workers` threads on `pool`, each running up to `max_batch`
    /// rows per statement.
    pub fn start(pool: PgPool, workers: usize, max_batch: usize) -> Self {
        let (queue, rx) = sync_channel::<Job<S>>(4096);
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::<Stats>::default();
        for k in 0..workers.max(1) {
            let (rx, pool, st) = (Arc::clone(&rx), pool.clone(), Arc::clone(&stats));
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{k}", S::NAME))
                .spawn(move || worker::<S>(&pool, &rx, &st, max_batch.max(1)));
            // With no worker at all the queue's receiver is gone and every
            // row fails with `Unavailable` instead of hanging.
            if let Err(e) = spawned {
                tracing::error!(error = %e, worker = S::NAME, "cannot start a batch worker");
            }
        }
        Self {
            queue,
            stats,
            statement: PhantomData,
        }
    }

    /// Batches run so far by this process, and the rows in them.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.batches.load(Ordering::Relaxed),
            self.stats.rows.load(Ordering::Relaxed),
        )
    }

    /// Run `row` with whatever else is waiting; blocks until its batch ran.
    pub fn run(&self, row: S::Row) -> Answer<S> {
        self.submit(row).wait()
    }

    /// Queue one row and return without waiting for its batch, so the
    /// caller can do work that does not depend on the outcome meanwhile.
    pub fn submit(&self, row: S::Row) -> Ticket<S> {
        let (done, answer) = sync_channel(1);
        match self.queue.send(Job { row, done }) {
            Ok(()) => Ticket(Some(answer)),
            Err(_) => Ticket(None),
        }
    }
}

/// A row handed to a worker; [`Ticket::wait`] gives its outcome.
#[must_use = "the outcome says whether the row's statement ran"]
pub struct Ticket<S: BatchStatement>(Option<Receiver<Answer<S>>>);

impl<S: BatchStatement> Ticket<S> {
    /// Blocks until the row's batch ran or failed.
    pub fn wait(self) -> Answer<S> {
        let stopped = || StoreError::Unavailable(format!("{} worker stopped", S::NAME));
        let answer = self.0.ok_or_else(stopped)?;
        answer.recv().map_err(|_| stopped())?
    }
}

fn worker<S: BatchStatement>(
    pool: &PgPool,
    rx: &Mutex<Receiver<Job<S>>>,
    stats: &Stats,
    max_batch: usize,
) {
    let mut outage: Option<std::time::Instant> = None;
    loop {
        // Hold the queue only while taking a batch: another worker, if
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
        let counted = jobs.iter().filter(|j| S::counted(&j.row)).count() as u64;
        if counted > 0 {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.rows.fetch_add(counted, Ordering::Relaxed);
        }
        let (rows, dones): (Vec<S::Row>, Vec<SyncSender<Answer<S>>>) =
            jobs.into_iter().map(|j| (j.row, j.done)).unzip();
        let answers = run_batch::<S>(pool, &rows);
        note_outage::<S>(&mut outage, &answers);
        let unavailable = answers
            .iter()
            .find_map(|a| a.as_ref().err().filter(|e| e.is_unavailable()))
            .map(|e| match e {
                StoreError::Unavailable(m) => m.clone(),
                other => other.to_string(),
            });
        // The rows that queued while this batch waited for a database that
        // is gone would each wait as long again behind it: they are
        // answered unavailable now (503, their clients retry), so a client
        // waits one connection timeout at most, however many are queued.
        // Taken before this batch is answered: a caller that sends its next
        // row on its answer gets a batch of its own.
        let queued: Vec<Job<S>> = match &unavailable {
            Some(_) => {
                let rx = rx.lock().unwrap_or_else(PoisonError::into_inner);
                std::iter::from_fn(|| rx.try_recv().ok()).collect()
            }
            None => Vec::new(),
        };
        for (done, answer) in dones.into_iter().zip(answers) {
            // A caller that went away (its thread panicked) needs no answer.
            let _ = done.send(answer);
        }
        if let Some(msg) = unavailable {
            for job in queued {
                let _ = job.done.send(Err(StoreError::Unavailable(msg.clone())));
            }
        }
    }
}

/// Logs the start and the end of a database outage as this worker saw it:
/// a batch that failed as unavailable, then the first one that did not.
fn note_outage<S: BatchStatement>(outage: &mut Option<std::time::Instant>, answers: &[Answer<S>]) {
    let failed = answers
        .iter()
        .find_map(|a| a.as_ref().err().filter(|e| e.is_unavailable()));
    match (failed, outage.as_ref()) {
        (Some(e), None) => {
            tracing::warn!(worker = S::NAME, error = %e, "batch writer lost the database; answering 503 until it returns");
            *outage = Some(std::time::Instant::now());
        }
        (None, Some(since)) => {
            tracing::info!(
                worker = S::NAME,
                after_ms = since.elapsed().as_millis() as u64,
                "batch writer reconnected: writing again"
            );
            *outage = None;
        }
        _ => {}
    }
}

/// One answer per row, in order.
fn run_batch<S: BatchStatement>(pool: &PgPool, rows: &[S::Row]) -> Vec<Answer<S>> {
    let unavailable = |msg: &str| {
        rows.iter()
            .map(|_| Err(StoreError::Unavailable(msg.to_string())))
            .collect()
    };
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => return unavailable(&e.to_string()),
    };
    match S::run(&mut conn, rows) {
        Ok(out) if out.len() == rows.len() => out.into_iter().map(Ok).collect(),
        Ok(out) => unavailable(&format!(
            "{}: {} answers for {} rows",
            S::NAME,
            out.len(),
            rows.len()
        )),
        Err(StoreError::Unavailable(msg)) => unavailable(&msg),
        // The connection is gone (possibly during the commit, whose outcome
        // is then unknown): running the rows again on it cannot help, and
        // every caller answers 503 so its client resends.
        Err(e) if e.is_unavailable() => unavailable(&e.to_string()),
        Err(e) if rows.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::debug!(error = %e, rows = rows.len(), worker = S::NAME, "batch refused; one by one");
            rows.iter()
                .map(|row| {
                    S::run(&mut conn, std::slice::from_ref(row)).and_then(|mut out| {
                        out.pop()
                            .ok_or_else(|| StoreError::Unavailable("no answer".into()))
                    })
                })
                .collect()
        }
    }
}

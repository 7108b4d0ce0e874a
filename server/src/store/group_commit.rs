//! Group commit for the one-statement enrollment (`issue_tx`): enrollments
//! that reach the database while another batch is being written go
//! together in the next statement (`batcher`), one WAL flush for all.
//!
//! Each enrollment's reply is sent only after its batch committed, so a
//! client never holds a certificate the database lost; a process killed
//! mid-batch loses an uncommitted transaction and callers whose clients
//! retry.

use super::batcher::{BatchStatement, Batcher};
use super::issue_tx::{self, IssueRow, Issued};
use super::StoreError;

/// The statement of `issue_tx`, batched.
pub struct IssueStatement;

impl BatchStatement for IssueStatement {
    type Row = IssueRow;
    /// `None`: nothing was written for the row (see `issue_tx::issue_batch`).
    type Out = Option<Issued>;
    const NAME: &'static str = "scepd-commit";

    fn run(
        conn: &mut diesel::PgConnection,
        rows: &[IssueRow],
    ) -> Result<Vec<Self::Out>, StoreError> {
        issue_tx::issue_batch(conn, rows)
    }
}

/// The writers' queue (see `batcher`); `stats` counts statements and the
/// enrollments they carried.
pub type GroupCommit = Batcher<IssueStatement>;

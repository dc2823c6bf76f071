//! The resident registry's change file (異動): moves in and out, births,
//! deaths, removals, changes of address and name, corrections, each line
//! with its 異動事由 and 異動日. Read like the resident file (UTF-8 or
//! Shift_JIS, every line checked, errors by line and column) and written
//! staged under the job's number (`imports::staged`): a file with any bad
//! line leaves nothing, and a good one is seen all at once. A move-out or
//! death retires the person's tickets; doses already recorded on or after
//! its date go to the 要確認 queue once the file has succeeded.

mod parse;
mod write;

use super::imports::staged;
use super::imports::{FileEncoding, ImportError, Limits, Opener, Progress, Staging};
use crate::db::DbConn;
use crate::tenancy::Partition;
use serde::{Deserialize, Serialize};

/// What a finished change file did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub encoding: String,
    pub lines: u64,
    /// People registered (転入, 出生, 職権記載).
    pub added: u64,
    /// People who had moved out and came back.
    pub returned: u64,
    pub moved_out: u64,
    pub deceased: u64,
    /// Lines that changed attributes, and those that changed nothing.
    pub changed: u64,
    pub unchanged: u64,
    pub tickets_issued: u64,
    pub tickets_invalidated: u64,
    /// The people whose residence the file ended (for the queue sweep
    /// after it succeeded; not kept in the journal).
    #[serde(skip)]
    pub ended: Vec<String>,
}

/// Stages a whole change file as import `staging.seq` (see
/// `imports::import` for how it is written and seen).
#[allow(clippy::too_many_arguments)]
pub fn apply(
    conn: &mut DbConn,
    partition: &Partition,
    staging: &Staging<'_>,
    open: Opener<'_>,
    encoding: FileEncoding,
    limits: Limits,
    (issued_by, account_id): (&str, Option<String>),
    progress: &Progress,
) -> Result<Outcome, ImportError> {
    let encoding = super::imports::resolve_encoding(open, encoding)?;
    let stamp = super::imports::stamp_now();
    let mut w = write::Writer::new(stamp, staging.seq, issued_by, account_id);
    w.outcome.encoding = encoding.code().to_string();
    let format = parse::ChangeLines {
        scope: partition.sealing_scope(),
        today: crate::clock::today_in_japan(),
        numbers: staging.numbers,
    };
    staged::run(
        conn,
        partition,
        Some(staging.seq),
        staging.keep_alive,
        open,
        (encoding, limits),
        &format,
        &mut w,
        progress,
    )?;
    w.finish()
}

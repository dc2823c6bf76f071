//! Settling what resident imports wrote. An import writes in many short
//! transactions, its rows marked with its sequence number and invisible
//! until its job row says it succeeded (`import_jobs::seen_seq`). What an
//! import that did not succeed (rejected, failed, interrupted) wrote is
//! discarded here; what one that succeeded gave to residents already stored
//! is moved into their rows. Readers see the same before and after each
//! step, so it runs in short batches next to everything else: before the
//! municipality's next import (which needs a clean slate), and after a job
//! ends or is found dead.

use crate::db::DbConn;
use crate::db::models::import_jobs::ImportJobRow;
use crate::db::models::residents::NextRow;
use crate::db::models::staging;
use crate::db::models::tickets::TicketRow;
use crate::tenancy::{Partition, Scope, TenancyError};

/// Rows changed per transaction.
const BATCH: i64 = 2000;

/// What settling did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub discarded: usize,
    pub folded: usize,
}

/// One batch of a settling step: rows changed, 0 when done.
type Step<'a> = &'a dyn Fn(
    &Scope<'_>,
    &mut crate::db::TenantConn<'_>,
    i64,
    i64,
) -> Result<usize, crate::db::DbError>;

/// Settles every import of the municipality that has finished. Each batch
/// first calls `keep_alive` in its transaction (a job settling before it
/// writes shows its lease alive there).
pub fn settle<E>(
    conn: &mut DbConn,
    partition: &Partition,
    keep_alive: &dyn Fn(&mut DbConn) -> Result<(), E>,
) -> Result<Settled, E>
where
    E: From<TenancyError> + From<crate::db::DbError> + From<diesel::result::Error>,
{
    let (failed, mut succeeded) = partition.read(conn, |_scope, conn| {
        let published = ImportJobRow::published_seq(conn)?;
        let failed = ImportJobRow::unsucceeded_after(conn, published)?;
        let mut succeeded: Vec<i64> = NextRow::seqs(conn)?;
        succeeded.extend(TicketRow::retired_seqs(conn)?);
        succeeded.retain(|s| *s <= published);
        Ok::<_, E>((failed, succeeded))
    })?;
    succeeded.sort_unstable();
    succeeded.dedup();
    let mut settled = Settled::default();
    for seq in failed {
        settled.discarded += discard(conn, partition, keep_alive, seq)?;
    }
    for seq in succeeded {
        settled.folded += fold(conn, partition, keep_alive, seq)?;
    }
    Ok(settled)
}

/// Removes what import `seq` (which did not succeed) wrote; returns how
/// many rows changed.
pub fn discard<E>(
    conn: &mut DbConn,
    partition: &Partition,
    keep_alive: &dyn Fn(&mut DbConn) -> Result<(), E>,
    seq: i64,
) -> Result<usize, E>
where
    E: From<TenancyError> + From<crate::db::DbError> + From<diesel::result::Error>,
{
    let mut n = 0;
    for change in &staging::DISCARD {
        n += drain(
            conn,
            partition,
            keep_alive,
            &|s, c, q, l| change.run(s, c, q, l),
            seq,
        )?;
    }
    Ok(n)
}

/// Moves what import `seq` (which succeeded) gave into place; returns how
/// many rows changed.
pub fn fold<E>(
    conn: &mut DbConn,
    partition: &Partition,
    keep_alive: &dyn Fn(&mut DbConn) -> Result<(), E>,
    seq: i64,
) -> Result<usize, E>
where
    E: From<TenancyError> + From<crate::db::DbError> + From<diesel::result::Error>,
{
    let retire = |s: &Scope<'_>, c: &mut crate::db::TenantConn<'_>, q, l| {
        staging::RETIRE_REPLACED.run(s, c, q, l)
    };
    let steps: [Step<'_>; 2] = [&NextRow::fold, &retire];
    let mut n = 0;
    for step in steps {
        n += drain(conn, partition, keep_alive, step, seq)?;
    }
    Ok(n)
}

/// Runs one step in batches until it finds nothing more to do; a
/// transaction goes on while nobody else waits to write (see
/// `db::should_commit`).
fn drain<E>(
    conn: &mut DbConn,
    partition: &Partition,
    keep_alive: &dyn Fn(&mut DbConn) -> Result<(), E>,
    step: Step<'_>,
    seq: i64,
) -> Result<usize, E>
where
    E: From<TenancyError> + From<crate::db::DbError> + From<diesel::result::Error>,
{
    let mut total = 0;
    loop {
        let (n, finished) = partition.run(conn, |scope, conn| {
            keep_alive(conn)?;
            let began = std::time::Instant::now();
            let mut n = 0;
            loop {
                let k = step(scope, conn, seq, BATCH)?;
                n += k;
                if k == 0 {
                    return Ok::<_, E>((n, true));
                }
                if crate::db::should_commit(conn, began) {
                    return Ok((n, false));
                }
            }
        })?;
        total += n;
        if finished {
            return Ok(total);
        }
    }
}

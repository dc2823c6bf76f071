//! Transactions: SQLite's writers served in turn, the platform's writing
//! transaction, the reading snapshot, the transaction named to one
//! municipality, and the write-ahead log's checkpoints.

use super::*;

/// The turn of one writing transaction on SQLite (see [`write_turn`]); the
/// next writer's turn comes when it is dropped.
pub struct WriteTurn {
    /// Bound to the thread that took it.
    _thread: std::marker::PhantomData<*const ()>,
}

/// Writers in the order they asked: a ticket each, served in turn.
struct Tickets {
    next: u64,
    serving: u64,
    /// Tickets whose holders stopped waiting: skipped when reached.
    abandoned: std::collections::BTreeSet<u64>,
}

impl Tickets {
    /// Moves on to the next ticket whose holder still waits.
    fn advance(&mut self) {
        self.serving += 1;
        while self.abandoned.remove(&self.serving) {
            self.serving += 1;
        }
    }
}

struct WriteQueue {
    tickets: std::sync::Mutex<Tickets>,
    freed: std::sync::Condvar,
}

static SQLITE_WRITERS: WriteQueue = WriteQueue {
    tickets: std::sync::Mutex::new(Tickets {
        next: 0,
        serving: 0,
        abandoned: std::collections::BTreeSet::new(),
    }),
    freed: std::sync::Condvar::new(),
};

thread_local! {
    static HOLDS_TURN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// SQLite has one writer at a time, and its own wait for the write lock is
/// a poll with growing sleeps (1, 2, 5 … 100 ms): under load most waiters
/// sleep while the lock is free and a few wait for seconds. The writing
/// transactions of this process (`write_transaction`, `scoped_transaction`,
/// `Partition::run`) queue here instead, first come first served, and the
/// next one is woken as soon as the previous transaction has ended. Served
/// in order, a long job writing batch after batch (an import) lets every
/// writer that arrived during one batch go before its next: a tablet waits
/// for one batch at most, never for the job. One queue for the process,
/// which holds one SQLite database (tests hold several, which only get
/// ordered). A writer that has waited as long as SQLite's busy timeout goes
/// ahead without its turn and meets SQLite's lock as before, so no wait is
/// longer than it was. None on PostgreSQL, and when this thread already has
/// the turn.
pub fn write_turn(conn: &DbConn) -> Option<WriteTurn> {
    if !matches!(conn, DbConn::Sqlite(_)) || HOLDS_TURN.get() {
        return None;
    }
    let deadline = std::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
    let mut t = SQLITE_WRITERS
        .tickets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mine = t.next;
    t.next += 1;
    while t.serving != mine {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            t.abandoned.insert(mine);
            return None;
        }
        t = SQLITE_WRITERS
            .freed
            .wait_timeout(t, left)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
    HOLDS_TURN.set(true);
    Some(WriteTurn {
        _thread: std::marker::PhantomData,
    })
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        HOLDS_TURN.set(false);
        SQLITE_WRITERS
            .tickets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .advance();
        // Each waiter checks whether its ticket is served.
        SQLITE_WRITERS.freed.notify_all();
    }
}

/// For a bulk job that writes in batches: whether to commit now, after a
/// batch, rather than write the next one in the same transaction.
/// SQLite: always — a transaction kept open while no writer waited in the
/// write queue (fewer commits, each writing its changed pages to the log
/// once) made the writers that do not queue (single statements outside a
/// transaction, polling SQLite's lock) wait for seconds (`vrs bench
/// contention`: p99 1.5 s instead of 0.2 s). PostgreSQL: once the
/// transaction has worked for a fifth of a second — writers of other rows
/// never wait for it, the few stored rows a batch changes are held that
/// long at most, and a commit (with its flush to disk) per batch is saved.
pub fn should_commit(conn: &DbConn, began: std::time::Instant) -> bool {
    match conn {
        DbConn::Sqlite(_) => true,
        DbConn::Postgresql(_) => began.elapsed() >= std::time::Duration::from_millis(200),
    }
}

/// A writing transaction of the platform's own tables (no municipality),
/// taking its turn among the process's SQLite writers (see [`write_turn`]).
/// Every transaction that writes is begun here, by `scoped_transaction` or
/// by `Partition::run`: one begun by `Connection::transaction` reads before
/// it holds SQLite's write lock, and fails at once (the busy timeout does
/// not apply) whenever another connection wrote in between.
pub fn write_transaction<T, E>(
    conn: &mut DbConn,
    work: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    transaction_as(conn, None, true, work)
}

/// Runs `work` in one reading transaction that sees one snapshot of the
/// database from its first read to its end, whatever commits meanwhile,
/// and holds no lock that a writer waits for (PostgreSQL `REPEATABLE READ`;
/// an SQLite read transaction in WAL mode). `work` names the municipality
/// it reads with [`set_transaction_municipality`].
pub fn snapshot_read<T, E>(
    conn: &mut DbConn,
    work: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConn as Connection>::TransactionManager;
    if Manager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map_err(E::from)?
        .is_some()
    {
        // Inside a transaction already (a commit group's): it is the
        // snapshot.
        return work(conn);
    }
    match conn {
        DbConn::Postgresql(c) => AnsiTransactionManager::begin_transaction_sql(
            c,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?,
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN")?,
    }
    let result = work(conn);
    match Manager::rollback_transaction(conn) {
        Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => result,
        Err(e) => result.and(Err(e.into())),
    }
}

/// Runs `work` in one transaction named to one municipality, in one round
/// trip: on PostgreSQL the `BEGIN` carries the setting row-level security
/// reads; on SQLite a writing transaction takes its turn among the
/// process's writers (see [`write_turn`]) and begins `IMMEDIATE`, holding
/// the write lock from the start. One that read first and wrote later would
/// otherwise fail at once with "database is locked" (SQLITE_BUSY_SNAPSHOT,
/// which the busy timeout does not wait out) whenever another connection
/// wrote in between.
/// Commits on `Ok`, rolls back on `Err`, as `Connection::transaction` does.
pub fn scoped_transaction<T, E>(
    conn: &mut DbConn,
    code: crate::domain::MunicipalityCode,
    writes: bool,
    work: impl FnOnce(&mut TenantConn<'_>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    transaction_as(conn, Some(code), writes, |conn| {
        work(&mut TenantConn::new(conn, code))
    })
}

fn transaction_as<T, E>(
    conn: &mut DbConn,
    code: Option<crate::domain::MunicipalityCode>,
    writes: bool,
    work: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConn as Connection>::TransactionManager;
    let nested = Manager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map_err(E::from)?
        .is_some();
    if nested {
        // Inside a transaction already (a savepoint): the outer one holds
        // the write lock; the setting is renamed for this part of it, and
        // given back after it, so that what the outer transaction does next
        // (opening another municipality's partition) is not scoped to this
        // one. (A savepoint rolled back takes its setting back itself.)
        return conn.transaction(|conn| {
            let outer = match (&mut *conn, code) {
                (DbConn::Postgresql(c), Some(code)) => {
                    let outer = current_municipality(c)?;
                    set_municipality(c, code.as_str())?;
                    Some(outer)
                }
                _ => None,
            };
            let out = work(conn)?;
            if let (DbConn::Postgresql(c), Some(outer)) = (&mut *conn, outer) {
                set_municipality(c, &outer)?;
            }
            Ok(out)
        });
    }
    // Released after the commit or rollback, when the transaction has ended.
    let _turn = if writes { write_turn(conn) } else { None };
    match conn {
        // The code is six checked digits by construction, so it can stand
        // in the statement text (a bound parameter would cost a second
        // round trip: the simple protocol that batches takes none).
        DbConn::Postgresql(c) => {
            // A transaction that only reads sees one snapshot from its
            // first statement to its end, as an SQLite reader does (a long
            // export's pages agree with each other).
            let begin = if writes {
                "BEGIN"
            } else {
                "BEGIN ISOLATION LEVEL REPEATABLE READ"
            };
            match code {
                Some(code) => AnsiTransactionManager::begin_transaction_sql(
                    c,
                    // `SET LOCAL`, a utility statement, is not planned as a
                    // `SELECT set_config(...)` would be.
                    &format!("{begin}; SET LOCAL vrs.municipality = '{}'", code.as_str()),
                )?,
                None => AnsiTransactionManager::begin_transaction_sql(c, begin)?,
            }
        }
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(
            c,
            if writes { "BEGIN IMMEDIATE" } else { "BEGIN" },
        )?,
    }
    let result = match work(conn) {
        Ok(value) => Manager::commit_transaction(conn)
            .map(|()| value)
            .map_err(E::from),
        Err(e) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
            Err(rollback) => Err(rollback.into()),
        },
    };
    if _turn.is_some() {
        drop(_turn);
        checkpoint_now_and_then(conn);
    }
    result
}

/// How often a writer of this process copies SQLite's write-ahead log
/// back into the database file.
const CHECKPOINT_EVERY_MS: u64 = 250;

/// SQLite's own checkpoint runs inside the commit that crosses its size
/// limit, while that writer still holds the write lock and every other
/// writer waits: after a large transaction, for a second or more. Here
/// the automatic one is off (`wal_autocheckpoint = 0`), and a writer that
/// has just committed and given up its turn copies the log back now and
/// then (PASSIVE: it takes no write lock, so the next writer goes on).
pub(super) fn checkpoint_now_and_then(conn: &mut DbConn) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    let DbConn::Sqlite(c) = conn else { return };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let last = LAST_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < CHECKPOINT_EVERY_MS
        || LAST_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    if let Err(e) = c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
        tracing::debug!(error = %e, "write-ahead log checkpoint deferred");
    }
}

/// Names the municipality for the current transaction; on PostgreSQL the
/// row-level-security policies read it. Transaction-local, so a pooled
/// connection never carries it into the next request.
pub fn set_transaction_municipality(conn: &mut DbConn, code: &str) -> Result<(), DbError> {
    if let DbConn::Postgresql(c) = conn {
        set_municipality(c, code)?;
    }
    Ok(())
}

/// The municipality the current transaction is scoped to, empty if none.
fn current_municipality(c: &mut diesel::PgConnection) -> QueryResult<String> {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        code: String,
    }
    diesel::sql_query("SELECT coalesce(current_setting('vrs.municipality', true), '') AS code")
        .get_result::<Setting>(c)
        .map(|s| s.code)
}

pub(super) fn set_municipality(c: &mut diesel::PgConnection, code: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT set_config('vrs.municipality', $1, true)")
        .bind::<diesel::sql_types::Text, _>(code)
        .execute(c)
        .map(|_| ())
}

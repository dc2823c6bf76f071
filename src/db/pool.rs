//! Connections: opened by URL scheme and prepared for our use, pooled, and
//! the ones found lost to a restart or failover.

use super::*;

/// How long a SQLite connection waits for another's write lock.
pub(super) const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens connections by URL scheme and prepares each one for our use.
#[derive(Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    pub fn new(url: DatabaseUrl) -> Self {
        Manager { url }
    }

    pub fn establish(&self) -> Result<DbConn, DbError> {
        let connect_err = |source| DbError::Connect {
            url: self.url.to_string(),
            source,
        };
        match &self.url {
            DatabaseUrl::Postgres(u) => {
                let mut conn = diesel::PgConnection::establish(u).map_err(connect_err)?;
                conn.set_instrumentation(lost::watch);
                // A dose answered as recorded must survive the server's loss:
                // a cluster or role configured with `synchronous_commit=off`
                // is overruled for our sessions (`local` and the standby
                // levels already wait for the WAL flush, and are kept).
                conn.batch_execute(
                    "SELECT set_config('synchronous_commit', 'on', false) \
                     WHERE current_setting('synchronous_commit') = 'off'",
                )?;
                Ok(DbConn::Postgresql(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(connect_err)?;
                // Foreign keys are off unless asked for on every connection;
                // WAL lets readers proceed while a writer commits, and
                // `synchronous = FULL` syncs the log at every commit, so what
                // was answered as recorded survives a power cut (NORMAL
                // would sync only at checkpoints).
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY; \
                     PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;",
                    SQLITE_BUSY_TIMEOUT.as_millis()
                ))?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

/// One round trip: whether the database answers (the health check).
pub fn ping(conn: &mut DbConn) -> Result<(), DbError> {
    conn.batch_execute("SELECT 1").map_err(DbError::Query)
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = DbError;

    fn connect(&self) -> Result<DbConn, DbError> {
        self.establish()
    }

    /// A round trip per checkout would be a tenth of a dose recording's, so
    /// connections are tested only for a while after one was found lost
    /// (the database restarted or failed over: its siblings are likely gone
    /// too). A lost connection is dropped when it is checked in.
    fn is_valid(&self, conn: &mut DbConn) -> Result<(), DbError> {
        if lost::recently()
            && let Err(e) = ping(conn)
        {
            // The pool drops it; no other connection is to blame.
            lost::reported_here();
            return Err(e);
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        use diesel::r2d2::R2D2Connection;
        lost::reported_here() || conn.is_broken()
    }
}

/// Connections found lost: the server closed them or could not be reached.
/// Diesel reports this on the query that failed; the instrumentation every
/// connection carries notes it, for the whole pool (when) and for the
/// thread that was using it (which connection: a checked-out connection is
/// used on one thread until it is checked in, on that same thread).
mod lost {
    use diesel::connection::InstrumentationEvent;
    use diesel::result::{DatabaseErrorKind, Error};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    /// How long after a loss every checkout is tested.
    const TEST_FOR_MS: u64 = 30_000;

    static LAST_LOSS_MS: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        static HERE: Cell<bool> = const { Cell::new(false) };
    }

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// The instrumentation each connection is given.
    pub fn watch(event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery {
            error:
                Some(Error::DatabaseError(
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                    _,
                )),
            ..
        } = event
        {
            LAST_LOSS_MS.store(now_ms(), Ordering::Relaxed);
            HERE.with(|h| h.set(true));
        }
    }

    pub fn recently() -> bool {
        let last = LAST_LOSS_MS.load(Ordering::Relaxed);
        last != 0 && now_ms().saturating_sub(last) < TEST_FOR_MS
    }

    /// Whether a connection used on this thread was lost since the last
    /// check-in here; the answer clears it.
    pub fn reported_here() -> bool {
        HERE.with(|h| h.replace(false))
    }
}

/// Opens the pool, creating the SQLite file's folder on first run. The first
/// connection is made eagerly so a wrong URL fails at start with its name.
pub fn connect(url: &DatabaseUrl, max_size: u32) -> Result<Pool, DbError> {
    if let DatabaseUrl::Sqlite(path) = url
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        crate::private_dir::create(dir)
            .map_err(|e| DbError::Folder(dir.display().to_string(), e))?;
    }
    let manager = Manager::new(url.clone());
    // Fail with the real cause (not r2d2's timeout) when the URL is wrong.
    manager.establish()?;
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        .connection_timeout(std::time::Duration::from_secs(15))
        .build(manager)?;
    Ok(pool)
}

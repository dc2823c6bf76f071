//! Storage: one connection type over SQLite and PostgreSQL, a pool, the
//! embedded migrations, and the row models. Backend-specific SQL lives here
//! and only here, as a `match` on `DbConn`.

pub mod commit_group;
pub mod models;
pub mod schema;
pub mod stat_counts;
mod tenant_conn;
mod url;

pub(crate) use tenant_conn::insert_owned;
pub use tenant_conn::{Owned, TENANT_TABLE_NAMES, TenantConn, TenantTable};

pub use url::{DatabaseUrl, DatabaseUrlError, redact};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open database {url}: {source}")]
    Connect {
        url: String,
        source: diesel::ConnectionError,
    },
    #[error("cannot create the database folder {0}: {1}")]
    Folder(String, std::io::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    /// The schema could not be brought to this version's (the migration
    /// tool's own error is kept).
    #[error("the database schema could not be migrated: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A key or secret held in the database does not open with the master
    /// key given.
    #[error("a key does not open: {0}")]
    Key(String),
    /// Stored rows are not as this version wrote them.
    #[error("stored data is not as expected: {0}")]
    Stored(String),
    #[error("cannot encode as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The database takes no more work for now; the same request a moment
    /// later succeeds.
    #[error("{0}")]
    Busy(String),
    /// A thread that does part of the work could not start or stopped.
    #[error("a worker thread failed: {0}")]
    Worker(String),
    /// A row about to be written to a tenant table belongs to another
    /// municipality than the transaction's: refused before the write.
    #[error("a row for {0} belongs to another municipality than the transaction's")]
    OutsidePartition(&'static str),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl DbError {
    /// Whether another transaction wrote the same key first (PostgreSQL
    /// reports it at insert; a retry of the whole transaction sees the row).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// Whether the write broke the unique index `name` (PostgreSQL names
    /// it; SQLite names the index's columns, `table.column, …`, given as
    /// `columns`).
    pub fn violates_unique(&self, name: &str, columns: &str) -> bool {
        match self {
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                info,
            )) => {
                info.constraint_name() == Some(name)
                    || (info.constraint_name().is_none() && info.message().contains(columns))
            }
            _ => false,
        }
    }

    /// Whether the database was too busy to answer in time: SQLite waited
    /// out its busy timeout for another connection's lock (or was refused
    /// a lock it could not wait for), or no pooled connection came free in
    /// the pool's checkout time. Nothing is wrong with the request: the same
    /// request a moment later succeeds.
    pub fn is_busy(&self) -> bool {
        match self {
            DbError::Pool(_) | DbError::Busy(_) => true,
            DbError::Query(e) => is_busy(e),
            _ => false,
        }
    }
}

/// An error that may have come from the database, so that wherever it
/// reaches a person a busy database can be told apart from a fault.
pub trait DbCause {
    /// The database error behind this one, if there is one.
    fn db_cause(&self) -> Option<&DbError>;

    /// Whether the database was too busy to answer in time (see
    /// [`DbError::is_busy`]).
    fn is_busy(&self) -> bool {
        self.db_cause().is_some_and(DbError::is_busy)
    }
}

impl DbCause for DbError {
    fn db_cause(&self) -> Option<&DbError> {
        Some(self)
    }
}

/// SQLite reports a lock it could not get as an error of no particular
/// kind, known only by its message: SQLITE_BUSY ("database is locked") and
/// SQLITE_LOCKED ("database table is locked", "database schema is locked").
fn is_busy(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::Unknown, info) => {
            let m = info.message();
            m.contains("database is locked")
                || m.contains("database table is locked")
                || m.contains("database schema is locked")
                || m.contains("SQLITE_BUSY")
        }
        _ => false,
    }
}

/// Every error type that wraps `DbError` takes diesel's errors through it, so
/// `?` works on queries inside a transaction of that type.
macro_rules! from_diesel_via_db_error {
    ($t:ty) => {
        impl From<diesel::result::Error> for $t {
            fn from(e: diesel::result::Error) -> Self {
                <$t>::from($crate::db::DbError::from(e))
            }
        }
    };
}
pub(crate) use from_diesel_via_db_error;

/// Inserts a slice of `Insertable` rows as multi-row INSERT statements of
/// `$chunk` rows, so every full chunk reuses one cached prepared statement.
/// (COPY is faster on PostgreSQL but refused on tables under row-level
/// security; the tables written in bulk go in as column arrays there
/// instead: see `unnest_insert`.) Evaluates to
/// `Result<(), diesel::result::Error>`.
macro_rules! bulk_insert {
    ($conn:expr, $table:expr, $rows:expr, $chunk:expr) => {{
        use diesel::RunQueryDsl as _;
        let rows = $rows;
        match $conn {
            $crate::db::DbConn::Postgresql(c) => rows.chunks($chunk).try_for_each(|chunk| {
                diesel::insert_into($table)
                    .values(chunk)
                    .execute(c)
                    .map(|_| ())
            }),
            $crate::db::DbConn::Sqlite(c) => rows.chunks($chunk).try_for_each(|chunk| {
                diesel::insert_into($table)
                    .values(chunk)
                    .execute(c)
                    .map(|_| ())
            }),
        }
    }};
}
pub(crate) use bulk_insert;

/// PostgreSQL's fast path for a batch of rows: one
/// `INSERT … SELECT FROM unnest($1::t[], …)` in which each column travels as
/// one binary array, nothing is parsed per row, and the row-level security
/// policy still checks every row (COPY, faster still, is refused under RLS).
/// Each column is written `name: SqlType as "pg_type" = expression of |row|`.
/// Evaluates to `QueryResult<usize>`.
macro_rules! unnest_insert {
    ($conn:expr, $table:literal, $rows:expr, |$r:ident| {
        $($col:ident : $ty:ty as $cast:literal = $val:expr),+ $(,)?
    }) => {{
        use diesel::RunQueryDsl as _;
        let rows = $rows;
        let columns: &[&str] = &[$(stringify!($col)),+];
        let arrays: Vec<String> = [$($cast),+]
            .iter()
            .enumerate()
            .map(|(i, t)| format!("${}::{}[]", i + 1, t))
            .collect();
        diesel::sql_query(format!(
            "INSERT INTO {} ({}) SELECT * FROM unnest({})",
            $table,
            columns.join(", "),
            arrays.join(", ")
        ))
        $(.bind::<diesel::sql_types::Array<$ty>, _>(
            rows.iter().map(|$r| $val).collect::<Vec<_>>()
        ))+
        .execute($conn)
    }};
}
pub(crate) use unnest_insert;

/// How long a SQLite connection waits for another's write lock.
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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

/// Applies every pending migration of the connection's backend.
pub fn migrate(conn: &mut DbConn) -> Result<usize, DbError> {
    if let DbConn::Postgresql(c) = conn
        && !may_create(c)?
    {
        // The server's role, which owns nothing: it cannot migrate, only
        // find that nothing is left to do.
        return match pending_postgres(c)? {
            0 => Ok(0),
            n => Err(DbError::Migration(
                format!(
                    "{n} migrations are pending and this role may not apply them: run \
                     `vrs migrate` (or the server) with --migration-database-url, the tables' owner"
                )
                .into(),
            )),
        };
    }
    let applied = match conn {
        DbConn::Postgresql(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    applied.map_err(DbError::Migration)
}

/// Runs the recount a migration asked for (a row in `counts_owed`: a
/// migration that adds a kept count starts it from nothing, and its own
/// query of a tenant table would see no rows under PostgreSQL's row-level
/// security), then clears the request. One cut short leaves the request
/// standing and runs again at the next start. Returns whether it ran.
pub fn settle_counts(conn: &mut DbConn) -> Result<bool, DbError> {
    use schema::counts_owed;
    let owed: i64 = counts_owed::table.count().get_result(conn)?;
    if owed == 0 {
        return Ok(false);
    }
    stat_counts::recount(conn)?;
    diesel::delete(counts_owed::table).execute(conn)?;
    Ok(true)
}

/// Whether the role may create tables in the current schema.
fn may_create(c: &mut diesel::PgConnection) -> Result<bool, DbError> {
    #[derive(QueryableByName)]
    struct Flag {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        may: bool,
    }
    let f: Flag = diesel::sql_query(
        "SELECT coalesce(has_schema_privilege(current_schema(), 'CREATE'), false) AS may",
    )
    .get_result(c)?;
    Ok(f.may)
}

/// How many of our migrations the database has not applied, read without
/// creating anything.
fn pending_postgres(c: &mut diesel::PgConnection) -> Result<usize, DbError> {
    use diesel::migration::MigrationSource;
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let applied: std::collections::HashSet<String> =
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Applied>(c)?
            .into_iter()
            .map(|a| a.version)
            .collect();
    let ours = MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
        .map_err(DbError::Migration)?;
    Ok(ours
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .count())
}

/// Reverts every applied migration (used by `vrs migrate --revert-all` and the
/// down/up test).
pub fn revert_all(conn: &mut DbConn) -> Result<usize, DbError> {
    let reverted = match conn {
        DbConn::Postgresql(c) => c
            .revert_all_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    reverted.map_err(DbError::Migration)
}

/// Whether a commit this connection makes is on disk when it returns, and
/// the settings that say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    pub durable: bool,
    /// The settings as the database reports them (`synchronous=FULL, WAL`).
    pub settings: String,
}

/// The durability of this connection's commits: on SQLite its
/// `synchronous` level in WAL mode; on PostgreSQL the server's `fsync` and
/// `full_page_writes` and the session's `synchronous_commit`.
pub fn durability(conn: &mut DbConn) -> Result<Durability, DbError> {
    #[derive(QueryableByName)]
    struct Settings {
        #[diesel(sql_type = diesel::sql_types::Text)]
        a: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        b: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        c: String,
    }
    match conn {
        DbConn::Postgresql(c) => {
            let s: Settings = diesel::sql_query(
                "SELECT current_setting('fsync') AS a, current_setting('synchronous_commit') AS b, \
                 current_setting('full_page_writes') AS c",
            )
            .get_result(c)?;
            Ok(Durability {
                durable: s.a == "on" && s.b != "off" && s.c == "on",
                settings: format!(
                    "fsync={}, synchronous_commit={}, full_page_writes={}",
                    s.a, s.b, s.c
                ),
            })
        }
        DbConn::Sqlite(c) => {
            let s: Settings = diesel::sql_query(
                "SELECT CAST((SELECT synchronous FROM pragma_synchronous) AS TEXT) AS a, \
                 (SELECT journal_mode FROM pragma_journal_mode) AS b, '' AS c",
            )
            .get_result(c)?;
            let level = match s.a.as_str() {
                "0" => "OFF",
                "1" => "NORMAL",
                "2" => "FULL",
                "3" => "EXTRA",
                other => other,
            };
            Ok(Durability {
                durable: matches!(level, "FULL" | "EXTRA"),
                settings: format!("synchronous={level}, journal_mode={}", s.b.to_uppercase()),
            })
        }
    }
}

/// Whether the PostgreSQL role we run as would skip row-level security
/// (superuser or BYPASSRLS). SQLite has no such notion.
pub fn role_bypasses_rls(conn: &mut DbConn) -> Result<bool, DbError> {
    #[derive(QueryableByName)]
    struct Flag {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        bypass: bool,
    }
    match conn {
        DbConn::Postgresql(c) => {
            let f: Flag = diesel::sql_query(
                "SELECT (rolsuper OR rolbypassrls) AS bypass FROM pg_roles WHERE rolname = current_user",
            )
            .get_result(c)?;
            Ok(f.bypass)
        }
        DbConn::Sqlite(_) => Ok(false),
    }
}

/// Whether the PostgreSQL role we run as owns (or may act as the owner of)
/// a table of our schema: it could then lift row-level security, change a
/// policy or drop the log's triggers. SQLite has no such notion.
pub fn role_owns_tables(conn: &mut DbConn) -> Result<bool, DbError> {
    #[derive(QueryableByName)]
    struct Flag {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        owns: bool,
    }
    match conn {
        DbConn::Postgresql(c) => {
            let f: Flag = diesel::sql_query(
                "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
                 AND pg_has_role(current_user, c.relowner, 'USAGE')) AS owns",
            )
            .get_result(c)?;
            Ok(f.owns)
        }
        DbConn::Sqlite(_) => Ok(false),
    }
}

/// The PostgreSQL role a connection runs as.
pub fn current_role(conn: &mut DbConn) -> Result<Option<String>, DbError> {
    #[derive(QueryableByName)]
    struct Role {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    match conn {
        DbConn::Postgresql(c) => {
            let r: Role = diesel::sql_query("SELECT current_user::text AS name").get_result(c)?;
            Ok(Some(r.name))
        }
        DbConn::Sqlite(_) => Ok(None),
    }
}

/// Gives the server's role what it needs of the schema and no more, as the
/// tables' owner (`owner`), after the migrations: rows to read and write,
/// but the operation log and the provision records to read and add to only
/// (the retention purge goes through the owner's function), the migration
/// journal to read only, no ownership, no DDL. Run at every start, so a
/// table a new migration adds is granted too.
pub fn grant_server_role(owner: &mut DbConn, role: &str) -> Result<(), DbError> {
    #[derive(QueryableByName)]
    struct Names {
        #[diesel(sql_type = diesel::sql_types::Text)]
        role: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        schema: String,
    }
    let DbConn::Postgresql(c) = owner else {
        return Ok(());
    };
    let n: Names = diesel::sql_query(
        "SELECT quote_ident($1) AS role, quote_ident(current_schema()) AS schema",
    )
    .bind::<diesel::sql_types::Text, _>(role)
    .get_result(c)?;
    let (r, s) = (n.role, n.schema);
    c.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA {s} TO {r};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r};
         REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, provision_records FROM {r};
         REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON __diesel_schema_migrations FROM {r};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r};
         GRANT EXECUTE ON FUNCTION purge_provision_records(text, timestamp),
             refresh_resident_statistics() TO {r};"
    ))?;
    Ok(())
}

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

/// The sequence number and MAC of a chain's last operation-log line, with
/// the chain held until the current transaction ends, so two appends to one
/// chain never both build on the same line (on PostgreSQL the second would
/// fail on the primary key, and its whole operation with it). PostgreSQL:
/// `audit_chain_head()` takes a transaction-scoped advisory lock and reads
/// after it is granted, in one round trip. SQLite: the transaction already
/// holds the database's write lock.
pub fn chain_head(conn: &mut DbConn, chain: &str) -> Result<Option<(i64, String)>, DbError> {
    #[derive(QueryableByName)]
    struct Head {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        seq: Option<i64>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        mac: Option<String>,
    }
    match conn {
        DbConn::Postgresql(c) => {
            let head: Head = diesel::sql_query("SELECT seq, mac FROM audit_chain_head($1)")
                .bind::<diesel::sql_types::Text, _>(chain)
                .get_result(c)?;
            Ok(head.seq.zip(head.mac))
        }
        DbConn::Sqlite(_) => {
            Ok(models::audit_log::AuditRow::last_of_chain(conn, chain)?.map(|l| (l.seq, l.mac)))
        }
    }
}

/// The sum of a count table's `n` column as a BIGINT on both backends
/// (PostgreSQL's sum of a BIGINT is a NUMERIC), for counts kept in shards
/// and grouped by their key.
pub fn sum_n() -> diesel::expression::SqlLiteral<diesel::sql_types::BigInt> {
    diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(SUM(n) AS BIGINT)")
}

/// Ids named per query when rows are read by a list of ids: few round
/// trips for a city's thousands, well under both backends' limits on
/// bound parameters.
pub const IDS_PER_QUERY: usize = 5000;

/// Refreshes PostgreSQL's planner statistics after a bulk load, so the next
/// query over a table that just grew by a million rows is planned for that
/// size rather than waiting for autovacuum. Not on SQLite: its ANALYZE of a
/// large table holds the write lock for seconds, every other writer of
/// every municipality waiting, and the queries of tenant rows are planned
/// by their indexes without statistics.
pub fn refresh_statistics(conn: &mut DbConn) -> Result<(), DbError> {
    use diesel::connection::SimpleConnection;
    match conn {
        DbConn::Postgresql(c) => c.batch_execute("ANALYZE residents, tickets, doses")?,
        // The bulk load's write-ahead log copied back and emptied, as the
        // server's own checkpoints would have done while it loaded.
        DbConn::Sqlite(c) => c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")?,
    }
    Ok(())
}

/// PostgreSQL's statistics of the tables an import looks residents up in,
/// taken again: their sizes and how their rows spread over municipalities,
/// which is what decides the plan of a lookup within one (the other
/// columns' statistics, of sealed values, would cost most of the time).
pub fn refresh_resident_statistics(conn: &mut DbConn) -> Result<(), DbError> {
    use diesel::connection::SimpleConnection;
    // Through a function of the tables' owner: the server's own role owns
    // nothing, and ANALYZE needs the owner.
    if let DbConn::Postgresql(c) = conn {
        c.batch_execute("SELECT refresh_resident_statistics()")?;
    }
    Ok(())
}

/// Rows of one municipality in `table` whose `column` has a given value,
/// picked by their `key` (unique within the municipality). The names come
/// from our code, never from input.
#[derive(Debug, Clone, Copy)]
pub struct RowsWhere<'a> {
    pub table: &'a str,
    pub key: &'a str,
    pub column: &'a str,
}

/// One batch of a bulk change of one municipality's rows: `change` ("DELETE
/// FROM t" or "UPDATE t SET …") applied to at most `limit` of the `rows`
/// whose column is `value`. Returns how many rows changed (0: none left).
pub fn change_batch(
    conn: &mut DbConn,
    change: &str,
    rows: RowsWhere<'_>,
    code: &str,
    value: i64,
    limit: i64,
) -> Result<usize, DbError> {
    let RowsWhere { table, key, column } = rows;
    use diesel::sql_types::{BigInt, Text};
    let sql = format!(
        "{change} WHERE municipality_code = $1 AND {key} IN \
         (SELECT {key} FROM {table} WHERE municipality_code = $1 AND {column} = $2 LIMIT $3)"
    );
    Ok(diesel::sql_query(numbered(conn, sql))
        .bind::<Text, _>(code)
        .bind::<BigInt, _>(value)
        .bind::<BigInt, _>(limit)
        .execute(conn)?)
}

/// A statement written with PostgreSQL's placeholders `$1`, `$2` … in the
/// form the connection's backend takes (SQLite numbers them `?1`, `?2` …).
/// For statements whose text holds no other `$`.
pub fn numbered(conn: &DbConn, sql: String) -> String {
    match conn {
        DbConn::Postgresql(_) => sql,
        DbConn::Sqlite(_) => sql.replace('$', "?"),
    }
}

/// For the rest of the current transaction, plans that read a table whole
/// are the last resort on PostgreSQL: a bulk job's lookups go through their
/// indexes whatever the planner's statistics say (a table that grew by a
/// million rows since they were taken looks small). SQLite plans by its
/// indexes already.
pub fn prefer_indexes(conn: &mut DbConn) -> Result<(), DbError> {
    if let DbConn::Postgresql(c) = conn {
        c.batch_execute("SET LOCAL enable_seqscan = off")?;
    }
    Ok(())
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
        // the write lock; the setting is renamed for this part of it.
        return conn.transaction(|conn| {
            if let (DbConn::Postgresql(c), Some(code)) = (&mut *conn, code) {
                set_municipality(c, code.as_str())?;
            }
            work(conn)
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
fn checkpoint_now_and_then(conn: &mut DbConn) {
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

fn set_municipality(c: &mut diesel::PgConnection, code: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT set_config('vrs.municipality', $1, true)")
        .bind::<diesel::sql_types::Text, _>(code)
        .execute(c)
        .map(|_| ())
}

/// Table and column names as the live database has them (for the schema
/// equivalence test and `vrs migrate --check`).
pub fn live_columns(conn: &mut DbConn) -> Result<Vec<(String, String)>, DbError> {
    #[derive(QueryableByName)]
    struct Col {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
    }
    let cols: Vec<Col> = match conn {
        DbConn::Postgresql(c) => diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_\\_diesel%' \
             ORDER BY 1, 2",
        )
        .load(c)?,
        DbConn::Sqlite(c) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE '\\_\\_diesel%' ESCAPE '\\' \
             AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1, 2",
        )
        .load(c)?,
    };
    Ok(cols
        .into_iter()
        .map(|c| (c.table_name, c.column_name))
        .collect())
}

/// Deletes one municipality's rows from a tenant table. `table` comes from
/// `schema::TENANT_TABLES`, never from input.
pub fn delete_tenant_rows(conn: &mut DbConn, table: &str, code: &str) -> Result<usize, DbError> {
    debug_assert!(schema::TENANT_TABLES.contains(&table));
    let n = match conn {
        DbConn::Postgresql(c) => {
            diesel::sql_query(format!("DELETE FROM {table} WHERE municipality_code = $1"))
                .bind::<diesel::sql_types::Text, _>(code)
                .execute(c)?
        }
        DbConn::Sqlite(c) => {
            diesel::sql_query(format!("DELETE FROM {table} WHERE municipality_code = ?"))
                .bind::<diesel::sql_types::Text, _>(code)
                .execute(c)?
        }
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error};

    fn database_says(kind: DatabaseErrorKind, message: &str) -> DbError {
        DbError::Query(Error::DatabaseError(kind, Box::new(message.to_string())))
    }

    /// A writer that asks while a long job writes batch after batch gets
    /// its turn after the job's current batch, not after the job.
    #[test]
    fn writers_take_turns_in_the_order_they_asked() {
        use std::sync::{Arc, Mutex};
        let dir = std::env::temp_dir().join(format!("vrs-turns-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = DatabaseUrl::Sqlite(dir.join("t.db"));
        let events: Arc<Mutex<Vec<&'static str>>> = Arc::default();
        let job = {
            let (url, events) = (url.clone(), events.clone());
            std::thread::spawn(move || {
                let conn = Manager::new(url).establish().unwrap();
                for _ in 0..20 {
                    let turn = write_turn(&conn);
                    assert!(turn.is_some());
                    events.lock().unwrap().push("batch");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            })
        };
        // Once the job is under way, a tablet asks for a turn.
        while events.lock().unwrap().len() < 3 {
            std::thread::yield_now();
        }
        let conn = Manager::new(url).establish().unwrap();
        let asked = events.lock().unwrap().len();
        let turn = write_turn(&conn);
        assert!(turn.is_some());
        let got = events.lock().unwrap().len();
        events.lock().unwrap().push("tablet");
        drop(turn);
        job.join().unwrap();
        // At most the batch running when it asked went before it.
        assert!(
            got <= asked + 1,
            "asked after {asked} batches, served after {got}"
        );
        assert_eq!(events.lock().unwrap().len(), 21);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_lock_not_granted_in_time_is_busy() {
        for message in [
            "database is locked",
            "database table is locked",
            "database schema is locked",
            "SQLITE_BUSY: database is locked",
        ] {
            assert!(
                database_says(DatabaseErrorKind::Unknown, message).is_busy(),
                "{message}"
            );
        }
    }

    #[test]
    fn other_errors_are_not_busy() {
        for e in [
            database_says(
                DatabaseErrorKind::UniqueViolation,
                "UNIQUE constraint failed",
            ),
            database_says(DatabaseErrorKind::Unknown, "no such table: residents"),
            database_says(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
            ),
            DbError::Query(Error::NotFound),
            DbError::Query(Error::RollbackTransaction),
            DbError::Migration("database is locked".into()),
        ] {
            assert!(!e.is_busy(), "{e}");
        }
    }

    fn sqlite_file() -> (tempfile::TempDir, DatabaseUrl) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = DatabaseUrl::Sqlite(dir.path().join("busy.db"));
        (dir, url)
    }

    #[test]
    fn sqlite_refusing_a_held_write_lock_is_busy() {
        let (_dir, url) = sqlite_file();
        let mut holder = Manager::new(url.clone()).establish().expect("connect");
        holder
            .batch_execute("CREATE TABLE t (x INTEGER); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
            .expect("hold the write lock");
        // A connection that does not wait at all, so the test need not.
        let DatabaseUrl::Sqlite(path) = &url else {
            unreachable!("a SQLite URL")
        };
        let mut other =
            diesel::SqliteConnection::establish(&path.to_string_lossy()).expect("connect");
        let refused = other
            .batch_execute("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE")
            .expect_err("the lock is held");
        assert!(DbError::from(refused).is_busy());
    }

    #[test]
    fn a_pool_with_no_connection_free_in_time_is_busy() {
        let (_dir, url) = sqlite_file();
        let pool = r2d2::Pool::builder()
            .max_size(1)
            .connection_timeout(std::time::Duration::from_millis(50))
            .build(Manager::new(url))
            .expect("pool");
        let _held = pool.get().expect("the one connection");
        let timed_out = pool.get().err().expect("none is free");
        assert!(DbError::from(timed_out).is_busy());
    }
}

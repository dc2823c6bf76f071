//! Storage: one connection type over SQLite and PostgreSQL (this file: the
//! type, bulk inserts and the few statements every backend words its own
//! way), its errors, the pool, the embedded migrations, the transactions,
//! the scoped connection of one municipality, and the row models.
//! Backend-specific SQL lives here and only here, as a `match` on `DbConn`.

pub mod commit_group;
mod error;
mod migrations;
pub mod models;
mod pool;
pub mod schema;
pub mod stat_counts;
mod tenant_conn;
mod transactions;
mod url;

pub use error::*;
pub use migrations::*;
pub use pool::*;
pub use transactions::*;

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

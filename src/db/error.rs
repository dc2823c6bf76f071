//! What storage fails with, and how callers tell a busy or lost database from
//! a fault.

use super::*;

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

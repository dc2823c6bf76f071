//! The connection of a transaction scoped to one municipality: the only
//! way to a tenant table. `db::scoped_transaction` (called by
//! `tenancy::Partition::run` and `read`) makes one, after the transaction
//! began and (on PostgreSQL) its municipality setting was made; nothing
//! else can, so a function that takes one runs inside such a transaction.
//!
//! The row functions of `db::models` that read or write a tenant table
//! take it, read the rows of its municipality through [`TenantConn::rows`]
//! and check what they insert with [`TenantConn::check`], in release builds
//! too: the municipality filter and the insert check are written here
//! once. Row-level security on PostgreSQL stands behind both.

use super::schema;
use super::{DbConn, DbError};
use crate::domain::MunicipalityCode;
use diesel::prelude::*;

pub struct TenantConn<'a> {
    conn: &'a mut DbConn,
    code: MunicipalityCode,
}

impl<'a> TenantConn<'a> {
    /// Only inside a transaction scoped to `code` (see the module comment).
    pub(super) fn new(conn: &'a mut DbConn, code: MunicipalityCode) -> Self {
        TenantConn { conn, code }
    }

    /// The municipality the transaction is scoped to.
    pub fn code(&self) -> MunicipalityCode {
        self.code
    }

    /// The connection itself, for the row functions' queries.
    pub(crate) fn db(&mut self) -> &mut DbConn {
        self.conn
    }

    /// Runs `work` in a savepoint of the transaction, still scoped to the
    /// municipality: undone alone when it fails.
    pub fn savepoint<T, E>(
        &mut self,
        work: impl FnOnce(&mut TenantConn<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        let code = self.code;
        self.conn
            .transaction(|conn| work(&mut TenantConn::new(conn, code)))
    }

    /// A tenant table's rows of this municipality: the filter every query
    /// of a tenant table starts from.
    pub(crate) fn rows<T>(&self, table: T) -> diesel::dsl::Filter<T, OfCode<T>>
    where
        T: TenantTable + diesel::query_dsl::methods::FilterDsl<OfCode<T>>,
    {
        table.filter(T::Code::default().eq(self.code.to_string()))
    }

    /// Refuses rows of another municipality before they are written.
    pub(crate) fn check<'r, R: Owned + 'r>(
        &self,
        rows: impl IntoIterator<Item = &'r R>,
    ) -> Result<(), DbError> {
        match rows
            .into_iter()
            .find(|r| r.municipality_code() != self.code.as_str())
        {
            Some(_) => Err(DbError::OutsidePartition(R::TABLE)),
            None => Ok(()),
        }
    }
}

/// Inserts one row into a tenant table through the scoped connection,
/// refused unwritten if it is another municipality's: the single-row insert
/// of every tenant table. (A macro: diesel's insert bounds, written out
/// generically, do not resolve.)
macro_rules! insert_owned {
    ($conn:expr, $table:expr, $row:expr) => {{
        let (conn, row) = ($conn, $row);
        conn.check([row])?;
        diesel::insert_into($table).values(row).execute(conn.db())?;
        Ok(())
    }};
}
pub(crate) use insert_owned;

/// The rest of the transaction's work (its log line, the platform's tables)
/// goes through the same connection.
impl std::ops::Deref for TenantConn<'_> {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        self.conn
    }
}

impl std::ops::DerefMut for TenantConn<'_> {
    fn deref_mut(&mut self) -> &mut DbConn {
        self.conn
    }
}

/// A table holding one municipality's rows, keyed by its code.
pub trait TenantTable: diesel::Table + Sized {
    type Code: diesel::Column<Table = Self, SqlType = diesel::sql_types::Text>
        + Default
        + diesel::ExpressionMethods;
}

/// The predicate [`TenantConn::rows`] adds.
pub type OfCode<T> = diesel::dsl::Eq<<T as TenantTable>::Code, String>;

macro_rules! tenant_tables {
    ($($t:ident),* $(,)?) => {
        $(impl TenantTable for schema::$t::table {
            type Code = schema::$t::municipality_code;
        })*
    };
}

/// The tables of a municipality's personal data (`schema::TENANT_TABLES`)…
pub const TENANT_TABLE_NAMES: &[&str] = &[
    "residents",
    "tickets",
    "resident_events",
    "resident_next",
    "doses",
    "dose_events",
    "import_jobs",
    "provision_records",
    "notices",
    "certificates",
    "held_inquiries",
    "reconcile_items",
    "dose_batch_lines",
    "notice_items",
];

tenant_tables!(
    residents,
    tickets,
    resident_events,
    resident_next,
    doses,
    dose_events,
    import_jobs,
    provision_records,
    notices,
    certificates,
    held_inquiries,
    reconcile_items,
    dose_batch_lines,
    notice_items,
);

// …and the counts its own pages read, kept per municipality by triggers.
tenant_tables!(resident_counts, dose_progress, queue_days);

/// A row written to a tenant table: whose it is.
pub trait Owned {
    const TABLE: &'static str;
    fn municipality_code(&self) -> &str;
}

macro_rules! owned_rows {
    ($($row:path => $table:ident),* $(,)?) => {
        $(impl Owned for $row {
            const TABLE: &'static str = stringify!($table);
            fn municipality_code(&self) -> &str {
                &self.municipality_code
            }
        })*
    };
}

owned_rows!(
    super::models::residents::ResidentRow => residents,
    super::models::residents::NextRow => resident_next,
    super::models::tickets::TicketRow => tickets,
    super::models::resident_events::ResidentEventRow => resident_events,
    super::models::doses::DoseRow => doses,
    super::models::dose_events::DoseEventRow => dose_events,
    super::models::import_jobs::ImportJobRow => import_jobs,
    super::models::provisions::ProvisionRow => provision_records,
    super::models::provisions::NoticeRow => notices,
    super::models::certificates::CertificateRow => certificates,
    super::models::held_inquiries::HeldRow => held_inquiries,
    super::models::reconcile_items::ItemRow => reconcile_items,
    super::models::dose_batch_lines::BatchLineRow => dose_batch_lines,
    super::models::notice_items::NoticeItemRow => notice_items,
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table the schema lists as a municipality's is one here.
    #[test]
    fn the_tenant_tables_are_the_schemas() {
        let mut ours = TENANT_TABLE_NAMES.to_vec();
        let mut schemas = schema::TENANT_TABLES.to_vec();
        ours.sort_unstable();
        schemas.sort_unstable();
        assert_eq!(ours, schemas);
    }
}

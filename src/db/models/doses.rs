use crate::db::TenantConn;
use crate::db::models::audit_log::PendingRow;
use crate::db::schema::{audit_pending, doses, resident_next, residents};
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

/// A dose that counts.
pub const VALID: &str = "valid";
/// A dose that failed a data-quality check and waits in the 要確認 queue.
pub const PENDING: &str = "pending";
/// Taken out of the record by staff: replaced by a correction, deleted, or
/// rejected from the queue. The row stays; its events say why.
pub const CORRECTED: &str = "corrected";
pub const DELETED: &str = "deleted";
pub const REJECTED: &str = "rejected";
pub const RECORDED: &str = "recorded";
/// Copied from the municipality the person moved from (flow 4).
pub const TRANSFERRED: &str = "transferred";

/// One dose in the partition of the municipality that issued the ticket.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = doses, treat_none_as_default_value = false)]
pub struct DoseRow {
    pub municipality_code: String,
    pub id: String,
    pub resident_id: String,
    pub dose_number: i32,
    pub administered_on: NaiveDate,
    pub recorded_at: NaiveDateTime,
    pub ticket_number: Option<String>,
    pub site_municipality_code: Option<String>,
    pub site_name: Option<String>,
    pub product_code: String,
    pub lot_number: Option<String>,
    pub origin: String,
    pub origin_municipality_code: Option<String>,
    pub recorded_by: Option<String>,
    pub status: String,
    pub site_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// The data-quality rules the dose failed when recorded (comma list).
    pub quality_flags: Option<String>,
    /// The dose this one corrects.
    pub supersedes: Option<String>,
    /// Five-year age band at administration (its lower bound), for counts.
    pub age_band: Option<i32>,
    pub sex: Option<String>,
}

impl DoseRow {
    pub fn insert_many(conn: &mut TenantConn<'_>, rows: &[DoseRow]) -> Result<(), DbError> {
        conn.check(rows)?;
        match conn.db() {
            DbConn::Postgresql(c) => {
                use diesel::sql_types::{Date, Integer, Nullable, Text, Timestamp};
                crate::db::unnest_insert!(c, "doses", rows, |r| {
                    municipality_code: Text as "text" = r.municipality_code.as_str(),
                    id: Text as "text" = r.id.as_str(),
                    resident_id: Text as "text" = r.resident_id.as_str(),
                    dose_number: Integer as "int" = r.dose_number,
                    administered_on: Date as "date" = r.administered_on,
                    recorded_at: Timestamp as "timestamp" = r.recorded_at,
                    ticket_number: Nullable<Text> as "text" = r.ticket_number.as_deref(),
                    site_municipality_code: Nullable<Text> as "text" =
                        r.site_municipality_code.as_deref(),
                    site_name: Nullable<Text> as "text" = r.site_name.as_deref(),
                    product_code: Text as "text" = r.product_code.as_str(),
                    lot_number: Nullable<Text> as "text" = r.lot_number.as_deref(),
                    origin: Text as "text" = r.origin.as_str(),
                    origin_municipality_code: Nullable<Text> as "text" =
                        r.origin_municipality_code.as_deref(),
                    recorded_by: Nullable<Text> as "text" = r.recorded_by.as_deref(),
                    status: Text as "text" = r.status.as_str(),
                    site_id: Nullable<Text> as "text" = r.site_id.as_deref(),
                    idempotency_key: Nullable<Text> as "text" = r.idempotency_key.as_deref(),
                    quality_flags: Nullable<Text> as "text" = r.quality_flags.as_deref(),
                    supersedes: Nullable<Text> as "text" = r.supersedes.as_deref(),
                    age_band: Nullable<Integer> as "int" = r.age_band,
                    sex: Nullable<Text> as "text" = r.sex.as_deref(),
                })?;
            }
            DbConn::Sqlite(_) => crate::db::bulk_insert!(conn.db(), doses::table, rows, 500)?,
        }
        Ok(())
    }

    /// Inserts the dose with its operation-log line (written to be chained
    /// later): in one statement on PostgreSQL, where each statement is a
    /// round trip; one after the other on SQLite.
    pub fn insert_logged(
        &self,
        _scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        line: &PendingRow,
    ) -> Result<(), DbError> {
        conn.check([self])?;
        if let DbConn::Postgresql(c) = conn.db() {
            WithInsert {
                first: diesel::insert_into(audit_pending::table).values(line),
                then: diesel::insert_into(doses::table).values(self),
            }
            .execute(c)?;
            return Ok(());
        }
        self.insert(conn)?;
        line.insert(conn)
    }

    pub fn insert(&self, conn: &mut TenantConn<'_>) -> Result<(), DbError> {
        crate::db::insert_owned!(conn, doses::table, self)
    }

    pub fn find(conn: &mut TenantConn<'_>, id: &str) -> Result<Option<DoseRow>, DbError> {
        Ok(conn
            .rows(doses::table)
            .filter(doses::id.eq(id))
            .select(DoseRow::as_select())
            .first(conn.db())
            .optional()?)
    }

    /// The dose an earlier request with this idempotency key recorded.
    pub fn find_by_idempotency_key(
        conn: &mut TenantConn<'_>,
        key: &str,
    ) -> Result<Option<DoseRow>, DbError> {
        Ok(conn
            .rows(doses::table)
            .filter(doses::idempotency_key.eq(key))
            .select(DoseRow::as_select())
            .first(conn.db())
            .optional()?)
    }

    /// Moves a dose from one status to another; false if it was no longer
    /// in `from` (someone else acted first).
    pub fn set_status(
        conn: &mut TenantConn<'_>,
        id: &str,
        from: &[&str],
        to: &str,
    ) -> Result<bool, DbError> {
        let n = diesel::update(
            conn.rows(doses::table)
                .filter(doses::id.eq(id))
                .filter(doses::status.eq_any(from)),
        )
        .set(doses::status.eq(to))
        .execute(conn.db())?;
        Ok(n == 1)
    }

    /// Sends a dose that counted to the 要確認 queue with the rules it now
    /// fails added; false if it no longer counted.
    pub fn requeue(conn: &mut TenantConn<'_>, id: &str, flags: &str) -> Result<bool, DbError> {
        let n = diesel::update(
            conn.rows(doses::table)
                .filter(doses::id.eq(id))
                .filter(doses::status.eq(VALID)),
        )
        .set((doses::status.eq(PENDING), doses::quality_flags.eq(flags)))
        .execute(conn.db())?;
        Ok(n == 1)
    }

    /// The doses waiting in the queue now, read from the status index
    /// alone: SQLite, which keeps no statistics here, would otherwise walk a
    /// city's millions of doses by the primary key (see `of_resident`).
    pub fn pending_ids(conn: &mut TenantConn<'_>) -> Result<Vec<String>, DbError> {
        Ok(conn
            .rows(doses::table)
            .filter(doses::status.eq(PENDING))
            .select(doses::id)
            .load(conn.db())?)
    }

    /// These doses, by primary key (any order).
    pub fn by_ids(conn: &mut TenantConn<'_>, ids: &[String]) -> Result<Vec<DoseRow>, DbError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(crate::db::IDS_PER_QUERY) {
            out.extend(
                conn.rows(doses::table)
                    .filter(doses::id.eq_any(chunk))
                    .select(DoseRow::as_select())
                    .load(conn.db())?,
            );
        }
        Ok(out)
    }

    /// Valid doses (transferred copies included) per month and dose
    /// number, from the counts the triggers keep (migration 000016).
    pub fn per_month_and_number(
        conn: &mut TenantConn<'_>,
    ) -> Result<Vec<(String, i32, i64)>, DbError> {
        use crate::db::schema::dose_progress;
        // Summed over the count's shards (migration 000017).
        let n = crate::db::sum_n();
        Ok(conn
            .rows(dose_progress::table)
            .group_by((dose_progress::month, dose_progress::dose_number))
            .having(n.clone().ne(0))
            .select((dose_progress::month, dose_progress::dose_number, n))
            .order((dose_progress::month, dose_progress::dose_number))
            .load(conn.db())?)
    }

    /// When each dose recorded after `since` was recorded.
    pub fn recorded_since(
        conn: &mut TenantConn<'_>,
        since: NaiveDateTime,
    ) -> Result<Vec<NaiveDateTime>, DbError> {
        Ok(conn
            .rows(doses::table)
            .filter(doses::recorded_at.ge(since))
            .select(doses::recorded_at)
            .load(conn.db())?)
    }

    /// How many doses the municipality holds, per status.
    pub fn count_per_status(conn: &mut TenantConn<'_>) -> Result<Vec<(String, i64)>, DbError> {
        Ok(conn
            .rows(doses::table)
            .group_by(doses::status)
            .select((doses::status, diesel::dsl::count_star()))
            .order(doses::status)
            .load(conn.db())?)
    }

    /// A resident's doses, in order.
    pub fn of_resident(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_id: &str,
    ) -> Result<Vec<DoseRow>, DbError> {
        let code = scope.code();
        let order = (doses::administered_on, doses::dose_number);
        if let DbConn::Sqlite(_) = conn.db() {
            // SQLite: the ids from the resident index, then the rows by
            // primary key. Asked for in one go, SQLite (doses is a WITHOUT
            // ROWID table) walks every dose of the municipality by the
            // primary key's first column until ANALYZE has seen doses, so
            // each recording took longer as the municipality's doses grew.
            let by_resident = diesel::alias!(doses as by_resident);
            let ids = by_resident
                .filter(
                    by_resident
                        .field(doses::municipality_code)
                        .eq(code.as_str()),
                )
                .filter(by_resident.field(doses::resident_id).eq(resident_id))
                .select(by_resident.field(doses::id));
            return Ok(conn
                .rows(doses::table)
                .filter(doses::id.eq_any(ids))
                .order(order)
                .select(DoseRow::as_select())
                .load(conn.db())?);
        }
        Ok(conn
            .rows(doses::table)
            .filter(doses::resident_id.eq(resident_id))
            .order(order)
            .select(DoseRow::as_select())
            .load(conn.db())?)
    }

    /// The doses of many residents (a bulk transfer inquiry's batch), in
    /// no particular order, by the resident index on both backends (for
    /// SQLite, see `of_resident`).
    pub fn of_residents(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_ids: &[String],
    ) -> Result<Vec<DoseRow>, DbError> {
        if resident_ids.is_empty() {
            return Ok(Vec::new());
        }
        let code = scope.code();
        let mut out = Vec::new();
        if let DbConn::Postgresql(_) = conn.db() {
            // PostgreSQL plans the plain query on the resident index; the
            // SQLite form below made it scan the municipality's doses.
            for chunk in resident_ids.chunks(1000) {
                out.extend(
                    conn.rows(doses::table)
                        .filter(doses::resident_id.eq_any(chunk))
                        .select(DoseRow::as_select())
                        .load(conn.db())?,
                );
            }
            return Ok(out);
        }
        let by_resident = diesel::alias!(doses as by_resident);
        for chunk in resident_ids.chunks(1000) {
            let ids = by_resident
                .filter(
                    by_resident
                        .field(doses::municipality_code)
                        .eq(code.as_str()),
                )
                .filter(by_resident.field(doses::resident_id).eq_any(chunk))
                .select(by_resident.field(doses::id));
            out.extend(
                conn.rows(doses::table)
                    .filter(doses::id.eq_any(ids))
                    .select(DoseRow::as_select())
                    .load(conn.db())?,
            );
        }
        Ok(out)
    }

    /// The resident's doses (as `of_resident`) and the municipality's dose
    /// recorded under `key`, whoever it is for: what a recording checks.
    /// One query on PostgreSQL; two on SQLite, where a query costs no round
    /// trip and each is planned on its own index.
    pub fn of_resident_or_key(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_id: &str,
        key: &str,
    ) -> Result<Vec<DoseRow>, DbError> {
        if let DbConn::Sqlite(_) = conn.db() {
            let mut rows = DoseRow::of_resident(scope, conn, resident_id)?;
            if let Some(keyed) = DoseRow::find_by_idempotency_key(conn, key)?
                && keyed.resident_id != resident_id
            {
                rows.push(keyed);
            }
            return Ok(rows);
        }
        Ok(conn
            .rows(doses::table)
            .filter(
                doses::resident_id
                    .eq(resident_id)
                    .or(doses::idempotency_key.eq(key)),
            )
            .order((doses::administered_on, doses::dose_number))
            .select(DoseRow::as_select())
            .load(conn.db())?)
    }

    /// A page of valid doses in id order, each with its resident's sealed
    /// 宛名番号: exactly the columns the ledger export prints. Two queries,
    /// not a join: the doses in key order, then the page's residents once
    /// each (a person has several doses).
    pub fn export_page(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ExportRow>, DbError> {
        type Cols = (
            String,
            String,
            i32,
            NaiveDate,
            NaiveDateTime,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
        );
        let page: Vec<Cols> = conn
            .rows(doses::table)
            .filter(doses::id.gt(after_id))
            .filter(doses::status.eq(VALID))
            .order(doses::id)
            .limit(limit)
            .select((
                doses::id,
                doses::resident_id,
                doses::dose_number,
                doses::administered_on,
                doses::recorded_at,
                doses::ticket_number,
                doses::site_municipality_code,
                doses::site_name,
                doses::product_code,
                doses::lot_number,
            ))
            .load(conn.db())?;
        let mut ids: Vec<&str> = page.iter().map(|d| d.1.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut sealed: std::collections::HashMap<String, Vec<u8>> = conn
            .rows(residents::table)
            .filter(residents::id.eq_any(&ids))
            // An erased resident's doses leave the ledger with them.
            .filter(residents::erased_at.is_null())
            .select((residents::id, residents::addressee_number_sealed))
            .load::<(String, Vec<u8>)>(conn.db())?
            .into_iter()
            .collect();
        // A 宛名番号 an import that succeeded gave, not yet moved into the row.
        sealed.extend(
            conn.rows(resident_next::table)
                .filter(resident_next::resident_id.eq_any(&ids))
                .filter(
                    resident_next::seq.le(crate::db::models::import_jobs::seen_seq::<
                        diesel::sql_types::BigInt,
                    >(scope)),
                )
                .select((
                    resident_next::resident_id,
                    resident_next::addressee_number_sealed,
                ))
                .load::<(String, Vec<u8>)>(conn.db())?,
        );
        Ok(page
            .into_iter()
            .filter_map(|d| {
                let addressee_sealed = sealed.get(&d.1)?.clone();
                Some(ExportRow {
                    id: d.0,
                    resident_id: d.1,
                    dose_number: d.2,
                    administered_on: d.3,
                    recorded_at: d.4,
                    ticket_number: d.5,
                    site_municipality_code: d.6,
                    site_name: d.7,
                    product_code: d.8,
                    lot_number: d.9,
                    addressee_sealed,
                })
            })
            .collect())
    }
}

/// One line of the ledger export as read, before the 宛名番号 is opened.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub id: String,
    pub resident_id: String,
    pub dose_number: i32,
    pub administered_on: NaiveDate,
    pub recorded_at: NaiveDateTime,
    pub ticket_number: Option<String>,
    pub site_municipality_code: Option<String>,
    pub site_name: Option<String>,
    pub product_code: String,
    pub lot_number: Option<String>,
    pub addressee_sealed: Vec<u8>,
}

/// Two PostgreSQL inserts as one statement: `WITH first AS (insert) insert`
/// (a data-modifying `WITH` runs whether or not it is referenced). Diesel
/// writes both inserts; this only joins them, so their binds stay in order
/// and the statement is prepared once and cached like theirs.
struct WithInsert<A, B> {
    first: A,
    then: B,
}

impl<A, B> diesel::query_builder::QueryId for WithInsert<A, B>
where
    A: diesel::query_builder::QueryId,
    B: diesel::query_builder::QueryId,
{
    type QueryId = WithInsert<A::QueryId, B::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = A::HAS_STATIC_QUERY_ID && B::HAS_STATIC_QUERY_ID;
}

impl<A, B> diesel::query_builder::QueryFragment<diesel::pg::Pg> for WithInsert<A, B>
where
    A: diesel::query_builder::QueryFragment<diesel::pg::Pg>,
    B: diesel::query_builder::QueryFragment<diesel::pg::Pg>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("WITH first AS (");
        self.first.walk_ast(out.reborrow())?;
        out.push_sql(") ");
        self.then.walk_ast(out.reborrow())
    }
}

impl<A, B> RunQueryDsl<diesel::PgConnection> for WithInsert<A, B> {}

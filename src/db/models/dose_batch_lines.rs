//! What became of each line of a clinic's dose batch (see the migration).

use crate::db::schema::dose_batch_lines;
use crate::db::{DbError, TenantConn};
use chrono::NaiveDate;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = dose_batch_lines, treat_none_as_default_value = false)]
pub struct BatchLineRow {
    pub municipality_code: String,
    pub job_id: String,
    pub line: i64,
    pub ticket_number: String,
    pub administered_on: NaiveDate,
    /// recorded, queued, replayed (recorded before), refused.
    pub outcome: String,
    pub dose_id: Option<String>,
    pub dose_number: Option<i32>,
    pub rules: Option<String>,
    /// Why a line was refused (a code: not_issued, invalidated…).
    pub refusal: Option<String>,
}

impl BatchLineRow {
    pub fn insert_many(conn: &mut TenantConn<'_>, rows: &[BatchLineRow]) -> Result<(), DbError> {
        conn.check(rows)?;
        crate::db::bulk_insert!(conn.db(), dose_batch_lines::table, rows, 400)?;
        Ok(())
    }

    /// A page of a job's lines in line order, after line `after`.
    pub fn of_job(
        conn: &mut TenantConn<'_>,
        job_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<BatchLineRow>, DbError> {
        Ok(conn
            .rows(dose_batch_lines::table)
            .filter(dose_batch_lines::job_id.eq(job_id))
            .filter(dose_batch_lines::line.gt(after))
            .order(dose_batch_lines::line)
            .limit(limit)
            .select(BatchLineRow::as_select())
            .load(conn.db())?)
    }

    /// How many of a job's lines came to each outcome.
    pub fn tally(conn: &mut TenantConn<'_>, job_id: &str) -> Result<Vec<(String, i64)>, DbError> {
        Ok(conn
            .rows(dose_batch_lines::table)
            .filter(dose_batch_lines::job_id.eq(job_id))
            .group_by(dose_batch_lines::outcome)
            .select((dose_batch_lines::outcome, diesel::dsl::count_star()))
            .load(conn.db())?)
    }
}

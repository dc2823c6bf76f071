//! The letters of a reminder-notice job (see the migration).

use crate::db::schema::notice_items;
use crate::db::{DbError, TenantConn};
use chrono::NaiveDate;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = notice_items, treat_none_as_default_value = false)]
pub struct NoticeItemRow {
    pub municipality_code: String,
    pub job_id: String,
    pub n: i64,
    pub resident_id: String,
    pub ticket_number: String,
    pub dose_number: i32,
    pub due_from: NaiveDate,
    pub overdue: bool,
}

impl NoticeItemRow {
    pub fn insert_many(conn: &mut TenantConn<'_>, rows: &[NoticeItemRow]) -> Result<(), DbError> {
        conn.check(rows)?;
        crate::db::bulk_insert!(conn.db(), notice_items::table, rows, 400)?;
        Ok(())
    }

    /// A page of a job's letters, in order.
    pub fn page(
        conn: &mut TenantConn<'_>,
        job_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<NoticeItemRow>, DbError> {
        Ok(conn
            .rows(notice_items::table)
            .filter(notice_items::job_id.eq(job_id))
            .order(notice_items::n)
            .offset(offset)
            .limit(limit)
            .select(NoticeItemRow::as_select())
            .load(conn.db())?)
    }

    pub fn count(conn: &mut TenantConn<'_>, job_id: &str) -> Result<i64, DbError> {
        Ok(conn
            .rows(notice_items::table)
            .filter(notice_items::job_id.eq(job_id))
            .count()
            .get_result(conn.db())?)
    }
}

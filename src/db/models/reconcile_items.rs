//! What a reconciliation of a full resident file found (see the
//! migration): one row per person new, changed or absent.

use crate::db::schema::reconcile_items;
use crate::db::{DbError, TenantConn};
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub const NEW: &str = "new";
pub const CHANGED: &str = "changed";
pub const ABSENT: &str = "absent";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = reconcile_items, treat_none_as_default_value = false)]
pub struct ItemRow {
    pub municipality_code: String,
    pub job_id: String,
    /// The item's number within the job, in the order found.
    pub n: i64,
    pub kind: String,
    /// The file's line (new, changed).
    pub line: Option<i64>,
    /// The stored resident (changed, absent).
    pub resident_id: Option<String>,
    pub addressee_sealed: Option<Vec<u8>>,
    pub settled_at: Option<NaiveDateTime>,
    pub settled_by: Option<String>,
    /// What staff did: moved_out, deceased, kept.
    pub settled_as: Option<String>,
}

impl ItemRow {
    pub fn insert_many(conn: &mut TenantConn<'_>, rows: &[ItemRow]) -> Result<(), DbError> {
        conn.check(rows)?;
        crate::db::bulk_insert!(conn.db(), reconcile_items::table, rows, 400)?;
        Ok(())
    }

    /// A page of one kind of a job's items, in order.
    pub fn page(
        conn: &mut TenantConn<'_>,
        job_id: &str,
        kind: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ItemRow>, DbError> {
        Ok(conn
            .rows(reconcile_items::table)
            .filter(reconcile_items::job_id.eq(job_id))
            .filter(reconcile_items::kind.eq(kind))
            .filter(reconcile_items::n.gt(after))
            .order(reconcile_items::n)
            .limit(limit)
            .select(ItemRow::as_select())
            .load(conn.db())?)
    }

    /// How many items of each kind a job found, and how many of them
    /// staff settled.
    pub fn counts(
        conn: &mut TenantConn<'_>,
        job_id: &str,
    ) -> Result<Vec<(String, i64, i64)>, DbError> {
        let rows: Vec<(String, i64, Option<NaiveDateTime>)> = conn
            .rows(reconcile_items::table)
            .filter(reconcile_items::job_id.eq(job_id))
            .select((
                reconcile_items::kind,
                reconcile_items::n,
                reconcile_items::settled_at,
            ))
            .load(conn.db())?;
        let mut out: Vec<(String, i64, i64)> = Vec::new();
        for (kind, _, settled) in rows {
            match out.iter_mut().find(|(k, _, _)| *k == kind) {
                Some(c) => {
                    c.1 += 1;
                    c.2 += i64::from(settled.is_some());
                }
                None => out.push((kind, 1, i64::from(settled.is_some()))),
            }
        }
        Ok(out)
    }

    /// Items of a job by number.
    pub fn by_numbers(
        conn: &mut TenantConn<'_>,
        job_id: &str,
        numbers: &[i64],
    ) -> Result<Vec<ItemRow>, DbError> {
        Ok(conn
            .rows(reconcile_items::table)
            .filter(reconcile_items::job_id.eq(job_id))
            .filter(reconcile_items::n.eq_any(numbers))
            .select(ItemRow::as_select())
            .load(conn.db())?)
    }

    /// Records what staff did with an item not settled yet; false if it
    /// was settled already.
    pub fn settle(
        conn: &mut TenantConn<'_>,
        job_id: &str,
        n: i64,
        (by, as_, at): (&str, &str, NaiveDateTime),
    ) -> Result<bool, DbError> {
        let changed = diesel::update(
            conn.rows(reconcile_items::table)
                .filter(reconcile_items::job_id.eq(job_id))
                .filter(reconcile_items::n.eq(n))
                .filter(reconcile_items::settled_at.is_null()),
        )
        .set((
            reconcile_items::settled_at.eq(at),
            reconcile_items::settled_by.eq(by),
            reconcile_items::settled_as.eq(as_),
        ))
        .execute(conn.db())?;
        Ok(changed == 1)
    }

    /// Removes a job's items (a file that was not compared to its end).
    pub fn delete_of_job(conn: &mut TenantConn<'_>, job_id: &str) -> Result<usize, DbError> {
        Ok(diesel::delete(
            conn.rows(reconcile_items::table)
                .filter(reconcile_items::job_id.eq(job_id)),
        )
        .execute(conn.db())?)
    }
}

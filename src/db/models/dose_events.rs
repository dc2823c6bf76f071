use crate::db::TenantConn;
use crate::db::schema::{dose_events, queue_days};
use crate::db::{DbConn, DbError};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

/// Something that happened to a dose after it was recorded. Never updated.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = dose_events, treat_none_as_default_value = false)]
pub struct DoseEventRow {
    pub municipality_code: String,
    pub id: String,
    pub dose_id: String,
    pub resident_id: String,
    pub at: NaiveDateTime,
    pub kind: String,
    pub account_id: Option<String>,
    pub detail: Option<String>,
    pub reason_sealed: Option<Vec<u8>>,
}

impl DoseEventRow {
    pub fn insert(&self, conn: &mut TenantConn<'_>) -> Result<(), DbError> {
        crate::db::insert_owned!(conn, dose_events::table, self)
    }

    pub fn of_resident(
        conn: &mut TenantConn<'_>,
        resident_id: &str,
    ) -> Result<Vec<DoseEventRow>, DbError> {
        Ok(conn
            .rows(dose_events::table)
            .filter(dose_events::resident_id.eq(resident_id))
            .order(dose_events::at)
            .select(DoseEventRow::as_select())
            .load(conn.db())?)
    }
}

/// The 要確認 queue's history as the trigger keeps it (migration 000018):
/// per day in Japan and the rules a dose was queued for, the doses that
/// entered the queue less those that left it, its shards added up.
pub struct QueueMoves {
    /// Before the first day asked for, per rules: those still waiting then.
    pub before: Vec<(String, i64)>,
    /// From that day on, per day and rules.
    pub days: Vec<(NaiveDate, String, i64)>,
}

impl QueueMoves {
    pub fn since(conn: &mut TenantConn<'_>, first: NaiveDate) -> Result<QueueMoves, DbError> {
        let n = crate::db::sum_n();
        let before = conn
            .rows(queue_days::table)
            .filter(queue_days::day.lt(first))
            .group_by(queue_days::flags)
            .select((queue_days::flags, n.clone()))
            .load(conn.db())?;
        let days = conn
            .rows(queue_days::table)
            .filter(queue_days::day.ge(first))
            .group_by((queue_days::day, queue_days::flags))
            .select((queue_days::day, queue_days::flags, n))
            .order((queue_days::day, queue_days::flags))
            .load(conn.db())?;
        Ok(QueueMoves { before, days })
    }

    /// Forgets a municipality's history, when it is erased (its events go
    /// with its other rows).
    pub fn delete_of_municipality(conn: &mut DbConn, code: &str) -> Result<usize, DbError> {
        Ok(
            diesel::delete(queue_days::table.filter(queue_days::municipality_code.eq(code)))
                .execute(conn)?,
        )
    }
}

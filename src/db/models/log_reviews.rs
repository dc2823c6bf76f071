use crate::db::schema::{log_reviews, tenants};
use crate::db::{DbConn, DbError};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

/// How a municipality reviews its log (columns of `tenants`).
#[derive(Debug, Clone, Queryable, Selectable, AsChangeset, PartialEq)]
#[diesel(table_name = tenants)]
pub struct ReviewSettingsRow {
    pub working_from: i32,
    pub working_until: i32,
    pub volume_threshold: i32,
    pub review_every_days: i32,
    pub access_record_names: bool,
}

impl ReviewSettingsRow {
    pub fn find(conn: &mut DbConn, code: &str) -> Result<Option<ReviewSettingsRow>, DbError> {
        Ok(tenants::table
            .find(code)
            .select(ReviewSettingsRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn save(&self, conn: &mut DbConn, code: &str) -> Result<usize, DbError> {
        Ok(diesel::update(tenants::table.find(code))
            .set(self)
            .execute(conn)?)
    }
}

/// A review of the log or of the account list.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = log_reviews)]
pub struct LogReviewRow {
    pub municipality_code: String,
    pub id: String,
    /// `log` or `accounts`.
    pub kind: String,
    pub period_from: NaiveDate,
    pub period_until: NaiveDate,
    pub reviewed_by: String,
    pub reviewer_login: String,
    pub at: NaiveDateTime,
    pub note: String,
}

impl LogReviewRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(log_reviews::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    /// The municipality's reviews, newest first.
    pub fn of_municipality(
        conn: &mut DbConn,
        code: &str,
        limit: i64,
    ) -> Result<Vec<LogReviewRow>, DbError> {
        Ok(log_reviews::table
            .filter(log_reviews::municipality_code.eq(code))
            .order(log_reviews::at.desc())
            .limit(limit)
            .select(LogReviewRow::as_select())
            .load(conn)?)
    }
}

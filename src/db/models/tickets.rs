use crate::db::models::residents::ResidentRow;
use crate::db::schema::{residents, tickets};
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub const ACTIVE: &str = "active";
pub const INVALIDATED: &str = "invalidated";

/// A vaccination ticket. The number is not personal on its own; it is the
/// key a site uses, always together with the municipality's code.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = tickets, treat_none_as_default_value = false)]
pub struct TicketRow {
    pub municipality_code: String,
    pub ticket_number: String,
    pub resident_id: String,
    pub kind: i32,
    pub dose_number: i32,
    pub status: String,
    pub issued_at: NaiveDateTime,
    pub issued_by: String,
    pub invalidated_at: Option<NaiveDateTime>,
    pub invalidated_reason: Option<String>,
}

impl TicketRow {
    pub fn insert_many(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        rows: &[TicketRow],
    ) -> Result<(), DbError> {
        debug_assert!(
            rows.iter()
                .all(|r| r.municipality_code == scope.code().as_str())
        );
        match conn {
            DbConn::Postgresql(c) => {
                use diesel::sql_types::{Integer, Nullable, Text, Timestamp};
                crate::db::unnest_insert!(c, "tickets", rows, |t| {
                    municipality_code: Text as "text" = t.municipality_code.as_str(),
                    ticket_number: Text as "text" = t.ticket_number.as_str(),
                    resident_id: Text as "text" = t.resident_id.as_str(),
                    kind: Integer as "int" = t.kind,
                    dose_number: Integer as "int" = t.dose_number,
                    status: Text as "text" = t.status.as_str(),
                    issued_at: Timestamp as "timestamp" = t.issued_at,
                    issued_by: Text as "text" = t.issued_by.as_str(),
                    invalidated_at: Nullable<Timestamp> as "timestamp" = t.invalidated_at,
                    invalidated_reason: Nullable<Text> as "text" = t.invalidated_reason.as_deref(),
                })?;
            }
            DbConn::Sqlite(_) => crate::db::bulk_insert!(conn, tickets::table, rows, 1000)?,
        }
        Ok(())
    }

    pub fn count_of_municipality(scope: &Scope<'_>, conn: &mut DbConn) -> Result<i64, DbError> {
        Ok(tickets::table
            .filter(tickets::municipality_code.eq(scope.code().as_str()))
            .count()
            .get_result(conn)?)
    }

    /// Which of these numbers the municipality has already used.
    pub fn existing(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        numbers: &[String],
    ) -> Result<Vec<TicketRow>, DbError> {
        Ok(tickets::table
            .filter(tickets::municipality_code.eq(scope.code().as_str()))
            .filter(tickets::ticket_number.eq_any(numbers))
            .select(TicketRow::as_select())
            .load(conn)?)
    }

    pub fn active_of_residents(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        resident_ids: &[String],
    ) -> Result<Vec<TicketRow>, DbError> {
        Ok(tickets::table
            .filter(tickets::municipality_code.eq(scope.code().as_str()))
            .filter(tickets::resident_id.eq_any(resident_ids))
            .filter(tickets::status.eq(ACTIVE))
            .select(TicketRow::as_select())
            .load(conn)?)
    }

    pub fn of_resident(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        resident_id: &str,
    ) -> Result<Vec<TicketRow>, DbError> {
        Ok(tickets::table
            .filter(tickets::municipality_code.eq(scope.code().as_str()))
            .filter(tickets::resident_id.eq(resident_id))
            .order(tickets::issued_at.desc())
            .select(TicketRow::as_select())
            .load(conn)?)
    }

    /// The ticket with its resident, in one query; on PostgreSQL with both
    /// rows locked, so two sites recording for the same person at once are
    /// checked one after the other. (SQLite's transaction already holds the
    /// database's write lock.)
    pub fn find_with_resident_for_update(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        number: &str,
    ) -> Result<Option<(TicketRow, ResidentRow)>, DbError> {
        let code = scope.code();
        let joined = tickets::table
            .inner_join(
                residents::table.on(residents::municipality_code
                    .eq(tickets::municipality_code)
                    .and(residents::id.eq(tickets::resident_id))),
            )
            .filter(tickets::municipality_code.eq(code.as_str()))
            .filter(tickets::ticket_number.eq(number));
        Ok(match conn {
            DbConn::Postgresql(c) => joined
                .select((TicketRow::as_select(), ResidentRow::as_select()))
                .for_update()
                .first(c)
                .optional()?,
            DbConn::Sqlite(c) => joined
                .select((TicketRow::as_select(), ResidentRow::as_select()))
                .first(c)
                .optional()?,
        })
    }

    pub fn find(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        number: &str,
    ) -> Result<Option<TicketRow>, DbError> {
        Ok(tickets::table
            .filter(tickets::municipality_code.eq(scope.code().as_str()))
            .filter(tickets::ticket_number.eq(number))
            .select(TicketRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// Active tickets issued by one import (or one account), a page at a
    /// time in number order, for printing.
    pub fn active_issued_by(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        issued_by: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<TicketRow>, DbError> {
        Ok(tickets::table
            .filter(tickets::municipality_code.eq(scope.code().as_str()))
            .filter(tickets::issued_by.eq(issued_by))
            .filter(tickets::status.eq(ACTIVE))
            .order(tickets::ticket_number)
            .offset(offset)
            .limit(limit)
            .select(TicketRow::as_select())
            .load(conn)?)
    }

    pub fn count_active_issued_by(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        issued_by: &str,
    ) -> Result<i64, DbError> {
        Ok(tickets::table
            .filter(tickets::municipality_code.eq(scope.code().as_str()))
            .filter(tickets::issued_by.eq(issued_by))
            .filter(tickets::status.eq(ACTIVE))
            .count()
            .get_result(conn)?)
    }

    /// Invalidates a resident's active ticket(s); returns how many.
    pub fn invalidate_active(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        resident_id: &str,
        reason: &str,
        at: NaiveDateTime,
    ) -> Result<usize, DbError> {
        Ok(diesel::update(
            tickets::table
                .filter(tickets::municipality_code.eq(scope.code().as_str()))
                .filter(tickets::resident_id.eq(resident_id))
                .filter(tickets::status.eq(ACTIVE)),
        )
        .set((
            tickets::status.eq(INVALIDATED),
            tickets::invalidated_at.eq(at),
            tickets::invalidated_reason.eq(reason),
        ))
        .execute(conn)?)
    }
}

use crate::db::TenantConn;
use crate::db::models::import_jobs::seen_seq;
use crate::db::models::residents::ResidentRow;
use crate::db::schema::{resident_next, residents, tickets};
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
    /// The resident import that issued this ticket: readers see it once
    /// that import has succeeded.
    pub staged_seq: Option<i64>,
    /// The resident import that replaces this ticket: it stays active
    /// until that import has succeeded.
    pub retired_seq: Option<i64>,
}

/// Tickets a reader of the scope sees, each with the newest import the
/// reader sees (which decides whether a ticket being replaced still is).
macro_rules! visible_tickets {
    ($scope:expr, $conn:expr) => {{
        let scope = $scope;
        $conn
            .rows(tickets::table)
            .filter(
                tickets::staged_seq
                    .is_null()
                    .or(tickets::staged_seq.le(seen_seq::<
                        diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                    >(scope))),
            )
    }};
}

/// Effectively active, as a reader of the scope sees it.
macro_rules! active_ticket {
    ($scope:expr) => {{
        let scope = $scope;
        tickets::status
            .eq(ACTIVE)
            .and(
                tickets::retired_seq
                    .is_null()
                    .or(tickets::retired_seq.gt(seen_seq::<
                        diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                    >(scope))),
            )
    }};
}

impl TicketRow {
    /// The ticket as a reader that sees imports up to `seen` sees it.
    fn seen_as_of(mut self, seen: i64) -> TicketRow {
        match self.retired_seq {
            Some(r) if r <= seen => self.status = INVALIDATED.into(),
            Some(_) => {
                self.invalidated_at = None;
                self.invalidated_reason = None;
            }
            None => {}
        }
        self
    }

    fn load_seen(rows: Vec<(TicketRow, i64)>) -> Vec<TicketRow> {
        rows.into_iter()
            .map(|(t, seen)| t.seen_as_of(seen))
            .collect()
    }
}

impl TicketRow {
    pub fn insert_many(conn: &mut TenantConn<'_>, rows: &[TicketRow]) -> Result<(), DbError> {
        conn.check(rows)?;
        match conn.db() {
            DbConn::Postgresql(c) => {
                use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
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
                    staged_seq: Nullable<BigInt> as "bigint" = t.staged_seq,
                    retired_seq: Nullable<BigInt> as "bigint" = t.retired_seq,
                })?;
            }
            DbConn::Sqlite(_) => crate::db::bulk_insert!(conn.db(), tickets::table, rows, 1000)?,
        }
        Ok(())
    }

    pub fn count_of_municipality(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
    ) -> Result<i64, DbError> {
        Ok(visible_tickets!(scope, conn)
            .count()
            .get_result(conn.db())?)
    }

    /// Which of these numbers the municipality has already used, whether or
    /// not a reader sees the ticket yet: a number is never given twice.
    pub fn existing(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        numbers: &[String],
    ) -> Result<Vec<TicketRow>, DbError> {
        let rows: Vec<(TicketRow, i64)> = conn
            .rows(tickets::table)
            .filter(tickets::ticket_number.eq_any(numbers))
            .select((
                TicketRow::as_select(),
                seen_seq::<diesel::sql_types::BigInt>(scope),
            ))
            .load(conn.db())?;
        Ok(Self::load_seen(rows))
    }

    pub fn active_of_residents(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_ids: &[String],
    ) -> Result<Vec<TicketRow>, DbError> {
        Ok(visible_tickets!(scope, conn)
            .filter(tickets::resident_id.eq_any(resident_ids))
            .filter(active_ticket!(scope))
            .select(TicketRow::as_select())
            .load(conn.db())?)
    }

    pub fn of_resident(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_id: &str,
    ) -> Result<Vec<TicketRow>, DbError> {
        let rows: Vec<(TicketRow, i64)> = visible_tickets!(scope, conn)
            .filter(tickets::resident_id.eq(resident_id))
            .order(tickets::issued_at.desc())
            .select((
                TicketRow::as_select(),
                seen_seq::<diesel::sql_types::BigInt>(scope),
            ))
            .load(conn.db())?;
        Ok(Self::load_seen(rows))
    }

    /// The ticket with its resident, in one query; on PostgreSQL with both
    /// rows locked, so two sites recording for the same person at once are
    /// checked one after the other. (SQLite's transaction already holds the
    /// database's write lock.) Attributes an import gave the resident are
    /// read by a second query only when there are any (PostgreSQL does not
    /// lock the outer side of a join).
    pub fn find_with_resident_for_update(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        number: &str,
    ) -> Result<Option<(TicketRow, ResidentRow)>, DbError> {
        use diesel::sql_types::{BigInt, Nullable};
        let has_next = diesel::dsl::exists(
            resident_next::table
                .filter(resident_next::municipality_code.eq(residents::municipality_code))
                .filter(resident_next::resident_id.eq(residents::id))
                .filter(resident_next::seq.le(seen_seq::<BigInt>(scope))),
        );
        let joined = visible_tickets!(scope, conn)
            .inner_join(
                residents::table.on(residents::municipality_code
                    .eq(tickets::municipality_code)
                    .and(residents::id.eq(tickets::resident_id))),
            )
            .filter(tickets::ticket_number.eq(number))
            .filter(
                residents::staged_seq
                    .is_null()
                    .or(residents::staged_seq.le(seen_seq::<Nullable<BigInt>>(scope))),
            );
        type Found = (TicketRow, ResidentRow, i64, bool);
        let found: Option<Found> = match conn.db() {
            DbConn::Postgresql(c) => joined
                .select((
                    TicketRow::as_select(),
                    ResidentRow::as_select(),
                    seen_seq::<BigInt>(scope),
                    has_next,
                ))
                .for_update()
                .first(c)
                .optional()?,
            DbConn::Sqlite(c) => joined
                .select((
                    TicketRow::as_select(),
                    ResidentRow::as_select(),
                    seen_seq::<BigInt>(scope),
                    has_next,
                ))
                .first(c)
                .optional()?,
        };
        let Some((ticket, resident, seen, has_next)) = found else {
            return Ok(None);
        };
        let resident = if has_next {
            ResidentRow::find_by_id_and_municipality(scope, conn, &resident.id)?.unwrap_or(resident)
        } else {
            resident
        };
        Ok(Some((ticket.seen_as_of(seen), resident)))
    }

    pub fn find(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        number: &str,
    ) -> Result<Option<TicketRow>, DbError> {
        let row: Option<(TicketRow, i64)> = visible_tickets!(scope, conn)
            .filter(tickets::ticket_number.eq(number))
            .select((
                TicketRow::as_select(),
                seen_seq::<diesel::sql_types::BigInt>(scope),
            ))
            .first(conn.db())
            .optional()?;
        Ok(row.map(|(t, seen)| t.seen_as_of(seen)))
    }

    /// Active tickets issued by one import (or one account), a page at a
    /// time in number order, for printing.
    pub fn active_issued_by(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        issued_by: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<TicketRow>, DbError> {
        Ok(visible_tickets!(scope, conn)
            .filter(tickets::issued_by.eq(issued_by))
            .filter(active_ticket!(scope))
            .order(tickets::ticket_number)
            .offset(offset)
            .limit(limit)
            .select(TicketRow::as_select())
            .load(conn.db())?)
    }

    pub fn count_active_issued_by(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        issued_by: &str,
    ) -> Result<i64, DbError> {
        Ok(visible_tickets!(scope, conn)
            .filter(tickets::issued_by.eq(issued_by))
            .filter(active_ticket!(scope))
            .count()
            .get_result(conn.db())?)
    }

    /// Invalidates a resident's active ticket(s) as the scope sees them;
    /// returns how many.
    pub fn invalidate_active(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_id: &str,
        reason: &str,
        at: NaiveDateTime,
    ) -> Result<usize, DbError> {
        Ok(diesel::update(
            visible_tickets!(scope, conn)
                .filter(tickets::resident_id.eq(resident_id))
                .filter(active_ticket!(scope)),
        )
        .set((
            tickets::status.eq(INVALIDATED),
            tickets::invalidated_at.eq(at),
            tickets::invalidated_reason.eq(reason),
        ))
        .execute(conn.db())?)
    }

    /// Marks a resident's active ticket as retired by import `seq` (for
    /// `reason`: replaced, moved_out, deceased): it stays active for every
    /// other reader until that import succeeds.
    pub fn retire_active(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_id: &str,
        (seq, reason): (i64, &str),
        at: NaiveDateTime,
    ) -> Result<usize, DbError> {
        Ok(diesel::update(
            visible_tickets!(scope, conn)
                .filter(tickets::resident_id.eq(resident_id))
                .filter(active_ticket!(scope)),
        )
        .set((
            tickets::retired_seq.eq(seq),
            tickets::invalidated_at.eq(at),
            tickets::invalidated_reason.eq(reason),
        ))
        .execute(conn.db())?)
    }

    /// `retire_active` for many residents at once.
    pub fn retire_active_of(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_ids: &[String],
        (seq, reason): (i64, &str),
        at: NaiveDateTime,
    ) -> Result<usize, DbError> {
        let mut n = 0;
        for chunk in resident_ids.chunks(crate::db::IDS_PER_QUERY) {
            n += diesel::update(
                visible_tickets!(scope, conn)
                    .filter(tickets::resident_id.eq_any(chunk))
                    .filter(active_ticket!(scope)),
            )
            .set((
                tickets::retired_seq.eq(seq),
                tickets::invalidated_at.eq(at),
                tickets::invalidated_reason.eq(reason),
            ))
            .execute(conn.db())?;
        }
        Ok(n)
    }

    /// Whether an import that has not succeeded yet issues this resident a
    /// ticket (to replace the active one, or a first one): a ticket staff
    /// issued now would be a second active one once it succeeds.
    pub fn issued_by_running_import(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_id: &str,
    ) -> Result<bool, DbError> {
        Ok(diesel::select(diesel::dsl::exists(
            conn.rows(tickets::table)
                .filter(tickets::resident_id.eq(resident_id))
                .filter(tickets::status.eq(ACTIVE))
                .filter(tickets::retired_seq.is_null())
                .filter(tickets::staged_seq.gt(seen_seq::<
                    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                >(scope))),
        ))
        .get_result(conn.db())?)
    }

    /// Invalidates the active tickets an import that has not succeeded yet
    /// issued this resident (staff flagged them moved out or deceased while
    /// it ran): they are published invalid.
    pub fn invalidate_unpublished(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_id: &str,
        reason: &str,
        at: NaiveDateTime,
    ) -> Result<usize, DbError> {
        Ok(diesel::update(
            conn.rows(tickets::table)
                .filter(tickets::resident_id.eq(resident_id))
                .filter(tickets::status.eq(ACTIVE))
                .filter(tickets::retired_seq.is_null())
                .filter(tickets::staged_seq.gt(seen_seq::<
                    diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                >(scope))),
        )
        .set((
            tickets::status.eq(INVALIDATED),
            tickets::invalidated_at.eq(at),
            tickets::invalidated_reason.eq(reason),
        ))
        .execute(conn.db())?)
    }

    /// Sequence numbers of imports whose replaced tickets are not settled.
    pub fn retired_seqs(conn: &mut TenantConn<'_>) -> Result<Vec<i64>, DbError> {
        let seqs: Vec<Option<i64>> = conn
            .rows(tickets::table)
            .filter(tickets::retired_seq.is_not_null())
            .select(tickets::retired_seq)
            .distinct()
            .load(conn.db())?;
        Ok(seqs.into_iter().flatten().collect())
    }
}

//! Erasing a resident after the municipality's retention period: their
//! row keeps its id (the doses' anonymous facts keep their resident, and
//! the published statistics their count) and nothing else of the person.

use super::*;
use crate::db::schema::{
    certificates, dose_events, doses, held_inquiries, resident_events, tickets,
};

/// A resident whose move-out or death lies before the retention cutoff.
pub struct DueRow {
    pub id: String,
    pub addressee_number_sealed: Vec<u8>,
    pub moved_out_on: Option<NaiveDate>,
    pub deceased_on: Option<NaiveDate>,
}

impl ResidentRow {
    /// Residents moved out or deceased before `before`, not yet erased, in
    /// id order after `after`.
    pub fn due_for_erasure(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        before: NaiveDate,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DueRow>, DbError> {
        Self::due(scope, conn, before, None, after, limit)
    }

    /// One resident, if due.
    pub fn due_one(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        before: NaiveDate,
        id: &str,
    ) -> Result<Option<DueRow>, DbError> {
        Ok(Self::due(scope, conn, before, Some(id), "", 1)?.pop())
    }

    fn due(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        before: NaiveDate,
        only: Option<&str>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DueRow>, DbError> {
        let _ = scope;
        let mut q = conn
            .rows(residents::table)
            .filter(residents::erased_at.is_null())
            .filter(residents::id.gt(after))
            .into_boxed();
        if let Some(id) = only {
            q = q.filter(residents::id.eq(id));
        }
        Ok(q.filter(
            residents::moved_out_on
                .lt(before)
                .or(residents::deceased_on.lt(before)),
        )
        .order(residents::id)
        .limit(limit)
        .select((
            residents::id,
            residents::addressee_number_sealed,
            residents::moved_out_on,
            residents::deceased_on,
        ))
        .load::<(String, Vec<u8>, Option<NaiveDate>, Option<NaiveDate>)>(conn.db())?
        .into_iter()
        .map(
            |(id, addressee_number_sealed, moved_out_on, deceased_on)| DueRow {
                id,
                addressee_number_sealed,
                moved_out_on,
                deceased_on,
            },
        )
        .collect())
    }

    /// Erases one resident that is still due (before `before`): their
    /// tickets, history, certificates, held inquiries, import leftovers and
    /// dose review events are deleted, their doses lose the ticket number,
    /// and the row's sealed fields and indexes are emptied. Returns the
    /// rows deleted or emptied; none if the resident was not due.
    pub fn erase(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        id: &str,
        before: NaiveDate,
        at: NaiveDateTime,
    ) -> Result<Option<usize>, DbError> {
        let _ = scope;
        let emptied = diesel::update(
            conn.rows(residents::table)
                .filter(residents::id.eq(id))
                .filter(residents::erased_at.is_null())
                .filter(
                    residents::moved_out_on
                        .lt(before)
                        .or(residents::deceased_on.lt(before)),
                ),
        )
        .set((
            // Random bytes index nothing: no 宛名番号 finds the row again.
            residents::addressee_index.eq(crate::crypto::random_key().to_vec()),
            residents::my_number_index.eq(None::<Vec<u8>>),
            residents::addressee_number_sealed.eq(Vec::<u8>::new()),
            residents::my_number_sealed.eq(None::<Vec<u8>>),
            residents::name_kanji_sealed.eq(Vec::<u8>::new()),
            residents::name_kana_sealed.eq(Vec::<u8>::new()),
            residents::birth_date_sealed.eq(Vec::<u8>::new()),
            residents::sex_sealed.eq(Vec::<u8>::new()),
            residents::address_sealed.eq(None::<Vec<u8>>),
            residents::content_mac.eq(None::<Vec<u8>>),
            residents::birth_bucket.eq(None::<Vec<u8>>),
            residents::address_protected.eq(false),
            residents::protected_from.eq(None::<NaiveDate>),
            residents::protected_until.eq(None::<NaiveDate>),
            residents::protection_review.eq(None::<NaiveDate>),
            residents::erased_at.eq(Some(at)),
            residents::updated_at.eq(at),
        ))
        .execute(conn.db())?;
        if emptied == 0 {
            return Ok(None);
        }
        let mut n = emptied;
        let dose_ids: Vec<String> = conn
            .rows(doses::table)
            .filter(doses::resident_id.eq(id))
            .select(doses::id)
            .load(conn.db())?;
        n += diesel::delete(
            conn.rows(dose_events::table)
                .filter(dose_events::dose_id.eq_any(&dose_ids)),
        )
        .execute(conn.db())?;
        diesel::update(
            conn.rows(doses::table)
                .filter(doses::resident_id.eq(id))
                .filter(doses::ticket_number.is_not_null()),
        )
        .set(doses::ticket_number.eq(None::<String>))
        .execute(conn.db())?;
        n += diesel::delete(
            conn.rows(tickets::table)
                .filter(tickets::resident_id.eq(id)),
        )
        .execute(conn.db())?;
        n += diesel::delete(
            conn.rows(resident_events::table)
                .filter(resident_events::resident_id.eq(id)),
        )
        .execute(conn.db())?;
        n += diesel::delete(
            conn.rows(resident_next::table)
                .filter(resident_next::resident_id.eq(id)),
        )
        .execute(conn.db())?;
        n += diesel::delete(
            conn.rows(certificates::table)
                .filter(certificates::resident_id.eq(id)),
        )
        .execute(conn.db())?;
        n += diesel::delete(
            conn.rows(held_inquiries::table)
                .filter(held_inquiries::resident_id.eq(id)),
        )
        .execute(conn.db())?;
        Ok(Some(n))
    }
}

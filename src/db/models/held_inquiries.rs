use crate::db::schema::held_inquiries;
use crate::db::{DbError, TenantConn};
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub const HELD: &str = "held";
pub const APPROVED: &str = "approved";
pub const REFUSED: &str = "refused";
/// The holder was asked about its resident.
pub const ASKED: &str = "asked";
/// The holder was about to ask about its resident.
pub const ASKING: &str = "asking";

/// A transfer inquiry held for a protected resident (see the migration).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = held_inquiries, treat_none_as_default_value = false)]
pub struct HeldRow {
    pub municipality_code: String,
    pub id: String,
    pub inquiry_id: String,
    pub direction: String,
    pub other_code: String,
    pub resident_id: String,
    pub channel: String,
    pub purpose: String,
    pub requested_at: NaiveDateTime,
    pub requested_by: Option<String>,
    pub requester_login: Option<String>,
    pub request_sealed: Option<Vec<u8>>,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_login: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
}

impl HeldRow {
    pub fn insert(&self, conn: &mut TenantConn<'_>) -> Result<(), DbError> {
        crate::db::insert_owned!(conn, held_inquiries::table, self)
    }

    /// The municipality's held inquiries, those still held first, then the
    /// newest decided.
    pub fn list(conn: &mut TenantConn<'_>, limit: i64) -> Result<Vec<HeldRow>, DbError> {
        Ok(conn
            .rows(held_inquiries::table)
            .order((
                held_inquiries::decided_at.is_not_null(),
                held_inquiries::requested_at.desc(),
            ))
            .limit(limit)
            .select(HeldRow::as_select())
            .load(conn.db())?)
    }

    pub fn find(conn: &mut TenantConn<'_>, id: &str) -> Result<Option<HeldRow>, DbError> {
        Ok(conn
            .rows(held_inquiries::table)
            .filter(held_inquiries::id.eq(id))
            .select(HeldRow::as_select())
            .first(conn.db())
            .optional()?)
    }

    /// Decides a held inquiry; false when it was no longer held (decided by
    /// someone else meanwhile).
    pub fn decide(
        conn: &mut TenantConn<'_>,
        id: &str,
        status: &str,
        by: (&str, &str),
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let n = diesel::update(
            conn.rows(held_inquiries::table)
                .filter(held_inquiries::id.eq(id))
                .filter(held_inquiries::status.eq(HELD)),
        )
        .set((
            held_inquiries::status.eq(status),
            held_inquiries::decided_by.eq(by.0),
            held_inquiries::decided_login.eq(by.1),
            held_inquiries::decided_at.eq(at),
            // The number waited to be sent; decided, it is kept no longer.
            held_inquiries::request_sealed.eq(None::<Vec<u8>>),
        ))
        .execute(conn.db())?;
        Ok(n == 1)
    }
}

use crate::db::schema::sites;
use crate::db::{DbConn, DbError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A vaccination site. Not personal data: its name and kind are what a
/// dose record shows as 接種会場.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = sites, treat_none_as_default_value = false)]
pub struct SiteRow {
    pub id: String,
    pub municipality_code: String,
    pub name: String,
    pub kind: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
}

impl SiteRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(sites::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<SiteRow>, DbError> {
        Ok(sites::table
            .find(id)
            .select(SiteRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// A site registered by `municipality` (an administrator manages only
    /// its own municipality's sites).
    pub fn find_of_municipality(
        conn: &mut DbConn,
        municipality: &str,
        id: &str,
    ) -> Result<Option<SiteRow>, DbError> {
        Ok(sites::table
            .filter(sites::municipality_code.eq(municipality))
            .filter(sites::id.eq(id))
            .select(SiteRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn of_municipality(conn: &mut DbConn, municipality: &str) -> Result<Vec<SiteRow>, DbError> {
        Ok(sites::table
            .filter(sites::municipality_code.eq(municipality))
            .order((sites::closed_at.is_not_null(), sites::name))
            .select(SiteRow::as_select())
            .load(conn)?)
    }

    pub fn close(
        conn: &mut DbConn,
        municipality: &str,
        id: &str,
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let n = diesel::update(
            sites::table
                .filter(sites::municipality_code.eq(municipality))
                .filter(sites::id.eq(id))
                .filter(sites::closed_at.is_null()),
        )
        .set(sites::closed_at.eq(Some(at)))
        .execute(conn)?;
        Ok(n == 1)
    }
}

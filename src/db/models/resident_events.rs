use crate::db::schema::resident_events;
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// One entry of a resident's history; reason and changes are sealed.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = resident_events)]
pub struct ResidentEventRow {
    pub municipality_code: String,
    pub id: String,
    pub resident_id: String,
    pub at: NaiveDateTime,
    pub kind: String,
    pub account_id: Option<String>,
    pub detail_sealed: Option<Vec<u8>>,
}

impl ResidentEventRow {
    pub fn insert(&self, scope: &Scope<'_>, conn: &mut DbConn) -> Result<(), DbError> {
        debug_assert_eq!(self.municipality_code, scope.code().as_str());
        diesel::insert_into(resident_events::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn of_resident(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        resident_id: &str,
    ) -> Result<Vec<ResidentEventRow>, DbError> {
        Ok(resident_events::table
            .filter(resident_events::municipality_code.eq(scope.code().as_str()))
            .filter(resident_events::resident_id.eq(resident_id))
            .order(resident_events::at.desc())
            .select(ResidentEventRow::as_select())
            .load(conn)?)
    }
}

use crate::db::models::import_jobs::seen_seq;
use crate::db::schema::resident_events;
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// One entry of a resident's history; reason and changes are sealed.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = resident_events, treat_none_as_default_value = false)]
pub struct ResidentEventRow {
    pub municipality_code: String,
    pub id: String,
    pub resident_id: String,
    pub at: NaiveDateTime,
    pub kind: String,
    pub account_id: Option<String>,
    pub detail_sealed: Option<Vec<u8>>,
    /// The resident import that wrote this entry: readers see it once that
    /// import has succeeded.
    pub staged_seq: Option<i64>,
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
            .filter(
                resident_events::staged_seq
                    .is_null()
                    .or(resident_events::staged_seq.le(seen_seq::<
                        diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                    >(scope))),
            )
            .order(resident_events::at.desc())
            .select(ResidentEventRow::as_select())
            .load(conn)?)
    }

    pub fn insert_many(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        rows: &[ResidentEventRow],
    ) -> Result<(), DbError> {
        debug_assert!(
            rows.iter()
                .all(|r| r.municipality_code == scope.code().as_str())
        );
        crate::db::bulk_insert!(conn, resident_events::table, rows, 1000)?;
        Ok(())
    }
}

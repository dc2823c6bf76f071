use crate::db::DbError;
use crate::db::TenantConn;
use crate::db::models::import_jobs::seen_seq;
use crate::db::schema::resident_events;
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
    pub fn insert(&self, conn: &mut TenantConn<'_>) -> Result<(), DbError> {
        crate::db::insert_owned!(conn, resident_events::table, self)
    }

    pub fn of_resident(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        resident_id: &str,
    ) -> Result<Vec<ResidentEventRow>, DbError> {
        Ok(conn
            .rows(resident_events::table)
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
            .load(conn.db())?)
    }

    pub fn insert_many(
        conn: &mut TenantConn<'_>,
        rows: &[ResidentEventRow],
    ) -> Result<(), DbError> {
        conn.check(rows)?;
        crate::db::bulk_insert!(conn.db(), resident_events::table, rows, 1000)?;
        Ok(())
    }
}

use crate::db::schema::{doses, residents};
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

pub const VALID: &str = "valid";
pub const RECORDED: &str = "recorded";

/// One dose in the partition of the municipality that issued the ticket.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = doses, treat_none_as_default_value = false)]
pub struct DoseRow {
    pub municipality_code: String,
    pub id: String,
    pub resident_id: String,
    pub dose_number: i32,
    pub administered_on: NaiveDate,
    pub recorded_at: NaiveDateTime,
    pub ticket_number: Option<String>,
    pub site_municipality_code: Option<String>,
    pub site_name: Option<String>,
    pub product_code: String,
    pub lot_number: Option<String>,
    pub origin: String,
    pub origin_municipality_code: Option<String>,
    pub recorded_by: Option<String>,
    pub status: String,
}

impl DoseRow {
    pub fn insert_many(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        rows: &[DoseRow],
    ) -> Result<(), DbError> {
        debug_assert!(
            rows.iter()
                .all(|r| r.municipality_code == scope.code().as_str())
        );
        crate::db::bulk_insert!(conn, doses::table, rows, 500)?;
        Ok(())
    }

    pub fn of_resident(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        resident_id: &str,
    ) -> Result<Vec<DoseRow>, DbError> {
        Ok(doses::table
            .filter(doses::municipality_code.eq(scope.code().as_str()))
            .filter(doses::resident_id.eq(resident_id))
            .order((doses::administered_on, doses::dose_number))
            .select(DoseRow::as_select())
            .load(conn)?)
    }

    /// A page of valid doses in id order, each with its resident's sealed
    /// 宛名番号: exactly the columns the ledger export prints. Two queries,
    /// not a join: the doses in key order, then the page's residents once
    /// each (a person has several doses).
    pub fn export_page(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ExportRow>, DbError> {
        type Cols = (
            String,
            String,
            i32,
            NaiveDate,
            NaiveDateTime,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
        );
        let page: Vec<Cols> = doses::table
            .filter(doses::municipality_code.eq(scope.code().as_str()))
            .filter(doses::id.gt(after_id))
            .filter(doses::status.eq(VALID))
            .order(doses::id)
            .limit(limit)
            .select((
                doses::id,
                doses::resident_id,
                doses::dose_number,
                doses::administered_on,
                doses::recorded_at,
                doses::ticket_number,
                doses::site_municipality_code,
                doses::site_name,
                doses::product_code,
                doses::lot_number,
            ))
            .load(conn)?;
        let mut ids: Vec<&str> = page.iter().map(|d| d.1.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let sealed: std::collections::HashMap<String, Vec<u8>> = residents::table
            .filter(residents::municipality_code.eq(scope.code().as_str()))
            .filter(residents::id.eq_any(&ids))
            .select((residents::id, residents::addressee_number_sealed))
            .load::<(String, Vec<u8>)>(conn)?
            .into_iter()
            .collect();
        Ok(page
            .into_iter()
            .filter_map(|d| {
                let addressee_sealed = sealed.get(&d.1)?.clone();
                Some(ExportRow {
                    id: d.0,
                    resident_id: d.1,
                    dose_number: d.2,
                    administered_on: d.3,
                    recorded_at: d.4,
                    ticket_number: d.5,
                    site_municipality_code: d.6,
                    site_name: d.7,
                    product_code: d.8,
                    lot_number: d.9,
                    addressee_sealed,
                })
            })
            .collect())
    }
}

/// One line of the ledger export as read, before the 宛名番号 is opened.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub id: String,
    pub resident_id: String,
    pub dose_number: i32,
    pub administered_on: NaiveDate,
    pub recorded_at: NaiveDateTime,
    pub ticket_number: Option<String>,
    pub site_municipality_code: Option<String>,
    pub site_name: Option<String>,
    pub product_code: String,
    pub lot_number: Option<String>,
    pub addressee_sealed: Vec<u8>,
}

use crate::db::schema::{vaccine_lots, vaccine_products};
use crate::db::{DbConn, DbError};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

/// One product line of the national vaccine master.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = vaccine_products, treat_none_as_default_value = false)]
pub struct ProductRow {
    pub product_code: String,
    pub manufacturer_ja: String,
    pub manufacturer_en: String,
    pub product_ja: String,
    pub product_en: String,
    pub vaccine_type: String,
    pub target: String,
    pub age_group: String,
    pub cvx: Option<String>,
    pub primary_doses: i32,
    pub dose2_min_days: Option<i32>,
    pub dose3_min_days: Option<i32>,
    pub booster_min_months: i32,
    pub in_use: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = vaccine_lots, treat_none_as_default_value = false)]
pub struct LotRow {
    pub product_code: String,
    pub lot_number: String,
    pub expires_on: Option<NaiveDate>,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
}

impl ProductRow {
    pub fn insert_many(conn: &mut DbConn, rows: &[ProductRow]) -> Result<(), DbError> {
        crate::db::bulk_insert!(conn, vaccine_products::table, rows, 100)?;
        Ok(())
    }

    pub fn count(conn: &mut DbConn) -> Result<i64, DbError> {
        Ok(vaccine_products::table.count().get_result(conn)?)
    }

    pub fn all(conn: &mut DbConn) -> Result<Vec<ProductRow>, DbError> {
        Ok(vaccine_products::table
            .order(vaccine_products::product_code)
            .select(ProductRow::as_select())
            .load(conn)?)
    }

    pub fn find(conn: &mut DbConn, code: &str) -> Result<Option<ProductRow>, DbError> {
        Ok(vaccine_products::table
            .find(code)
            .select(ProductRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn set_in_use(conn: &mut DbConn, code: &str, in_use: bool) -> Result<bool, DbError> {
        let n = diesel::update(vaccine_products::table.find(code))
            .set(vaccine_products::in_use.eq(in_use))
            .execute(conn)?;
        Ok(n == 1)
    }
}

impl LotRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(vaccine_lots::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn insert_many(conn: &mut DbConn, rows: &[LotRow]) -> Result<(), DbError> {
        crate::db::bulk_insert!(conn, vaccine_lots::table, rows, 500)?;
        Ok(())
    }

    pub fn exists(conn: &mut DbConn, product: &str, lot: &str) -> Result<bool, DbError> {
        Ok(vaccine_lots::table
            .find((product, lot))
            .count()
            .get_result::<i64>(conn)?
            > 0)
    }

    pub fn of_product(conn: &mut DbConn, product: &str) -> Result<Vec<LotRow>, DbError> {
        Ok(vaccine_lots::table
            .filter(vaccine_lots::product_code.eq(product))
            .order(vaccine_lots::lot_number)
            .select(LotRow::as_select())
            .load(conn)?)
    }

    pub fn counts(conn: &mut DbConn) -> Result<Vec<(String, i64)>, DbError> {
        Ok(vaccine_lots::table
            .group_by(vaccine_lots::product_code)
            .select((vaccine_lots::product_code, diesel::dsl::count_star()))
            .load(conn)?)
    }
}

use crate::db::schema::residents;
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

/// A resident as stored: identifying fields are sealed blobs; the indexes
/// are keyed HMACs. Only `tenancy::Partition` turns this into clear values.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = residents)]
pub struct ResidentRow {
    pub municipality_code: String,
    pub id: String,
    pub addressee_index: Vec<u8>,
    pub my_number_index: Option<Vec<u8>>,
    pub addressee_number_sealed: Vec<u8>,
    pub my_number_sealed: Option<Vec<u8>>,
    pub name_kanji_sealed: Vec<u8>,
    pub name_kana_sealed: Vec<u8>,
    pub birth_date_sealed: Vec<u8>,
    pub sex_sealed: Vec<u8>,
    pub address_sealed: Option<Vec<u8>>,
    pub moved_out_on: Option<NaiveDate>,
    pub deceased_on: Option<NaiveDate>,
    pub address_protected: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl ResidentRow {
    pub fn insert(&self, scope: &Scope<'_>, conn: &mut DbConn) -> Result<(), DbError> {
        debug_assert_eq!(self.municipality_code, scope.code().as_str());
        diesel::insert_into(residents::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn find_by_id_and_municipality(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        id: &str,
    ) -> Result<Option<ResidentRow>, DbError> {
        Ok(residents::table
            .filter(residents::municipality_code.eq(scope.code().as_str()))
            .filter(residents::id.eq(id))
            .select(ResidentRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn find_by_my_number_index_and_municipality(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        index: &[u8],
    ) -> Result<Option<ResidentRow>, DbError> {
        Ok(residents::table
            .filter(residents::municipality_code.eq(scope.code().as_str()))
            .filter(residents::my_number_index.eq(index))
            .select(ResidentRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn find_by_addressee_index_and_municipality(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        index: &[u8],
    ) -> Result<Option<ResidentRow>, DbError> {
        Ok(residents::table
            .filter(residents::municipality_code.eq(scope.code().as_str()))
            .filter(residents::addressee_index.eq(index))
            .select(ResidentRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// One page of the municipality's residents in id order, for batch work
    /// (re-sealing) that must not hold every row in memory.
    pub fn page_of_municipality(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ResidentRow>, DbError> {
        Ok(residents::table
            .filter(residents::municipality_code.eq(scope.code().as_str()))
            .filter(residents::id.gt(after_id))
            .order(residents::id)
            .limit(limit)
            .select(ResidentRow::as_select())
            .load(conn)?)
    }

    pub fn count_of_municipality(scope: &Scope<'_>, conn: &mut DbConn) -> Result<i64, DbError> {
        Ok(residents::table
            .filter(residents::municipality_code.eq(scope.code().as_str()))
            .count()
            .get_result(conn)?)
    }

    /// Writes back every sealed column and index of this row (after re-sealing).
    pub fn update_sealed(&self, scope: &Scope<'_>, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::update(
            residents::table
                .filter(residents::municipality_code.eq(scope.code().as_str()))
                .filter(residents::id.eq(&self.id)),
        )
        .set((
            residents::addressee_index.eq(&self.addressee_index),
            residents::my_number_index.eq(&self.my_number_index),
            residents::addressee_number_sealed.eq(&self.addressee_number_sealed),
            residents::my_number_sealed.eq(&self.my_number_sealed),
            residents::name_kanji_sealed.eq(&self.name_kanji_sealed),
            residents::name_kana_sealed.eq(&self.name_kana_sealed),
            residents::birth_date_sealed.eq(&self.birth_date_sealed),
            residents::sex_sealed.eq(&self.sex_sealed),
            residents::address_sealed.eq(&self.address_sealed),
            residents::updated_at.eq(self.updated_at),
        ))
        .execute(conn)?;
        Ok(())
    }
}

use crate::db::schema::residents;
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

/// A resident as stored: identifying fields are sealed blobs; the indexes
/// are keyed HMACs. Only `tenancy::Partition` turns this into clear values.
#[derive(Debug, Clone, Default, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = residents, treat_none_as_default_value = false)]
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
    pub content_mac: Option<Vec<u8>>,
    pub birth_bucket: Option<Vec<u8>>,
}

/// What an import needs to know about a stored resident to decide between
/// insert, update and nothing, without opening anything sealed.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = residents)]
pub struct ResidentMatch {
    pub id: String,
    pub addressee_index: Vec<u8>,
    pub my_number_index: Option<Vec<u8>>,
    pub content_mac: Option<Vec<u8>>,
    pub moved_out_on: Option<NaiveDate>,
    pub deceased_on: Option<NaiveDate>,
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

    /// Residents neither moved out nor deceased: those a programme covers.
    pub fn count_current(scope: &Scope<'_>, conn: &mut DbConn) -> Result<i64, DbError> {
        Ok(residents::table
            .filter(residents::municipality_code.eq(scope.code().as_str()))
            .filter(residents::moved_out_on.is_null())
            .filter(residents::deceased_on.is_null())
            .count()
            .get_result(conn)?)
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
            residents::content_mac.eq(&self.content_mac),
            residents::birth_bucket.eq(&self.birth_bucket),
            residents::updated_at.eq(self.updated_at),
        ))
        .execute(conn)?;
        Ok(())
    }
}

impl ResidentRow {
    /// Inserts many rows the fastest way each backend offers: column arrays
    /// on PostgreSQL, multi-row INSERT statements of a fixed size (so SQLite
    /// reuses one prepared statement) on SQLite.
    pub fn insert_many(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        rows: &[ResidentRow],
    ) -> Result<(), DbError> {
        debug_assert!(
            rows.iter()
                .all(|r| r.municipality_code == scope.code().as_str())
        );
        if rows.is_empty() {
            return Ok(());
        }
        match conn {
            DbConn::Postgresql(c) => {
                use diesel::sql_types::{Binary, Bool, Date, Nullable, Text, Timestamp};
                crate::db::unnest_insert!(c, "residents", rows, |r| {
                    municipality_code: Text as "text" = r.municipality_code.as_str(),
                    id: Text as "text" = r.id.as_str(),
                    addressee_index: Binary as "bytea" = r.addressee_index.as_slice(),
                    my_number_index: Nullable<Binary> as "bytea" = r.my_number_index.as_deref(),
                    addressee_number_sealed: Binary as "bytea" =
                        r.addressee_number_sealed.as_slice(),
                    my_number_sealed: Nullable<Binary> as "bytea" = r.my_number_sealed.as_deref(),
                    name_kanji_sealed: Binary as "bytea" = r.name_kanji_sealed.as_slice(),
                    name_kana_sealed: Binary as "bytea" = r.name_kana_sealed.as_slice(),
                    birth_date_sealed: Binary as "bytea" = r.birth_date_sealed.as_slice(),
                    sex_sealed: Binary as "bytea" = r.sex_sealed.as_slice(),
                    address_sealed: Nullable<Binary> as "bytea" = r.address_sealed.as_deref(),
                    moved_out_on: Nullable<Date> as "date" = r.moved_out_on,
                    deceased_on: Nullable<Date> as "date" = r.deceased_on,
                    address_protected: Bool as "bool" = r.address_protected,
                    created_at: Timestamp as "timestamp" = r.created_at,
                    updated_at: Timestamp as "timestamp" = r.updated_at,
                    content_mac: Nullable<Binary> as "bytea" = r.content_mac.as_deref(),
                    birth_bucket: Nullable<Binary> as "bytea" = r.birth_bucket.as_deref(),
                })?;
            }
            DbConn::Sqlite(c) => {
                // Fixed-size multi-row INSERTs: one cached prepared statement.
                for chunk in rows.chunks(400) {
                    diesel::insert_into(residents::table)
                        .values(chunk)
                        .execute(c)?;
                }
            }
        }
        Ok(())
    }

    /// Residents matching any of these addressee or individual-number indexes.
    pub fn matches(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        addressee: &[Vec<u8>],
        my_number: &[Vec<u8>],
    ) -> Result<Vec<ResidentMatch>, DbError> {
        Ok(residents::table
            .filter(residents::municipality_code.eq(scope.code().as_str()))
            .filter(
                residents::addressee_index
                    .eq_any(addressee)
                    .or(residents::my_number_index.eq_any(my_number)),
            )
            .select(ResidentMatch::as_select())
            .load(conn)?)
    }

    /// The residents with any of these 宛名番号 indexes.
    pub fn by_addressee_indexes(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        addressee: &[Vec<u8>],
    ) -> Result<Vec<ResidentRow>, DbError> {
        let mut out = Vec::new();
        for chunk in addressee.chunks(1000) {
            out.extend(
                residents::table
                    .filter(residents::municipality_code.eq(scope.code().as_str()))
                    .filter(residents::addressee_index.eq_any(chunk))
                    .select(ResidentRow::as_select())
                    .load(conn)?,
            );
        }
        Ok(out)
    }

    /// The residents holding any of these individual-number indexes: each
    /// one's id and index.
    pub fn holders_of_numbers(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        my_number: &[Vec<u8>],
    ) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        let mut out = Vec::new();
        for chunk in my_number.chunks(1000) {
            let rows: Vec<(String, Option<Vec<u8>>)> = residents::table
                .filter(residents::municipality_code.eq(scope.code().as_str()))
                .filter(residents::my_number_index.eq_any(chunk))
                .select((residents::id, residents::my_number_index))
                .load(conn)?;
            out.extend(rows.into_iter().filter_map(|(id, i)| Some((id, i?))));
        }
        Ok(out)
    }

    /// Every resident in one birth-date bucket (a few hundred at most in
    /// the largest city), for a search by name and date of birth.
    pub fn in_birth_bucket(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        bucket: &[u8],
    ) -> Result<Vec<ResidentRow>, DbError> {
        Ok(residents::table
            .filter(residents::municipality_code.eq(scope.code().as_str()))
            .filter(residents::birth_bucket.eq(bucket))
            .select(ResidentRow::as_select())
            .load(conn)?)
    }

    pub fn set_flags(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        id: &str,
        moved_out_on: Option<NaiveDate>,
        deceased_on: Option<NaiveDate>,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        diesel::update(
            residents::table
                .filter(residents::municipality_code.eq(scope.code().as_str()))
                .filter(residents::id.eq(id)),
        )
        .set((
            residents::moved_out_on.eq(moved_out_on),
            residents::deceased_on.eq(deceased_on),
            residents::updated_at.eq(at),
        ))
        .execute(conn)?;
        Ok(())
    }

    pub fn set_protected(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        id: &str,
        protected: bool,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        diesel::update(
            residents::table
                .filter(residents::municipality_code.eq(scope.code().as_str()))
                .filter(residents::id.eq(id)),
        )
        .set((
            residents::address_protected.eq(protected),
            residents::updated_at.eq(at),
        ))
        .execute(conn)?;
        Ok(())
    }
}

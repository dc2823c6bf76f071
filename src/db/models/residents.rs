mod erasure;
mod next;
use crate::db::TenantConn;
use crate::db::models::import_jobs::seen_seq;
use crate::db::schema::{resident_next, residents};
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
pub use erasure::*;
pub use next::*;

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
    /// The resident import that inserted this row: readers see the row
    /// once that import has succeeded (see `import_jobs::seen_seq`).
    pub staged_seq: Option<i64>,
    /// A support measure's period (see `domain::Protection`); none on a
    /// resident protected before periods were kept.
    pub protected_from: Option<NaiveDate>,
    pub protected_until: Option<NaiveDate>,
    pub protection_review: Option<NaiveDate>,
}

/// A resident's indexed values: 宛名番号, individual number, birth-date
/// bucket (each as its keyed index).
pub type IndexValues<'a> = (&'a [u8], Option<&'a [u8]>, Option<&'a [u8]>);

/// A stored resident as a reader of its scope sees it, and which resident
/// import last wrote it (an import recognises the people it has already
/// written from this).
#[derive(Debug, Clone)]
pub struct Visible {
    pub row: ResidentRow,
    pub written_by: Option<i64>,
}

impl From<(ResidentRow, Option<NextRow>)> for Visible {
    fn from((mut row, next): (ResidentRow, Option<NextRow>)) -> Visible {
        let written_by = next.as_ref().map(|n| n.seq).or(row.staged_seq);
        if let Some(n) = next {
            n.apply(&mut row);
        }
        Visible { row, written_by }
    }
}

/// The municipality's residents as readers of the scope see them: rows
/// whose import has not succeeded are left out. Every read of residents
/// starts here, and passes what it loads through [`with_next`].
macro_rules! visible_residents {
    ($scope:expr, $conn:expr) => {{
        let scope = $scope;
        $conn
            .rows(residents::table)
            // An erased resident is nobody's to read.
            .filter(residents::erased_at.is_null())
            .filter(
                residents::staged_seq
                    .is_null()
                    .or(residents::staged_seq.le(seen_seq::<
                        diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                    >(scope))),
            )
            .select(ResidentRow::as_select())
    }};
}

/// Each row with the attributes an import that succeeded gave it and that
/// are not yet moved into it, read by the side table's primary key. (Not a
/// join: PostgreSQL planned one with the statistics a running import had
/// outdated, comparing every pair of rows.)
fn with_next(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    rows: Vec<ResidentRow>,
) -> Result<Vec<(ResidentRow, Option<NextRow>)>, DbError> {
    let mut next: std::collections::HashMap<String, NextRow> = Default::default();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for chunk in ids.chunks(1000) {
        let found: Vec<NextRow> = conn
            .rows(resident_next::table)
            .filter(resident_next::resident_id.eq_any(chunk))
            // `seq + 0`: compared, never searched by (SQLite would read
            // every row of the running import through the sequence index).
            .filter((resident_next::seq + 0i64).le(seen_seq::<diesel::sql_types::BigInt>(scope)))
            .select(NextRow::as_select())
            .load(conn.db())?;
        next.extend(found.into_iter().map(|n| (n.resident_id.clone(), n)));
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let n = next.remove(&r.id);
            (r, n)
        })
        .collect())
}

/// Residents whose visible value of an indexed attribute satisfies `$pred`:
/// the row's own index and the index of attributes an import gave are each
/// looked up through their own index (two queries, so neither plan depends
/// on the planner's statistics), and the visible value decides.
macro_rules! by_index {
    ($scope:expr, $conn:expr, $col:ident, $method:ident($arg:expr), $keep:expr) => {{
        let scope = $scope;
        let rows: Vec<ResidentRow> = visible_residents!(scope, $conn)
            .filter(residents::$col.$method($arg))
            .load($conn.db())?;
        let mut found = with_next(scope, $conn, rows)?;
        // Attributes an import gave: found from the side table's own index,
        // then their residents by primary key.
        let given: Vec<NextRow> = $conn
            .rows(resident_next::table)
            .filter(resident_next::$col.$method($arg))
            // `seq + 0`: compared, never searched by (the sequence number's
            // index would read every row of the running import).
            .filter((resident_next::seq + 0i64).le(seen_seq::<diesel::sql_types::BigInt>(scope)))
            .select(NextRow::as_select())
            .load($conn.db())?;
        if !given.is_empty() {
            let ids: Vec<&str> = given.iter().map(|n| n.resident_id.as_str()).collect();
            let mut rows: std::collections::HashMap<String, ResidentRow> = Default::default();
            for chunk in ids.chunks(1000) {
                let loaded: Vec<ResidentRow> = visible_residents!(scope, $conn)
                    .filter(residents::id.eq_any(chunk))
                    .load($conn.db())?;
                rows.extend(loaded.into_iter().map(|r| (r.id.clone(), r)));
            }
            found.extend(
                given
                    .into_iter()
                    .filter_map(|n| rows.remove(&n.resident_id).map(|r| (r, Some(n)))),
            );
        }
        let mut seen = std::collections::HashSet::new();
        let keep = $keep;
        found
            .into_iter()
            .map(Visible::from)
            .filter(|v| seen.insert(v.row.id.clone()) && keep(&v.row))
            .collect::<Vec<Visible>>()
    }};
}

impl ResidentRow {
    pub fn insert(&self, conn: &mut TenantConn<'_>) -> Result<(), DbError> {
        crate::db::insert_owned!(conn, residents::table, self)
    }

    pub fn find_by_id_and_municipality(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        id: &str,
    ) -> Result<Option<ResidentRow>, DbError> {
        let found: Vec<ResidentRow> = visible_residents!(scope, conn)
            .filter(residents::id.eq(id))
            .load(conn.db())?;
        Ok(with_next(scope, conn, found)?
            .into_iter()
            .next()
            .map(|f| Visible::from(f).row))
    }

    /// The resident holding an individual number, given as the indexes
    /// it may be stored under (`Scope::my_number_indexes`).
    pub fn find_by_my_number_index_and_municipality(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        indexes: &[Vec<u8>],
    ) -> Result<Option<ResidentRow>, DbError> {
        let found = by_index!(
            scope,
            conn,
            my_number_index,
            eq_any(indexes),
            |r: &ResidentRow| {
                r.my_number_index
                    .as_ref()
                    .is_some_and(|i| indexes.contains(i))
            }
        );
        Ok(found.into_iter().next().map(|v| v.row))
    }

    /// The resident with a 宛名番号, given as the indexes it may be stored
    /// under (`Scope::addressee_indexes`).
    pub fn find_by_addressee_index_and_municipality(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        indexes: &[Vec<u8>],
    ) -> Result<Option<ResidentRow>, DbError> {
        let found = by_index!(
            scope,
            conn,
            addressee_index,
            eq_any(indexes),
            |r: &ResidentRow| { indexes.contains(&r.addressee_index) }
        );
        Ok(found.into_iter().next().map(|v| v.row))
    }

    /// One page of the municipality's residents in id order, for batch work
    /// (re-sealing) that must not hold every row in memory.
    pub fn page_of_municipality(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<ResidentRow>, DbError> {
        let page: Vec<ResidentRow> = visible_residents!(scope, conn)
            .filter(residents::id.gt(after_id))
            .order(residents::id)
            .limit(limit)
            .load(conn.db())?;
        Ok(with_next(scope, conn, page)?
            .into_iter()
            .map(|p| Visible::from(p).row)
            .collect())
    }

    /// Residents neither moved out nor deceased: those a programme covers.
    /// Current residents (neither moved out nor deceased) as the reader
    /// sees them: the counts the triggers keep per import (migration
    /// 000016), a few rows whatever the size of the city.
    /// These residents, as the scope sees them (any order; unknown ids are
    /// left out).
    pub fn by_ids(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        ids: &[String],
    ) -> Result<Vec<ResidentRow>, DbError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(crate::db::IDS_PER_QUERY) {
            let rows: Vec<ResidentRow> = visible_residents!(scope, conn)
                .filter(residents::id.eq_any(chunk))
                .load(conn.db())?;
            out.extend(
                with_next(scope, conn, rows)?
                    .into_iter()
                    .map(|p| Visible::from(p).row),
            );
        }
        Ok(out)
    }

    pub fn count_current(scope: &Scope<'_>, conn: &mut TenantConn<'_>) -> Result<i64, DbError> {
        use crate::db::schema::resident_counts;
        Ok(conn
            .rows(resident_counts::table)
            .filter(
                resident_counts::staged_seq
                    .eq(0)
                    .or(resident_counts::staged_seq
                        .le(seen_seq::<diesel::sql_types::BigInt>(scope))),
            )
            .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CAST(coalesce(sum(n), 0) AS BIGINT)",
            ))
            .first(conn.db())?)
    }

    pub fn count_of_municipality(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
    ) -> Result<i64, DbError> {
        Ok(conn
            .rows(residents::table)
            .filter(
                residents::staged_seq
                    .is_null()
                    .or(residents::staged_seq.le(seen_seq::<
                        diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
                    >(scope))),
            )
            .count()
            .get_result(conn.db())?)
    }

    /// Writes back every sealed column and index of this row (a correction,
    /// or re-sealing). Attributes an import that succeeded gave and that are
    /// not yet moved into the row are what the writer read: they go.
    pub fn update_sealed(
        &self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
    ) -> Result<(), DbError> {
        diesel::delete(
            conn.rows(resident_next::table)
                .filter(resident_next::resident_id.eq(&self.id))
                .filter(resident_next::seq.le(seen_seq::<diesel::sql_types::BigInt>(scope))),
        )
        .execute(conn.db())?;
        self.write_sealed(scope, conn, None)?;
        Ok(())
    }

    /// Re-sealing under a new key: writes back every sealed column and
    /// index of this row if its sealed 宛名番号 is still `was` (each write
    /// seals afresh, so any change since the row was read shows there);
    /// false when it has changed, and the newer row stands.
    pub fn replace_sealed(
        &self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        was: &[u8],
    ) -> Result<bool, DbError> {
        Ok(self.write_sealed(scope, conn, Some(was))? == 1)
    }

    fn write_sealed(
        &self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        was: Option<&[u8]>,
    ) -> Result<usize, DbError> {
        let _code = scope.code();
        let row = conn
            .rows(residents::table)
            .filter(residents::id.eq(&self.id));
        let values = (
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
        );
        Ok(match was {
            None => diesel::update(row).set(values).execute(conn.db())?,
            Some(was) => diesel::update(row.filter(residents::addressee_number_sealed.eq(was)))
                .set(values)
                .execute(conn.db())?,
        })
    }
}

impl ResidentRow {
    /// Inserts many rows the fastest way each backend offers: column arrays
    /// on PostgreSQL, multi-row INSERT statements of a fixed size (so SQLite
    /// reuses one prepared statement) on SQLite.
    pub fn insert_many(conn: &mut TenantConn<'_>, rows: &[ResidentRow]) -> Result<(), DbError> {
        conn.check(rows)?;
        if rows.is_empty() {
            return Ok(());
        }
        match conn.db() {
            DbConn::Postgresql(c) => {
                use diesel::sql_types::{BigInt, Binary, Bool, Date, Nullable, Text, Timestamp};
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
                    staged_seq: Nullable<BigInt> as "bigint" = r.staged_seq,
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

    /// Residents holding any of these individual-number indexes, as the
    /// scope sees them.
    pub fn by_my_number_indexes(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        my_number: &[Vec<u8>],
    ) -> Result<Vec<Visible>, DbError> {
        let mut out = Vec::new();
        for chunk in my_number.chunks(1000) {
            let wanted: std::collections::HashSet<&[u8]> =
                chunk.iter().map(Vec::as_slice).collect();
            out.extend(by_index!(
                scope,
                conn,
                my_number_index,
                eq_any(chunk),
                |r: &ResidentRow| {
                    r.my_number_index
                        .as_deref()
                        .is_some_and(|i| wanted.contains(i))
                }
            ));
        }
        Ok(out)
    }

    pub fn by_addressee(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        addressee: &[Vec<u8>],
    ) -> Result<Vec<Visible>, DbError> {
        let mut out = Vec::new();
        for chunk in addressee.chunks(1000) {
            let wanted: std::collections::HashSet<&[u8]> =
                chunk.iter().map(Vec::as_slice).collect();
            out.extend(by_index!(
                scope,
                conn,
                addressee_index,
                eq_any(chunk),
                |r: &ResidentRow| { wanted.contains(r.addressee_index.as_slice()) }
            ));
        }
        Ok(out)
    }

    /// The residents holding any of these 宛名番号 indexes in their own
    /// rows, as a resident import reads them once it has settled every
    /// earlier import (`flows::import_settle::settle`): the only attributes
    /// then waiting in the side table are the import's own, which it keeps
    /// track of itself (the 宛名番号 an import matches by never changes
    /// there). One index search per 1,000 indexes, nothing else.
    pub fn settled_by_addressee(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        addressee: &[Vec<u8>],
    ) -> Result<Vec<ResidentRow>, DbError> {
        let mut out = Vec::with_capacity(addressee.len());
        for chunk in addressee.chunks(1000) {
            let rows: Vec<ResidentRow> = visible_residents!(scope, conn)
                .filter(residents::addressee_index.eq_any(chunk))
                .load(conn.db())?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// The residents with any of these 宛名番号 indexes.
    pub fn by_addressee_indexes(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        addressee: &[Vec<u8>],
    ) -> Result<Vec<ResidentRow>, DbError> {
        Ok(Self::by_addressee(scope, conn, addressee)?
            .into_iter()
            .map(|v| v.row)
            .collect())
    }

    /// The residents holding any of these individual-number indexes: each
    /// one's id and index.
    pub fn holders_of_numbers(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        my_number: &[Vec<u8>],
    ) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        Ok(Self::by_my_number_indexes(scope, conn, my_number)?
            .into_iter()
            .filter_map(|v| Some((v.row.id, v.row.my_number_index?)))
            .collect())
    }

    /// Every resident in one birth-date bucket (a few hundred at most in
    /// the largest city), for a search by name and date of birth; given as
    /// the buckets the date may be stored under (`Scope::birth_buckets`).
    pub fn in_birth_bucket(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        buckets: &[Vec<u8>],
    ) -> Result<Vec<ResidentRow>, DbError> {
        Ok(by_index!(
            scope,
            conn,
            birth_bucket,
            eq_any(buckets),
            |r: &ResidentRow| { r.birth_bucket.as_ref().is_some_and(|b| buckets.contains(b)) }
        )
        .into_iter()
        .map(|v| v.row)
        .collect())
    }

    pub fn set_flags(
        conn: &mut TenantConn<'_>,
        id: &str,
        moved_out_on: Option<NaiveDate>,
        deceased_on: Option<NaiveDate>,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        diesel::update(conn.rows(residents::table).filter(residents::id.eq(id)))
            .set((
                residents::moved_out_on.eq(moved_out_on),
                residents::deceased_on.eq(deceased_on),
                residents::updated_at.eq(at),
            ))
            .execute(conn.db())?;
        Ok(())
    }

    /// Sets a support measure's period, or lifts it (`None`).
    pub fn set_protected(
        conn: &mut TenantConn<'_>,
        id: &str,
        period: Option<crate::domain::Protection>,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        diesel::update(conn.rows(residents::table).filter(residents::id.eq(id)))
            .set((
                residents::address_protected.eq(period.is_some()),
                residents::protected_from.eq(period.map(|p| p.from)),
                residents::protected_until.eq(period.and_then(|p| p.until)),
                residents::protection_review.eq(period.map(|p| p.review)),
                residents::updated_at.eq(at),
            ))
            .execute(conn.db())?;
        Ok(())
    }
}

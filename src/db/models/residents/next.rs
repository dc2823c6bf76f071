//! The attributes a resident import gives residents already stored (table
//! `resident_next`): readers see them in place of the row's own once the
//! import succeeded, and settling moves them into the rows.

use super::*;

/// The attributes a resident import gives a resident already stored:
/// readers see them in place of the row's own once the import has
/// succeeded; settling moves them into the row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = resident_next)]
pub struct NextRow {
    pub municipality_code: String,
    pub resident_id: String,
    pub seq: i64,
    /// Whether the import changes an indexed value (宛名番号, individual
    /// number, birth date): only then are the three index values kept.
    pub reindexed: bool,
    pub addressee_index: Option<Vec<u8>>,
    pub my_number_index: Option<Vec<u8>>,
    pub addressee_number_sealed: Vec<u8>,
    pub my_number_sealed: Option<Vec<u8>>,
    pub name_kanji_sealed: Vec<u8>,
    pub name_kana_sealed: Vec<u8>,
    pub birth_date_sealed: Vec<u8>,
    pub sex_sealed: Vec<u8>,
    pub address_sealed: Option<Vec<u8>>,
    pub content_mac: Option<Vec<u8>>,
    pub birth_bucket: Option<Vec<u8>>,
    pub updated_at: NaiveDateTime,
    /// Whether the change sets the status flags (a change file's move-out,
    /// death or return): a resident import leaves them as they are.
    pub flags_set: bool,
    pub moved_out_on: Option<NaiveDate>,
    pub deceased_on: Option<NaiveDate>,
    /// What the flags do to the count of current residents against the
    /// stored row (-1, 0 or +1), kept by the table's triggers.
    pub count_delta: i32,
}

impl NextRow {
    /// The attributes of `row` (sealed for its id), as import `seq` gives
    /// them to a resident stored with the index values `stored` (宛名番号,
    /// individual number, birth-date bucket).
    /// A row without an individual number leaves the stored one as it is
    /// (`my_number_sealed` None): an import adds or changes a number, never
    /// removes one.
    pub fn of(row: &ResidentRow, seq: i64, stored: IndexValues<'_>) -> NextRow {
        let number = row.my_number_index.as_deref().or(stored.1);
        let reindexed = stored
            != (
                row.addressee_index.as_slice(),
                number,
                row.birth_bucket.as_deref(),
            );
        let kept = |v: Option<&Vec<u8>>| v.filter(|_| reindexed).cloned();
        NextRow {
            municipality_code: row.municipality_code.clone(),
            resident_id: row.id.clone(),
            seq,
            reindexed,
            addressee_index: kept(Some(&row.addressee_index)),
            my_number_index: number.filter(|_| reindexed).map(<[u8]>::to_vec),
            addressee_number_sealed: row.addressee_number_sealed.clone(),
            my_number_sealed: row.my_number_sealed.clone(),
            name_kanji_sealed: row.name_kanji_sealed.clone(),
            name_kana_sealed: row.name_kana_sealed.clone(),
            birth_date_sealed: row.birth_date_sealed.clone(),
            sex_sealed: row.sex_sealed.clone(),
            address_sealed: row.address_sealed.clone(),
            content_mac: row.content_mac.clone(),
            birth_bucket: kept(row.birth_bucket.as_ref()),
            updated_at: row.updated_at,
            flags_set: false,
            moved_out_on: None,
            deceased_on: None,
            count_delta: 0,
        }
    }

    /// The change sets the status flags too; `stored` are the row's own
    /// (moved out, deceased), against which the count of current
    /// residents moves.
    pub fn with_flags(
        mut self,
        flags: (Option<NaiveDate>, Option<NaiveDate>),
        stored: (Option<NaiveDate>, Option<NaiveDate>),
    ) -> NextRow {
        let current =
            |(m, d): (Option<NaiveDate>, Option<NaiveDate>)| i32::from(m.is_none() && d.is_none());
        self.flags_set = true;
        (self.moved_out_on, self.deceased_on) = flags;
        self.count_delta = current(flags) - current(stored);
        self
    }

    pub(super) fn apply(self, r: &mut ResidentRow) {
        if self.reindexed {
            r.addressee_index = self.addressee_index.unwrap_or_default();
            r.my_number_index = self.my_number_index;
            r.birth_bucket = self.birth_bucket;
        }
        r.addressee_number_sealed = self.addressee_number_sealed;
        if self.my_number_sealed.is_some() {
            r.my_number_sealed = self.my_number_sealed;
        }
        r.name_kanji_sealed = self.name_kanji_sealed;
        r.name_kana_sealed = self.name_kana_sealed;
        r.birth_date_sealed = self.birth_date_sealed;
        r.sex_sealed = self.sex_sealed;
        r.address_sealed = self.address_sealed;
        r.content_mac = self.content_mac;
        r.updated_at = self.updated_at;
        if self.flags_set {
            r.moved_out_on = self.moved_out_on;
            r.deceased_on = self.deceased_on;
        }
    }
}
impl NextRow {
    pub fn insert_many(conn: &mut TenantConn<'_>, rows: &[NextRow]) -> Result<(), DbError> {
        conn.check(rows)?;
        crate::db::bulk_insert!(conn.db(), resident_next::table, rows, 400)?;
        Ok(())
    }

    /// Removes the changes import `seq` staged for these residents (a
    /// change file naming a person again replaces them).
    pub fn delete_of_seq(
        conn: &mut TenantConn<'_>,
        resident_ids: &[String],
        seq: i64,
    ) -> Result<usize, DbError> {
        Ok(diesel::delete(
            conn.rows(resident_next::table)
                .filter(resident_next::resident_id.eq_any(resident_ids))
                .filter(resident_next::seq.eq(seq)),
        )
        .execute(conn.db())?)
    }

    /// Sequence numbers of imports whose attributes are not yet settled.
    pub fn seqs(conn: &mut TenantConn<'_>) -> Result<Vec<i64>, DbError> {
        Ok(conn
            .rows(resident_next::table)
            .select(resident_next::seq)
            .distinct()
            .load(conn.db())?)
    }

    /// Moves one resident's attributes from the side table into the row.
    fn fold_one(conn: &mut TenantConn<'_>, n: &NextRow) -> Result<(), DbError> {
        let target = conn
            .rows(residents::table)
            .filter(residents::id.eq(&n.resident_id));
        let sealed = (
            residents::addressee_number_sealed.eq(&n.addressee_number_sealed),
            residents::name_kanji_sealed.eq(&n.name_kanji_sealed),
            residents::name_kana_sealed.eq(&n.name_kana_sealed),
            residents::birth_date_sealed.eq(&n.birth_date_sealed),
            residents::sex_sealed.eq(&n.sex_sealed),
            residents::address_sealed.eq(&n.address_sealed),
            residents::content_mac.eq(&n.content_mac),
            residents::updated_at.eq(n.updated_at),
        );
        // The indexed columns only when they change: setting them costs
        // index work even when the value stays.
        if n.reindexed {
            diesel::update(target.clone())
                .set((
                    sealed,
                    residents::addressee_index.eq(n.addressee_index.clone().unwrap_or_default()),
                    residents::my_number_index.eq(&n.my_number_index),
                    residents::birth_bucket.eq(&n.birth_bucket),
                ))
                .execute(conn.db())?;
        } else {
            diesel::update(target.clone())
                .set(sealed)
                .execute(conn.db())?;
        }
        if let Some(number) = &n.my_number_sealed {
            diesel::update(target.clone())
                .set(residents::my_number_sealed.eq(number))
                .execute(conn.db())?;
        }
        if n.flags_set {
            diesel::update(target)
                .set((
                    residents::moved_out_on.eq(n.moved_out_on),
                    residents::deceased_on.eq(n.deceased_on),
                ))
                .execute(conn.db())?;
        }
        Ok(())
    }

    /// An import that succeeded: a batch of the attributes it gave move
    /// into their residents' rows (readers already see them) and leave the
    /// side table. Returns how many.
    pub fn fold(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        seq: i64,
        limit: i64,
    ) -> Result<usize, DbError> {
        let code = scope.code();
        let batch: Vec<NextRow> = conn
            .rows(resident_next::table)
            .filter(resident_next::seq.eq(seq))
            .limit(limit)
            .select(NextRow::as_select())
            .load(conn.db())?;
        let ids: Vec<&str> = batch.iter().map(|n| n.resident_id.as_str()).collect();
        match conn.db() {
            // One statement for the batch: a round trip per resident would
            // be most of the work.
            DbConn::Postgresql(c) => {
                use diesel::sql_types::{Array, Text};
                diesel::sql_query(
                    "UPDATE residents r SET \
                     addressee_number_sealed = n.addressee_number_sealed, \
                     my_number_sealed = COALESCE(n.my_number_sealed, r.my_number_sealed), \
                     name_kanji_sealed = n.name_kanji_sealed, \
                     name_kana_sealed = n.name_kana_sealed, \
                     birth_date_sealed = n.birth_date_sealed, \
                     sex_sealed = n.sex_sealed, \
                     address_sealed = n.address_sealed, \
                     content_mac = n.content_mac, \
                     updated_at = n.updated_at, \
                     addressee_index = CASE WHEN n.reindexed THEN n.addressee_index ELSE r.addressee_index END, \
                     my_number_index = CASE WHEN n.reindexed THEN n.my_number_index ELSE r.my_number_index END, \
                     birth_bucket = CASE WHEN n.reindexed THEN n.birth_bucket ELSE r.birth_bucket END, \
                     moved_out_on = CASE WHEN n.flags_set THEN n.moved_out_on ELSE r.moved_out_on END, \
                     deceased_on = CASE WHEN n.flags_set THEN n.deceased_on ELSE r.deceased_on END \
                     FROM resident_next n \
                     WHERE n.municipality_code = $1 AND n.resident_id = ANY($2) \
                     AND r.municipality_code = n.municipality_code AND r.id = n.resident_id",
                )
                .bind::<Text, _>(code.as_str())
                .bind::<Array<Text>, _>(&ids)
                .execute(c)?;
            }
            // SQLite runs each cached statement in-process: one per row.
            DbConn::Sqlite(_) => {
                for n in &batch {
                    Self::fold_one(conn, n)?;
                }
            }
        }
        for chunk in ids.chunks(500) {
            diesel::delete(
                conn.rows(resident_next::table)
                    .filter(resident_next::resident_id.eq_any(chunk)),
            )
            .execute(conn.db())?;
        }
        Ok(batch.len())
    }
}

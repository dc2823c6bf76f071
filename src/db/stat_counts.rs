//! The running counts (migrations 000012, 000016 and 000018: the
//! statistics, a municipality's progress, its current residents and its
//! 要確認 queue's history) as rows of text
//! keys, for recounting them from the records while doses go on being
//! recorded (see [`recount`]). The tables, keys and
//! expressions are those of the migrations' triggers.

use super::{DbConn, DbError, numbered};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// A column type, for turning a text key back into the column's value.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    BigInt,
    Date,
}

/// One count table: its key columns and how a counted row (`d`) gives
/// each, the rows it counts, and whether it is kept in shards.
pub struct Table {
    pub name: &'static str,
    columns: &'static [(&'static str, Kind, &'static str)],
    /// The counted rows, as `FROM … d WHERE d.municipality_code = $1 AND …`.
    from: &'static str,
    counted: &'static str,
    /// What each counted row adds.
    weight: &'static str,
    /// Kept in shards on PostgreSQL (migration 000017).
    sharded: bool,
}

/// Doses that count where they were given…
const GIVEN_HERE: &str = "d.status = 'valid' AND d.origin <> 'transferred'";
/// …and, for the municipality's own progress, those transferred here too.
const VALID: &str = "d.status = 'valid'";

const AGE_GROUP: &str =
    "CASE WHEN d.age_band IS NULL THEN 'unknown' WHEN d.age_band >= 65 THEN '65-' ELSE '-64' END";
const PREFECTURE: &str = "substr(d.municipality_code, 1, 2)";

/// `{month}` and `{age_group}` stand for the backend's month of a date and
/// the open data's age group.
pub const TABLES: [Table; 8] = [
    Table {
        name: "stat_daily",
        columns: &[
            ("prefecture_code", Kind::Text, PREFECTURE),
            ("administered_on", Kind::Date, "d.administered_on"),
            ("dose_number", Kind::Int, "d.dose_number"),
        ],
        from: "doses",
        counted: GIVEN_HERE,
        weight: "1",
        sharded: true,
    },
    Table {
        name: "stat_monthly",
        columns: &[
            ("prefecture_code", Kind::Text, PREFECTURE),
            ("month", Kind::Text, "{month}"),
            ("dose_number", Kind::Int, "d.dose_number"),
            ("product_code", Kind::Text, "d.product_code"),
        ],
        from: "doses",
        counted: GIVEN_HERE,
        weight: "1",
        sharded: true,
    },
    Table {
        name: "stat_demographic",
        columns: &[
            ("prefecture_code", Kind::Text, PREFECTURE),
            ("month", Kind::Text, "{month}"),
            ("age_band", Kind::Int, "coalesce(d.age_band, -1)"),
            ("sex", Kind::Text, "coalesce(d.sex, '9')"),
        ],
        from: "doses",
        counted: GIVEN_HERE,
        weight: "1",
        sharded: true,
    },
    Table {
        name: "stat_municipal",
        columns: &[
            ("municipality_code", Kind::Text, "d.municipality_code"),
            ("month", Kind::Text, "{month}"),
            ("dose_number", Kind::Int, "d.dose_number"),
        ],
        from: "doses",
        counted: GIVEN_HERE,
        weight: "1",
        sharded: true,
    },
    Table {
        name: "stat_open",
        columns: &[
            ("prefecture_code", Kind::Text, PREFECTURE),
            ("administered_on", Kind::Date, "d.administered_on"),
            ("dose_number", Kind::Int, "d.dose_number"),
            ("age_group", Kind::Text, "{age_group}"),
            ("sex", Kind::Text, "coalesce(d.sex, '9')"),
        ],
        from: "doses",
        counted: GIVEN_HERE,
        weight: "1",
        sharded: true,
    },
    Table {
        name: "dose_progress",
        columns: &[
            ("municipality_code", Kind::Text, "d.municipality_code"),
            ("month", Kind::Text, "{month}"),
            ("dose_number", Kind::Int, "d.dose_number"),
        ],
        from: "doses",
        counted: VALID,
        weight: "1",
        sharded: true,
    },
    Table {
        name: "resident_counts",
        columns: &[
            ("municipality_code", Kind::Text, "d.municipality_code"),
            ("staged_seq", Kind::BigInt, "coalesce(d.staged_seq, 0)"),
        ],
        from: "residents",
        counted: "d.moved_out_on IS NULL AND d.deceased_on IS NULL",
        weight: "1",
        sharded: false,
    },
    Table {
        name: "queue_days",
        columns: &[
            ("municipality_code", Kind::Text, "d.municipality_code"),
            ("day", Kind::Date, "{day_in_japan}"),
            ("flags", Kind::Text, "d.flags"),
        ],
        from: QUEUE_MOVES,
        counted: "1 = 1",
        weight: "d.w",
        sharded: true,
    },
];

/// The events that move a dose in (+1) or out (-1) of the 要確認 queue, with
/// the rules it was queued for: its first `queued` event, and the first
/// event that settled a dose that had one (migration 000018's trigger).
const QUEUE_MOVES: &str = "(SELECT e.municipality_code, e.at, \
       coalesce(x.quality_flags, '') AS flags, \
       CASE WHEN e.kind = 'queued' THEN 1 ELSE -1 END AS w \
     FROM dose_events e \
     JOIN doses x ON x.municipality_code = e.municipality_code AND x.id = e.dose_id \
     WHERE e.municipality_code = $1 \
       AND e.id = (SELECT f.id FROM dose_events f \
                   WHERE f.municipality_code = e.municipality_code AND f.dose_id = e.dose_id \
                     AND (f.kind = 'queued') = (e.kind = 'queued') \
                   ORDER BY f.at, f.id LIMIT 1) \
       AND EXISTS (SELECT 1 FROM dose_events q \
                   WHERE q.municipality_code = e.municipality_code AND q.dose_id = e.dose_id \
                     AND q.kind = 'queued'))";

/// Key cells are joined with this; none of the keys' values (codes, dates,
/// numbers, age groups) can hold it.
const SEPARATOR: char = '|';

#[derive(QueryableByName)]
struct KeyCount {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A row's key as one text: its cells as text, joined.
fn key_text(conn: &DbConn, cells: impl Iterator<Item = String>) -> String {
    let cells: Vec<String> = cells.map(|c| format!("CAST({c} AS TEXT)")).collect();
    match conn {
        DbConn::Postgresql(_) => format!("concat_ws('{SEPARATOR}', {})", cells.join(", ")),
        DbConn::Sqlite(_) => cells.join(&format!(" || '{SEPARATOR}' || ")),
    }
}

impl Table {
    /// What the records of one municipality add to this table, as its
    /// triggers would have counted them (inside a transaction that sees
    /// that municipality).
    pub fn counted_from_rows(
        &self,
        conn: &mut DbConn,
        code: &str,
    ) -> Result<Vec<(String, i64)>, DbError> {
        let (month, day_in_japan) = match conn {
            DbConn::Postgresql(_) => (
                "to_char(d.administered_on, 'YYYY-MM')",
                "CAST(d.at + interval '9 hours' AS DATE)",
            ),
            DbConn::Sqlite(_) => ("substr(d.administered_on, 1, 7)", "date(d.at, '+9 hours')"),
        };
        let cells = self.columns.iter().map(|(_, _, e)| {
            e.replace("{month}", month)
                .replace("{age_group}", AGE_GROUP)
                .replace("{day_in_japan}", day_in_japan)
        });
        let key = key_text(conn, cells);
        let sql = format!(
            "SELECT {key} AS k, CAST(sum({}) AS BIGINT) AS n FROM {} d \
             WHERE d.municipality_code = $1 AND {} GROUP BY 1",
            self.weight, self.from, self.counted
        );
        Ok(diesel::sql_query(numbered(conn, sql))
            .bind::<Text, _>(code)
            .load::<KeyCount>(conn)?
            .into_iter()
            .map(|r| (r.k, r.n))
            .collect())
    }

    /// Every count of the table as it stands (its shards added up).
    pub fn kept(&self, conn: &mut DbConn) -> Result<Vec<(String, i64)>, DbError> {
        let key = key_text(conn, self.columns.iter().map(|(c, _, _)| c.to_string()));
        let sql = format!(
            "SELECT {key} AS k, CAST(sum(n) AS BIGINT) AS n FROM {} GROUP BY 1",
            self.name
        );
        Ok(diesel::sql_query(sql)
            .load::<KeyCount>(conn)?
            .into_iter()
            .map(|r| (r.k, r.n))
            .collect())
    }

    /// Adds `by` to the count of each key (a new row for a key not kept
    /// yet), as the triggers add and subtract.
    pub fn add(&self, conn: &mut DbConn, rows: &[(String, i64)]) -> Result<(), DbError> {
        let pg = matches!(conn, DbConn::Postgresql(_));
        let names: Vec<&str> = self.columns.iter().map(|(c, _, _)| *c).collect();
        let values: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind, _))| {
                let p = format!("${}", i + 1);
                match (kind, pg) {
                    (Kind::Int, _) => format!("CAST({p} AS INTEGER)"),
                    (Kind::BigInt, _) => format!("CAST({p} AS BIGINT)"),
                    (Kind::Date, true) => format!("CAST({p} AS DATE)"),
                    (Kind::Text, _) | (Kind::Date, false) => p,
                }
            })
            .collect();
        let n = self.columns.len() + 1;
        // Into shard 0, the key's row on SQLite (migration 000017).
        let target = if pg && self.sharded { ", shard" } else { "" };
        let sql = numbered(
            conn,
            format!(
                "INSERT INTO {t} ({cols}, n) VALUES ({vals}, ${n}) \
                 ON CONFLICT ({cols}{target}) DO UPDATE SET n = {t}.n + excluded.n",
                t = self.name,
                cols = names.join(", "),
                vals = values.join(", "),
            ),
        );
        for (key, by) in rows {
            let cells: Vec<&str> = key.split(SEPARATOR).collect();
            if cells.len() != self.columns.len() {
                return Err(DbError::Stored(format!(
                    "a key of {} has {} cells",
                    self.name,
                    cells.len()
                )));
            }
            let mut q = diesel::sql_query(&sql).into_boxed::<<DbConn as Connection>::Backend>();
            for cell in cells {
                q = q.bind::<Text, _>(cell.to_string());
            }
            q.bind::<BigInt, _>(*by).execute(conn)?;
        }
        Ok(())
    }
}

/// Every count recomputed from the doses themselves, while doses go on
/// being recorded: for a database whose counts were never kept, or to
/// check them. Returns how many municipalities were counted and how many
/// counts it corrected.
///
/// Nothing waits on it: the doses and the counts are read in one snapshot
/// (a reading transaction, no lock), and what the snapshot's counts miss
/// or have too many is added in short writing transactions as a
/// difference, as the triggers add. A dose recorded after the snapshot was
/// counted by its trigger and is not in the difference, so it is counted
/// once, however long the recount takes.
pub fn recount(conn: &mut DbConn) -> Result<Recount, DbError> {
    let differences = differences_from_doses(conn)?;
    apply(conn, &differences)
}

/// What each count lacks (or has too many) against the doses, read in one
/// snapshot: the first half of [`recount`].
pub fn differences_from_doses(conn: &mut DbConn) -> Result<Differences, DbError> {
    let codes: Vec<String> = crate::db::models::tenants::TenantRow::active(conn)?
        .into_iter()
        .map(|t| t.municipality_code)
        .collect();
    let per_table = super::snapshot_read(conn, |conn| {
        let mut all = Vec::with_capacity(TABLES.len());
        for table in &TABLES {
            let mut by_key = std::collections::HashMap::<String, i64>::new();
            for code in &codes {
                // Row-level security shows one municipality's doses at a
                // time; the snapshot stays the same across them.
                super::set_transaction_municipality(conn, code)?;
                for (k, n) in table.counted_from_rows(conn, code)? {
                    *by_key.entry(k).or_insert(0) += n;
                }
            }
            // The counts of every municipality: read unscoped again.
            super::set_transaction_municipality(conn, "")?;
            for (k, n) in table.kept(conn)? {
                *by_key.entry(k).or_insert(0) -= n;
            }
            let mut diff: Vec<(String, i64)> =
                by_key.into_iter().filter(|(_, n)| *n != 0).collect();
            diff.sort();
            all.push(diff);
        }
        Ok::<_, DbError>(all)
    })?;
    Ok(Differences {
        municipalities: codes.len(),
        per_table,
    })
}

/// The second half of [`recount`]: adds the differences to the counts as
/// they stand now.
pub fn apply(conn: &mut DbConn, differences: &Differences) -> Result<Recount, DbError> {
    let mut corrected = 0;
    for (table, diff) in TABLES.iter().zip(&differences.per_table) {
        for batch in diff.chunks(RECOUNT_BATCH) {
            super::write_transaction(conn, |conn| table.add(conn, batch))?;
            corrected += batch.len();
        }
    }
    Ok(Recount {
        municipalities: differences.municipalities,
        corrected,
    })
}

/// Per count table (in the order of `db::stat_counts::TABLES`), each key
/// whose count differs from the doses and by how much.
pub struct Differences {
    municipalities: usize,
    per_table: Vec<Vec<(String, i64)>>,
}

/// Counts corrected per writing transaction: short enough that the
/// recording tablets' writes are not kept waiting.
const RECOUNT_BATCH: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recount {
    pub municipalities: usize,
    /// Count cells that differed from the doses.
    pub corrected: usize,
}

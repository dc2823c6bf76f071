//! The running counts (migrations 000012 and 000016: the statistics, a
//! municipality's progress and its current residents) as rows of text
//! keys, for recounting them from the records while doses go on being
//! recorded (see `flows::statistics::recount`). The tables, keys and
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
pub const TABLES: [Table; 7] = [
    Table {
        name: "stat_daily",
        columns: &[
            ("prefecture_code", Kind::Text, PREFECTURE),
            ("administered_on", Kind::Date, "d.administered_on"),
            ("dose_number", Kind::Int, "d.dose_number"),
        ],
        from: "doses",
        counted: GIVEN_HERE,
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
        sharded: false,
    },
];

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
        let month = match conn {
            DbConn::Postgresql(_) => "to_char(d.administered_on, 'YYYY-MM')",
            DbConn::Sqlite(_) => "substr(d.administered_on, 1, 7)",
        };
        let cells = self.columns.iter().map(|(_, _, e)| {
            e.replace("{month}", month)
                .replace("{age_group}", AGE_GROUP)
        });
        let key = key_text(conn, cells);
        let sql = format!(
            "SELECT {key} AS k, CAST(count(*) AS BIGINT) AS n FROM {} d \
             WHERE d.municipality_code = $1 AND {} GROUP BY 1",
            self.from, self.counted
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

//! Flow 1: the eligible-resident file from the resident registry (住基) or
//! the immunisation ledger. Every cell of every line is parsed into a domain
//! type; one bad line rejects the whole file and nothing of it is stored
//! (the whole import is one transaction). Re-importing updates the same
//! person — matched by 宛名番号, or by individual number through the blind
//! index — and an unchanged line writes nothing.
//!
//! Two threads share the work: one decodes, parses and seals lines; the other
//! matches them against stored residents and writes. Memory is bounded by
//! the batch size and the channel between them, not by the file.

mod parse;
pub(crate) mod staged;
mod write;

pub use parse::FileEncoding;
pub(crate) use parse::{CHANGE_DATE, Column as ColumnName, ColumnMap as Columns, keep};
use parse::{Column, ColumnMap, ParsedLine, parse_line};
pub(super) use parse::{csv_lines, resolve_encoding};
use write::Writer;
pub(crate) use write::assign_numbers;

use super::line_errors::Conflict;
pub use super::line_errors::LineError;
use super::networks::NumberRefusal;
use super::residents;
use crate::db::DbConn;
use crate::db::models::residents::ResidentRow;
use crate::db::models::tickets::TicketRow;
use crate::domain::AddresseeNumber;
use crate::tenancy::{Partition, TenancyError};
use chrono::{NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};

/// Lines per batch handed from the parsing thread to the writing thread.
const BATCH: usize = 5000;
/// Lines written per batch: on a 2-core machine about 70–100 ms of
/// writing, the longest any other writer of any municipality waits for an
/// import on SQLite (writers take turns in one queue, and the import
/// commits at the end of the batch during which another asked); on
/// PostgreSQL each batch commits, bounding how long the import holds the
/// row locks of the people it changes.
const WRITE_BATCH: usize = 1000;
/// At most this many errors are kept for the report; all are counted.
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// Size limits, so a wrong file cannot fill the disk or run for hours.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_lines: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // A city of 3.7 million at ~150 bytes a line fits with room.
        Limits {
            max_bytes: 1024 * 1024 * 1024,
            max_lines: 5_000_000,
        }
    }
}

/// Live progress of an import, read by the progress page.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes_total: AtomicU64,
    pub bytes_done: AtomicU64,
    pub lines: AtomicU64,
    /// For a job that reads its file, then works through its lines: the
    /// lines to work through (0 while reading) and those done. Reading is
    /// then the first half of the bar.
    pub work_total: AtomicU64,
    pub work_done: AtomicU64,
    pub two_phase: std::sync::atomic::AtomicBool,
    /// The file has an individual-number column (whether or not its
    /// uploader could hand one over): the job logs the use.
    pub numbers_column: std::sync::atomic::AtomicBool,
}

/// Whether an upload may carry individual numbers, or why not.
pub type NumberAccess = Result<(), NumberRefusal>;

impl Progress {
    /// Share of the work done, 0–100: of the file read, or for a two-phase
    /// job, half for reading and half for the lines.
    pub fn percent(&self) -> u8 {
        let share = |done: u64, total: u64| (done.min(total) * 100).checked_div(total).unwrap_or(0);
        let read = share(
            self.bytes_done.load(Ordering::Relaxed),
            self.bytes_total.load(Ordering::Relaxed),
        );
        if !self.two_phase.load(Ordering::Relaxed) {
            return read as u8;
        }
        let total = self.work_total.load(Ordering::Relaxed);
        if total == 0 {
            return (read / 2) as u8;
        }
        (50 + share(self.work_done.load(Ordering::Relaxed), total) / 2) as u8
    }
}

struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress
            .bytes_done
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What a finished import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub encoding: String,
    pub lines: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub tickets_issued: u64,
    /// Residents flagged moved-out or deceased who got no new ticket.
    pub tickets_withheld: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file was rejected: {error_count} errors")]
    Rejected {
        lines: u64,
        error_count: u64,
        errors: Vec<LineError>,
    },
    #[error("the file could not be read: {0}")]
    Unreadable(String),
    #[error("the job was declared dead while it ran (its lease was taken)")]
    LeaseLost,
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
}

impl crate::db::DbCause for ImportError {
    fn db_cause(&self) -> Option<&crate::db::DbError> {
        match self {
            ImportError::Tenancy(e) => crate::db::DbCause::db_cause(e),
            _ => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(ImportError);

impl From<residents::ResidentError> for ImportError {
    fn from(e: residents::ResidentError) -> Self {
        match e {
            residents::ResidentError::Tenancy(t) => ImportError::Tenancy(t),
            other => ImportError::Unreadable(other.to_string()),
        }
    }
}

impl From<crate::db::DbError> for ImportError {
    fn from(e: crate::db::DbError) -> Self {
        ImportError::Tenancy(e.into())
    }
}

/// Who the import's tickets are issued by, as stored on each ticket.
pub fn issuer_of_job(job_id: &str) -> String {
    format!("import:{job_id}")
}

/// A source that can be read from the start more than once (to detect the
/// encoding, then to import).
pub type Opener<'a> = &'a (dyn Fn() -> io::Result<Box<dyn Read + Send>> + Sync);

/// A parsed line sealed for insertion under a fresh id.
pub(crate) struct Prepared {
    pub(crate) parsed: ParsedLine,
    pub(crate) row: ResidentRow,
}

/// Where a resident import writes: its sequence number (what it writes
/// carries it, and readers see none of it until the job row says the
/// import succeeded), and what every one of its short write transactions
/// must confirm first (that the job still holds its lease: a job declared
/// dead is not written to any more).
pub struct Staging<'a> {
    pub seq: i64,
    /// Whether the uploader may hand individual numbers over.
    pub numbers: NumberAccess,
    pub keep_alive: &'a (dyn Fn(&mut DbConn) -> Result<(), ImportError> + Sync),
}

/// Writes a whole file into the partition as import `staging.seq`, a batch
/// of lines per transaction, so that other writers (of every municipality)
/// wait at most for one batch. Nothing it writes is visible to anyone else
/// until the caller marks the job succeeded; a file with any bad line is
/// rejected, and the caller settles what it wrote (see `import_settle`).
#[allow(clippy::too_many_arguments)]
pub fn import(
    conn: &mut DbConn,
    partition: &Partition,
    staging: &Staging<'_>,
    open: Opener<'_>,
    encoding: FileEncoding,
    limits: Limits,
    issued_by: &str,
    progress: &Progress,
) -> Result<Outcome, ImportError> {
    let encoding = resolve_encoding(open, encoding)?;
    let stamp = stamp_now();
    let mut w = Writer::new(stamp, issued_by, staging.seq);
    let held = partition.read(conn, |scope, conn| {
        let scope = scope.through_import(staging.seq);
        Ok::<_, ImportError>((
            ResidentRow::count_of_municipality(&scope, conn)?,
            TicketRow::count_of_municipality(&scope, conn)?,
        ))
    })?;
    w.fresh = held == (0, 0);
    w.held = held.0;
    w.counted = held.0;
    w.outcome.encoding = encoding.code().to_string();
    let format = ResidentLines {
        scope: partition.sealing_scope(),
        today: stamp.date(),
        stamp,
        numbers: staging.numbers,
    };
    staged::run(
        conn,
        partition,
        Some(staging.seq),
        staging.keep_alive,
        open,
        (encoding, limits),
        &format,
        &mut w,
        progress,
    )?;
    w.finish()
}

/// The time the rows of a file carry, to the microsecond (as PostgreSQL
/// keeps it).
pub(crate) fn stamp_now() -> NaiveDateTime {
    let now = crate::clock::now();
    now.with_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now)
}

/// The resident file's lines, parsed and sealed for insertion under a
/// fresh id on the reading thread.
pub(crate) struct ResidentLines<'a> {
    pub(crate) scope: crate::tenancy::Scope<'a>,
    pub(crate) today: chrono::NaiveDate,
    pub(crate) stamp: NaiveDateTime,
    pub(crate) numbers: NumberAccess,
}

impl staged::LineFormat for ResidentLines<'_> {
    type Columns = ColumnMap;
    type Line = Prepared;

    fn header(
        &self,
        rec: &csv::StringRecord,
        line: u64,
        progress: &Progress,
    ) -> Result<ColumnMap, Vec<LineError>> {
        if Column::of_header_row(rec, Column::MyNumber) {
            progress.numbers_column.store(true, Ordering::Relaxed);
        }
        ColumnMap::from_header(rec, line, self.numbers, &Column::REQUIRED)
    }

    fn line(
        &self,
        m: &ColumnMap,
        rec: &csv::StringRecord,
        line: u64,
    ) -> Result<Prepared, Vec<LineError>> {
        parse_line(m, rec, line, self.today).map(|parsed| {
            let row = residents::new_row(
                &self.scope,
                &parsed.resident,
                crate::domain::new_record_id(),
                self.stamp,
            );
            Prepared { parsed, row }
        })
    }

    fn no_header(&self) -> LineError {
        LineError::conflict(1, AddresseeNumber::FIELD, Conflict::MissingColumn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    fn record(cells: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(cells.to_vec())
    }

    fn header() -> ColumnMap {
        ColumnMap::from_header(
            &record(&[
                "宛名番号",
                "個人番号",
                "氏名",
                "氏名カナ",
                "生年月日",
                "性別",
                "住所",
                "接種券番号",
                "券種",
                "回数",
            ]),
            1,
            Ok(()),
            &Column::REQUIRED,
        )
        .unwrap()
    }

    #[test]
    fn detects_encodings() {
        assert_eq!(FileEncoding::detect(b"\xEF\xBB\xBFa,b"), FileEncoding::Utf8);
        assert_eq!(
            FileEncoding::detect("宛名番号".as_bytes()),
            FileEncoding::Utf8
        );
        // 宛名 in Shift_JIS.
        assert_eq!(
            FileEncoding::detect(b"\x88\xb6\x96\xbc"),
            FileEncoding::ShiftJis
        );
        // UTF-8 cut in the middle of a character is still UTF-8.
        let cut = &"宛名".as_bytes()[..4];
        assert_eq!(FileEncoding::detect(cut), FileEncoding::Utf8);
    }

    #[test]
    fn header_must_name_the_required_columns() {
        let errs =
            ColumnMap::from_header(&record(&["宛名番号", "氏名"]), 1, Ok(()), &Column::REQUIRED)
                .unwrap_err();
        let cols: Vec<_> = errs.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(cols, ["氏名カナ", "生年月日", "性別"]);
        assert!(errs.iter().all(|e| e.line == 1));
    }

    #[test]
    fn an_individual_number_column_needs_the_right_to_hand_numbers_over() {
        let cells = [
            "宛名番号",
            "マイナンバー",
            "氏名",
            "氏名カナ",
            "生年月日",
            "性別",
        ];
        assert!(ColumnMap::from_header(&record(&cells), 1, Ok(()), &Column::REQUIRED).is_ok());
        for refusal in [
            NumberRefusal::Role,
            NumberRefusal::Network,
            NumberRefusal::SecondFactor,
        ] {
            let errs = ColumnMap::from_header(&record(&cells), 3, Err(refusal), &Column::REQUIRED)
                .unwrap_err();
            assert_eq!(errs.len(), 1);
            assert_eq!((errs[0].line, errs[0].column.as_str()), (3, "個人番号"));
            assert!(
                errs[0].message_ja.contains("LG-WAN"),
                "{}",
                errs[0].message_ja
            );
        }
        // Without the column, nothing is asked.
        assert!(
            ColumnMap::from_header(
                &record(
                    &cells[..1]
                        .iter()
                        .chain(&cells[2..])
                        .copied()
                        .collect::<Vec<_>>()
                ),
                1,
                Err(NumberRefusal::Role),
                &Column::REQUIRED
            )
            .is_ok()
        );
    }

    #[test]
    fn a_good_line_parses_with_defaults() {
        let r = record(&[
            "A-1",
            "123456789018",
            "山田 太郎",
            "ヤマダ タロウ",
            "1980/04/01",
            "1",
            "",
            "",
            "",
            "",
        ]);
        let p = parse_line(&header(), &r, 2, today()).unwrap();
        assert_eq!(p.kind.get(), 1);
        assert_eq!(p.dose.get(), 1);
        assert!(p.ticket.is_none());
        assert!(p.resident.address.is_none());
    }

    #[test]
    fn every_bad_cell_of_a_line_is_named_without_its_value() {
        let r = record(&[
            "",
            "123456789017",
            "山田",
            "やまだ",
            "1980-02-30",
            "3",
            "",
            "12345",
            "0",
            "x",
        ]);
        let errs = parse_line(&header(), &r, 7, today()).unwrap_err();
        let cols: Vec<_> = errs.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(
            cols,
            [
                "宛名番号",
                "個人番号",
                "氏名カナ",
                "生年月日",
                "性別",
                "接種券番号",
                "券種",
                "回数"
            ]
        );
        assert!(errs.iter().all(|e| e.line == 7));
        let text = serde_json::to_string(&errs).unwrap();
        assert!(!text.contains("123456789017"));
    }

    #[test]
    fn undecodable_cells_are_reported() {
        let r = record(&[
            "A-1",
            "",
            "山\u{FFFD}",
            "ヤマダ",
            "1980-01-01",
            "1",
            "",
            "",
            "",
            "",
        ]);
        let errs = parse_line(&header(), &r, 3, today()).unwrap_err();
        assert_eq!(errs[0].column, "氏名");
        assert!(errs[0].message_ja.contains("文字コード"));
    }
}

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

use super::csv_lines::{CsvLines, Next};
use super::line_errors::Conflict;
pub use super::line_errors::LineError;
use super::networks::NumberRefusal;
use super::residents::{self, NewResident};
use crate::db::DbConn;
use crate::db::models::resident_events::ResidentEventRow;
use crate::db::models::residents::{NextRow, ResidentRow, Visible};
use crate::db::models::tickets::{self as ticket_rows, TicketRow};
use crate::domain::{
    Address, AddresseeNumber, BirthDate, DoseNumber, FieldError, KanaName, MyNumber, PersonName,
    Sex, TicketKind, TicketNumber,
};
use crate::tenancy::{Partition, Scope, TenancyError};
use chrono::{NaiveDate, NaiveDateTime, Timelike};
use diesel::Connection;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

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

/// The file's character encoding: detected, or chosen by the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEncoding {
    Auto,
    Utf8,
    ShiftJis,
}

impl FileEncoding {
    pub fn parse(s: &str) -> Option<FileEncoding> {
        match s {
            "auto" | "" => Some(FileEncoding::Auto),
            "utf8" | "utf-8" => Some(FileEncoding::Utf8),
            "sjis" | "shift_jis" | "cp932" => Some(FileEncoding::ShiftJis),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            FileEncoding::Auto => "auto",
            FileEncoding::Utf8 => "utf8",
            FileEncoding::ShiftJis => "sjis",
        }
    }

    /// UTF-8 when the file starts with its BOM or its opening is valid
    /// UTF-8; Shift_JIS (CP932, as Windows writes it) otherwise.
    pub fn detect(head: &[u8]) -> FileEncoding {
        if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return FileEncoding::Utf8;
        }
        match std::str::from_utf8(head) {
            Ok(_) => FileEncoding::Utf8,
            // Cut mid-character at the end of the sample: still UTF-8.
            Err(e) if e.error_len().is_none() => FileEncoding::Utf8,
            Err(_) => FileEncoding::ShiftJis,
        }
    }

    fn encoding(&self) -> &'static encoding_rs::Encoding {
        match self {
            // WHATWG's Shift_JIS is the CP932 superset Windows writes.
            FileEncoding::ShiftJis => encoding_rs::SHIFT_JIS,
            _ => encoding_rs::UTF_8,
        }
    }
}

/// The columns we read, by their Japanese header names (and the variants
/// registry systems write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Addressee,
    MyNumber,
    NameKanji,
    NameKana,
    BirthDate,
    Sex,
    Address,
    Ticket,
    Kind,
    Dose,
}

const COLUMNS: usize = 10;

impl Column {
    fn of_header(h: &str) -> Option<Column> {
        let h = h.trim().trim_start_matches('\u{FEFF}');
        Some(match h {
            "宛名番号" => Column::Addressee,
            "個人番号" | "マイナンバー" => Column::MyNumber,
            "氏名" | "漢字氏名" | "氏名漢字" => Column::NameKanji,
            "氏名カナ" | "カナ氏名" | "フリガナ" => Column::NameKana,
            "生年月日" => Column::BirthDate,
            "性別" => Column::Sex,
            "住所" => Column::Address,
            "接種券番号" | "券番号" => Column::Ticket,
            "券種" => Column::Kind,
            "回数" | "接種回数" => Column::Dose,
            _ => return None,
        })
    }

    /// Whether a header line names column `c`.
    fn of_header_row(header: &csv::StringRecord, c: Column) -> bool {
        header.iter().any(|h| Column::of_header(h) == Some(c))
    }

    fn name(&self) -> &'static str {
        match self {
            Column::Addressee => AddresseeNumber::FIELD,
            Column::MyNumber => "個人番号",
            Column::NameKanji => PersonName::FIELD,
            Column::NameKana => KanaName::FIELD,
            Column::BirthDate => BirthDate::FIELD,
            Column::Sex => Sex::FIELD,
            Column::Address => Address::FIELD,
            Column::Ticket => TicketNumber::FIELD,
            Column::Kind => TicketKind::FIELD,
            Column::Dose => DoseNumber::FIELD,
        }
    }

    const REQUIRED: [Column; 5] = [
        Column::Addressee,
        Column::NameKanji,
        Column::NameKana,
        Column::BirthDate,
        Column::Sex,
    ];
}

#[derive(Debug)]
struct ColumnMap([Option<usize>; COLUMNS]);

impl ColumnMap {
    /// The columns of a header line; an individual-number column only when
    /// the uploader may hand individual numbers over (`numbers`).
    fn from_header(
        header: &csv::StringRecord,
        line: u64,
        numbers: NumberAccess,
    ) -> Result<ColumnMap, Vec<LineError>> {
        let mut map = [None; COLUMNS];
        let mut errors = Vec::new();
        if header.iter().any(|h| h.contains('\u{FFFD}')) {
            // The wrong encoding: say so rather than "no such column".
            return Err(vec![LineError::field(
                line,
                FieldError {
                    field: "",
                    reason: crate::domain::Reason::Undecodable,
                },
            )]);
        }
        for (i, h) in header.iter().enumerate() {
            if let Some(c) = Column::of_header(h) {
                if map[c as usize].is_some() {
                    errors.push(LineError::conflict(
                        line,
                        c.name(),
                        Conflict::DuplicateColumn,
                    ));
                }
                map[c as usize] = Some(i);
            }
        }
        if map[Column::MyNumber as usize].is_some() && numbers.is_err() {
            errors.push(LineError::conflict(
                line,
                Column::MyNumber.name(),
                Conflict::NumbersNotAllowed,
            ));
        }
        for c in Column::REQUIRED {
            if map[c as usize].is_none() {
                errors.push(LineError::conflict(line, c.name(), Conflict::MissingColumn));
            }
        }
        if errors.is_empty() {
            Ok(ColumnMap(map))
        } else {
            Err(errors)
        }
    }

    fn cell<'r>(&self, rec: &'r csv::StringRecord, c: Column) -> Option<&'r str> {
        self.0[c as usize].map(|i| rec.get(i).unwrap_or(""))
    }
}

/// One good line, parsed.
#[derive(Debug, Clone)]
pub struct ParsedLine {
    pub line: u64,
    pub resident: NewResident,
    pub ticket: Option<TicketNumber>,
    pub kind: TicketKind,
    pub dose: DoseNumber,
}

fn parse_line(
    map: &ColumnMap,
    rec: &csv::StringRecord,
    line: u64,
    today: NaiveDate,
) -> Result<ParsedLine, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut take = |c: Column| -> Option<&str> {
        let cell = map.cell(rec, c)?;
        // A character the decoder could not map: the wrong encoding was
        // chosen, or the file is damaged.
        if cell.contains('\u{FFFD}') {
            errors.push(LineError::field(
                line,
                FieldError {
                    field: c.name(),
                    reason: crate::domain::Reason::Undecodable,
                },
            ));
            return None;
        }
        Some(cell)
    };
    let addressee = take(Column::Addressee).map(AddresseeNumber::parse);
    let my_number = take(Column::MyNumber)
        .filter(|s| !s.trim().is_empty())
        .map(MyNumber::parse);
    let kanji = take(Column::NameKanji).map(PersonName::parse);
    let kana = take(Column::NameKana).map(KanaName::parse);
    let birth = take(Column::BirthDate).map(|s| BirthDate::parse(s, today));
    let sex = take(Column::Sex).map(Sex::parse);
    let address = take(Column::Address).map(Address::parse);
    let ticket = take(Column::Ticket)
        .filter(|s| !s.trim().is_empty())
        .map(TicketNumber::parse);
    let kind = take(Column::Kind)
        .filter(|s| !s.trim().is_empty())
        .map(TicketKind::parse);
    let dose = take(Column::Dose)
        .filter(|s| !s.trim().is_empty())
        .map(DoseNumber::parse);
    let e = &mut errors;
    let (addressee, my_number, kanji, kana, birth, sex) = (
        keep(e, line, addressee),
        keep(e, line, my_number),
        keep(e, line, kanji),
        keep(e, line, kana),
        keep(e, line, birth),
        keep(e, line, sex),
    );
    let (address, ticket, kind, dose) = (
        keep(e, line, address),
        keep(e, line, ticket),
        keep(e, line, kind),
        keep(e, line, dose),
    );
    match (addressee, kanji, kana, birth, sex) {
        (
            Some(addressee_number),
            Some(name_kanji),
            Some(name_kana),
            Some(birth_date),
            Some(sex),
        ) if errors.is_empty() => Ok(ParsedLine {
            line,
            resident: NewResident {
                addressee_number,
                my_number,
                name_kanji,
                name_kana,
                birth_date,
                sex,
                address: address.flatten().map(|a| a.as_str().to_string()),
            },
            ticket,
            kind: kind.unwrap_or_default(),
            dose: dose.unwrap_or_default(),
        }),
        _ => Err(errors),
    }
}

/// A parsed cell's value, or its error noted.
fn keep<T>(errors: &mut Vec<LineError>, line: u64, r: Option<Result<T, FieldError>>) -> Option<T> {
    match r {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            errors.push(LineError::field(line, e));
            None
        }
        None => None,
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

enum Message {
    Header(Vec<LineError>),
    Lines(Vec<Result<Prepared, Vec<LineError>>>),
    TooManyLines(u64),
    Unreadable(String),
}

/// A parsed line sealed for insertion under a fresh id.
struct Prepared {
    parsed: ParsedLine,
    row: ResidentRow,
}

/// The encoding chosen, or detected from the file's opening.
pub(crate) fn resolve_encoding(
    open: Opener<'_>,
    encoding: FileEncoding,
) -> Result<FileEncoding, ImportError> {
    let unreadable = |e: io::Error| ImportError::Unreadable(e.to_string());
    Ok(match encoding {
        FileEncoding::Auto => {
            let mut head = Vec::with_capacity(64 * 1024);
            open()
                .map_err(unreadable)?
                .take(64 * 1024)
                .read_to_end(&mut head)
                .map_err(unreadable)?;
            FileEncoding::detect(&head)
        }
        chosen => chosen,
    })
}

/// The file's lines (see `csv_lines`), decoded; the bytes read are counted
/// into `progress`.
pub(crate) fn csv_lines<'a>(
    source: Box<dyn Read + Send>,
    encoding: FileEncoding,
    progress: &'a Progress,
) -> CsvLines<impl Read + 'a> {
    CsvLines::new(
        encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding.encoding()))
            .bom_sniffing(true)
            .strip_bom(true)
            .build(Counting {
                inner: source,
                progress,
            }),
    )
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
    // Microsecond precision, as PostgreSQL keeps it.
    let now = crate::clock::now();
    let stamp = now
        .with_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    let mut w = Writer::new(stamp, issued_by, staging.seq);
    let held = partition.read(conn, |scope, conn| {
        let scope = scope.through_import(staging.seq);
        Ok::<_, ImportError>((
            ResidentRow::count_of_municipality(&scope, conn)?,
            TicketRow::count_of_municipality(&scope, conn)?,
        ))
    })?;
    w.fresh = held == (0, 0);
    // The residents PostgreSQL's statistics last counted here: as the
    // import grows the municipality past three times that, they are taken
    // again, so that its lookups keep the plan of their own index (with
    // the statistics of a 40-line pilot, a lookup by 宛名番号 read the whole
    // municipality through another index).
    let mut counted = held.0;
    w.outcome.encoding = encoding.code().to_string();
    let (tx, rx) = mpsc::sync_channel::<Message>(4);
    std::thread::scope(|s| {
        let reading = Reading {
            encoding,
            limits,
            stamp,
            numbers: staging.numbers,
        };
        s.spawn(|| read_and_seal(partition, open, reading, progress, tx));
        let mut feed = Feed {
            rx: &rx,
            lines: Vec::new(),
            done: false,
        };
        // Each transaction writes batches until another writer waits (see
        // `db::should_commit`), the reader has nothing ready, or the file
        // ends; the next one begins when the reader has more.
        while let Some(first) = feed.next(&mut w, true)? {
            partition.run(conn, |scope, conn| {
                (staging.keep_alive)(conn)?;
                crate::db::prefer_indexes(conn)?;
                let scope = scope.through_import(staging.seq);
                let began = std::time::Instant::now();
                let mut batch = first;
                loop {
                    w.batch(&scope, conn, batch)?;
                    if crate::db::should_commit(conn, began) {
                        return Ok::<_, ImportError>(());
                    }
                    match feed.next(&mut w, false)? {
                        Some(next) => batch = next,
                        None => return Ok(()),
                    }
                }
            })?;
            super::faults::point("import.batch");
            let now_held = held.0 + w.outcome.inserted as i64;
            if !w.fresh && now_held >= (3 * counted).max(1000) {
                crate::db::refresh_resident_statistics(conn)?;
                counted = now_held;
            }
        }
        // Dropping the receiver stops the reader if we left early.
        drop(rx);
        Ok::<_, ImportError>(())
    })?;
    w.finish()
}

/// A parsed line, sealed, or what is wrong with it.
type Line = Result<Prepared, Vec<LineError>>;

/// The parsed lines as the writer takes them: a batch at a time, with
/// what else the reader sends (errors of the header, the end) noted.
struct Feed<'r> {
    rx: &'r mpsc::Receiver<Message>,
    lines: Vec<Line>,
    done: bool,
}

impl Feed<'_> {
    /// The next batch of at most `WRITE_BATCH` lines; when `wait` is false,
    /// None also when the reader has nothing ready yet.
    fn next(&mut self, w: &mut Writer<'_>, wait: bool) -> Result<Option<Vec<Line>>, ImportError> {
        while self.lines.is_empty() && !self.done {
            let msg = if wait {
                self.rx.recv().ok()
            } else {
                match self.rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(mpsc::TryRecvError::Empty) => return Ok(None),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                }
            };
            match msg {
                None => self.done = true,
                Some(Message::Header(errors)) => w.reject(errors),
                Some(Message::Lines(lines)) => self.lines = lines,
                Some(Message::TooManyLines(max)) => {
                    w.reject(vec![LineError::conflict(
                        max + 1,
                        "",
                        Conflict::TooManyLines(max),
                    )]);
                    self.done = true;
                }
                Some(Message::Unreadable(e)) => return Err(ImportError::Unreadable(e)),
            }
        }
        if self.lines.is_empty() {
            return Ok(None);
        }
        let rest = self.lines.split_off(self.lines.len().min(WRITE_BATCH));
        Ok(Some(std::mem::replace(&mut self.lines, rest)))
    }
}

/// How the reader takes the file: decoded as, how much of it, the time
/// its rows carry, and whether individual numbers may come with it.
struct Reading {
    encoding: FileEncoding,
    limits: Limits,
    stamp: NaiveDateTime,
    numbers: NumberAccess,
}

fn read_and_seal(
    partition: &Partition,
    open: Opener<'_>,
    reading: Reading,
    progress: &Progress,
    tx: mpsc::SyncSender<Message>,
) {
    let Reading {
        encoding,
        limits,
        stamp,
        numbers,
    } = reading;
    let source = match open() {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Message::Unreadable(e.to_string()));
            return;
        }
    };
    let mut lines = csv_lines(source, encoding, progress);
    let scope = partition.sealing_scope();
    let today = stamp.date();
    let mut rec = csv::StringRecord::new();
    let mut map: Option<ColumnMap> = None;
    let mut batch = Vec::with_capacity(BATCH);
    let mut data_lines = 0u64;
    loop {
        let next = match lines.next(&mut rec) {
            Ok(next) => next,
            Err(e) => {
                let _ = tx.send(Message::Unreadable(e.to_string()));
                return;
            }
        };
        let (line, refused) = match next {
            Next::End => break,
            Next::Header(line) => {
                if Column::of_header_row(&rec, Column::MyNumber) {
                    progress.numbers_column.store(true, Ordering::Relaxed);
                }
                match ColumnMap::from_header(&rec, line, numbers) {
                    Ok(m) => map = Some(m),
                    Err(errors) => {
                        let _ = tx.send(Message::Header(errors));
                        return;
                    }
                }
                continue;
            }
            Next::Record(line) => (line, None),
            Next::Refused(e) => (e.line, Some(e)),
        };
        let Some(m) = &map else {
            // Refused before a header was read: nothing after it can be.
            let _ = tx.send(Message::Header(refused.into_iter().collect()));
            return;
        };
        data_lines += 1;
        if data_lines > limits.max_lines {
            let _ = tx.send(Message::TooManyLines(limits.max_lines));
            return;
        }
        progress.lines.store(data_lines, Ordering::Relaxed);
        if let Some(e) = refused {
            batch.push(Err(vec![e]));
        } else {
            batch.push(parse_line(m, &rec, line, today).map(|parsed| {
                let row = residents::new_row(
                    &scope,
                    &parsed.resident,
                    uuid::Uuid::now_v7().to_string(),
                    stamp,
                );
                Prepared { parsed, row }
            }));
        }
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.send(Message::Lines(full)).is_err() {
                return;
            }
        }
    }
    if map.is_none() {
        let _ = tx.send(Message::Header(vec![LineError::conflict(
            1,
            AddresseeNumber::FIELD,
            Conflict::MissingColumn,
        )]));
        return;
    }
    if !batch.is_empty() {
        let _ = tx.send(Message::Lines(batch));
    }
}

/// The writing side: decides insert / update / unchanged per line, writes,
/// and collects every error; any error rolls the whole import back.
struct Writer<'a> {
    stamp: NaiveDateTime,
    issued_by: &'a str,
    /// This import's sequence number: rows it wrote carry it.
    seq: i64,
    outcome: Outcome,
    errors: Vec<LineError>,
    error_count: u64,
    /// Stored residents an earlier line matched (those it changed too:
    /// their rows are read as stored until the import succeeds). Residents
    /// the import inserted carry its number instead.
    matched: HashSet<String>,
    rng: rand::rngs::ThreadRng,
    /// The partition held no resident and no ticket when the import began.
    fresh: bool,
}

/// What the writer knows about one resident while deciding a batch.
#[derive(Clone)]
struct Known {
    m: ResidentMatch,
    active_ticket: Option<String>,
}

/// A stored resident as an import needs to know it, without opening
/// anything sealed.
#[derive(Debug, Clone)]
struct ResidentMatch {
    id: String,
    addressee_index: Vec<u8>,
    my_number_index: Option<Vec<u8>>,
    birth_bucket: Option<Vec<u8>>,
    content_mac: Option<Vec<u8>>,
    flagged: bool,
    /// The import that last wrote the resident.
    written_by: Option<i64>,
}

impl From<ResidentRow> for ResidentMatch {
    fn from(row: ResidentRow) -> Self {
        let written_by = row.staged_seq;
        ResidentMatch::from(Visible { row, written_by })
    }
}

impl From<Visible> for ResidentMatch {
    fn from(v: Visible) -> Self {
        ResidentMatch {
            flagged: v.row.moved_out_on.is_some() || v.row.deceased_on.is_some(),
            id: v.row.id,
            addressee_index: v.row.addressee_index,
            my_number_index: v.row.my_number_index,
            birth_bucket: v.row.birth_bucket,
            content_mac: v.row.content_mac,
            written_by: v.written_by,
        }
    }
}

impl<'a> Writer<'a> {
    fn new(stamp: NaiveDateTime, issued_by: &'a str, seq: i64) -> Self {
        Writer {
            stamp,
            issued_by,
            seq,
            outcome: Outcome::default(),
            errors: Vec::new(),
            error_count: 0,
            matched: HashSet::new(),
            rng: rand::thread_rng(),
            fresh: false,
        }
    }

    fn reject(&mut self, errors: Vec<LineError>) {
        self.error_count += errors.len() as u64;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(errors.into_iter().take(room));
    }

    fn finish(self) -> Result<Outcome, ImportError> {
        if self.error_count > 0 {
            let mut errors = self.errors;
            errors.sort_by_key(|e| e.line);
            return Err(ImportError::Rejected {
                lines: self.outcome.lines,
                error_count: self.error_count,
                errors,
            });
        }
        Ok(self.outcome)
    }

    fn touched(&self, k: &Known) -> bool {
        k.m.written_by == Some(self.seq) || self.matched.contains(&k.m.id)
    }

    fn batch(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut DbConn,
        lines: Vec<Result<Prepared, Vec<LineError>>>,
    ) -> Result<(), ImportError> {
        self.outcome.lines += lines.len() as u64;
        let mut good = Vec::with_capacity(lines.len());
        for l in lines {
            match l {
                Ok(p) => good.push(p),
                Err(e) => self.reject(e),
            }
        }
        if self.fresh && self.error_count == 0 && self.try_fresh(scope, conn, &mut good)? {
            return Ok(());
        }
        // Writing goes on after an error, inside the transaction that will be
        // rolled back, so that conflicts further down (a person or ticket
        // named twice) are still found and listed.
        // What is stored already about the people of this batch: each is
        // found by its 宛名番号, the registry's key. An individual number is
        // looked up only where it is not the one the person found already
        // holds (a new person, or a number that changes): the unique index
        // vouches that no one else holds it otherwise.
        let addressee: Vec<Vec<u8>> = good.iter().map(|p| p.row.addressee_index.clone()).collect();
        let mut matches: Vec<ResidentMatch> =
            ResidentRow::settled_by_addressee(scope, conn, &addressee)?
                .into_iter()
                .map(ResidentMatch::from)
                .collect();
        let held: HashMap<&[u8], Option<&[u8]>> = matches
            .iter()
            .map(|m| (m.addressee_index.as_slice(), m.my_number_index.as_deref()))
            .collect();
        let numbers: Vec<Vec<u8>> = good
            .iter()
            .filter_map(|p| {
                let n = p.row.my_number_index.as_deref()?;
                match held.get(p.row.addressee_index.as_slice()) {
                    Some(Some(own)) if *own == n => None,
                    _ => Some(n.to_vec()),
                }
            })
            .collect();
        drop(held);
        if !numbers.is_empty() {
            let mut ids: HashSet<String> = matches.iter().map(|m| m.id.clone()).collect();
            matches.extend(
                ResidentRow::by_my_number_indexes(scope, conn, &numbers)?
                    .into_iter()
                    .map(ResidentMatch::from)
                    .filter(|m| ids.insert(m.id.clone())),
            );
        }
        // The tickets the file names, checked against every ticket the
        // municipality ever issued; the active ticket of each person found,
        // unless the line names it already.
        let given: Vec<String> = good
            .iter()
            .filter_map(|p| p.parsed.ticket.as_ref().map(|t| t.as_str().to_string()))
            .collect();
        let mut tickets: HashMap<String, TicketRow> = TicketRow::existing(scope, conn, &given)?
            .into_iter()
            .map(|t| (t.ticket_number.clone(), t))
            .collect();
        let mut active: HashMap<String, String> = tickets
            .values()
            .filter(|t| t.status == ticket_rows::ACTIVE)
            .map(|t| (t.resident_id.clone(), t.ticket_number.clone()))
            .collect();
        let unknown: Vec<String> = matches
            .iter()
            .filter(|m| !active.contains_key(&m.id))
            .map(|m| m.id.clone())
            .collect();
        if !unknown.is_empty() {
            for t in TicketRow::active_of_residents(scope, conn, &unknown)? {
                active.insert(t.resident_id, t.ticket_number);
            }
        }
        let mut by_addressee: HashMap<Vec<u8>, Known> = HashMap::new();
        let mut by_number: HashMap<Vec<u8>, Known> = HashMap::new();
        for m in matches {
            let k = Known {
                active_ticket: active.get(&m.id).cloned(),
                m,
            };
            by_addressee.insert(k.m.addressee_index.clone(), k.clone());
            if let Some(n) = &k.m.my_number_index {
                by_number.insert(n.clone(), k);
            }
        }

        let mut inserts: Vec<ResidentRow> = Vec::new();
        let mut changes: Vec<NextRow> = Vec::new();
        let mut events = Vec::new();
        let mut new_tickets: Vec<TicketRow> = Vec::new();
        let mut need_number: Vec<usize> = Vec::new();
        for p in good {
            let line = p.parsed.line;
            let a = by_addressee.get(&p.row.addressee_index).cloned();
            let n = p
                .row
                .my_number_index
                .as_ref()
                .and_then(|i| by_number.get(i))
                .cloned();
            if let Some(k) = &a
                && self.touched(k)
            {
                self.reject(vec![LineError::conflict(
                    line,
                    AddresseeNumber::FIELD,
                    Conflict::DuplicateInFile,
                )]);
                continue;
            }
            match (&a, &n) {
                (Some(x), Some(y)) if x.m.id != y.m.id => {
                    let c = if self.touched(y) {
                        Conflict::DuplicateInFile
                    } else {
                        Conflict::NumberHeldByOther
                    };
                    self.reject(vec![LineError::conflict(line, "個人番号", c)]);
                    continue;
                }
                // The number belongs to a resident filed under another
                // 宛名番号: staff resolve it; the file never re-files them.
                (None, Some(y)) => {
                    let c = if self.touched(y) {
                        Conflict::DuplicateInFile
                    } else {
                        Conflict::NumberHeldByOther
                    };
                    self.reject(vec![LineError::conflict(line, "個人番号", c)]);
                    continue;
                }
                _ => {}
            }
            let target = a;
            let resident_id = target
                .as_ref()
                .map(|k| k.m.id.clone())
                .unwrap_or_else(|| p.row.id.clone());
            let flagged = target.as_ref().is_some_and(|k| k.m.flagged);
            let current = target.as_ref().and_then(|k| k.active_ticket.clone());
            // The ticket this line asks for, checked against every ticket
            // the municipality ever issued.
            let mut issue: Option<Option<TicketNumber>> = None;
            match &p.parsed.ticket {
                Some(t) => match tickets.get(t.as_str()) {
                    Some(existing) if existing.resident_id != resident_id => {
                        let c = if existing.staged_seq == Some(self.seq) {
                            Conflict::DuplicateInFile
                        } else {
                            Conflict::TicketHeldByOther
                        };
                        self.reject(vec![LineError::conflict(line, TicketNumber::FIELD, c)]);
                        continue;
                    }
                    Some(existing) if existing.status != ticket_rows::ACTIVE => {
                        self.reject(vec![LineError::conflict(
                            line,
                            TicketNumber::FIELD,
                            Conflict::TicketInvalidated,
                        )]);
                        continue;
                    }
                    Some(_) => {}
                    None if flagged => {
                        self.reject(vec![LineError::conflict(
                            line,
                            TicketNumber::FIELD,
                            Conflict::FlaggedResident,
                        )]);
                        continue;
                    }
                    None => issue = Some(Some(t.clone())),
                },
                None if current.is_none() && flagged => self.outcome.tickets_withheld += 1,
                None if current.is_none() => issue = Some(None),
                None => {}
            }

            // The person.
            let mut known = match target {
                None => {
                    self.outcome.inserted += 1;
                    let k = Known {
                        m: ResidentMatch {
                            id: p.row.id.clone(),
                            addressee_index: p.row.addressee_index.clone(),
                            my_number_index: p.row.my_number_index.clone(),
                            birth_bucket: p.row.birth_bucket.clone(),
                            content_mac: p.row.content_mac.clone(),
                            flagged: false,
                            written_by: Some(self.seq),
                        },
                        active_ticket: None,
                    };
                    let mut row = p.row;
                    row.staged_seq = Some(self.seq);
                    inserts.push(row);
                    k
                }
                Some(mut k)
                    if k.m.content_mac == p.row.content_mac
                        && p.row
                            .my_number_index
                            .as_ref()
                            .is_none_or(|n| k.m.my_number_index.as_ref() == Some(n)) =>
                {
                    self.outcome.unchanged += 1;
                    self.matched.insert(k.m.id.clone());
                    k.active_ticket = current.clone();
                    k
                }
                Some(mut k) => {
                    self.outcome.updated += 1;
                    let row =
                        residents::new_row(scope, &p.parsed.resident, k.m.id.clone(), self.stamp);
                    changes.push(NextRow::of(
                        &row,
                        self.seq,
                        (
                            &k.m.addressee_index,
                            k.m.my_number_index.as_deref(),
                            k.m.birth_bucket.as_deref(),
                        ),
                    ));
                    let mut event = residents::event_row(
                        scope,
                        &k.m.id,
                        "import_update",
                        None,
                        &residents::EventDetail {
                            import: Some(self.issued_by.to_string()),
                            ..Default::default()
                        },
                        self.stamp,
                    );
                    event.staged_seq = Some(self.seq);
                    events.push(event);
                    self.matched.insert(k.m.id.clone());
                    if row.my_number_index.is_some() {
                        k.m.my_number_index = row.my_number_index.clone();
                    }
                    k.m.birth_bucket = row.birth_bucket.clone();
                    k.m.content_mac = row.content_mac.clone();
                    k.m.written_by = Some(self.seq);
                    k
                }
            };
            if let Some(number) = issue {
                if let Some(old) = &current {
                    ticket_rows::TicketRow::retire_active(
                        scope,
                        conn,
                        &known.m.id,
                        self.seq,
                        self.stamp,
                    )?;
                    if let Some(t) = tickets.get_mut(old) {
                        t.status = ticket_rows::INVALIDATED.into();
                    }
                }
                let row = self.ticket_row(
                    scope,
                    number
                        .as_ref()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    &known.m.id,
                    &p.parsed,
                );
                if number.is_none() {
                    need_number.push(new_tickets.len());
                } else {
                    tickets.insert(row.ticket_number.clone(), row.clone());
                    known.active_ticket = Some(row.ticket_number.clone());
                }
                new_tickets.push(row);
                self.outcome.tickets_issued += 1;
            }
            by_addressee.insert(known.m.addressee_index.clone(), known.clone());
            if let Some(i) = &known.m.my_number_index {
                by_number.insert(i.clone(), known);
            }
        }
        self.assign_numbers(scope, conn, &mut new_tickets, &need_number, &tickets)?;
        ResidentRow::insert_many(scope, conn, &inserts)?;
        NextRow::insert_many(scope, conn, &changes)?;
        ResidentEventRow::insert_many(scope, conn, &events)?;
        TicketRow::insert_many(scope, conn, &new_tickets)?;
        Ok(())
    }

    /// A new active ticket of this import for a line.
    fn ticket_row(
        &self,
        scope: &Scope<'_>,
        number: String,
        resident_id: &str,
        line: &ParsedLine,
    ) -> TicketRow {
        TicketRow {
            municipality_code: scope.code().to_string(),
            ticket_number: number,
            resident_id: resident_id.to_string(),
            kind: line.kind.get().into(),
            dose_number: line.dose.get().into(),
            status: ticket_rows::ACTIVE.into(),
            issued_at: self.stamp,
            issued_by: self.issued_by.to_string(),
            invalidated_at: None,
            invalidated_reason: None,
            staged_seq: Some(self.seq),
            retired_seq: None,
        }
    }

    /// The first import into an empty partition: nothing stored can match,
    /// so a batch goes in without looking anything up. If a line names a
    /// person or ticket this import already wrote (or two lines of the batch
    /// clash), a unique index refuses the batch; the savepoint undoes it and
    /// the batch is done again the careful way, which names the line.
    /// Returns whether the batch was written.
    fn try_fresh(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut DbConn,
        good: &mut [Prepared],
    ) -> Result<bool, ImportError> {
        let rows: Vec<ResidentRow> = good
            .iter_mut()
            .map(|p| {
                let mut row = std::mem::take(&mut p.row);
                row.staged_seq = Some(self.seq);
                row
            })
            .collect();
        let mut taken: HashSet<String> = good
            .iter()
            .filter_map(|p| p.parsed.ticket.as_ref().map(|t| t.as_str().to_string()))
            .collect();
        let tickets: Vec<TicketRow> = good
            .iter()
            .zip(&rows)
            .map(|(p, row)| {
                let number = match &p.parsed.ticket {
                    Some(t) => t.as_str().to_string(),
                    None => loop {
                        let n = TicketNumber::random(&mut self.rng).as_str().to_string();
                        if taken.insert(n.clone()) {
                            break n;
                        }
                    },
                };
                self.ticket_row(scope, number, &row.id, &p.parsed)
            })
            .collect();
        let written = conn.transaction(|c| {
            ResidentRow::insert_many(scope, c, &rows)?;
            TicketRow::insert_many(scope, c, &tickets)
        });
        match written {
            Ok(()) => {
                self.outcome.inserted += rows.len() as u64;
                self.outcome.tickets_issued += tickets.len() as u64;
                Ok(true)
            }
            Err(crate::db::DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ))) => {
                for (p, row) in good.iter_mut().zip(rows) {
                    p.row = row;
                }
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Random, unused ten-digit numbers for the tickets the file left blank.
    fn assign_numbers(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut DbConn,
        rows: &mut [TicketRow],
        need: &[usize],
        batch_known: &HashMap<String, TicketRow>,
    ) -> Result<(), ImportError> {
        let mut pending: Vec<usize> = need.to_vec();
        let mut taken: HashSet<String> = rows
            .iter()
            .filter(|r| !r.ticket_number.is_empty())
            .map(|r| r.ticket_number.clone())
            .collect();
        while !pending.is_empty() {
            for &i in &pending {
                let mut n = TicketNumber::random(&mut self.rng);
                while taken.contains(n.as_str()) || batch_known.contains_key(n.as_str()) {
                    n = TicketNumber::random(&mut self.rng);
                }
                taken.insert(n.as_str().to_string());
                rows[i].ticket_number = n.as_str().to_string();
            }
            let candidates: Vec<String> = pending
                .iter()
                .map(|&i| rows[i].ticket_number.clone())
                .collect();
            let used: HashSet<String> = TicketRow::existing(scope, conn, &candidates)?
                .into_iter()
                .map(|t| t.ticket_number)
                .collect();
            pending.retain(|&i| used.contains(&rows[i].ticket_number));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let errs = ColumnMap::from_header(&record(&["宛名番号", "氏名"]), 1, Ok(())).unwrap_err();
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
        assert!(ColumnMap::from_header(&record(&cells), 1, Ok(())).is_ok());
        for refusal in [
            NumberRefusal::Role,
            NumberRefusal::Network,
            NumberRefusal::SecondFactor,
        ] {
            let errs = ColumnMap::from_header(&record(&cells), 3, Err(refusal)).unwrap_err();
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
                Err(NumberRefusal::Role)
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

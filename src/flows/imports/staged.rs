//! The run of a file that is written staged (see `import_settle`): one
//! thread decodes and parses lines, another checks them against what is
//! stored and writes, in short transactions under the job's sequence
//! number, so that nothing is seen until the job succeeds and no other
//! writer of any municipality waits longer than one batch. The resident
//! file and the registry's change file share it; each brings its own line
//! format (`LineFormat`) and writer (`StagedWriter`).

use super::{BATCH, ImportError, Limits, LineError, Opener, Progress, WRITE_BATCH, csv_lines};
use super::{Conflict, FileEncoding};
use crate::db::TenantConn;
use crate::flows::csv_lines::Next;
use crate::tenancy::{Partition, Scope};
use std::sync::atomic::Ordering;
use std::sync::mpsc;

/// How a file's lines are read: its header, then each line into `Line`.
pub(crate) trait LineFormat: Sync {
    type Columns: Send;
    type Line: Send;
    /// The header line's columns, or what is wrong with them.
    fn header(
        &self,
        header: &csv::StringRecord,
        line: u64,
        progress: &Progress,
    ) -> Result<Self::Columns, Vec<LineError>>;
    /// One data line, parsed (and sealed, where the format does that on
    /// the reading thread).
    fn line(
        &self,
        columns: &Self::Columns,
        rec: &csv::StringRecord,
        line: u64,
    ) -> Result<Self::Line, Vec<LineError>>;
    /// The error of a file without a header line.
    fn no_header(&self) -> LineError;
}

/// The writing side: decides what each line does against what is stored,
/// writes it under the job's number, and collects every error.
pub(crate) trait StagedWriter {
    type Line;
    fn reject(&mut self, errors: Vec<LineError>);
    fn batch(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        lines: Vec<Result<Self::Line, Vec<LineError>>>,
    ) -> Result<(), ImportError>;
    /// After each committed transaction (outside it).
    fn committed(&mut self, _conn: &mut crate::db::DbConn) -> Result<(), ImportError> {
        Ok(())
    }
}

enum Message<L> {
    Header(Vec<LineError>),
    Lines(Vec<Result<L, Vec<LineError>>>),
    TooManyLines(u64),
    Unreadable(String),
}

/// Reads `open` with `format` and hands each batch to `writer`, in
/// transactions of the partition (seen through import `seq`, when the job
/// writes under one) that first call `keep_alive`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<F, W>(
    conn: &mut crate::db::DbConn,
    partition: &Partition,
    seq: Option<i64>,
    keep_alive: &(dyn Fn(&mut crate::db::DbConn) -> Result<(), ImportError> + Sync),
    open: Opener<'_>,
    (encoding, limits): (FileEncoding, Limits),
    format: &F,
    writer: &mut W,
    progress: &Progress,
) -> Result<(), ImportError>
where
    F: LineFormat,
    W: StagedWriter<Line = F::Line>,
{
    let (tx, rx) = mpsc::sync_channel::<Message<F::Line>>(4);
    std::thread::scope(|s| {
        s.spawn(|| read(open, encoding, limits, format, progress, tx));
        let mut feed = Feed {
            rx: &rx,
            lines: Vec::new(),
            done: false,
        };
        // Each transaction writes batches until another writer waits (see
        // `db::should_commit`), the reader has nothing ready, or the file
        // ends; the next one begins when the reader has more.
        while let Some(first) = feed.next(writer, true)? {
            partition.run(conn, |scope, conn| {
                keep_alive(conn)?;
                crate::db::prefer_indexes(conn)?;
                let through;
                let scope = match seq {
                    Some(seq) => {
                        through = scope.through_import(seq);
                        &through
                    }
                    None => scope,
                };
                let began = std::time::Instant::now();
                let mut batch = first;
                loop {
                    writer.batch(scope, conn, batch)?;
                    if crate::db::should_commit(conn, began) {
                        return Ok::<_, ImportError>(());
                    }
                    match feed.next(writer, false)? {
                        Some(next) => batch = next,
                        None => return Ok(()),
                    }
                }
            })?;
            crate::flows::faults::point("import.batch");
            writer.committed(conn)?;
        }
        // Dropping the receiver stops the reader if we left early.
        drop(rx);
        Ok::<_, ImportError>(())
    })
}

/// The parsed lines as the writer takes them: a batch at a time, with
/// what else the reader sends (errors of the header, the end) noted.
struct Feed<'r, L> {
    rx: &'r mpsc::Receiver<Message<L>>,
    lines: Vec<Result<L, Vec<LineError>>>,
    done: bool,
}

impl<L> Feed<'_, L> {
    /// The next batch of at most `WRITE_BATCH` lines; when `wait` is false,
    /// None also when the reader has nothing ready yet.
    #[allow(clippy::type_complexity)]
    fn next<W: StagedWriter<Line = L>>(
        &mut self,
        w: &mut W,
        wait: bool,
    ) -> Result<Option<Vec<Result<L, Vec<LineError>>>>, ImportError> {
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

fn read<F: LineFormat>(
    open: Opener<'_>,
    encoding: FileEncoding,
    limits: Limits,
    format: &F,
    progress: &Progress,
    tx: mpsc::SyncSender<Message<F::Line>>,
) {
    let source = match open() {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Message::Unreadable(e.to_string()));
            return;
        }
    };
    let mut lines = csv_lines(source, encoding, progress);
    let mut rec = csv::StringRecord::new();
    let mut columns: Option<F::Columns> = None;
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
                match format.header(&rec, line, progress) {
                    Ok(m) => columns = Some(m),
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
        let Some(m) = &columns else {
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
        batch.push(match refused {
            Some(e) => Err(vec![e]),
            None => format.line(m, &rec, line),
        });
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.send(Message::Lines(full)).is_err() {
                return;
            }
        }
    }
    if columns.is_none() {
        let _ = tx.send(Message::Header(vec![format.no_header()]));
        return;
    }
    if !batch.is_empty() {
        let _ = tx.send(Message::Lines(batch));
    }
}

/// Reads a whole file with `format` before anything is done with it: every
/// line, or every error by line and column (any one rejects the file).
pub(crate) fn read_all<F: LineFormat>(
    open: Opener<'_>,
    (encoding, limits): (FileEncoding, Limits),
    format: &F,
    progress: &Progress,
) -> Result<Vec<F::Line>, ImportError> {
    let (tx, rx) = mpsc::sync_channel::<Message<F::Line>>(4);
    std::thread::scope(|s| {
        s.spawn(|| read(open, encoding, limits, format, progress, tx));
        let mut lines = Vec::new();
        let mut errors = Vec::new();
        let mut seen = 0u64;
        for msg in rx {
            match msg {
                Message::Header(e) => errors.extend(e),
                Message::Lines(batch) => {
                    seen += batch.len() as u64;
                    for l in batch {
                        match l {
                            Ok(l) => lines.push(l),
                            Err(e) => errors.extend(e),
                        }
                    }
                }
                Message::TooManyLines(max) => errors.push(LineError::conflict(
                    max + 1,
                    "",
                    Conflict::TooManyLines(max),
                )),
                Message::Unreadable(e) => return Err(ImportError::Unreadable(e)),
            }
        }
        if errors.is_empty() {
            return Ok(lines);
        }
        let error_count = errors.len() as u64;
        errors.sort_by_key(|e| e.line);
        errors.truncate(super::MAX_REPORTED_ERRORS);
        Err(ImportError::Rejected {
            lines: seen,
            error_count,
            errors,
        })
    })
}

//! A CSV file read as the person who made it sees it: each record with the
//! number of the line it starts on, as many cells as the header line, and
//! nothing taken from a file that stops in the middle of a line. Both file
//! readers (the resident import and the bulk transfer inquiry) read through
//! it.
//!
//! The csv crate parses. Its own line count (`Position::line`) is not used:
//! it counts the '\n' bytes consumed before a record, and the crate ends a
//! record at a '\r', leaving the '\n' of a CRLF line end to the next record,
//! so after every CRLF line end it is one short, in a CR file it never moves,
//! and skipped blank lines count as part of the record after them. Here the
//! lines are counted in the bytes themselves as they pass from the file to
//! the parser, and a record belongs to the first line with content at or
//! after the byte the parser began it at (`Position::byte`).

use super::line_errors::{Conflict, LineError};
use crate::domain::{FieldError, Reason};
use std::collections::VecDeque;
use std::io::{self, Read};

/// What the next line of the file turned out to be (the record itself is
/// in the caller's `StringRecord`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The header: the first line that is not blank.
    Header(u64),
    /// A data line with as many cells as the header.
    Record(u64),
    /// A line refused as a whole; its cells are not to be read.
    Refused(LineError),
    /// The end of a file whose last line was complete.
    End,
}

/// Reads records of a decoded (UTF-8) file.
pub(crate) struct CsvLines<R> {
    csv: csv::Reader<Counted<R>>,
    /// The header's number of cells, once it is read.
    width: Option<usize>,
    /// The last line was cut off: nothing follows it.
    finished: bool,
}

impl<R: Read> CsvLines<R> {
    pub(crate) fn new(source: R) -> CsvLines<R> {
        CsvLines {
            csv: csv::ReaderBuilder::new()
                .has_headers(false)
                // A line of the wrong width is refused here, naming its line,
                // rather than stopping the whole read at the first one.
                .flexible(true)
                .buffer_capacity(256 * 1024)
                .from_reader(Counted::new(source)),
            width: None,
            finished: false,
        }
    }

    /// Reads the next line that is not blank into `rec`. An error is one of
    /// reading the file itself.
    pub(crate) fn next(&mut self, rec: &mut csv::StringRecord) -> Result<Next, csv::Error> {
        loop {
            if self.finished {
                return Ok(Next::End);
            }
            match self.csv.read_record(rec) {
                Ok(false) => return Ok(Next::End),
                Ok(true) => {}
                Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                    let line = self.line_at(e.position());
                    return Ok(Next::Refused(LineError::field(
                        line,
                        FieldError {
                            field: "",
                            reason: Reason::Undecodable,
                        },
                    )));
                }
                Err(e) => return Err(e),
            }
            let line = self.line_at(rec.position());
            // The parser asks for more only when a record is not yet
            // complete: if the file had already ended, this record was ended
            // by the end of the file, not by a line break (the file was cut
            // off, or a quote was never closed).
            if self.csv.get_ref().ended {
                self.finished = true;
                return Ok(Next::Refused(LineError::conflict(
                    line,
                    "",
                    Conflict::CutOff,
                )));
            }
            if rec.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            return Ok(match self.width {
                None => {
                    self.width = Some(rec.len());
                    Next::Header(line)
                }
                Some(header) if header != rec.len() => Next::Refused(LineError::conflict(
                    line,
                    "",
                    Conflict::CellCount {
                        header,
                        cells: rec.len(),
                    },
                )),
                Some(_) => Next::Record(line),
            });
        }
    }

    fn line_at(&mut self, position: Option<&csv::Position>) -> u64 {
        let byte = position.map_or(0, csv::Position::byte);
        self.csv.get_mut().line_at(byte)
    }
}

/// The file on its way to the parser, its lines counted as they pass.
struct Counted<R> {
    inner: R,
    /// Offset of the next byte handed on.
    offset: u64,
    /// Number of the line the next byte is on.
    line: u64,
    /// The last byte was a '\r': a '\n' now ends the same line.
    after_cr: bool,
    /// The next byte begins a line.
    at_start: bool,
    /// Where each line with content begins (offset, line number), from the
    /// oldest the parser may still start a record at. The parser's buffer
    /// bounds it.
    starts: VecDeque<(u64, u64)>,
    /// The file has ended (a read gave nothing).
    ended: bool,
}

impl<R> Counted<R> {
    fn new(inner: R) -> Counted<R> {
        Counted {
            inner,
            offset: 0,
            line: 1,
            after_cr: false,
            at_start: true,
            starts: VecDeque::new(),
            ended: false,
        }
    }

    /// The line of the first content at or after `byte`, where the parser
    /// began a record (after a line end, or after the '\r' of a CRLF).
    fn line_at(&mut self, byte: u64) -> u64 {
        while let Some(&(offset, line)) = self.starts.front() {
            if offset >= byte {
                return line;
            }
            self.starts.pop_front();
        }
        self.line
    }

    fn count(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.line += 1;
                    self.after_cr = b == b'\r';
                    self.at_start = true;
                }
                _ => {
                    if self.at_start {
                        self.starts.push_back((self.offset + i as u64, self.line));
                        self.at_start = false;
                    }
                    self.after_cr = false;
                }
            }
        }
        self.offset += bytes.len() as u64;
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended = true;
        }
        self.count(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line the reader yields: (what, line, cells).
    fn read(text: &str) -> Vec<(String, u64, Vec<String>)> {
        read_from(text.as_bytes())
    }

    fn read_from(source: impl Read) -> Vec<(String, u64, Vec<String>)> {
        let mut lines = CsvLines::new(source);
        let mut rec = csv::StringRecord::new();
        let mut out = Vec::new();
        loop {
            let cells = |r: &csv::StringRecord| r.iter().map(str::to_string).collect();
            match lines.next(&mut rec).unwrap() {
                Next::Header(l) => out.push(("header".into(), l, cells(&rec))),
                Next::Record(l) => out.push(("record".into(), l, cells(&rec))),
                Next::Refused(e) => out.push((e.message_en, e.line, vec![e.column])),
                Next::End => return out,
            }
        }
    }

    fn lines_of(text: &str) -> Vec<u64> {
        read(text).iter().map(|(_, l, _)| *l).collect()
    }

    #[test]
    fn every_line_end_counts_one_line() {
        let lf = "a,b\n1,2\n3,4\n\n5,6\n";
        assert_eq!(lines_of(lf), [1, 2, 3, 5]);
        assert_eq!(lines_of(&lf.replace('\n', "\r\n")), [1, 2, 3, 5]);
        assert_eq!(lines_of(&lf.replace('\n', "\r")), [1, 2, 3, 5]);
        assert_eq!(lines_of("a,b\r\n1,2\n3,4\r5,6\r\n"), [1, 2, 3, 4]);
        let records = read(&lf.replace('\n', "\r\n"));
        assert_eq!(
            records[3],
            ("record".into(), 5, vec!["5".into(), "6".into()])
        );
    }

    #[test]
    fn blank_lines_are_skipped_wherever_they_are() {
        assert_eq!(lines_of("\n\r\na,b\n\n\n1,2\n , \n\r\n3,4\n"), [3, 6, 9]);
        assert_eq!(read("\n\na,b\n")[0].0, "header");
    }

    #[test]
    fn a_quoted_cell_over_several_lines_is_numbered_by_its_first_line() {
        for end in ["\n", "\r\n", "\r"] {
            let text = format!("a,b{end}1,\"x{end}y{end}z\"{end}2,3{end}");
            let read = read(&text);
            assert_eq!(
                read.iter().map(|(_, l, _)| *l).collect::<Vec<_>>(),
                [1, 2, 5],
                "{end:?}"
            );
            assert_eq!(read[1].2[1], format!("x{end}y{end}z"));
        }
    }

    #[test]
    fn a_line_of_another_width_than_the_header_is_refused_by_its_line() {
        let read = read("a,b,c\r\n1,2,3\r\n1,2\r\n1,2,3,4\r\n1,2,3\r\n");
        assert_eq!(read[1].0, "record");
        assert_eq!(read[2].1, 3);
        assert_eq!(
            read[2].0,
            "the line has a different number of cells from the header line (header 3, this line 2)"
        );
        assert_eq!(read[2].2, vec![String::new()], "no column is named");
        assert_eq!(read[3].1, 4);
        assert!(read[3].0.contains("header 3, this line 4"), "{}", read[3].0);
        assert_eq!(
            read[4],
            ("record".into(), 5, vec!["1".into(), "2".into(), "3".into()])
        );
    }

    #[test]
    fn a_file_without_a_final_line_end_is_refused_at_its_last_line() {
        for end in ["\n", "\r\n", "\r"] {
            let text = format!("a,b{end}1,2{end}3,4");
            let read = read(&text);
            assert_eq!(read.len(), 3, "{end:?}");
            assert_eq!(read[1].0, "record");
            assert_eq!(read[2].1, 3);
            assert_eq!(read[2].0, "the last line of the file is cut off");
        }
        // Only the header, cut off.
        assert_eq!(read("a,b")[0].1, 1);
        assert_eq!(read("a,b")[0].0, "the last line of the file is cut off");
    }

    #[test]
    fn a_quote_never_closed_is_refused_at_the_line_it_opens_on() {
        for end in ["\n", "\r\n", "\r"] {
            let text = format!("a,b{end}1,2{end}3,\"4{end}5{end}");
            let read = read(&text);
            assert_eq!(read.len(), 3, "{end:?}");
            assert_eq!(read[2].1, 3);
            assert_eq!(read[2].0, "the last line of the file is cut off");
        }
    }

    #[test]
    fn an_empty_file_simply_ends() {
        assert!(read("").is_empty());
        assert!(read("\r\n\r\n").is_empty());
    }

    /// A source that hands out one byte at a time, so lines and records
    /// straddle every possible boundary of the parser's reads.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            match buf.first_mut() {
                Some(b) => *b = *first,
                None => return Ok(0),
            }
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn lines_are_counted_the_same_however_the_file_arrives() {
        let text = "a,b\r\n\r\n1,\"x\r\ny\"\r\n2,3\r\n4\r\n5,6";
        assert_eq!(read_from(Trickle(text.as_bytes())), read(text));
        assert_eq!(
            read(text).iter().map(|(_, l, _)| *l).collect::<Vec<_>>(),
            [1, 3, 5, 6, 7]
        );
    }

    #[test]
    fn many_lines_keep_their_numbers_past_the_parsers_buffer() {
        let mut text = String::from("a,b\r\n");
        for i in 0..50_000 {
            text.push_str(&format!("{i},x\r\n"));
        }
        text.push_str("bad\r\n");
        let read = read(&text);
        assert_eq!(read.len(), 50_002);
        assert_eq!(read[40_000].1, 40_001);
        assert_eq!(read[50_001].1, 50_002);
        assert!(read[50_001].0.contains("header 2, this line 1"));
    }
}

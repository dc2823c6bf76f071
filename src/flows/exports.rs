//! Flow 6: the ledger export (予防接種台帳向け出力), one line per dose keyed
//! by 宛名番号. The line type below has no field for an individual number,
//! so no export can carry one. Rows are read a page at a time and handed on
//! as encoded bytes, so a million doses take the memory of one page.

use crate::csvout::neutralise;
use crate::db::DbConn;
use crate::db::models::doses::{DoseRow, ExportRow};
use crate::domain::VaccineCatalog;
use crate::tenancy::{Partition, TenancyError};
use chrono::{Duration, NaiveDate, NaiveDateTime};

const PAGE: i64 = 10_000;

/// The export's columns, after the real ledger export.
pub const DOSE_HEADER: [&str; 10] = [
    "宛名番号",
    "接種回",
    "接種日",
    "登録日時",
    "券番号",
    "接種自治体コード",
    "接種会場名",
    "ワクチンメーカー",
    "製品名",
    "ロット番号",
];

/// One line of the export: exactly the columns above, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseLine<'a> {
    pub addressee_number: &'a str,
    pub dose_number: i32,
    pub administered_on: NaiveDate,
    pub recorded_at: NaiveDateTime,
    pub ticket_number: &'a str,
    pub site_municipality_code: &'a str,
    pub site_name: &'a str,
    pub manufacturer: &'a str,
    pub product: &'a str,
    pub lot_number: &'a str,
}

/// The file's encoding, as the person chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvEncoding {
    Utf8Bom,
    ShiftJis,
}

impl CsvEncoding {
    pub fn parse(s: &str) -> Option<CsvEncoding> {
        match s {
            "utf8" | "" => Some(CsvEncoding::Utf8Bom),
            "sjis" => Some(CsvEncoding::ShiftJis),
            _ => None,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            CsvEncoding::Utf8Bom => "utf8",
            CsvEncoding::ShiftJis => "sjis",
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            CsvEncoding::Utf8Bom => "text/csv; charset=utf-8",
            CsvEncoding::ShiftJis => "text/csv; charset=shift_jis",
        }
    }

    fn encode(&self, text: String) -> Vec<u8> {
        match self {
            CsvEncoding::Utf8Bom => text.into_bytes(),
            CsvEncoding::ShiftJis => to_shift_jis(&text),
        }
    }
}

/// Shift_JIS with 〓 (the customary geta mark) for any character it cannot
/// hold, instead of the HTML escapes encoding_rs would write.
pub fn to_shift_jis(s: &str) -> Vec<u8> {
    use encoding_rs::EncoderResult;
    let mut enc = encoding_rs::SHIFT_JIS.new_encoder();
    let mut out = Vec::with_capacity(s.len());
    let mut src = s;
    loop {
        let need = enc
            .max_buffer_length_from_utf8_without_replacement(src.len())
            .unwrap_or(src.len() * 2 + 16);
        out.reserve(need);
        let (res, read) = enc.encode_from_utf8_to_vec_without_replacement(src, &mut out, true);
        src = &src[read..];
        match res {
            EncoderResult::InputEmpty => return out,
            EncoderResult::OutputFull => {}
            EncoderResult::Unmappable(_) => out.extend_from_slice(&[0x81, 0xAC]),
        }
    }
}

/// Stored times are UTC; the ledger shows Japan time (no daylight saving).
/// Written field by field: a strftime pattern parsed per row is the slowest
/// part of a million-line export.
fn push_jst(out: &mut String, t: NaiveDateTime) {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write as _;
    let t = t + Duration::hours(9);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
}

fn push_date(out: &mut String, d: NaiveDate) {
    use chrono::Datelike;
    use std::fmt::Write as _;
    let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
}

/// Appends one CSV field: quoted when it must be, and with a leading `'`
/// when Excel would run it as a formula.
fn push_field(out: &mut String, cell: &str, first: bool) {
    if !first {
        out.push(',');
    }
    let cell = neutralise(cell);
    if cell.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&cell);
    }
}

/// Appends one line. Dates and numbers are written straight into the
/// buffer (they need neither quoting nor neutralising).
fn push_line(out: &mut String, line: &DoseLine<'_>) {
    use std::fmt::Write as _;
    push_field(out, line.addressee_number, true);
    let _ = write!(out, ",{},", line.dose_number);
    push_date(out, line.administered_on);
    out.push(',');
    push_jst(out, line.recorded_at);
    push_field(out, line.ticket_number, false);
    push_field(out, line.site_municipality_code, false);
    push_field(out, line.site_name, false);
    push_field(out, line.manufacturer, false);
    push_field(out, line.product, false);
    push_field(out, line.lot_number, false);
    out.push_str("\r\n");
}

fn line_of<'a>(addressee: &'a str, d: &'a ExportRow) -> DoseLine<'a> {
    let product = VaccineCatalog::global().get(&d.product_code);
    DoseLine {
        addressee_number: addressee,
        dose_number: d.dose_number,
        administered_on: d.administered_on,
        recorded_at: d.recorded_at,
        ticket_number: d.ticket_number.as_deref().unwrap_or(""),
        site_municipality_code: d.site_municipality_code.as_deref().unwrap_or(""),
        site_name: d.site_name.as_deref().unwrap_or(""),
        manufacturer: product.map(|p| p.manufacturer_ja.as_str()).unwrap_or(""),
        product: product
            .map(|p| p.product_ja.as_str())
            .unwrap_or(&d.product_code),
        lot_number: d.lot_number.as_deref().unwrap_or(""),
    }
}

/// Writes the whole export to `sink` in encoded chunks, from one
/// consistent snapshot. `sink` returns false when the receiver has gone
/// (a closed download), which ends the export early. Returns the lines
/// written.
///
/// Two threads share the work: this one reads pages from the database while
/// a second opens the 宛名番号, writes the CSV and encodes it, so a page is
/// read while the one before it is being written.
pub fn stream_doses(
    conn: &mut DbConn,
    partition: &Partition,
    encoding: CsvEncoding,
    mut sink: impl FnMut(Vec<u8>) -> bool + Send,
) -> Result<u64, TenancyError> {
    let mut head = String::new();
    if encoding == CsvEncoding::Utf8Bom {
        head.push('\u{FEFF}');
    }
    for (i, h) in DOSE_HEADER.iter().enumerate() {
        push_field(&mut head, h, i == 0);
    }
    head.push_str("\r\n");
    if !sink(encoding.encode(head)) {
        return Ok(0);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<ExportRow>>(2);
    std::thread::scope(|threads| {
        let writer = threads.spawn(move || {
            let scope = partition.sealing_scope();
            let mut written = 0u64;
            for page in rx {
                let mut text = String::with_capacity(page.len() * 160);
                for row in page {
                    let addressee = scope.open_string(
                        crate::crypto::AadContext {
                            table: "residents",
                            column: "addressee_number",
                            row_id: &row.resident_id,
                        },
                        &row.addressee_sealed,
                    )?;
                    push_line(&mut text, &line_of(&addressee, &row));
                    written += 1;
                }
                if !sink(encoding.encode(text)) {
                    // The download was closed: stop reading too.
                    break;
                }
            }
            Ok::<u64, TenancyError>(written)
        });
        let read = partition.read(conn, |scope, conn| {
            let mut after = String::new();
            loop {
                let page = DoseRow::export_page(scope, conn, &after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.id.clone();
                if tx.send(page).is_err() {
                    break;
                }
            }
            Ok::<(), TenancyError>(())
        });
        drop(tx);
        let written = writer.join().map_err(|_| {
            TenancyError::Db(crate::db::DbError::Worker(
                "the export's writer panicked".into(),
            ))
        })??;
        read?;
        Ok(written)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_jis_holds_japanese_and_marks_what_it_cannot() {
        let b = to_shift_jis("宛名番号,𠮷");
        assert_eq!(&b[..2], &[0x88, 0xB6]);
        assert!(b.ends_with(&[0x81, 0xAC]));
        let (back, _, bad) = encoding_rs::SHIFT_JIS.decode(&b);
        assert!(!bad);
        assert_eq!(back, "宛名番号,〓");
    }

    #[test]
    fn cells_are_neutralised_quoted_and_lines_end_in_crlf() {
        let line = DoseLine {
            addressee_number: "=A1",
            dose_number: 1,
            administered_on: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            recorded_at: NaiveDate::from_ymd_opt(2024, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            ticket_number: "",
            site_municipality_code: "",
            site_name: "@site, \"east\"",
            manufacturer: "",
            product: "",
            lot_number: "+1",
        };
        let mut out = String::new();
        push_line(&mut out, &line);
        assert_eq!(
            out,
            "'=A1,1,2024-01-01,2024-01-01 09:00:00,,,\"'@site, \"\"east\"\"\",,,'+1\r\n"
        );
        // What a CSV reader makes of it.
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(out.as_bytes());
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!(&rec[6], "'@site, \"east\"");
    }

    #[test]
    fn japan_time_is_nine_hours_ahead() {
        let t = chrono::NaiveDate::from_ymd_opt(2024, 12, 31)
            .unwrap()
            .and_hms_opt(20, 5, 9)
            .unwrap();
        let mut s = String::new();
        push_jst(&mut s, t);
        assert_eq!(s, "2025-01-01 05:05:09");
    }
}

//! Flow 6: the ledger export (予防接種台帳向け出力), one line per dose keyed
//! by 宛名番号. The line type below has no field for an individual number,
//! so no export can carry one. Rows are read a page at a time and handed on
//! as encoded bytes, so a million doses take the memory of one page.

use crate::csvout::neutralise;
use crate::db::DbConn;
use crate::db::models::doses::DoseRow;
use crate::domain::VaccineCatalog;
use crate::tenancy::{Partition, TenancyError};
use chrono::{Duration, NaiveDateTime};

const PAGE: i64 = 5000;

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
pub struct DoseLine {
    pub addressee_number: String,
    pub dose_number: i32,
    pub administered_on: String,
    pub recorded_at: String,
    pub ticket_number: String,
    pub site_municipality_code: String,
    pub site_name: String,
    pub manufacturer: String,
    pub product: String,
    pub lot_number: String,
}

impl DoseLine {
    fn cells(&self) -> [String; 10] {
        [
            self.addressee_number.clone(),
            self.dose_number.to_string(),
            self.administered_on.clone(),
            self.recorded_at.clone(),
            self.ticket_number.clone(),
            self.site_municipality_code.clone(),
            self.site_name.clone(),
            self.manufacturer.clone(),
            self.product.clone(),
            self.lot_number.clone(),
        ]
    }
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

    fn encode(&self, utf8: Vec<u8>) -> Vec<u8> {
        match self {
            CsvEncoding::Utf8Bom => utf8,
            CsvEncoding::ShiftJis => to_shift_jis(&String::from_utf8_lossy(&utf8)),
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
fn jst(t: NaiveDateTime) -> String {
    (t + Duration::hours(9))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn line_of(addressee: String, d: DoseRow) -> DoseLine {
    let product = VaccineCatalog::global().get(&d.product_code);
    DoseLine {
        addressee_number: addressee,
        dose_number: d.dose_number,
        administered_on: d.administered_on.to_string(),
        recorded_at: jst(d.recorded_at),
        ticket_number: d.ticket_number.unwrap_or_default(),
        site_municipality_code: d.site_municipality_code.unwrap_or_default(),
        site_name: d.site_name.unwrap_or_default(),
        manufacturer: product
            .map(|p| p.manufacturer_ja.clone())
            .unwrap_or_default(),
        product: product
            .map(|p| p.product_ja.clone())
            .unwrap_or_else(|| d.product_code.clone()),
        lot_number: d.lot_number.unwrap_or_default(),
    }
}

/// Writes the whole export to `sink` in encoded chunks, from one
/// consistent snapshot. `sink` returns false when the receiver has gone
/// (a closed download), which ends the export early. Returns the lines
/// written.
pub fn stream_doses(
    conn: &mut DbConn,
    partition: &Partition,
    encoding: CsvEncoding,
    mut sink: impl FnMut(Vec<u8>) -> bool,
) -> Result<u64, TenancyError> {
    let mut head = Vec::new();
    if encoding == CsvEncoding::Utf8Bom {
        head.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
    }
    head.extend(encoding.encode(csv_bytes(&[DOSE_HEADER.map(String::from)])));
    if !sink(head) {
        return Ok(0);
    }
    partition.read(conn, |scope, conn| {
        let mut after = String::new();
        let mut written = 0u64;
        loop {
            let page = DoseRow::export_page(scope, conn, &after, PAGE)?;
            let Some((last, _)) = page.last() else { break };
            after = last.id.clone();
            let mut lines = Vec::with_capacity(page.len());
            for (dose, sealed) in page {
                let addressee = scope.open_string(
                    crate::crypto::AadContext {
                        table: "residents",
                        column: "addressee_number",
                        row_id: &dose.resident_id,
                    },
                    &sealed,
                )?;
                lines.push(line_of(addressee, dose).cells());
            }
            written += lines.len() as u64;
            if !sink(encoding.encode(csv_bytes(&lines))) {
                break;
            }
        }
        Ok(written)
    })
}

fn csv_bytes(rows: &[[String; 10]]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(rows.len() * 120));
    for r in rows {
        let _ = w.write_record(r.iter().map(|c| neutralise(c)).map(|c| c.into_owned()));
    }
    w.into_inner().unwrap_or_default()
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
    fn cells_are_neutralised_and_lines_end_in_crlf() {
        let b = csv_bytes(&[[
            "=A1".into(),
            "1".into(),
            "2024-01-01".into(),
            "x".into(),
            "".into(),
            "".into(),
            "@site".into(),
            "".into(),
            "".into(),
            "+1".into(),
        ]]);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "'=A1,1,2024-01-01,x,,,'@site,,,'+1\r\n"
        );
    }
}

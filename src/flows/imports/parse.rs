//! Reading an import file: its encoding, its header line and columns, and
//! each line parsed into domain types (errors by line and column, never
//! the cell's value).

use super::{Counting, ImportError, NumberAccess, Opener, Progress};
use crate::domain::{
    Address, AddresseeNumber, BirthDate, DoseNumber, FieldError, KanaName, MyNumber, PersonName,
    Sex, TicketKind, TicketNumber,
};
use crate::flows::csv_lines::CsvLines;
use crate::flows::line_errors::Conflict;
use crate::flows::line_errors::LineError;
use crate::flows::residents::NewResident;
use chrono::NaiveDate;
use std::io::{self, Read};

/// The change file's 異動日 column.
pub(crate) const CHANGE_DATE: &str = "異動日";

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
pub(crate) enum Column {
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
    /// 異動事由 and 異動日: the change file's own columns.
    ChangeKind,
    ChangeDate,
}

const COLUMNS: usize = 12;

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
            "異動事由" => Column::ChangeKind,
            "異動日" | "異動年月日" => Column::ChangeDate,
            _ => return None,
        })
    }

    /// Whether a header line names column `c`.
    pub(crate) fn of_header_row(header: &csv::StringRecord, c: Column) -> bool {
        header.iter().any(|h| Column::of_header(h) == Some(c))
    }

    pub(crate) fn name(&self) -> &'static str {
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
            Column::ChangeKind => crate::domain::ChangeKind::FIELD,
            Column::ChangeDate => CHANGE_DATE,
        }
    }

    /// The resident file's required columns.
    pub(crate) const REQUIRED: [Column; 5] = [
        Column::Addressee,
        Column::NameKanji,
        Column::NameKana,
        Column::BirthDate,
        Column::Sex,
    ];
}

#[derive(Debug)]
pub(crate) struct ColumnMap([Option<usize>; COLUMNS]);

impl ColumnMap {
    /// The columns of a header line, which must name those `required`; an
    /// individual-number column only when the uploader may hand individual
    /// numbers over (`numbers`).
    pub(crate) fn from_header(
        header: &csv::StringRecord,
        line: u64,
        numbers: NumberAccess,
        required: &[Column],
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
        for &c in required {
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

    /// The cell of column `c` (None without the column); a cell with a
    /// character the decoder could not map (the wrong encoding was chosen,
    /// or the file is damaged) is noted in `errors` instead.
    pub(crate) fn take<'r>(
        &self,
        rec: &'r csv::StringRecord,
        c: Column,
        line: u64,
        errors: &mut Vec<LineError>,
    ) -> Option<&'r str> {
        let cell = self.cell(rec, c)?;
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

pub(super) fn parse_line(
    map: &ColumnMap,
    rec: &csv::StringRecord,
    line: u64,
    today: NaiveDate,
) -> Result<ParsedLine, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut take = |c: Column| map.take(rec, c, line, &mut errors);
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
pub(crate) fn keep<T>(
    errors: &mut Vec<LineError>,
    line: u64,
    r: Option<Result<T, FieldError>>,
) -> Option<T> {
    match r {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            errors.push(LineError::field(line, e));
            None
        }
        None => None,
    }
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

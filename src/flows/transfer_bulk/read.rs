//! Reading the movers' file: its header, every line parsed into a mover, and
//! errors by line and column (any one rejects the whole file).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Column {
    Addressee,
    MyNumber,
    Source,
    Consent,
    IdDocument,
    CheckedBy,
}

impl Column {
    const REQUIRED: [Column; 5] = [
        Column::Addressee,
        Column::MyNumber,
        Column::Source,
        Column::Consent,
        Column::IdDocument,
    ];

    fn of_header(h: &str) -> Option<Column> {
        Some(match h.trim().trim_start_matches('\u{FEFF}') {
            "宛名番号" => Column::Addressee,
            "個人番号" | "マイナンバー" => Column::MyNumber,
            "転出元市区町村コード" | "転出元自治体コード" | "転出元コード" => {
                Column::Source
            }
            "本人同意" | "同意" => Column::Consent,
            "本人確認書類" => Column::IdDocument,
            "確認した職員" | "確認者" => Column::CheckedBy,
            _ => return None,
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Column::Addressee => AddresseeNumber::FIELD,
            Column::MyNumber => MyNumber::FIELD,
            Column::Source => SOURCE_FIELD,
            Column::Consent => CONSENT_FIELD,
            Column::IdDocument => IdDocument::FIELD,
            Column::CheckedBy => CHECKED_BY_FIELD,
        }
    }
}

/// One line, parsed.
pub(super) struct Mover {
    pub(super) line: u64,
    pub(super) addressee: AddresseeNumber,
    pub(super) number: MyNumber,
    pub(super) source: MunicipalityCode,
    pub(super) consent: Consent,
}

/// Parses every line; any error rejects the file.
pub(super) fn read(
    open: Opener<'_>,
    encoding: FileEncoding,
    limits: Limits,
    asking: MunicipalityCode,
    actor: &Actor,
    progress: &Progress,
) -> Result<Vec<Mover>, ImportError> {
    let source = open().map_err(|e| ImportError::Unreadable(e.to_string()))?;
    let mut lines = imports::csv_lines(source, encoding, progress);
    let mut errors = Vec::new();
    let mut movers = Vec::new();
    let mut map: Option<HashMap<usize, Column>> = None;
    let mut rec = csv::StringRecord::new();
    let default_checker = actor.login_id.clone().unwrap_or_default();
    let mut data_lines = 0u64;
    loop {
        let next = lines
            .next(&mut rec)
            .map_err(|e| ImportError::Unreadable(e.to_string()))?;
        let (line, refused) = match next {
            Next::End => break,
            Next::Header(line) => {
                map = Some(header(&rec, line).map_err(|errors| rejected(0, errors))?);
                continue;
            }
            Next::Record(line) => (line, None),
            Next::Refused(e) => (e.line, Some(e)),
        };
        let Some(columns) = &map else {
            // Refused before a header was read: nothing after it can be.
            return Err(rejected(0, refused.into_iter().collect()));
        };
        data_lines += 1;
        if data_lines > limits.max_lines {
            errors.push(LineError::conflict(
                line,
                "",
                Conflict::TooManyLines(limits.max_lines),
            ));
            break;
        }
        progress.lines.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = refused {
            errors.push(e);
            continue;
        }
        match parse_line(columns, &rec, line, asking, &default_checker) {
            Ok(m) => movers.push(m),
            Err(e) => errors.extend(e),
        }
    }
    if map.is_none() {
        errors.push(LineError::conflict(
            1,
            AddresseeNumber::FIELD,
            Conflict::MissingColumn,
        ));
    }
    if errors.is_empty() {
        Ok(movers)
    } else {
        Err(rejected(movers.len() as u64, errors))
    }
}

pub(super) fn rejected(lines: u64, errors: Vec<LineError>) -> ImportError {
    let error_count = errors.len() as u64;
    let mut errors = errors;
    errors.truncate(imports::MAX_REPORTED_ERRORS);
    ImportError::Rejected {
        lines,
        error_count,
        errors,
    }
}

pub(super) fn undecodable(line: u64, field: &'static str) -> LineError {
    LineError::field(
        line,
        FieldError {
            field,
            reason: Reason::Undecodable,
        },
    )
}

pub(super) fn header(
    rec: &csv::StringRecord,
    line: u64,
) -> Result<HashMap<usize, Column>, Vec<LineError>> {
    if rec.iter().any(|h| h.contains('\u{FFFD}')) {
        return Err(vec![undecodable(line, "")]);
    }
    let mut map = HashMap::new();
    let mut errors = Vec::new();
    for (i, h) in rec.iter().enumerate() {
        if let Some(c) = Column::of_header(h) {
            if map.values().any(|&seen| seen == c) {
                errors.push(LineError::conflict(
                    line,
                    c.name(),
                    Conflict::DuplicateColumn,
                ));
            }
            map.insert(i, c);
        }
    }
    for c in Column::REQUIRED {
        if !map.values().any(|&seen| seen == c) {
            errors.push(LineError::conflict(line, c.name(), Conflict::MissingColumn));
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(errors)
    }
}

pub(super) fn parse_line(
    columns: &HashMap<usize, Column>,
    rec: &csv::StringRecord,
    line: u64,
    asking: MunicipalityCode,
    default_checker: &str,
) -> Result<Mover, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut cells: HashMap<Column, &str> = HashMap::new();
    for (i, c) in columns {
        let cell = rec.get(*i).unwrap_or("");
        if cell.contains('\u{FFFD}') {
            errors.push(undecodable(line, c.name()));
        } else {
            cells.insert(*c, cell);
        }
    }
    let cell = |c: Column| cells.get(&c).copied().unwrap_or("");
    let e = &mut errors;
    let addressee = kept(e, line, AddresseeNumber::parse(cell(Column::Addressee)));
    let number = kept(e, line, MyNumber::parse(cell(Column::MyNumber)));
    let source = kept(
        e,
        line,
        source_municipality(SOURCE_FIELD, cell(Column::Source), asking),
    );
    let checker = match cell(Column::CheckedBy).trim() {
        "" => default_checker,
        typed => typed,
    };
    let consent = Consent::parse(
        consent_mark(cell(Column::Consent)),
        cell(Column::IdDocument),
        checker,
    )
    .map_err(|es| {
        for mut e in es {
            // The file's own column names.
            if e.field == Consent::FORM_FIELD {
                e.field = CONSENT_FIELD;
            }
            errors.push(LineError::field(line, e));
        }
    })
    .ok();
    match (addressee, number, source, consent) {
        (Some(addressee), Some(number), Some(source), Some(consent)) if errors.is_empty() => {
            Ok(Mover {
                line,
                addressee,
                number,
                source,
                consent,
            })
        }
        _ => Err(errors),
    }
}

pub(super) fn kept<T>(
    errors: &mut Vec<LineError>,
    line: u64,
    r: Result<T, FieldError>,
) -> Option<T> {
    r.map_err(|e| errors.push(LineError::field(line, e))).ok()
}

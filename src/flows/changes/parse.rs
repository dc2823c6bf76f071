//! Reading the change file: its header (宛名番号, 異動事由 and 異動日 are
//! required; the attribute columns of the resident file are optional) and
//! each line parsed into domain types, errors by line and column.

use super::super::imports::staged::LineFormat;
use super::super::imports::{CHANGE_DATE, ColumnName as C, Columns, NumberAccess, Progress, keep};
use crate::domain::{
    Address, AddresseeNumber, BirthDate, ChangeEffect, ChangeKind, DoseNumber, FieldError,
    KanaName, MyNumber, PersonName, Reason, Sex, TicketKind, TicketNumber,
};
use crate::flows::line_errors::{Conflict, LineError};
use crate::tenancy::Scope;
use chrono::NaiveDate;
use std::sync::atomic::Ordering;

/// The attributes a line gives (each empty cell or missing column: none).
#[derive(Debug, Clone, Default)]
pub(super) struct Values {
    pub my_number: Option<MyNumber>,
    pub name_kanji: Option<PersonName>,
    pub name_kana: Option<KanaName>,
    pub birth_date: Option<BirthDate>,
    pub sex: Option<Sex>,
    pub address: Option<String>,
}

/// One good line of the change file.
#[derive(Debug, Clone)]
pub(super) struct ChangeLine {
    pub line: u64,
    pub addressee: AddresseeNumber,
    /// The 宛名番号's blind index, taken on the reading thread.
    pub addressee_index: Vec<u8>,
    pub kind: ChangeKind,
    pub on: NaiveDate,
    pub values: Values,
    /// For a person added: the ticket the registry names, if any.
    pub ticket: Option<TicketNumber>,
    pub ticket_kind: Option<TicketKind>,
    pub dose: Option<DoseNumber>,
}

pub(super) struct ChangeLines<'a> {
    pub scope: Scope<'a>,
    pub today: NaiveDate,
    pub numbers: NumberAccess,
}

const REQUIRED: [C; 3] = [C::Addressee, C::ChangeKind, C::ChangeDate];

impl LineFormat for ChangeLines<'_> {
    type Columns = Columns;
    type Line = ChangeLine;

    fn header(
        &self,
        rec: &csv::StringRecord,
        line: u64,
        progress: &Progress,
    ) -> Result<Columns, Vec<LineError>> {
        if C::of_header_row(rec, C::MyNumber) {
            progress.numbers_column.store(true, Ordering::Relaxed);
        }
        Columns::from_header(rec, line, self.numbers, &REQUIRED)
    }

    fn line(
        &self,
        m: &Columns,
        rec: &csv::StringRecord,
        line: u64,
    ) -> Result<ChangeLine, Vec<LineError>> {
        let parsed = parse_line(m, rec, line, self.today)?;
        Ok(ChangeLine {
            addressee_index: self.scope.addressee_index(parsed.addressee.as_str()),
            ..parsed
        })
    }

    fn no_header(&self) -> LineError {
        LineError::conflict(1, AddresseeNumber::FIELD, Conflict::MissingColumn)
    }
}

/// A line's cells as domain types; which attributes a kind needs or may
/// not carry is checked here, what the stored record allows by the writer.
pub(super) fn parse_line(
    m: &Columns,
    rec: &csv::StringRecord,
    line: u64,
    today: NaiveDate,
) -> Result<ChangeLine, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut cells = [None; 12];
    for c in [
        C::Addressee,
        C::ChangeKind,
        C::ChangeDate,
        C::MyNumber,
        C::NameKanji,
        C::NameKana,
        C::BirthDate,
        C::Sex,
        C::Address,
        C::Ticket,
        C::Kind,
        C::Dose,
    ] {
        cells[c as usize] = m.take(rec, c, line, &mut errors);
    }
    let cell = |c: C| cells[c as usize];
    // An empty cell of an optional column says nothing.
    let given = |c: C| cell(c).filter(|s| !s.trim().is_empty());
    let e = &mut errors;
    let addressee = keep(
        e,
        line,
        Some(AddresseeNumber::parse(cell(C::Addressee).unwrap_or(""))),
    );
    let kind = keep(
        e,
        line,
        Some(ChangeKind::parse(cell(C::ChangeKind).unwrap_or(""))),
    );
    let on = keep(
        e,
        line,
        Some(
            crate::domain::parse_date_field(CHANGE_DATE, cell(C::ChangeDate).unwrap_or(""))
                .and_then(|d| {
                    if d > today {
                        Err(FieldError {
                            field: CHANGE_DATE,
                            reason: Reason::FutureDate,
                        })
                    } else {
                        Ok(d)
                    }
                }),
        ),
    );
    let values = Values {
        my_number: keep(e, line, given(C::MyNumber).map(MyNumber::parse)),
        name_kanji: keep(e, line, given(C::NameKanji).map(PersonName::parse)),
        name_kana: keep(e, line, given(C::NameKana).map(KanaName::parse)),
        birth_date: keep(
            e,
            line,
            given(C::BirthDate).map(|s| BirthDate::parse(s, today)),
        ),
        sex: keep(e, line, given(C::Sex).map(Sex::parse)),
        address: keep(e, line, given(C::Address).map(Address::parse))
            .flatten()
            .map(|a| a.as_str().to_string()),
    };
    let ticket = keep(e, line, given(C::Ticket).map(TicketNumber::parse));
    let ticket_kind = keep(e, line, given(C::Kind).map(TicketKind::parse));
    let dose = keep(e, line, given(C::Dose).map(DoseNumber::parse));
    if let Some(kind) = kind {
        let missing = |field: &'static str| {
            LineError::field(
                line,
                FieldError {
                    field,
                    reason: Reason::Empty,
                },
            )
        };
        match kind.effect() {
            // A person registered is given all the resident file needs.
            ChangeEffect::Adds => {
                for (c, have) in [
                    (C::NameKanji, values.name_kanji.is_some()),
                    (C::NameKana, values.name_kana.is_some()),
                    (C::BirthDate, values.birth_date.is_some()),
                    (C::Sex, values.sex.is_some()),
                ] {
                    if !have && given(c).is_none() {
                        e.push(missing(c.name()));
                    }
                }
            }
            ChangeEffect::Ends { .. } | ChangeEffect::Changes => {
                for c in [C::Ticket, C::Kind, C::Dose] {
                    if given(c).is_some() {
                        e.push(LineError::conflict(
                            line,
                            c.name(),
                            Conflict::NotForThisChange,
                        ));
                    }
                }
                let wanted: &[C] = match kind {
                    ChangeKind::AddressChange => &[C::Address],
                    ChangeKind::NameChange => &[C::NameKanji, C::NameKana],
                    ChangeKind::Correction => &[
                        C::NameKanji,
                        C::NameKana,
                        C::BirthDate,
                        C::Sex,
                        C::Address,
                        C::MyNumber,
                    ],
                    _ => &[],
                };
                if !wanted.is_empty()
                    && wanted
                        .iter()
                        .all(|&c| cell(c).is_none_or(|s| s.trim().is_empty()))
                {
                    e.push(missing(wanted[0].name()));
                }
            }
        }
    }
    match (addressee, kind, on) {
        (Some(addressee), Some(kind), Some(on)) if errors.is_empty() => Ok(ChangeLine {
            line,
            addressee,
            addressee_index: Vec::new(),
            kind,
            on,
            values,
            ticket,
            ticket_kind,
            dose,
        }),
        _ => Err(errors),
    }
}

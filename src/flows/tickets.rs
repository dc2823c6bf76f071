//! Vaccination tickets: issuing, reissuing (the old one is invalidated), and
//! the labels printed on the A4 sticker sheet.

use super::residents::{self, ResidentError};
use crate::clock::now;
use crate::db::TenantConn;
use crate::db::models::residents::ResidentRow;
use crate::db::models::tickets::{self as rows, TicketRow};
use crate::domain::{
    ChangeReason, DoseNumber, MunicipalityCode, OcrLine, Registry, TicketKind, TicketNumber,
};
use crate::tenancy::Scope;
use chrono::NaiveDateTime;

/// A ticket as staff see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub number: TicketNumber,
    pub kind: TicketKind,
    pub dose: DoseNumber,
    pub active: bool,
    pub issued_at: NaiveDateTime,
    pub invalidated_at: Option<NaiveDateTime>,
    pub invalidated_reason: Option<String>,
    pub ocr: String,
}

fn view(code: MunicipalityCode, r: TicketRow) -> Option<Ticket> {
    let dose = DoseNumber::new(u8::try_from(r.dose_number).ok()?)?;
    let line = OcrLine {
        kind: TicketKind::new(u8::try_from(r.kind).ok()?)?,
        dose_digit: dose.ocr_digit(),
        municipality: code,
        ticket: TicketNumber::parse(&r.ticket_number).ok()?,
    };
    Some(Ticket {
        ocr: line.digits(),
        number: line.ticket,
        kind: line.kind,
        dose,
        active: r.status == rows::ACTIVE,
        issued_at: r.issued_at,
        invalidated_at: r.invalidated_at,
        invalidated_reason: r.invalidated_reason,
    })
}

pub fn of_resident(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
) -> Result<Vec<Ticket>, ResidentError> {
    Ok(TicketRow::of_resident(scope, conn, resident_id)?
        .into_iter()
        .filter_map(|r| view(scope.code(), r))
        .collect())
}

/// Why a ticket is reissued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReissueReason {
    /// 紛失・破損
    Lost,
    /// 転入: after the inquiry to the former municipality.
    TransferIn,
    /// 記載誤り等
    Other,
}

impl ReissueReason {
    pub const ALL: [ReissueReason; 3] = [
        ReissueReason::Lost,
        ReissueReason::TransferIn,
        ReissueReason::Other,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            ReissueReason::Lost => "lost",
            ReissueReason::TransferIn => "transfer_in",
            ReissueReason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<ReissueReason> {
        Self::ALL.into_iter().find(|r| r.code() == s)
    }
}

/// An unused number, drawn at random so that numbers cannot be guessed
/// from one another.
fn fresh_number(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
) -> Result<TicketNumber, ResidentError> {
    let mut rng = rand::thread_rng();
    loop {
        let n = TicketNumber::random(&mut rng);
        if TicketRow::find(scope, conn, n.as_str())?.is_none() {
            return Ok(n);
        }
    }
}

/// Refuses a resident who is not ours, or is flagged moved-out or deceased.
fn may_have_ticket(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
) -> Result<(), ResidentError> {
    match ResidentRow::find_by_id_and_municipality(scope, conn, resident_id)? {
        None => Err(ResidentError::NotFound),
        Some(r) if r.moved_out_on.is_some() || r.deceased_on.is_some() => {
            Err(ResidentError::Flagged)
        }
        // A running import that issues this resident a ticket makes the
        // one active ticket per resident its own when it succeeds: staff
        // try again once it has ended. Checked before anything is written;
        // on PostgreSQL an import batch committing after this check is
        // caught by the unique index at the insert (and the transaction,
        // aborted, keeps nothing).
        Some(_) if TicketRow::issued_by_running_import(scope, conn, resident_id)? => {
            Err(ResidentError::TicketFromRunningImport)
        }
        Some(_) => Ok(()),
    }
}

/// Stores a fresh active ticket of the given (kind, dose).
fn insert_new(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
    (kind, dose): (i32, i32),
    issued_by: &str,
    at: NaiveDateTime,
) -> Result<TicketNumber, ResidentError> {
    let number = fresh_number(scope, conn)?;
    let inserted = TicketRow::insert_many(
        conn,
        &[TicketRow {
            municipality_code: scope.code().to_string(),
            ticket_number: number.as_str().to_string(),
            resident_id: resident_id.to_string(),
            kind,
            dose_number: dose,
            status: rows::ACTIVE.into(),
            issued_at: at,
            issued_by: issued_by.to_string(),
            invalidated_at: None,
            invalidated_reason: None,
            staged_seq: None,
            retired_seq: None,
        }],
    );
    match inserted {
        Err(e)
            if e.violates_unique(
                "tickets_one_active",
                "tickets.municipality_code, tickets.resident_id",
            ) =>
        {
            Err(ResidentError::TicketFromRunningImport)
        }
        other => other.map(|()| number).map_err(ResidentError::from),
    }
}

/// Issues a first ticket to a resident who has no active one.
pub fn issue(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
    kind: TicketKind,
    dose: DoseNumber,
    issued_by: &str,
) -> Result<TicketNumber, ResidentError> {
    may_have_ticket(scope, conn, resident_id)?;
    if let Some(active) = TicketRow::of_resident(scope, conn, resident_id)?
        .into_iter()
        .find(|t| t.status == rows::ACTIVE)
    {
        return TicketNumber::parse(&active.ticket_number).map_err(|_| ResidentError::NotFound);
    }
    insert_new(
        scope,
        conn,
        resident_id,
        (kind.get().into(), dose.get().into()),
        issued_by,
        now(),
    )
}

/// Issues a ticket for `dose` (a reminder notice's), invalidating the
/// active one as replaced. A resident flagged moved-out or deceased gets
/// none.
pub fn issue_for_dose(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
    dose: u8,
    issued_by: &str,
) -> Result<TicketNumber, ResidentError> {
    may_have_ticket(scope, conn, resident_id)?;
    let at = now();
    TicketRow::invalidate_active(scope, conn, resident_id, "replaced", at)?;
    insert_new(scope, conn, resident_id, (1, dose.into()), issued_by, at)
}

/// Issues a new ticket, invalidating the active one. A resident flagged
/// moved-out or deceased gets none.
pub fn reissue(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
    why: ReissueReason,
    note: &ChangeReason,
    account_id: &str,
) -> Result<TicketNumber, ResidentError> {
    may_have_ticket(scope, conn, resident_id)?;
    let previous = TicketRow::of_resident(scope, conn, resident_id)?;
    let last = previous
        .iter()
        .find(|t| t.status == rows::ACTIVE)
        .or(previous.first());
    let (kind, dose) = last.map(|t| (t.kind, t.dose_number)).unwrap_or((1, 1));
    let at = now();
    TicketRow::invalidate_active(scope, conn, resident_id, why.code(), at)?;
    let issuer = format!("account:{account_id}");
    let number = insert_new(scope, conn, resident_id, (kind, dose), &issuer, at)?;
    residents::append_event(
        scope,
        conn,
        resident_id,
        "ticket_reissued",
        Some(account_id),
        &residents::EventDetail {
            reason: Some(format!("{} / {}", why.code(), note.as_str())),
            import: None,
            changes: vec![residents::Change {
                field: TicketNumber::FIELD.into(),
                before: last
                    .filter(|t| t.status == rows::ACTIVE)
                    .map(|t| t.ticket_number.clone())
                    .unwrap_or_default(),
                after: number.as_str().to_string(),
            }],
        },
        at,
    )?;
    Ok(number)
}

/// One sticker of the sheet.
#[derive(Debug, Clone)]
pub struct Label {
    pub municipality_code: String,
    pub municipality_name: String,
    pub ticket: String,
    pub kind: u8,
    pub dose: u8,
    pub ocr: String,
    pub name: String,
    pub kana: String,
    /// The 18 digits as a QR code, an inline SVG made here from digits only.
    pub qr_svg: String,
}

/// The 18 digits as a numeric-mode QR code.
pub fn qr_svg(digits: &str) -> String {
    crate::qr::encode_text(digits, crate::qr::Ecc::Medium)
        .map(|code| crate::qr::svg(&code, 96))
        .unwrap_or_default()
}

fn label(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    t: TicketRow,
) -> Result<Option<Label>, ResidentError> {
    let code = scope.code();
    let Some(ticket) = view(code, t.clone()) else {
        return Ok(None);
    };
    let Some(person) = residents::get(scope, conn, &t.resident_id)? else {
        return Ok(None);
    };
    Ok(Some(Label {
        municipality_code: code.as_str().to_string(),
        municipality_name: Registry::global()
            .get(&code)
            .map(|m| m.full_name())
            .unwrap_or_default(),
        ticket: ticket.number.as_str().to_string(),
        kind: ticket.kind.get(),
        dose: ticket.dose.get(),
        qr_svg: qr_svg(&ticket.ocr),
        ocr: ticket.ocr,
        name: person.name_kanji.as_str().to_string(),
        kana: person.name_kana.as_str().to_string(),
    }))
}

/// Stickers per A4 sheet (2 columns × 6 rows).
pub const PER_SHEET: i64 = 12;

/// A page of the active tickets one import issued, for printing.
pub fn labels_of_import(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    job_id: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<Label>, i64), ResidentError> {
    let issuer = super::imports::issuer_of_job(job_id);
    let total = TicketRow::count_active_issued_by(scope, conn, &issuer)?;
    let mut out = Vec::new();
    for t in TicketRow::active_issued_by(scope, conn, &issuer, offset, limit)? {
        out.extend(label(scope, conn, t)?);
    }
    Ok((out, total))
}

/// One ticket of the municipality as a sticker, by number.
pub fn label_of_number(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    number: &str,
) -> Result<Option<Label>, ResidentError> {
    match TicketRow::find(scope, conn, number)? {
        Some(t) => label(scope, conn, t),
        None => Ok(None),
    }
}

/// The resident's active ticket as one sticker.
pub fn label_of_resident(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
) -> Result<Option<Label>, ResidentError> {
    match TicketRow::of_resident(scope, conn, resident_id)?
        .into_iter()
        .find(|t| t.status == rows::ACTIVE)
    {
        Some(t) => label(scope, conn, t),
        None => Ok(None),
    }
}

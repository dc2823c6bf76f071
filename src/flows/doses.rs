//! Doses, in the partition of the municipality that issued the ticket:
//! recording at a site (checked, idempotent), the 要確認 queue, and staff
//! corrections. A dose row is never rewritten: only its status moves, and
//! each move is an event with the staff member's reason.

mod bulk;
mod review;
use super::dose_checks::{self, Facts, Prior, Rule};
use super::residents::{self, ResidentError, SiteFacts};
use super::vaccines::Interval;
use crate::clock::now;
use crate::crypto::AadContext;
use crate::db::TenantConn;
use crate::db::models::dose_events::DoseEventRow;
use crate::db::models::doses::{self as rows, DoseRow};
use crate::db::models::residents::ResidentRow;
use crate::db::models::tickets::{self as ticket_rows, TicketRow};
use crate::db::models::vaccines::ProductRow;
use crate::domain::{
    ChangeReason, DoseNumber, IdempotencyKey, LotNumber, MunicipalityCode, TicketNumber, TicketRef,
};
use crate::tenancy::{Scope, TenancyError};
pub use bulk::{
    BulkAction, BulkDone, Filter as QueueFilter, apply as apply_bulk, review as bulk_review,
};
use chrono::NaiveDate;
pub use review::*;

/// A dose as it arrives from the demo or a transfer, already trusted.
#[derive(Debug, Clone)]
pub struct NewDose {
    pub resident_id: String,
    pub dose_number: DoseNumber,
    pub administered_on: NaiveDate,
    pub ticket_number: Option<String>,
    pub site_municipality: Option<MunicipalityCode>,
    pub site_name: Option<String>,
    pub product_code: String,
    pub lot_number: Option<String>,
    pub recorded_by: Option<String>,
    /// Five-year age band at administration and sex code, for statistics.
    pub age_band: Option<i32>,
    pub sex: Option<String>,
}

/// Appends trusted doses (the demo's) in this municipality's name.
pub fn append(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    doses: &[NewDose],
) -> Result<(), ResidentError> {
    let at = now();
    let rows: Vec<DoseRow> = doses
        .iter()
        .map(|d| DoseRow {
            municipality_code: scope.code().to_string(),
            id: crate::domain::new_record_id(),
            resident_id: d.resident_id.clone(),
            dose_number: d.dose_number.get().into(),
            administered_on: d.administered_on,
            recorded_at: at,
            ticket_number: d.ticket_number.clone(),
            site_municipality_code: d.site_municipality.map(|c| c.to_string()),
            site_name: d.site_name.clone(),
            product_code: d.product_code.clone(),
            lot_number: d.lot_number.clone(),
            origin: rows::RECORDED.into(),
            origin_municipality_code: None,
            recorded_by: d.recorded_by.clone(),
            status: rows::VALID.into(),
            site_id: None,
            idempotency_key: None,
            quality_flags: None,
            supersedes: None,
            age_band: d.age_band,
            sex: d.sex.clone(),
        })
        .collect();
    DoseRow::insert_many(conn, &rows)?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum DoseError {
    /// The municipality never issued this ticket number. Said the same way
    /// whether the code or the number was wrong.
    #[error("this municipality did not issue this ticket")]
    NotIssued,
    #[error("the ticket has been invalidated (reissued or reported lost)")]
    Invalidated,
    /// The record moved on since the site looked (another dose was
    /// recorded): the site must scan again.
    #[error("the dose due is now {current}, not {expected}")]
    DoseChanged { expected: u8, current: u8 },
    /// The idempotency key came back with a different ticket.
    #[error("the idempotency key was used for another recording")]
    KeyReused,
    #[error("no such dose in this municipality")]
    NotFound,
    /// The dose is not in a state the action applies to.
    #[error("the dose is no longer in a state this action applies to")]
    Stale,
    #[error("the product is not in the vaccine master")]
    UnknownProduct,
    /// A corrected date no dose can have: in the future, or before the
    /// person was born.
    #[error("impossible date of administration: {0:?}")]
    ImpossibleDate(crate::domain::Reason),
    /// Too many tickets looked up in vain: scans pause for a while.
    #[error("too many unknown tickets: scans are paused")]
    Paused,
    #[error(transparent)]
    Resident(#[from] ResidentError),
    #[error("certificates carrying the dose could not be revoked: {0}")]
    Certificates(String),
    /// A municipal system records only its own municipality's tickets.
    #[error("the ticket is another municipality's")]
    NotOurs,
    #[error(transparent)]
    Stopped(#[from] super::Stopped),
}

impl crate::db::DbCause for DoseError {
    fn db_cause(&self) -> Option<&crate::db::DbError> {
        match self {
            DoseError::Resident(e) => crate::db::DbCause::db_cause(e),
            _ => None,
        }
    }
}

impl DoseError {
    /// A fault underneath (the database, a stopped worker) rather than a
    /// refusal: what the work wrote before it is rolled back. A refusal
    /// keeps what was written for it (an unknown ticket's counted miss and
    /// its log line).
    pub fn is_fault(&self) -> bool {
        matches!(self, DoseError::Resident(_) | DoseError::Stopped(_))
    }

    /// A concurrent request recorded with the same key first: retrying the
    /// transaction finds its dose.
    pub fn is_race(&self) -> bool {
        matches!(
            self,
            DoseError::Resident(ResidentError::Tenancy(TenancyError::Db(e))) if e.is_unique_violation()
        )
    }
}

crate::db::from_diesel_via_db_error!(DoseError);

impl From<crate::db::DbError> for DoseError {
    fn from(e: crate::db::DbError) -> Self {
        DoseError::Resident(e.into())
    }
}

impl From<TenancyError> for DoseError {
    fn from(e: TenancyError) -> Self {
        DoseError::Resident(e.into())
    }
}

/// The most of a person a vaccination site may see: enough for the eye to
/// catch a misread ticket or a stale screen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hint {
    pub kana_initials: String,
    pub birth_year: i32,
    pub birth_month: u32,
}

/// What a site sees after a scan, before anything is written.
#[derive(Debug, Clone)]
pub struct Preview {
    pub municipality: MunicipalityCode,
    pub ticket: TicketNumber,
    pub hint: Hint,
    /// The dose number due (or the last the ticket covers, when complete).
    pub dose_number: u8,
    /// What would send today's dose to the 要確認 queue.
    pub blocks: Vec<Rule>,
    /// When too soon: the first date it would be on time.
    pub earliest: Option<NaiveDate>,
    /// The product of the last dose, for the eye.
    pub last_product: Option<String>,
}

/// The ticket's resident, the doses that count, and what the rules need.
struct Subject {
    ticket: TicketRow,
    resident: ResidentRow,
    facts: SiteFacts,
    prior: Vec<Prior>,
    last_product: Option<String>,
}

/// The ticket, its resident (locked), and the resident's doses, with the
/// dose recorded under `key` if there is one, whoever it is for.
struct Found {
    ticket: TicketRow,
    resident: ResidentRow,
    doses: Vec<DoseRow>,
}

fn lookup(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    t: &TicketRef,
    key: Option<&IdempotencyKey>,
) -> Result<Found, DoseError> {
    debug_assert_eq!(t.municipality, scope.code());
    let (ticket, resident) =
        TicketRow::find_with_resident_for_update(scope, conn, t.ticket.as_str())?
            .ok_or(DoseError::NotIssued)?;
    // An OCR line whose 券種 or 回数 differs from what was issued under this
    // number is a misread or a made-up ticket: not this municipality's.
    let issued_digit = u8::try_from(ticket.dose_number)
        .ok()
        .and_then(DoseNumber::new)
        .map(|d| d.ocr_digit());
    if let Some((kind, digit)) = t.printed
        && (i32::from(kind.get()) != ticket.kind || Some(digit) != issued_digit)
    {
        return Err(DoseError::NotIssued);
    }
    let doses = match key {
        Some(k) => DoseRow::of_resident_or_key(scope, conn, &resident.id, k.as_str())?,
        None => DoseRow::of_resident(scope, conn, &resident.id)?,
    };
    Ok(Found {
        ticket,
        resident,
        doses,
    })
}

/// What the rules need to know of the person behind a ticket.
fn subject(scope: &Scope<'_>, found: Found) -> Result<Subject, DoseError> {
    let Found {
        ticket,
        resident,
        doses,
    } = found;
    // A reissued or lost ticket is refused. One invalidated because the
    // person moved out or died still shows (and records, into the queue):
    // the person may be standing at the site, and the municipality must
    // hear of it.
    let flagged = resident.moved_out_on.is_some() || resident.deceased_on.is_some();
    if ticket.status != ticket_rows::ACTIVE && !flagged {
        return Err(DoseError::Invalidated);
    }
    let facts = residents::site_facts(scope, &resident)?;
    let counted: Vec<DoseRow> = doses
        .into_iter()
        .filter(|d| d.resident_id == resident.id)
        .filter(|d| d.status == rows::VALID || d.status == rows::PENDING)
        .collect();
    let prior: Vec<Prior> = counted
        .iter()
        .map(|d| Prior {
            dose_number: u8::try_from(d.dose_number).unwrap_or(DoseNumber::MAX),
            administered_on: d.administered_on,
        })
        .collect();
    let last_product = dose_checks::last(&prior).and_then(|l| {
        counted
            .iter()
            .find(|d| d.dose_number == i32::from(l.dose_number))
            .map(|d| d.product_code.clone())
    });
    Ok(Subject {
        ticket,
        resident,
        facts,
        prior,
        last_product,
    })
}

fn hint(f: &SiteFacts) -> Hint {
    use chrono::Datelike;
    Hint {
        kana_initials: f.kana_initials.clone(),
        birth_year: f.birth_date.year(),
        birth_month: f.birth_date.month(),
    }
}

/// The fallback interval when no product is known yet: the common
/// two-dose series with three-month boosters.
pub(crate) const DEFAULT_INTERVAL: Interval = Interval {
    primary_doses: 2,
    dose2_min_days: Some(19),
    dose3_min_days: None,
    booster_min_months: 3,
};

/// Looks the ticket up in its municipality's partition and says what a dose
/// today would be. `product` is the one the site has chosen, if any.
pub fn preview(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    t: &TicketRef,
    product: Option<&str>,
    today: NaiveDate,
) -> Result<Preview, DoseError> {
    let s = subject(scope, lookup(scope, conn, t, None)?)?;
    let interval = match product.or(s.last_product.as_deref()) {
        Some(code) => ProductRow::find(conn, code)?.as_ref().map(Interval::from),
        None => None,
    }
    .unwrap_or(DEFAULT_INTERVAL);
    let verdict = dose_checks::check(&Facts {
        today,
        birth: s.facts.birth_date,
        moved_out_on: s.facts.moved_out_on,
        deceased_on: s.facts.deceased_on,
        prior: &s.prior,
        ticket_dose: u8::try_from(s.ticket.dose_number).unwrap_or(1),
        interval,
        administered_on: today,
        lot_known: true,
    });
    Ok(Preview {
        municipality: scope.code(),
        ticket: t.ticket.clone(),
        hint: hint(&s.facts),
        dose_number: verdict.dose_number,
        blocks: verdict.rules,
        earliest: verdict.earliest,
        last_product: s.last_product,
    })
}

/// Who records: a site's tablet (or site system), or a municipal system.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub account_id: String,
    pub site: Option<crate::flows::sites::OpenSite>,
}

/// One recording as a site sends it, parsed.
#[derive(Debug, Clone)]
pub struct Recording<'a> {
    pub ticket: &'a TicketRef,
    pub administered_on: NaiveDate,
    pub product: &'a ProductRow,
    pub lot: LotNumber,
    /// Whether the lot is known for the product, read with the product.
    pub lot_known: bool,
    /// The dose number the site was shown; a different one now means the
    /// record changed in between.
    pub expected_dose: Option<u8>,
    pub key: &'a IdempotencyKey,
    pub recorder: &'a Recorder,
    /// Who, for the operation-log line written with the dose.
    pub actor: &'a crate::audit::Actor,
}

/// What a recording did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub dose_id: String,
    pub resident_id: String,
    pub municipality: MunicipalityCode,
    pub ticket: TicketNumber,
    pub dose_number: u8,
    /// Empty when the dose counts; otherwise it waits in the queue.
    pub rules: Vec<Rule>,
    /// True when an earlier request with the same key had recorded it.
    pub replayed: bool,
}

impl Recorded {
    fn of(scope: &Scope<'_>, row: &DoseRow, ticket: &TicketNumber, replayed: bool) -> Recorded {
        Recorded {
            dose_id: row.id.clone(),
            resident_id: row.resident_id.clone(),
            municipality: scope.code(),
            ticket: ticket.clone(),
            dose_number: u8::try_from(row.dose_number).unwrap_or(DoseNumber::MAX),
            rules: Rule::split(row.quality_flags.as_deref()),
            replayed,
        }
    }

    pub fn queued(&self) -> bool {
        !self.rules.is_empty()
    }
}

/// Records a dose for a ticket, once per idempotency key. The checks run
/// inside the transaction, against the record as it stands.
pub fn record(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    r: &Recording<'_>,
    today: NaiveDate,
) -> Result<Recorded, DoseError> {
    let found = lookup(scope, conn, r.ticket, Some(r.key))?;
    // A retry answers with what the first request recorded, before any
    // check: the record may have changed since, by that very dose.
    if let Some(done) = found
        .doses
        .iter()
        .find(|d| d.idempotency_key.as_deref() == Some(r.key.as_str()))
    {
        let same = done.ticket_number.as_deref() == Some(r.ticket.ticket.as_str())
            && done.recorded_by.as_deref() == Some(r.recorder.account_id.as_str());
        return if same {
            Ok(Recorded::of(scope, done, &r.ticket.ticket, true))
        } else {
            Err(DoseError::KeyReused)
        };
    }
    let s = subject(scope, found)?;
    let verdict = dose_checks::check(&Facts {
        today,
        birth: s.facts.birth_date,
        moved_out_on: s.facts.moved_out_on,
        deceased_on: s.facts.deceased_on,
        prior: &s.prior,
        ticket_dose: u8::try_from(s.ticket.dose_number).unwrap_or(1),
        interval: Interval::from(r.product),
        administered_on: r.administered_on,
        lot_known: r.lot_known,
    });
    if let Some(expected) = r.expected_dose
        && expected != verdict.dose_number
    {
        return Err(DoseError::DoseChanged {
            expected,
            current: verdict.dose_number,
        });
    }
    let at = now();
    let site = r.recorder.site.as_ref();
    let row = DoseRow {
        municipality_code: scope.code().to_string(),
        id: crate::domain::new_record_id(),
        resident_id: s.resident.id.clone(),
        dose_number: verdict.dose_number.into(),
        administered_on: r.administered_on,
        recorded_at: at,
        ticket_number: Some(r.ticket.ticket.as_str().to_string()),
        site_municipality_code: site.map(|s| s.municipality_code.clone()),
        site_name: site.map(|s| s.name.clone()),
        product_code: r.product.product_code.clone(),
        lot_number: Some(r.lot.as_str().to_string()),
        origin: rows::RECORDED.into(),
        origin_municipality_code: None,
        recorded_by: Some(r.recorder.account_id.clone()),
        status: if verdict.rules.is_empty() {
            rows::VALID
        } else {
            rows::PENDING
        }
        .into(),
        site_id: site.map(|s| s.id.clone()),
        idempotency_key: Some(r.key.as_str().to_string()),
        quality_flags: Rule::join(&verdict.rules),
        supersedes: None,
        age_band: Some(dose_checks::age_band(s.facts.birth_date, r.administered_on)),
        sex: Some(s.facts.sex.code().to_string()),
    };
    // The line goes to the issuing municipality's log, written with the
    // dose and chained moments later: a busy site does not wait for the
    // municipality's log chain.
    let line = crate::audit::waiting_line(
        r.actor,
        crate::audit::Entry {
            chain: scope.code().as_str(),
            action: "doses.record",
            target: Some(format!("dose:{}", row.id)),
            outcome: "ok",
            detail: Some(format!(
                "site={} status={}",
                site.map_or("-", |s| s.id.as_str()),
                if verdict.rules.is_empty() {
                    "valid"
                } else {
                    "queued"
                }
            )),
        },
    );
    row.insert_logged(scope, conn, &line)?;
    if !verdict.rules.is_empty() {
        add_event(
            scope,
            conn,
            &row,
            EventKind::Queued,
            Some(&r.recorder.account_id),
            row.quality_flags.clone(),
            None,
        )?;
    }
    Ok(Recorded::of(scope, &row, &r.ticket.ticket, false))
}

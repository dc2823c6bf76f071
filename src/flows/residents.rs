//! Residents of one municipality: sealing on the way in, opening on the way
//! out. Everything here runs inside a `Scope`.

mod changes;
use crate::clock::now;
use crate::crypto::AadContext;
use crate::db::TenantConn;
use crate::db::models::residents::ResidentRow;
use crate::domain::{AddresseeNumber, BirthDate, KanaName, MyNumber, PersonName, Sex};
use crate::tenancy::{Scope, TenancyError};
pub use changes::*;
use chrono::NaiveDate;

const TABLE: &str = "residents";

/// A resident as the registry extract gives them, already parsed.
#[derive(Debug, Clone)]
pub struct NewResident {
    pub addressee_number: AddresseeNumber,
    pub my_number: Option<MyNumber>,
    pub name_kanji: PersonName,
    pub name_kana: KanaName,
    pub birth_date: BirthDate,
    pub sex: Sex,
    pub address: Option<String>,
}

/// A resident opened for the municipality's own staff.
#[derive(Debug, Clone)]
pub struct Resident {
    pub id: String,
    pub addressee_number: AddresseeNumber,
    pub my_number: Option<MyNumber>,
    pub name_kanji: PersonName,
    pub name_kana: KanaName,
    pub birth_date: BirthDate,
    pub sex: Sex,
    pub address: Option<String>,
    pub moved_out_on: Option<NaiveDate>,
    pub deceased_on: Option<NaiveDate>,
    /// Whether a support measure holds today (within its period, when one
    /// is kept).
    pub address_protected: bool,
    /// The measure's period: none without a measure, or for one set before
    /// periods were kept (it holds, and its review is due).
    pub protection: Option<crate::domain::Protection>,
    /// A measure that holds and whose review is due.
    pub protection_review_due: bool,
}

/// Why an individual number is read. There are exactly three (PRODUCT.md,
/// flow 4); each read names one, and the operation log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MyNumberPurpose {
    TransferInquiry,
    AnsweringInquiry,
    CertificateLookup,
}

impl MyNumberPurpose {
    pub fn code(&self) -> &'static str {
        match self {
            MyNumberPurpose::TransferInquiry => "transfer_inquiry",
            MyNumberPurpose::AnsweringInquiry => "answering_inquiry",
            MyNumberPurpose::CertificateLookup => "certificate_lookup",
        }
    }
}

fn ctx<'a>(column: &'static str, id: &'a str) -> AadContext<'a> {
    AadContext {
        table: TABLE,
        column,
        row_id: id,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResidentError {
    #[error("another resident of this municipality already has this individual number")]
    DuplicateMyNumber,
    #[error("no such resident in this municipality")]
    NotFound,
    #[error("the resident is registered as moved out or deceased: no ticket can be issued")]
    Flagged,
    #[error("an import that is still running issues this resident a ticket")]
    TicketFromRunningImport,
    #[error("the resident's address is protected and this account may not see or change it")]
    AddressProtected,
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
}

impl crate::db::DbCause for ResidentError {
    fn db_cause(&self) -> Option<&crate::db::DbError> {
        match self {
            ResidentError::Tenancy(e) => crate::db::DbCause::db_cause(e),
            _ => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(ResidentError);

impl From<crate::db::DbError> for ResidentError {
    fn from(e: crate::db::DbError) -> Self {
        ResidentError::Tenancy(e.into())
    }
}

/// The one rule for an individual number already on file, on the staff's
/// form and in a resident file alike: it stays with the resident who holds
/// it. Given under another 宛名番号 (a new one, or another resident's), it is
/// refused, never re-filed: which record is right is for staff to resolve.
pub fn number_held_elsewhere(filed_under: Option<&str>, holder: &str) -> bool {
    filed_under != Some(holder)
}

/// Registers a resident, or updates the one with the same 宛名番号 (re-imports
/// never duplicate). Returns the resident's id and whether it was new.
pub fn register(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    new: &NewResident,
) -> Result<(String, bool), ResidentError> {
    let addressee_index = scope.addressee_index(new.addressee_number.as_str());
    let my_number_index = new.my_number.as_ref().map(|n| scope.my_number_index(n));
    let existing = ResidentRow::find_by_addressee_index_and_municipality(
        scope,
        conn,
        &scope.addressee_indexes(new.addressee_number.as_str()),
    )?;
    if let Some(n) = &new.my_number
        && let Some(holder) = ResidentRow::find_by_my_number_index_and_municipality(
            scope,
            conn,
            &scope.my_number_indexes(n),
        )?
        && number_held_elsewhere(existing.as_ref().map(|e| e.id.as_str()), &holder.id)
    {
        return Err(ResidentError::DuplicateMyNumber);
    }
    let at = now();
    match existing {
        Some(mut row) => {
            seal_into(scope, &mut row, new);
            row.addressee_index = addressee_index;
            row.my_number_index = my_number_index;
            row.updated_at = at;
            row.update_sealed(scope, conn)?;
            Ok((row.id, false))
        }
        None => {
            let row = new_row(scope, new, crate::domain::new_record_id(), at);
            row.insert(conn)?;
            Ok((row.id, true))
        }
    }
}

/// A fresh stored row for `new`, sealed under `id`.
pub fn new_row(
    scope: &Scope<'_>,
    new: &NewResident,
    id: String,
    at: chrono::NaiveDateTime,
) -> ResidentRow {
    let mut row = ResidentRow {
        municipality_code: scope.code().to_string(),
        id,
        addressee_index: scope.addressee_index(new.addressee_number.as_str()),
        my_number_index: new.my_number.as_ref().map(|n| scope.my_number_index(n)),
        addressee_number_sealed: Vec::new(),
        my_number_sealed: None,
        name_kanji_sealed: Vec::new(),
        name_kana_sealed: Vec::new(),
        birth_date_sealed: Vec::new(),
        sex_sealed: Vec::new(),
        address_sealed: None,
        moved_out_on: None,
        deceased_on: None,
        address_protected: false,
        created_at: at,
        updated_at: at,
        content_mac: None,
        birth_bucket: None,
        staged_seq: None,
        protected_from: None,
        protected_until: None,
        protection_review: None,
    };
    seal_into(scope, &mut row, new);
    row
}

/// The keyed fingerprint of what a registry line says about a person,
/// but for the individual number: its blind index is compared on its own
/// (a file without the column says nothing about it).
pub fn content_mac(scope: &Scope<'_>, new: &NewResident) -> Vec<u8> {
    let mut c = Vec::with_capacity(128);
    for part in [
        new.addressee_number.as_str().as_bytes(),
        new.name_kanji.as_str().as_bytes(),
        new.name_kana.as_str().as_bytes(),
        new.birth_date.date().to_string().as_bytes(),
        new.sex.code().as_bytes(),
        new.address.as_deref().unwrap_or("").as_bytes(),
    ] {
        c.extend_from_slice(part);
        c.push(0);
    }
    scope.content_mac(&c)
}

fn seal_into(scope: &Scope<'_>, row: &mut ResidentRow, new: &NewResident) {
    let id = row.id.clone();
    let s = |col, v: &[u8]| scope.seal(ctx(col, &id), v);
    row.addressee_number_sealed = s("addressee_number", new.addressee_number.as_str().as_bytes());
    row.my_number_sealed = new
        .my_number
        .as_ref()
        .map(|n| s("my_number", &n.expose_digits()));
    row.name_kanji_sealed = s("name_kanji", new.name_kanji.as_str().as_bytes());
    row.name_kana_sealed = s("name_kana", new.name_kana.as_str().as_bytes());
    row.birth_date_sealed = s("birth_date", new.birth_date.date().to_string().as_bytes());
    row.sex_sealed = s("sex", new.sex.code().as_bytes());
    row.address_sealed = new.address.as_ref().map(|a| s("address", a.as_bytes()));
    let birth = new.birth_date.date();
    row.content_mac = Some(content_mac(scope, new));
    row.birth_bucket = Some(scope.birth_bucket(birth));
}

fn open_row(scope: &Scope<'_>, row: &ResidentRow) -> Result<Resident, TenancyError> {
    let id = row.id.as_str();
    let malformed = || TenancyError::Seal(scope.code(), crate::crypto::SealError::Malformed);
    let protection = measure_today(row);
    let my_number = match &row.my_number_sealed {
        Some(v) => Some(
            MyNumber::parse(&scope.open_string(ctx("my_number", id), v)?)
                .map_err(|_| malformed())?,
        ),
        None => None,
    };
    let a = open_attributes(scope, row)?;
    Ok(Resident {
        id: row.id.clone(),
        addressee_number: a.addressee_number,
        my_number,
        name_kanji: a.name_kanji,
        name_kana: a.name_kana,
        birth_date: a.birth_date,
        sex: a.sex,
        address: a.address,
        moved_out_on: row.moved_out_on,
        deceased_on: row.deceased_on,
        address_protected: protection.is_some_and(|p| p.holds),
        protection: protection.and_then(|p| p.period),
        protection_review_due: protection.is_some_and(|p| p.holds && p.review_due),
    })
}

/// A stored resident's attributes, opened, but for the individual number
/// (left sealed: a flow that does not need it does not read it).
pub(crate) fn open_attributes(
    scope: &Scope<'_>,
    row: &ResidentRow,
) -> Result<NewResident, TenancyError> {
    let id = row.id.as_str();
    let text = |col, v: &[u8]| scope.open_string(ctx(col, id), v);
    let malformed = || TenancyError::Seal(scope.code(), crate::crypto::SealError::Malformed);
    Ok(NewResident {
        addressee_number: AddresseeNumber::parse(&text(
            "addressee_number",
            &row.addressee_number_sealed,
        )?)
        .map_err(|_| malformed())?,
        my_number: None,
        name_kanji: PersonName::parse(&text("name_kanji", &row.name_kanji_sealed)?)
            .map_err(|_| malformed())?,
        name_kana: KanaName::parse(&text("name_kana", &row.name_kana_sealed)?)
            .map_err(|_| malformed())?,
        birth_date: BirthDate::from_stored(
            text("birth_date", &row.birth_date_sealed)?
                .parse()
                .map_err(|_| malformed())?,
        ),
        sex: Sex::parse(&text("sex", &row.sex_sealed)?).map_err(|_| malformed())?,
        address: row
            .address_sealed
            .as_ref()
            .map(|v| text("address", v))
            .transpose()?,
    })
}

/// A resident's 宛名番号 alone, opened without the rest of the record (for
/// naming the resident on a log line); none for one the municipality does
/// not hold.
pub fn addressee_of(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
) -> Result<Option<String>, ResidentError> {
    match ResidentRow::find_by_id_and_municipality(scope, conn, id)? {
        Some(row) => Ok(Some(scope.open_string(
            ctx("addressee_number", id),
            &row.addressee_number_sealed,
        )?)),
        None => Ok(None),
    }
}

/// Whether a support measure holds for the resident today, read from the
/// row without opening its sealed fields.
pub fn protected_now(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
) -> Result<bool, ResidentError> {
    Ok(protection_of(scope, conn, id)?.unwrap_or(false))
}

/// Whether a support measure holds today for the resident of this row.
pub fn row_protected(row: &ResidentRow) -> bool {
    measure_today(row).is_some_and(|m| m.holds)
}

/// The same, with none for a resident this municipality does not hold.
pub fn protection_of(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
) -> Result<Option<bool>, ResidentError> {
    Ok(ResidentRow::find_by_id_and_municipality(scope, conn, id)?
        .map(|row| measure_today(&row).is_some_and(|m| m.holds)))
}

/// The period stored with a measure, if one was kept.
fn stored_period(row: &ResidentRow) -> Option<crate::domain::Protection> {
    row.protected_from.map(|from| crate::domain::Protection {
        from,
        until: row.protected_until,
        review: row.protection_review.unwrap_or(from),
    })
}

/// A stored support measure as it stands today.
#[derive(Clone, Copy)]
struct MeasureToday {
    period: Option<crate::domain::Protection>,
    holds: bool,
    review_due: bool,
}

fn measure_today(row: &ResidentRow) -> Option<MeasureToday> {
    if !row.address_protected {
        return None;
    }
    let today = crate::clock::today_in_japan();
    Some(match stored_period(row) {
        Some(p) => MeasureToday {
            period: Some(p),
            holds: p.holds_on(today),
            review_due: p.review_due(today),
        },
        // Set before periods were kept: it holds until lifted, and is to be
        // reviewed now.
        None => MeasureToday {
            period: None,
            holds: true,
            review_due: true,
        },
    })
}

/// The few fields a vaccination site's checks need, opened without touching
/// the individual number, the name or the address.
#[derive(Debug, Clone)]
pub struct SiteFacts {
    pub kana_initials: String,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub moved_out_on: Option<NaiveDate>,
    pub deceased_on: Option<NaiveDate>,
}

pub fn site_facts(scope: &Scope<'_>, row: &ResidentRow) -> Result<SiteFacts, TenancyError> {
    let id = row.id.as_str();
    let text = |col, v: &[u8]| scope.open_string(ctx(col, id), v);
    let malformed = || TenancyError::Seal(scope.code(), crate::crypto::SealError::Malformed);
    Ok(SiteFacts {
        kana_initials: KanaName::parse(&text("name_kana", &row.name_kana_sealed)?)
            .map_err(|_| malformed())?
            .initials(),
        birth_date: text("birth_date", &row.birth_date_sealed)?
            .parse()
            .map_err(|_| malformed())?,
        sex: Sex::parse(&text("sex", &row.sex_sealed)?).map_err(|_| malformed())?,
        moved_out_on: row.moved_out_on,
        deceased_on: row.deceased_on,
    })
}

pub fn get(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
) -> Result<Option<Resident>, ResidentError> {
    match ResidentRow::find_by_id_and_municipality(scope, conn, id)? {
        Some(row) => Ok(Some(open_row(scope, &row)?)),
        None => Ok(None),
    }
}

/// A resident's attributes, opened without the individual number, with
/// their row (flags, protection); none for one the municipality does not
/// hold.
pub fn attributes(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
) -> Result<Option<(NewResident, ResidentRow)>, ResidentError> {
    match ResidentRow::find_by_id_and_municipality(scope, conn, id)? {
        Some(row) => Ok(Some((open_attributes(scope, &row)?, row))),
        None => Ok(None),
    }
}

pub fn find_by_addressee(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    addressee: &AddresseeNumber,
) -> Result<Option<Resident>, ResidentError> {
    let idx = scope.addressee_indexes(addressee.as_str());
    match ResidentRow::find_by_addressee_index_and_municipality(scope, conn, &idx)? {
        Some(row) => Ok(Some(open_row(scope, &row)?)),
        None => Ok(None),
    }
}

/// Finds a resident by individual number through the blind index, for one of
/// the three permitted purposes.
pub fn find_by_my_number(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    number: &MyNumber,
    purpose: MyNumberPurpose,
) -> Result<Option<Resident>, ResidentError> {
    tracing::debug!(municipality = %scope.code(), purpose = purpose.code(), "individual-number lookup");
    let idx = scope.my_number_indexes(number);
    match ResidentRow::find_by_my_number_index_and_municipality(scope, conn, &idx)? {
        Some(row) => Ok(Some(open_row(scope, &row)?)),
        None => Ok(None),
    }
}

pub fn count(scope: &Scope<'_>, conn: &mut TenantConn<'_>) -> Result<i64, ResidentError> {
    Ok(ResidentRow::count_of_municipality(scope, conn)?)
}

/// The row sealed and indexed again under the active key, or `None` when it
/// is already (a key rotation's step).
pub fn resealed(
    scope: &Scope<'_>,
    row: &ResidentRow,
) -> Result<Option<ResidentRow>, ResidentError> {
    if !scope.needs_reseal(&row.addressee_number_sealed) {
        return Ok(None);
    }
    let r = open_row(scope, row)?;
    let fresh = NewResident {
        addressee_number: r.addressee_number,
        my_number: r.my_number,
        name_kanji: r.name_kanji,
        name_kana: r.name_kana,
        birth_date: r.birth_date,
        sex: r.sex,
        address: r.address,
    };
    let mut row = row.clone();
    seal_into(scope, &mut row, &fresh);
    row.addressee_index = scope.addressee_index(fresh.addressee_number.as_str());
    row.my_number_index = fresh.my_number.as_ref().map(|n| scope.my_number_index(n));
    Ok(Some(row))
}

/// How staff look for one of their residents.
#[derive(Debug, Clone)]
pub enum Search {
    Addressee(AddresseeNumber),
    Ticket(crate::domain::TicketNumber),
    /// A name in kanji or katakana, with the date of birth.
    NameAndBirth {
        name: String,
        birth: BirthDate,
    },
}

/// A name without its spaces (full- or half-width), for comparing.
fn squeeze(name: &str) -> String {
    name.chars().filter(|c| !c.is_whitespace()).collect()
}

/// At most this many residents are listed for one name and birth date.
pub const SEARCH_LIMIT: i64 = 50;

pub fn search(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    query: &Search,
) -> Result<Vec<Resident>, ResidentError> {
    use crate::db::models::tickets::TicketRow;
    let rows = match query {
        Search::Addressee(a) => {
            let idx = scope.addressee_indexes(a.as_str());
            ResidentRow::find_by_addressee_index_and_municipality(scope, conn, &idx)?
                .into_iter()
                .collect()
        }
        Search::Ticket(t) => match TicketRow::find(scope, conn, t.as_str())? {
            Some(ticket) => {
                ResidentRow::find_by_id_and_municipality(scope, conn, &ticket.resident_id)?
                    .into_iter()
                    .collect()
            }
            None => Vec::new(),
        },
        Search::NameAndBirth { name, birth } => {
            // Open the bucket, keep exact matches on the date and on the
            // name in kana or kanji (spaces ignored).
            let wanted = squeeze(name);
            let mut found = Vec::new();
            for row in
                ResidentRow::in_birth_bucket(scope, conn, &scope.birth_buckets(birth.date()))?
            {
                let r = open_row(scope, &row)?;
                if r.birth_date == *birth
                    && (squeeze(r.name_kana.as_str()) == wanted
                        || squeeze(r.name_kanji.as_str()) == wanted)
                {
                    found.push(r);
                    if found.len() as i64 == SEARCH_LIMIT {
                        break;
                    }
                }
            }
            return Ok(found);
        }
    };
    rows.iter()
        .map(|r| open_row(scope, r).map_err(ResidentError::from))
        .collect()
}

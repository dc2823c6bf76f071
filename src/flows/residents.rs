//! Residents of one municipality: sealing on the way in, opening on the way
//! out. Everything here runs inside a `Scope`.

use super::now;
use crate::crypto::AadContext;
use crate::db::DbConn;
use crate::db::models::residents::ResidentRow;
use crate::domain::{AddresseeNumber, BirthDate, KanaName, MyNumber, PersonName, Sex};
use crate::tenancy::{Scope, TenancyError};
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
    pub address_protected: bool,
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
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
}

crate::db::from_diesel_via_db_error!(ResidentError);

impl From<crate::db::DbError> for ResidentError {
    fn from(e: crate::db::DbError) -> Self {
        ResidentError::Tenancy(e.into())
    }
}

/// Registers a resident, or updates the one with the same 宛名番号 (re-imports
/// never duplicate). Returns the resident's id and whether it was new.
pub fn register(
    scope: &Scope<'_>,
    conn: &mut DbConn,
    new: &NewResident,
) -> Result<(String, bool), ResidentError> {
    let addressee_index = scope.addressee_index(new.addressee_number.as_str());
    let my_number_index = new.my_number.as_ref().map(|n| scope.my_number_index(n));
    let existing =
        ResidentRow::find_by_addressee_index_and_municipality(scope, conn, &addressee_index)?;
    if let Some(idx) = &my_number_index
        && let Some(holder) =
            ResidentRow::find_by_my_number_index_and_municipality(scope, conn, idx)?
        && existing.as_ref().map(|e| &e.id) != Some(&holder.id)
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
            let id = uuid::Uuid::new_v4().to_string();
            let mut row = ResidentRow {
                municipality_code: scope.code().to_string(),
                id: id.clone(),
                addressee_index,
                my_number_index,
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
            };
            seal_into(scope, &mut row, new);
            row.insert(scope, conn)?;
            Ok((id, true))
        }
    }
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
}

fn open_row(scope: &Scope<'_>, row: &ResidentRow) -> Result<Resident, TenancyError> {
    let id = row.id.as_str();
    let text = |col, v: &[u8]| scope.open_string(ctx(col, id), v);
    let malformed = || TenancyError::Seal(scope.code(), crate::crypto::SealError::Malformed);
    let my_number = match &row.my_number_sealed {
        Some(v) => Some(MyNumber::parse(&text("my_number", v)?).map_err(|_| malformed())?),
        None => None,
    };
    Ok(Resident {
        id: row.id.clone(),
        addressee_number: AddresseeNumber::parse(&text(
            "addressee_number",
            &row.addressee_number_sealed,
        )?)
        .map_err(|_| malformed())?,
        my_number,
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
        moved_out_on: row.moved_out_on,
        deceased_on: row.deceased_on,
        address_protected: row.address_protected,
    })
}

pub fn get(
    scope: &Scope<'_>,
    conn: &mut DbConn,
    id: &str,
) -> Result<Option<Resident>, ResidentError> {
    match ResidentRow::find_by_id_and_municipality(scope, conn, id)? {
        Some(row) => Ok(Some(open_row(scope, &row)?)),
        None => Ok(None),
    }
}

pub fn find_by_addressee(
    scope: &Scope<'_>,
    conn: &mut DbConn,
    addressee: &AddresseeNumber,
) -> Result<Option<Resident>, ResidentError> {
    let idx = scope.addressee_index(addressee.as_str());
    match ResidentRow::find_by_addressee_index_and_municipality(scope, conn, &idx)? {
        Some(row) => Ok(Some(open_row(scope, &row)?)),
        None => Ok(None),
    }
}

/// Finds a resident by individual number through the blind index, for one of
/// the three permitted purposes.
pub fn find_by_my_number(
    scope: &Scope<'_>,
    conn: &mut DbConn,
    number: &MyNumber,
    purpose: MyNumberPurpose,
) -> Result<Option<Resident>, ResidentError> {
    tracing::debug!(municipality = %scope.code(), purpose = purpose.code(), "individual-number lookup");
    let idx = scope.my_number_index(number);
    match ResidentRow::find_by_my_number_index_and_municipality(scope, conn, &idx)? {
        Some(row) => Ok(Some(open_row(scope, &row)?)),
        None => Ok(None),
    }
}

pub fn count(scope: &Scope<'_>, conn: &mut DbConn) -> Result<i64, ResidentError> {
    Ok(ResidentRow::count_of_municipality(scope, conn)?)
}

/// Re-seals every resident with the scope's active key and recomputes the
/// blind indexes with its index key (data-key rotation). Works in pages so a
/// large city does not sit in memory at once. Returns rows re-sealed.
pub fn reseal_all(scope: &Scope<'_>, conn: &mut DbConn) -> Result<usize, ResidentError> {
    const PAGE: i64 = 500;
    let mut after = String::new();
    let mut done = 0;
    loop {
        let page = ResidentRow::page_of_municipality(scope, conn, &after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        for mut row in page {
            let r = open_row(scope, &row)?;
            let fresh = NewResident {
                addressee_number: r.addressee_number,
                my_number: r.my_number,
                name_kanji: r.name_kanji,
                name_kana: r.name_kana,
                birth_date: r.birth_date,
                sex: r.sex,
                address: r.address,
            };
            seal_into(scope, &mut row, &fresh);
            row.addressee_index = scope.addressee_index(fresh.addressee_number.as_str());
            row.my_number_index = fresh.my_number.as_ref().map(|n| scope.my_number_index(n));
            row.update_sealed(scope, conn)?;
            done += 1;
        }
    }
    Ok(done)
}

//! Retention and erasure by the owning municipality (F22, S33): records of
//! residents moved out or deceased longer ago than the municipality keeps
//! them are listed for its administrators, who may export them first (no
//! individual number) and then erase them. Erasure empties the person's
//! row (sealed fields and blind indexes) and deletes their tickets,
//! history, certificates and held inquiries; the doses keep their
//! anonymous facts, so the statistics stand. Only the owner's partition is
//! ever touched: the scope is the caller's municipality.

use crate::audit::{Actor, AuditKey, Entry};
use crate::db::TenantConn;
use crate::db::models::doses::DoseRow;
use crate::db::models::residents::ResidentRow;
use crate::db::{DbConn, DbError};
use crate::domain::MunicipalityCode;
use crate::flows::residents::ResidentError;
use crate::tenancy::Scope;
use chrono::{Months, NaiveDate};

/// The longest a municipality may list: a page of the erasure screen.
pub const LIST_MAX: i64 = 500;

/// Years a record is kept after a move-out or death, by default.
pub const DEFAULT_YEARS: u32 = 5;

/// A resident due for erasure.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: String,
    pub addressee: String,
    pub moved_out_on: Option<NaiveDate>,
    pub deceased_on: Option<NaiveDate>,
}

pub fn retention_years(conn: &mut DbConn, code: MunicipalityCode) -> Result<u32, DbError> {
    use crate::db::schema::tenants;
    use diesel::prelude::*;
    Ok(tenants::table
        .find(code.as_str())
        .select(tenants::retention_years)
        .first::<i32>(conn)
        .optional()?
        .map_or(DEFAULT_YEARS, |y| y.max(1) as u32))
}

pub fn set_retention_years(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    years: u32,
) -> Result<(), DbError> {
    use crate::db::schema::tenants;
    use diesel::prelude::*;
    let line = ("residents.retention", format!("years={years}"));
    super::municipalities::save_setting(conn, key, actor, code, line, |conn| {
        diesel::update(tenants::table.find(code.as_str()))
            .set(tenants::retention_years.eq(years as i32))
            .execute(conn)?;
        Ok(())
    })
}

/// Moves out or deaths before this day are past retention on `today`.
pub fn cutoff(today: NaiveDate, years: u32) -> NaiveDate {
    today
        .checked_sub_months(Months::new(years * 12))
        .unwrap_or(NaiveDate::MIN)
}

fn addressee(scope: &Scope<'_>, id: &str, sealed: &[u8]) -> Result<String, ResidentError> {
    Ok(scope.open_string(
        crate::crypto::AadContext {
            table: "residents",
            column: "addressee_number",
            row_id: id,
        },
        sealed,
    )?)
}

/// The residents due for erasure (at most `LIST_MAX`), by id.
pub fn due(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    before: NaiveDate,
) -> Result<Vec<Due>, ResidentError> {
    ResidentRow::due_for_erasure(scope, conn, before, "", LIST_MAX)?
        .into_iter()
        .map(|r| {
            Ok(Due {
                addressee: addressee(scope, &r.id, &r.addressee_number_sealed)?,
                id: r.id,
                moved_out_on: r.moved_out_on,
                deceased_on: r.deceased_on,
            })
        })
        .collect()
}

/// The header of the export before erasure: no individual number, no name.
pub const EXPORT_HEADER: [&str; 8] = [
    "宛名番号",
    "転出日",
    "死亡日",
    "接種回",
    "接種日",
    "ワクチン",
    "ロット番号",
    "接種会場",
];

/// The due residents' records as the export before erasure holds them: a
/// line per dose (a line with the flags alone for a resident without one).
pub fn export_lines(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    before: NaiveDate,
) -> Result<Vec<Vec<String>>, ResidentError> {
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let mut lines = Vec::new();
    for r in due(scope, conn, before)? {
        let head = [
            r.addressee.clone(),
            date(r.moved_out_on),
            date(r.deceased_on),
        ];
        let mut doses = DoseRow::of_resident(scope, conn, &r.id)?;
        doses.retain(|d| d.status == crate::db::models::doses::VALID);
        if doses.is_empty() {
            let mut l = head.to_vec();
            l.extend(std::iter::repeat_n(String::new(), 5));
            lines.push(l);
        }
        for d in doses {
            let mut l = head.to_vec();
            l.extend([
                d.dose_number.to_string(),
                d.administered_on.to_string(),
                d.product_code,
                d.lot_number.unwrap_or_default(),
                d.site_name.unwrap_or_default(),
            ]);
            lines.push(l);
        }
    }
    Ok(lines)
}

/// Erases the given residents of `scope`'s municipality that are due (an
/// id that is not, or is another municipality's, erases nothing). Each
/// erasure is a line of the log naming the 宛名番号 and the rows removed.
/// Returns how many residents were erased.
pub fn erase(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    key: &AuditKey,
    actor: &Actor,
    before: NaiveDate,
    ids: &[String],
) -> Result<usize, ResidentError> {
    let at = crate::clock::now();
    let mut erased = 0;
    for id in ids {
        let Some(row) = ResidentRow::due_one(scope, conn, before, id)? else {
            continue;
        };
        let number = addressee(scope, &row.id, &row.addressee_number_sealed)?;
        let Some(rows) = ResidentRow::erase(scope, conn, id, before, at)? else {
            continue;
        };
        crate::audit::append(
            conn.db(),
            key,
            actor,
            Entry::done(
                scope.code().as_str(),
                "resident.erase",
                Some(format!("resident:{id}")),
                Some(format!("addressee={number} records={rows}")),
            ),
        )?;
        erased += 1;
    }
    Ok(erased)
}

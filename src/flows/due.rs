//! Who is due a dose (接種勧奨): for a dose number and a period, the
//! current residents whose record has reached that dose and who may have
//! it by the period's end — due (from a day inside the period) or overdue
//! (from before it) — by the interval rules of the product of their last
//! dose. Moved-out, deceased and address-protected residents are left out
//! unless staff ask for them. Worked out from the doses and flags alone;
//! names and addresses are opened only for the lines shown or printed.

use super::dose_checks::{self, Prior};
use super::residents::{self, ResidentError};
use super::vaccines::{Interval, Master};
use crate::db::TenantConn;
use crate::db::models::doses::{self as dose_rows, DoseRow};
use crate::db::models::residents::ResidentRow;
use crate::domain::DoseNumber;
use crate::tenancy::Scope;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Residents read per query.
const PAGE: i64 = 2000;

/// Which dose, over which period, for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueQuery {
    pub dose: u8,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Moved-out and deceased residents too.
    pub include_ended: bool,
    /// Residents under a support measure too (staff who may see their
    /// addresses only).
    pub include_protected: bool,
}

impl DueQuery {
    pub fn dose_number(&self) -> Option<DoseNumber> {
        DoseNumber::new(self.dose)
    }
}

/// One resident due, before anything sealed is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub resident_id: String,
    /// The first day the dose may be given.
    pub from: NaiveDate,
    /// Due from before the period began.
    pub overdue: bool,
    /// The last dose on record: its number and day.
    pub last: Option<(u8, NaiveDate)>,
}

/// The residents due, in the order of their ids.
pub fn due(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    q: &DueQuery,
    master: &Master,
) -> Result<Vec<Due>, ResidentError> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = ResidentRow::page_of_municipality(scope, conn, &after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        let people: Vec<&ResidentRow> = page
            .iter()
            .filter(|r| q.include_ended || (r.moved_out_on.is_none() && r.deceased_on.is_none()))
            .filter(|r| q.include_protected || !residents::row_protected(r))
            .collect();
        let ids: Vec<String> = people.iter().map(|r| r.id.clone()).collect();
        let mut doses: HashMap<String, Vec<DoseRow>> = HashMap::new();
        for d in DoseRow::of_residents(scope, conn, &ids)? {
            if d.status == dose_rows::VALID || d.status == dose_rows::PENDING {
                doses.entry(d.resident_id.clone()).or_default().push(d);
            }
        }
        for r in people {
            if let Some(d) = due_of(
                r,
                doses.get(&r.id).map(Vec::as_slice).unwrap_or(&[]),
                q,
                master,
            ) {
                out.push(d);
            }
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    Ok(out)
}

/// Whether one resident is due the query's dose, and from when.
fn due_of(r: &ResidentRow, doses: &[DoseRow], q: &DueQuery, master: &Master) -> Option<Due> {
    let prior: Vec<Prior> = doses
        .iter()
        .map(|d| Prior {
            dose_number: u8::try_from(d.dose_number).unwrap_or(u8::MAX),
            administered_on: d.administered_on,
        })
        .collect();
    if dose_checks::due(&prior) != Some(q.dose) {
        return None;
    }
    let last = dose_checks::last(&prior);
    let from = match last {
        // Never vaccinated: due since they were registered.
        None => r.created_at.date(),
        Some(l) => {
            let product = doses
                .iter()
                .find(|d| {
                    d.dose_number == i32::from(l.dose_number)
                        && d.administered_on == l.administered_on
                })
                .and_then(|d| master.get(&d.product_code));
            let interval = product
                .map(Interval::from)
                .unwrap_or(super::doses::DEFAULT_INTERVAL);
            interval.earliest(q.dose, l.administered_on)
        }
    };
    (from <= q.to).then(|| Due {
        resident_id: r.id.clone(),
        from,
        overdue: from < q.from,
        last: last.map(|l| (l.dose_number, l.administered_on)),
    })
}

/// A line of the due list as staff read it (and as a notice addresses
/// the person).
#[derive(Debug, Clone)]
pub struct DueLine {
    pub resident_id: String,
    pub addressee: String,
    pub name: String,
    pub kana: String,
    pub birth_date: NaiveDate,
    pub address: Option<String>,
    pub from: NaiveDate,
    pub overdue: bool,
    pub last: Option<(u8, NaiveDate)>,
}

/// Opens the people of `dues` for the list or the notices.
pub fn open(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    dues: &[Due],
) -> Result<Vec<DueLine>, ResidentError> {
    let mut out = Vec::with_capacity(dues.len());
    for d in dues {
        let Some((p, _)) = residents::attributes(scope, conn, &d.resident_id)? else {
            continue;
        };
        out.push(DueLine {
            resident_id: d.resident_id.clone(),
            addressee: p.addressee_number.as_str().to_string(),
            name: p.name_kanji.as_str().to_string(),
            kana: p.name_kana.as_str().to_string(),
            birth_date: p.birth_date.date(),
            address: p.address,
            from: d.from,
            overdue: d.overdue,
            last: d.last,
        });
    }
    Ok(out)
}

/// The download's columns: no individual number.
pub const CSV_HEADER: [&str; 9] = [
    "宛名番号",
    "氏名",
    "氏名カナ",
    "生年月日",
    "住所",
    "接種回",
    "接種できる日",
    "状況",
    "前回の接種日",
];

pub fn csv_row(l: &DueLine, dose: u8) -> Vec<String> {
    vec![
        l.addressee.clone(),
        l.name.clone(),
        l.kana.clone(),
        l.birth_date.to_string(),
        l.address.clone().unwrap_or_default(),
        dose.to_string(),
        l.from.to_string(),
        if l.overdue { "期限超過" } else { "対象" }.to_string(),
        l.last.map(|(_, d)| d.to_string()).unwrap_or_default(),
    ]
}

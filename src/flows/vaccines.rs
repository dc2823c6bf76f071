//! The national vaccine master: product lines and their known lots, kept by
//! the operator, seeded on first start with the products of Japan's
//! programme (reference/vaccines.csv).

use crate::audit::{self, Actor, AuditKey, Entry, PLATFORM_CHAIN};
use crate::clock::now;
use crate::db::models::vaccines::{LotRow, ProductRow};
use crate::db::{DbConn, DbError};
use crate::domain::{FieldError, LotNumber, Reason, VaccineCatalog};
use chrono::{Months, NaiveDate};
use std::collections::BTreeMap;

/// Fills an empty master with the shipped products. Returns how many.
pub fn seed(conn: &mut DbConn) -> Result<usize, DbError> {
    if ProductRow::count(conn)? > 0 {
        return Ok(0);
    }
    let at = now();
    let rows: Vec<ProductRow> = VaccineCatalog::global()
        .all()
        .map(|p| ProductRow {
            product_code: p.product_code.clone(),
            manufacturer_ja: p.manufacturer_ja.clone(),
            manufacturer_en: p.manufacturer_en.clone(),
            product_ja: p.product_ja.clone(),
            product_en: p.product_en.clone(),
            vaccine_type: p.vaccine_type.clone(),
            target: p.target.clone(),
            age_group: p.age_group.clone(),
            cvx: Some(p.cvx.clone()).filter(|c| !c.is_empty()),
            primary_doses: p.primary_doses,
            dose2_min_days: p.dose2_min_days,
            dose3_min_days: p.dose3_min_days,
            booster_min_months: p.booster_min_months,
            in_use: true,
            created_at: at,
        })
        .collect();
    ProductRow::insert_many(conn, &rows)?;
    Ok(rows.len())
}

/// A product as pages show it: its names, its intervals, whether sites may
/// choose it.
#[derive(Debug, Clone)]
pub struct ProductLine {
    pub product_code: String,
    pub manufacturer_ja: String,
    pub manufacturer_en: String,
    pub product_ja: String,
    pub product_en: String,
    pub vaccine_type: String,
    pub cvx: Option<String>,
    pub dose2_min_days: Option<i32>,
    pub dose3_min_days: Option<i32>,
    pub booster_min_months: i32,
    pub in_use: bool,
}

impl From<&ProductRow> for ProductLine {
    fn from(p: &ProductRow) -> ProductLine {
        ProductLine {
            product_code: p.product_code.clone(),
            manufacturer_ja: p.manufacturer_ja.clone(),
            manufacturer_en: p.manufacturer_en.clone(),
            product_ja: p.product_ja.clone(),
            product_en: p.product_en.clone(),
            vaccine_type: p.vaccine_type.clone(),
            cvx: p.cvx.clone(),
            dose2_min_days: p.dose2_min_days,
            dose3_min_days: p.dose3_min_days,
            booster_min_months: p.booster_min_months,
            in_use: p.in_use,
        }
    }
}

impl ProductLine {
    /// 「製造販売業者 — 製品名」 in the page's language.
    pub fn label(&self, en: bool) -> String {
        if en {
            format!("{} — {}", self.manufacturer_en, self.product_en)
        } else {
            format!("{} — {}", self.manufacturer_ja, self.product_ja)
        }
    }
}

/// Every product of the master with how many lots it knows, for the
/// operator's list.
pub fn with_lot_counts(conn: &mut DbConn) -> Result<Vec<(ProductLine, i64)>, DbError> {
    let counts = LotRow::counts(conn)?;
    Ok(ProductRow::all(conn)?
        .iter()
        .map(|p| {
            let n = counts
                .iter()
                .find(|(c, _)| *c == p.product_code)
                .map_or(0, |(_, n)| *n);
            (ProductLine::from(p), n)
        })
        .collect())
}

/// The master as read at one moment: enough to name a dose's product and
/// to check a new dose against its intervals.
#[derive(Debug, Clone, Default)]
pub struct Master {
    by_code: BTreeMap<String, ProductRow>,
}

impl Master {
    pub fn load(conn: &mut DbConn) -> Result<Master, DbError> {
        Ok(Master {
            by_code: ProductRow::all(conn)?
                .into_iter()
                .map(|p| (p.product_code.clone(), p))
                .collect(),
        })
    }

    pub fn get(&self, code: &str) -> Option<&ProductRow> {
        self.by_code.get(code)
    }

    pub fn all(&self) -> impl Iterator<Item = &ProductRow> {
        self.by_code.values()
    }

    /// Products a site may choose today.
    pub fn in_use(&self) -> impl Iterator<Item = &ProductRow> {
        self.by_code.values().filter(|p| p.in_use)
    }

    /// A product code from a form or an API call.
    pub fn parse(&self, field: &'static str, input: &str) -> Result<&ProductRow, FieldError> {
        let code = input.trim();
        if code.is_empty() {
            return Err(FieldError {
                field,
                reason: Reason::Empty,
            });
        }
        self.get(code).ok_or(FieldError {
            field,
            reason: Reason::UnknownProduct,
        })
    }
}

/// The minimum-interval rules of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub primary_doses: i32,
    pub dose2_min_days: Option<i32>,
    pub dose3_min_days: Option<i32>,
    pub booster_min_months: i32,
}

impl From<&ProductRow> for Interval {
    fn from(p: &ProductRow) -> Self {
        Interval {
            primary_doses: p.primary_doses,
            dose2_min_days: p.dose2_min_days,
            dose3_min_days: p.dose3_min_days,
            booster_min_months: p.booster_min_months,
        }
    }
}

impl Interval {
    /// The earliest date dose `dose_number` may be given when the previous
    /// dose was given on `previous`. Doses of the primary series count days
    /// (the date difference); boosters count calendar months.
    pub fn earliest(&self, dose_number: u8, previous: NaiveDate) -> NaiveDate {
        let n = i32::from(dose_number);
        let days = match n {
            2 if n <= self.primary_doses => self.dose2_min_days,
            3 if n <= self.primary_doses => self.dose3_min_days.or(self.dose2_min_days),
            _ => None,
        };
        match days {
            Some(d) => previous + chrono::Duration::days(d.into()),
            None => previous
                .checked_add_months(Months::new(self.booster_min_months.max(0) as u32))
                .unwrap_or(NaiveDate::MAX),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaccineError {
    #[error("{0:?}")]
    Field(FieldError),
    #[error("the lot is already in the master")]
    DuplicateLot,
    #[error("the product code is already in the master")]
    DuplicateProduct,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl crate::db::DbCause for VaccineError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            VaccineError::Db(e) => Some(e),
            _ => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(VaccineError);

/// A line in the platform's operation log for a change to the master.
fn log(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    action: &str,
    target: String,
    detail: Option<String>,
) -> Result<(), DbError> {
    audit::append(
        conn,
        key,
        actor,
        Entry::done(PLATFORM_CHAIN, action, Some(target), detail),
    )
}

/// Adds a known lot of a product (operator only), with a platform log line.
pub fn add_lot(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    product_code: &str,
    lot: &LotNumber,
    expires_on: Option<NaiveDate>,
) -> Result<(), VaccineError> {
    crate::db::write_transaction(conn, |conn| {
        if ProductRow::find(conn, product_code)?.is_none() {
            return Err(VaccineError::Field(FieldError {
                field: "製品",
                reason: Reason::UnknownProduct,
            }));
        }
        if LotRow::exists(conn, product_code, lot.as_str())? {
            return Err(VaccineError::DuplicateLot);
        }
        LotRow {
            product_code: product_code.to_string(),
            lot_number: lot.as_str().to_string(),
            expires_on,
            created_by: actor.account_id.clone(),
            created_at: now(),
        }
        .insert(conn)?;
        log(
            conn,
            key,
            actor,
            "vaccines.lot.add",
            format!("product:{product_code}"),
            Some(format!("lot={}", lot.as_str())),
        )?;
        Ok(())
    })
}

/// A new product line as the operator types it, every field parsed.
#[derive(Debug, Clone, Default)]
pub struct ProductForm {
    pub product_code: String,
    pub manufacturer_ja: String,
    pub manufacturer_en: String,
    pub product_ja: String,
    pub product_en: String,
    pub vaccine_type: String,
    pub target: String,
    pub age_group: String,
    pub cvx: String,
    pub primary_doses: String,
    pub dose2_min_days: String,
    pub dose3_min_days: String,
    pub booster_min_months: String,
}

impl ProductForm {
    /// The row, or every field's error.
    pub fn parse(&self) -> Result<ProductRow, Vec<FieldError>> {
        use crate::domain::{parse_number, parse_text};
        let mut errors = Vec::new();
        let mut take = |r: Result<String, FieldError>| r.map_err(|e| errors.push(e)).ok();
        let product_code = take(
            crate::domain::ProductCode::parse_field("製品コード", &self.product_code)
                .map(|c| c.as_str().to_string()),
        );
        let manufacturer_ja = take(parse_text("製造販売元", &self.manufacturer_ja, 100));
        let manufacturer_en = take(parse_text("製造販売元（英語）", &self.manufacturer_en, 100));
        let product_ja = take(parse_text("製品名", &self.product_ja, 100));
        let product_en = take(parse_text("製品名（英語）", &self.product_en, 100));
        let vaccine_type = take(parse_text("種類", &self.vaccine_type, 40));
        let target = take(parse_text("対象株", &self.target, 40));
        let age_group = take(parse_text("年齢区分", &self.age_group, 40));
        let cvx = self.cvx.trim();
        let cvx = if cvx.is_empty() {
            Some(None)
        } else if cvx.len() <= 3 && cvx.bytes().all(|b| b.is_ascii_digit()) {
            Some(Some(cvx.to_string()))
        } else {
            errors.push(FieldError {
                field: "CVXコード",
                reason: Reason::NotDigits,
            });
            None
        };
        let mut number = |field, input: &str, min, max, optional: bool| {
            if optional && input.trim().is_empty() {
                return Some(None);
            }
            parse_number(field, input, min, max)
                .map(|n| Some(i32::from(n)))
                .map_err(|e| errors.push(e))
                .ok()
        };
        let primary_doses = number("初回接種の回数", &self.primary_doses, 0, 3, false);
        let dose2 = number(
            "1回目から2回目の最短日数",
            &self.dose2_min_days,
            1,
            200,
            true,
        );
        let dose3 = number(
            "2回目から3回目の最短日数",
            &self.dose3_min_days,
            1,
            200,
            true,
        );
        let booster = number("追加接種の最短月数", &self.booster_min_months, 0, 24, false);
        if !errors.is_empty() {
            return Err(errors);
        }
        // Every field parsed (no error was pushed), so each is Some.
        Ok(ProductRow {
            product_code: product_code.unwrap_or_default(),
            manufacturer_ja: manufacturer_ja.unwrap_or_default(),
            manufacturer_en: manufacturer_en.unwrap_or_default(),
            product_ja: product_ja.unwrap_or_default(),
            product_en: product_en.unwrap_or_default(),
            vaccine_type: vaccine_type.unwrap_or_default(),
            target: target.unwrap_or_default(),
            age_group: age_group.unwrap_or_default(),
            cvx: cvx.flatten(),
            primary_doses: primary_doses.flatten().unwrap_or_default(),
            dose2_min_days: dose2.flatten(),
            dose3_min_days: dose3.flatten(),
            booster_min_months: booster.flatten().unwrap_or_default(),
            in_use: true,
            created_at: now(),
        })
    }
}

/// Adds a product line to the master (operator only), with a platform log
/// line.
pub fn add_product(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    row: &ProductRow,
) -> Result<(), VaccineError> {
    crate::db::write_transaction(conn, |conn| {
        if ProductRow::find(conn, &row.product_code)?.is_some() {
            return Err(VaccineError::DuplicateProduct);
        }
        ProductRow::insert_many(conn, std::slice::from_ref(row))?;
        log(
            conn,
            key,
            actor,
            "vaccines.product.add",
            format!("product:{}", row.product_code),
            None,
        )?;
        Ok(())
    })
}

/// Takes a product out of (or back into) the sites' choice; doses already
/// recorded with it keep their product.
pub fn set_in_use(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    product_code: &str,
    in_use: bool,
) -> Result<bool, VaccineError> {
    crate::db::write_transaction(conn, |conn| {
        let changed = ProductRow::set_in_use(conn, product_code, in_use)?;
        if changed {
            log(
                conn,
                key,
                actor,
                "vaccines.product.in_use",
                format!("product:{product_code}"),
                Some(format!("in_use={in_use}")),
            )?;
        }
        Ok(changed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn intervals_follow_the_guidance() {
        let pfizer = Interval {
            primary_doses: 2,
            dose2_min_days: Some(19),
            dose3_min_days: None,
            booster_min_months: 3,
        };
        // 「18日以上の間隔」: first dose on a Thursday, second at the
        // earliest on the Tuesday three weeks later (MHLW's own example).
        assert_eq!(pfizer.earliest(2, d("2021-06-03")), d("2021-06-22"));
        // Boosters count calendar months.
        assert_eq!(pfizer.earliest(3, d("2022-01-31")), d("2022-04-30"));
        let infant = Interval {
            primary_doses: 3,
            dose2_min_days: Some(19),
            dose3_min_days: Some(56),
            booster_min_months: 3,
        };
        assert_eq!(infant.earliest(3, d("2022-11-01")), d("2022-12-27"));
        let booster_only = Interval {
            primary_doses: 0,
            dose2_min_days: None,
            dose3_min_days: None,
            booster_min_months: 6,
        };
        assert_eq!(booster_only.earliest(2, d("2022-01-10")), d("2022-07-10"));
    }
}

//! Flow 7: aggregate statistics for national and prefectural viewers and
//! open data, read from the running counts the database keeps beside the
//! doses (migration 000012). Nothing personal is opened: the counts hold
//! dose numbers, days, products, five-year age bands and sex codes only.
//!
//! A period is whole months: the area and demographic counts are kept per
//! month, the time series per day.

use crate::db::schema::{stat_daily, stat_demographic, stat_municipal, stat_open};
use crate::db::{DbConn, DbError};
use chrono::{Datelike, NaiveDate};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// Cells below this are shown as suppressed (and left out of downloads),
/// so a small village's numbers cannot single a person out.
pub const DEFAULT_MIN_CELL: i64 = 10;

/// Which part of the country a view covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Area {
    Nation,
    /// A prefecture by its two-digit code.
    Prefecture(String),
}

impl Area {
    /// A LIKE pattern over prefecture codes (and municipality codes, which
    /// begin with their prefecture's).
    fn pattern(&self) -> String {
        match self {
            Area::Nation => "%".into(),
            Area::Prefecture(p) => format!("{p}%"),
        }
    }
}

/// A period of whole months, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Period {
    /// Everything: the programme began in 2021.
    pub fn all() -> Period {
        Period {
            from: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default(),
            to: NaiveDate::from_ymd_opt(2100, 12, 31).unwrap_or_default(),
        }
    }

    /// From the first day of `from`'s month to the last of `to`'s.
    pub fn months(from: NaiveDate, to: NaiveDate) -> Period {
        let first = from.with_day(1).unwrap_or(from);
        let next = if to.month() == 12 {
            NaiveDate::from_ymd_opt(to.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(to.year(), to.month() + 1, 1)
        };
        Period {
            from: first,
            to: next.and_then(|d| d.pred_opt()).unwrap_or(to),
        }
    }

    fn month_from(&self) -> String {
        self.from.format("%Y-%m").to_string()
    }

    fn month_to(&self) -> String {
        self.to.format("%Y-%m").to_string()
    }
}

/// One labelled count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count<K> {
    pub key: K,
    pub n: i64,
}

fn counts<K>(rows: Vec<(K, i64)>) -> Vec<Count<K>> {
    rows.into_iter().map(|(key, n)| Count { key, n }).collect()
}

/// What the dashboard shows for one area and period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dashboard {
    pub total: i64,
    /// Per day and dose number.
    pub by_day: Vec<(NaiveDate, i32, i64)>,
    pub by_dose: Vec<Count<i32>>,
    pub by_product: Vec<Count<String>>,
    pub by_age: Vec<Count<i32>>,
    pub by_sex: Vec<Count<String>>,
    /// Prefectures for the nation, municipalities for a prefecture.
    pub by_area: Vec<Count<String>>,
}

fn sum_n() -> diesel::expression::SqlLiteral<BigInt> {
    sql::<BigInt>("CAST(SUM(n) AS BIGINT)")
}

pub fn dashboard(conn: &mut DbConn, area: &Area, period: Period) -> Result<Dashboard, DbError> {
    let pattern = area.pattern();
    let by_day: Vec<(NaiveDate, i32, i64)> = stat_daily::table
        .filter(stat_daily::prefecture_code.like(&pattern))
        .filter(stat_daily::administered_on.between(period.from, period.to))
        .group_by((stat_daily::administered_on, stat_daily::dose_number))
        .select((
            stat_daily::administered_on,
            stat_daily::dose_number,
            sum_n(),
        ))
        .order((stat_daily::administered_on, stat_daily::dose_number))
        .load(conn)?;
    let by_product: Vec<(String, i64)> = stat_daily::table
        .filter(stat_daily::prefecture_code.like(&pattern))
        .filter(stat_daily::administered_on.between(period.from, period.to))
        .group_by(stat_daily::product_code)
        .select((stat_daily::product_code, sum_n()))
        .order(stat_daily::product_code)
        .load(conn)?;
    let (m_from, m_to) = (period.month_from(), period.month_to());
    let by_age: Vec<(i32, i64)> = stat_demographic::table
        .filter(stat_demographic::prefecture_code.like(&pattern))
        .filter(stat_demographic::month.between(&m_from, &m_to))
        .group_by(stat_demographic::age_band)
        .select((stat_demographic::age_band, sum_n()))
        .order(stat_demographic::age_band)
        .load(conn)?;
    let by_sex: Vec<(String, i64)> = stat_demographic::table
        .filter(stat_demographic::prefecture_code.like(&pattern))
        .filter(stat_demographic::month.between(&m_from, &m_to))
        .group_by(stat_demographic::sex)
        .select((stat_demographic::sex, sum_n()))
        .order(stat_demographic::sex)
        .load(conn)?;
    let by_area: Vec<(String, i64)> = match area {
        Area::Nation => stat_daily::table
            .filter(stat_daily::administered_on.between(period.from, period.to))
            .group_by(stat_daily::prefecture_code)
            .select((stat_daily::prefecture_code, sum_n()))
            .order(stat_daily::prefecture_code)
            .load(conn)?,
        Area::Prefecture(_) => stat_municipal::table
            .filter(stat_municipal::municipality_code.like(&pattern))
            .filter(stat_municipal::month.between(&m_from, &m_to))
            .group_by(stat_municipal::municipality_code)
            .select((stat_municipal::municipality_code, sum_n()))
            .order(stat_municipal::municipality_code)
            .load(conn)?,
    };
    let mut by_dose: Vec<Count<i32>> = Vec::new();
    for &(_, dose, n) in &by_day {
        match by_dose.iter_mut().find(|c| c.key == dose) {
            Some(c) => c.n += n,
            None => by_dose.push(Count { key: dose, n }),
        }
    }
    by_dose.sort_by_key(|c| c.key);
    Ok(Dashboard {
        total: by_dose.iter().map(|c| c.n).sum(),
        by_day,
        by_dose,
        by_product: counts(by_product),
        by_age: counts(by_age),
        by_sex: counts(by_sex),
        by_area: counts(by_area),
    })
}

/// Doses per prefecture and dose number in a period (the summary by
/// prefecture), in code order.
pub fn by_prefecture_and_dose(
    conn: &mut DbConn,
    period: Period,
) -> Result<Vec<(String, i32, i64)>, DbError> {
    Ok(stat_daily::table
        .filter(stat_daily::administered_on.between(period.from, period.to))
        .group_by((stat_daily::prefecture_code, stat_daily::dose_number))
        .select((stat_daily::prefecture_code, stat_daily::dose_number, sum_n()))
        .order((stat_daily::prefecture_code, stat_daily::dose_number))
        .load(conn)?)
}

/// One line of the open data: doses of one day, prefecture, sex, age group
/// and dose number.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct OpenRow {
    pub date: NaiveDate,
    pub prefecture: String,
    pub dose_number: i32,
    pub age_group: String,
    pub sex: String,
    pub count: i64,
}

impl OpenRow {
    /// The national system's open-data gender code.
    pub fn gender(&self) -> &'static str {
        match self.sex.as_str() {
            "1" => "M",
            "2" => "F",
            _ => "U",
        }
    }
}

/// The open data's lines for an area and period, in order, without the
/// cells under `min_cell` (suppressed, not rounded: a published count is
/// always a true one).
pub fn open_rows(
    conn: &mut DbConn,
    area: &Area,
    period: Period,
    min_cell: i64,
) -> Result<Vec<OpenRow>, DbError> {
    Ok(stat_open::table
        .filter(stat_open::prefecture_code.like(area.pattern()))
        .filter(stat_open::administered_on.between(period.from, period.to))
        .filter(stat_open::n.ge(min_cell.max(1)))
        .select((
            stat_open::administered_on,
            stat_open::prefecture_code,
            stat_open::dose_number,
            stat_open::age_group,
            stat_open::sex,
            stat_open::n,
        ))
        .order((
            stat_open::administered_on,
            stat_open::prefecture_code,
            stat_open::dose_number,
            stat_open::age_group,
            stat_open::sex,
        ))
        .load(conn)?)
}

/// Every count recomputed from the doses themselves, one municipality at a
/// time inside its own partition's transaction (row-level security lets a
/// transaction see one municipality only). For a database whose counts
/// were never kept, or to check them.
pub fn recount(conn: &mut DbConn) -> Result<usize, DbError> {
    use diesel::Connection;
    let codes: Vec<String> = crate::db::models::tenants::TenantRow::active(conn)?
        .into_iter()
        .map(|t| t.municipality_code)
        .collect();
    conn.transaction(|conn| {
        diesel::delete(stat_daily::table).execute(conn)?;
        diesel::delete(stat_municipal::table).execute(conn)?;
        diesel::delete(stat_demographic::table).execute(conn)?;
        diesel::delete(stat_open::table).execute(conn)?;
        Ok::<_, DbError>(())
    })?;
    for code in &codes {
        crate::db::scoped_transaction(conn, code_of(code)?, true, |conn| {
            crate::db::recount_statistics(conn, code)
        })?;
    }
    Ok(codes.len())
}

fn code_of(code: &str) -> Result<crate::domain::MunicipalityCode, DbError> {
    crate::domain::MunicipalityCode::parse(code)
        .map_err(|_| DbError::Migration(format!("bad municipality code {code}")))
}

//! Flow 7: aggregate statistics for national and prefectural viewers and
//! open data, read from the running counts the database keeps beside the
//! doses (migration 000012). Nothing personal is opened: the counts hold
//! dose numbers, days, products, five-year age bands and sex codes only.
//!
//! A period is whole months: the area and demographic counts are kept per
//! month, the time series per day.

use crate::db::TenantConn;
use crate::db::schema::{stat_daily, stat_demographic, stat_monthly, stat_municipal, stat_open};
use crate::db::{DbConn, DbError, sum_n};
use chrono::{Datelike, NaiveDate};
use diesel::prelude::*;

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

/// Sums counts per key, in key order.
fn fold<K: Ord>(items: impl Iterator<Item = (K, i64)>) -> Vec<Count<K>> {
    let mut m = std::collections::BTreeMap::new();
    for (k, n) in items {
        *m.entry(k).or_insert(0) += n;
    }
    m.into_iter().map(|(key, n)| Count { key, n }).collect()
}

pub fn dashboard(conn: &mut DbConn, area: &Area, period: Period) -> Result<Dashboard, DbError> {
    // A prefecture's rows are a range of every table's key; the nation's
    // are all rows (so its time series reads the by-day index in order).
    let (lo, hi) = match area {
        Area::Nation => ("00".to_string(), "99".to_string()),
        Area::Prefecture(p) => (p.clone(), p.clone()),
    };
    let by_day: Vec<(NaiveDate, i32, i64)> = match area {
        Area::Nation => stat_daily::table
            .filter(stat_daily::administered_on.between(period.from, period.to))
            .group_by((stat_daily::administered_on, stat_daily::dose_number))
            .select((
                stat_daily::administered_on,
                stat_daily::dose_number,
                sum_n(),
            ))
            .order((stat_daily::administered_on, stat_daily::dose_number))
            .load(conn)?,
        Area::Prefecture(p) => stat_daily::table
            .filter(stat_daily::prefecture_code.eq(p))
            .filter(stat_daily::administered_on.between(period.from, period.to))
            .group_by((stat_daily::administered_on, stat_daily::dose_number))
            .select((
                stat_daily::administered_on,
                stat_daily::dose_number,
                sum_n(),
            ))
            .order((stat_daily::administered_on, stat_daily::dose_number))
            .load(conn)?,
    };
    let (m_from, m_to) = (period.month_from(), period.month_to());
    // One pass over each monthly table, folded here into its breakdowns.
    let monthly: Vec<(String, i32, String, i64)> = stat_monthly::table
        .filter(stat_monthly::prefecture_code.between(&lo, &hi))
        .filter(stat_monthly::month.between(&m_from, &m_to))
        .group_by((
            stat_monthly::prefecture_code,
            stat_monthly::dose_number,
            stat_monthly::product_code,
        ))
        .select((
            stat_monthly::prefecture_code,
            stat_monthly::dose_number,
            stat_monthly::product_code,
            sum_n(),
        ))
        .load(conn)?;
    let people: Vec<(i32, String, i64)> = stat_demographic::table
        .filter(stat_demographic::prefecture_code.between(&lo, &hi))
        .filter(stat_demographic::month.between(&m_from, &m_to))
        .group_by((stat_demographic::age_band, stat_demographic::sex))
        .select((stat_demographic::age_band, stat_demographic::sex, sum_n()))
        .load(conn)?;
    let by_dose = fold(monthly.iter().map(|(_, d, _, n)| (*d, *n)));
    let by_product = fold(monthly.iter().map(|(_, _, p, n)| (p.clone(), *n)));
    let by_age = fold(people.iter().map(|(a, _, n)| (*a, *n)));
    let by_sex = fold(people.iter().map(|(_, s, n)| (s.clone(), *n)));
    let by_area: Vec<Count<String>> = match area {
        Area::Nation => fold(monthly.iter().map(|(p, _, _, n)| (p.clone(), *n))),
        Area::Prefecture(p) => counts(
            stat_municipal::table
                .filter(
                    stat_municipal::municipality_code
                        .between(format!("{p}0000"), format!("{p}9999")),
                )
                .filter(stat_municipal::month.between(&m_from, &m_to))
                .group_by(stat_municipal::municipality_code)
                .select((stat_municipal::municipality_code, sum_n()))
                .order(stat_municipal::municipality_code)
                .load(conn)?,
        ),
    };
    Ok(Dashboard {
        total: by_dose.iter().map(|c| c.n).sum(),
        by_day,
        by_dose,
        by_product,
        by_age,
        by_sex,
        by_area,
    })
}

/// Doses per prefecture and dose number in a period (the summary by
/// prefecture), in code order.
pub fn by_prefecture_and_dose(
    conn: &mut DbConn,
    period: Period,
) -> Result<Vec<(String, i32, i64)>, DbError> {
    Ok(stat_monthly::table
        .filter(stat_monthly::month.between(period.month_from(), period.month_to()))
        .group_by((stat_monthly::prefecture_code, stat_monthly::dose_number))
        .select((
            stat_monthly::prefecture_code,
            stat_monthly::dose_number,
            sum_n(),
        ))
        .order((stat_monthly::prefecture_code, stat_monthly::dose_number))
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
    // A count may be kept in several rows (shards, migration 000017): the
    // threshold applies to their sum.
    let key = (
        stat_open::administered_on,
        stat_open::prefecture_code,
        stat_open::dose_number,
        stat_open::age_group,
        stat_open::sex,
    );
    Ok(stat_open::table
        .filter(stat_open::prefecture_code.like(area.pattern()))
        .filter(stat_open::administered_on.between(period.from, period.to))
        .group_by(key)
        .having(sum_n().ge(min_cell.max(1)))
        .select((
            stat_open::administered_on,
            stat_open::prefecture_code,
            stat_open::dose_number,
            stat_open::age_group,
            stat_open::sex,
            sum_n(),
        ))
        .order(key)
        .load(conn)?)
}

// The recount is the database's own (it follows every migration); the
// command and the tests reach it here too.
pub use crate::db::stat_counts::{Differences, Recount, apply, differences_from_doses, recount};

/// A municipality's own progress: how many of its current residents have
/// had each dose, month by month (cumulative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub residents: i64,
    pub months: Vec<String>,
    /// Per dose number: the cumulative count at the end of each month.
    pub cumulative: Vec<(i32, Vec<i64>)>,
}

pub fn progress(
    scope: &crate::tenancy::Scope<'_>,
    conn: &mut TenantConn<'_>,
) -> Result<Progress, DbError> {
    use crate::db::models::doses::DoseRow;
    let residents = crate::db::models::residents::ResidentRow::count_current(scope, conn)?;
    let rows = DoseRow::per_month_and_number(conn)?;
    let mut months: Vec<String> = rows.iter().map(|(m, _, _)| m.clone()).collect();
    months.dedup();
    let mut numbers: Vec<i32> = rows.iter().map(|(_, d, _)| *d).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let cumulative = numbers
        .into_iter()
        .map(|d| {
            let mut run = 0;
            let series = months
                .iter()
                .map(|m| {
                    run += rows
                        .iter()
                        .filter(|(rm, rd, _)| rm == m && *rd == d)
                        .map(|(_, _, n)| n)
                        .sum::<i64>();
                    run
                })
                .collect();
            (d, series)
        })
        .collect();
    Ok(Progress {
        residents,
        months,
        cumulative,
    })
}

/// The 要確認 queue's history and make-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quality {
    pub days: Vec<NaiveDate>,
    /// Queue size at the end of each day, in total and per rule.
    pub total: Vec<i64>,
    pub per_rule: Vec<(crate::flows::dose_checks::Rule, Vec<i64>)>,
    /// Doses waiting now, per site and per rule.
    pub now_by_site: Vec<(String, i64)>,
    pub now_by_rule: Vec<(crate::flows::dose_checks::Rule, i64)>,
}

/// The queue over the last `days` days (days in Japan), from when each dose
/// was queued to when staff confirmed, rejected, deleted or corrected it:
/// read from the history the database keeps with the events (migration
/// 000018), a few rows per day whatever the size of the city.
pub fn quality(
    _scope: &crate::tenancy::Scope<'_>,
    conn: &mut TenantConn<'_>,
    days: i64,
) -> Result<Quality, DbError> {
    use crate::db::models::dose_events::QueueMoves;
    use crate::db::models::doses::DoseRow;
    use crate::flows::dose_checks::Rule;
    let today = crate::clock::today_in_japan();
    let first = today - chrono::Duration::days(days - 1);
    let day_list: Vec<NaiveDate> = (0..days)
        .map(|i| first + chrono::Duration::days(i))
        .collect();
    let moves = QueueMoves::since(conn, first)?;
    // Waiting at the end of each day: those waiting before the window, and
    // what entered less what left up to that day, per rule as queued.
    let mut total = vec![0i64; day_list.len()];
    let mut per_rule: Vec<(Rule, Vec<i64>)> = Rule::ALL
        .iter()
        .map(|r| (*r, vec![0i64; day_list.len()]))
        .collect();
    let mut now_by_rule: Vec<(Rule, i64)> = Vec::new();
    let mut add = |from: usize, flags: &str, n: i64| {
        for v in &mut total[from..] {
            *v += n;
        }
        for rule in Rule::split(Some(flags)) {
            if let Some((_, v)) = per_rule.iter_mut().find(|(k, _)| *k == rule) {
                for x in &mut v[from..] {
                    *x += n;
                }
            }
            match now_by_rule.iter_mut().find(|(k, _)| *k == rule) {
                Some(e) => e.1 += n,
                None => now_by_rule.push((rule, n)),
            }
        }
    };
    for (flags, n) in &moves.before {
        add(0, flags, *n);
    }
    for (day, flags, n) in &moves.days {
        // A day after today (a clock set back) counts from today.
        let from = usize::try_from((*day - first).num_days())
            .unwrap_or(0)
            .min(day_list.len().saturating_sub(1));
        add(from, flags, *n);
    }
    per_rule.retain(|(_, v)| v.iter().any(|n| *n > 0));
    now_by_rule.retain(|(_, n)| *n > 0);
    now_by_rule.sort_by_key(|(r, _)| r.code());
    // Per site: the waiting doses themselves, few beside a city's valid ones.
    let ids = DoseRow::pending_ids(conn)?;
    let mut now_by_site: Vec<(String, i64)> = Vec::new();
    for dose in DoseRow::by_ids(conn, &ids)? {
        let site = dose.site_name.unwrap_or_default();
        match now_by_site.iter_mut().find(|(s, _)| *s == site) {
            Some(e) => e.1 += 1,
            None => now_by_site.push((site, 1)),
        }
    }
    now_by_site.sort();
    Ok(Quality {
        days: day_list,
        total,
        per_rule,
        now_by_site,
        now_by_rule,
    })
}

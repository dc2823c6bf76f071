//! The per-account report of a period: lookups by individual number,
//! record views, exports and prints, how many of them fell outside working
//! hours, and the busiest day against the municipality's threshold, which
//! raises a notice for the administrators.

use super::*;
use crate::db::models::provisions::NoticeRow;
use chrono::{Datelike, Timelike, Weekday};
use std::collections::BTreeMap;

/// The notice raised when an account's day passes the threshold.
pub const VOLUME_NOTICE: &str = "access_volume";

/// One account's line of the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountCounts {
    pub login: String,
    pub number: u64,
    pub view: u64,
    pub export: u64,
    pub print: u64,
    pub change: u64,
    /// Lines of the above outside working hours (or on a weekend).
    pub outside_hours: u64,
    /// The day with the most views, lookups, exports and prints, and how
    /// many.
    pub busiest: Option<(NaiveDate, u64)>,
    /// Whether the busiest day passed the threshold.
    pub over: bool,
}

/// Whether a time in Japan lies outside the working hours.
pub fn outside_hours(s: &Settings, at: NaiveDateTime) -> bool {
    let local = crate::clock::in_japan(at);
    matches!(local.weekday(), Weekday::Sat | Weekday::Sun)
        || local.hour() < s.working_from
        || local.hour() >= s.working_until
}

/// The report over the days `from` to `until` (in Japan, both included),
/// one line per account that did anything counted, by login.
pub fn report(
    conn: &mut DbConn,
    code: MunicipalityCode,
    s: &Settings,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<AccountCounts>, DbError> {
    let end = until.succ_opt().unwrap_or(until);
    let lines = AuditRow::activity(
        conn,
        code.as_str(),
        crate::clock::start_of_japan_day(from),
        crate::clock::start_of_japan_day(end),
    )?;
    let mut by_login: BTreeMap<String, (AccountCounts, BTreeMap<NaiveDate, u64>)> = BTreeMap::new();
    for (login, action, at) in lines {
        let Some(group) = actions::group_of(&action) else {
            continue;
        };
        let counted = matches!(
            group,
            Group::Number | Group::View | Group::Export | Group::Print
        );
        if !counted && group != Group::Change {
            continue;
        }
        let login = login.unwrap_or_default();
        let (c, days) = by_login.entry(login.clone()).or_default();
        c.login = login;
        match group {
            Group::Number => c.number += 1,
            Group::View => c.view += 1,
            Group::Export => c.export += 1,
            Group::Print => c.print += 1,
            _ => c.change += 1,
        }
        if outside_hours(s, at) {
            c.outside_hours += 1;
        }
        if counted {
            *days.entry(crate::clock::in_japan(at).date()).or_default() += 1;
        }
    }
    Ok(by_login
        .into_values()
        .map(|(mut c, days)| {
            // The earliest of the busiest days.
            c.busiest = days
                .into_iter()
                .fold(None, |best: Option<(NaiveDate, u64)>, (d, n)| match best {
                    Some((_, m)) if m >= n => best,
                    _ => Some((d, n)),
                });
            c.over = c
                .busiest
                .is_some_and(|(_, n)| n > u64::from(s.volume_threshold));
            c
        })
        .collect())
}

/// Raises a notice for each account whose day, among `days`, passed the
/// threshold, unless one about that account is still open. Returns how
/// many were raised.
pub fn raise_volume_notices(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    s: &Settings,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<usize, DbError> {
    let code = scope.code();
    let mut raised = 0;
    for c in report(conn.db(), code, s, from, until)? {
        let Some((day, n)) = c.busiest.filter(|_| c.over) else {
            continue;
        };
        let subject = format!("account:{}", c.login);
        if NoticeRow::is_open(conn, VOLUME_NOTICE, &subject)? {
            continue;
        }
        NoticeRow {
            municipality_code: code.to_string(),
            id: crate::domain::new_record_id(),
            at: crate::clock::now(),
            kind: VOLUME_NOTICE.into(),
            subject,
            detail: Some(format!(
                "day={day} count={n} threshold={}",
                s.volume_threshold
            )),
            closed_at: None,
            closed_by: None,
        }
        .insert(conn)?;
        raised += 1;
    }
    Ok(raised)
}

/// The hourly sweep: every active municipality's accounts over its
/// threshold yesterday or today get their notice. Returns how many were
/// raised.
pub fn sweep_volumes(
    conn: &mut DbConn,
    master: &crate::crypto::MasterKey,
) -> Result<usize, crate::tenancy::TenancyError> {
    let today = crate::clock::today_in_japan();
    let yesterday = today.pred_opt().unwrap_or(today);
    let mut raised = 0;
    for tenant in crate::db::models::tenants::TenantRow::active(conn)? {
        let Ok(code) = MunicipalityCode::parse(&tenant.municipality_code) else {
            continue;
        };
        let s = settings(conn, code)?;
        let partition = crate::tenancy::Partition::open(conn, master, code)?;
        raised += partition.run(conn, |scope, conn| {
            raise_volume_notices(scope, conn, &s, yesterday, today)
                .map_err(crate::tenancy::TenancyError::from)
        })?;
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> NaiveDateTime {
        // A time in Japan, stored in UTC.
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .expect("a valid time")
            - chrono::Duration::hours(9)
    }

    #[test]
    fn working_hours_are_read_in_japan_and_weekends_are_outside() {
        let s = Settings::default();
        // 2026-12-07 is a Monday.
        assert!(!outside_hours(&s, at(2026, 12, 7, 8)));
        assert!(!outside_hours(&s, at(2026, 12, 7, 18)));
        assert!(outside_hours(&s, at(2026, 12, 7, 19)));
        assert!(outside_hours(&s, at(2026, 12, 7, 7)));
        assert!(outside_hours(&s, at(2026, 12, 5, 10)));
    }
}

//! The one clock: times are stored in UTC without a zone (both databases
//! agree on that), and read in Japan's time, where every dose is given.

use chrono::{NaiveDate, NaiveDateTime, Utc};

/// Wall-clock time as stored.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// A stored time on Japan's wall clock (JST has no daylight saving).
pub fn in_japan(t: NaiveDateTime) -> NaiveDateTime {
    t + chrono::Duration::hours(9)
}

/// Today's date in Japan.
pub fn today_in_japan() -> NaiveDate {
    in_japan(now()).date()
}

/// The stored time at which a day in Japan begins.
pub fn start_of_japan_day(d: NaiveDate) -> NaiveDateTime {
    d.and_time(chrono::NaiveTime::MIN) - chrono::Duration::hours(9)
}

/// A stored time as staff read it, to the minute.
pub fn jst(t: NaiveDateTime) -> String {
    in_japan(t).format("%Y-%m-%d %H:%M").to_string() + " JST"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japan_is_nine_hours_ahead_across_midnight() {
        let t = NaiveDate::from_ymd_opt(2026, 3, 31)
            .and_then(|d| d.and_hms_opt(15, 30, 0))
            .expect("a valid time");
        assert_eq!(jst(t), "2026-04-01 00:30 JST");
        assert_eq!(in_japan(t).date().to_string(), "2026-04-01");
    }
}

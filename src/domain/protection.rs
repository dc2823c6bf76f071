//! A support measure's period (支援措置: DV and similar): when a resident's
//! address protection starts, when it ends if an end is known, and when it
//! is next to be reviewed.

use super::{FieldError, Reason, parse_date_field};
use chrono::NaiveDate;

/// A support measure's period as staff set it, every date checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    pub from: NaiveDate,
    /// None: until it is lifted.
    pub until: Option<NaiveDate>,
    /// When the measure is next to be reviewed (支援措置の期間は1年で、
    /// 延長の申出がなければ終わる: a review date is always set).
    pub review: NaiveDate,
}

impl Protection {
    pub const FROM_FIELD: &'static str = "開始日";
    pub const UNTIL_FIELD: &'static str = "終了日";
    pub const REVIEW_FIELD: &'static str = "見直し日";

    /// The three form fields; an empty end is none. Every field's error is
    /// reported, not only the first. A measure starts today or earlier: one
    /// set ahead would leave the address shown until it starts.
    pub fn parse(
        from: &str,
        until: &str,
        review: &str,
        today: NaiveDate,
    ) -> Result<Protection, Vec<FieldError>> {
        let mut errors = Vec::new();
        let from = parse_date_field(Self::FROM_FIELD, from)
            .and_then(|d| {
                if d > today {
                    Err(FieldError {
                        field: Self::FROM_FIELD,
                        reason: Reason::FutureDate,
                    })
                } else {
                    Ok(d)
                }
            })
            .map_err(|e| errors.push(e));
        let until = match until.trim() {
            "" => Ok(None),
            u => parse_date_field(Self::UNTIL_FIELD, u)
                .map(Some)
                .map_err(|e| errors.push(e)),
        };
        let review = parse_date_field(Self::REVIEW_FIELD, review).map_err(|e| errors.push(e));
        let (Ok(from), Ok(until), Ok(review)) = (from, until, review) else {
            return Err(errors);
        };
        let before = |field| FieldError {
            field,
            reason: Reason::BeforeStart,
        };
        if until.is_some_and(|u| u < from) {
            errors.push(before(Self::UNTIL_FIELD));
        }
        if review < from {
            errors.push(before(Self::REVIEW_FIELD));
        }
        if errors.is_empty() {
            Ok(Protection {
                from,
                until,
                review,
            })
        } else {
            Err(errors)
        }
    }

    /// Whether the measure holds on `day`.
    pub fn holds_on(&self, day: NaiveDate) -> bool {
        self.from <= day && self.until.is_none_or(|u| u >= day)
    }

    /// Whether its review is due by `day`.
    pub fn review_due(&self, day: NaiveDate) -> bool {
        self.review <= day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_period_is_read_with_every_mistake_named() {
        let today = d("2026-12-07");
        let p = Protection::parse("2026-12-01", "", "2027-11-30", today).unwrap();
        assert_eq!(
            (p.from, p.until, p.review),
            (d("2026-12-01"), None, d("2027-11-30"))
        );
        assert!(p.holds_on(d("2026-12-01")) && p.holds_on(d("2030-01-01")));
        assert!(!p.holds_on(d("2026-11-30")));
        assert!(!p.review_due(d("2027-11-29")) && p.review_due(d("2027-11-30")));

        let ended = Protection::parse("2026-01-01", "2026-06-30", "2026-06-01", today).unwrap();
        assert!(ended.holds_on(d("2026-06-30")) && !ended.holds_on(d("2026-07-01")));

        let fields = |e: Vec<FieldError>| {
            e.into_iter()
                .map(|e| (e.field, e.reason))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields(Protection::parse("2026-12-01", "2026-11-30", "2026-11-01", today).unwrap_err()),
            [
                (Protection::UNTIL_FIELD, Reason::BeforeStart),
                (Protection::REVIEW_FIELD, Reason::BeforeStart)
            ]
        );
        assert_eq!(
            fields(Protection::parse("", "x", "", today).unwrap_err()),
            [
                (Protection::FROM_FIELD, Reason::Empty),
                (Protection::UNTIL_FIELD, Reason::NotADate),
                (Protection::REVIEW_FIELD, Reason::Empty)
            ]
        );
        assert_eq!(
            fields(Protection::parse("2026-12-08", "", "2027-12-01", today).unwrap_err()),
            [(Protection::FROM_FIELD, Reason::FutureDate)]
        );
    }
}

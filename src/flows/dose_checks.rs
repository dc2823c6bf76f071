//! The data-quality rules a new dose is checked against before it counts
//! (PRODUCT.md flow 2: the real system's biggest failure). A dose that fails
//! one is still recorded — the person was vaccinated — but waits in the
//! owning municipality's 要確認 queue until staff confirm, correct or
//! reject it. Pure functions: the facts come in, the failed rules go out.

use super::vaccines::Interval;
use chrono::NaiveDate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// Dated after today (Japan time).
    FutureDate,
    /// Dated before the person was born.
    BeforeBirth,
    /// Dated before a dose already recorded.
    OutOfOrder,
    /// Sooner than the product's minimum interval after the last dose.
    TooSoon,
    /// A lot the master does not list for the product.
    UnknownLot,
    /// The person had moved out by the dose's date.
    MovedOut,
    /// The person had died by the dose's date.
    Deceased,
    /// The ticket's doses are all recorded already.
    Complete,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::FutureDate,
        Rule::BeforeBirth,
        Rule::OutOfOrder,
        Rule::TooSoon,
        Rule::UnknownLot,
        Rule::MovedOut,
        Rule::Deceased,
        Rule::Complete,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Rule::FutureDate => "future_date",
            Rule::BeforeBirth => "before_birth",
            Rule::OutOfOrder => "out_of_order",
            Rule::TooSoon => "too_soon",
            Rule::UnknownLot => "unknown_lot",
            Rule::MovedOut => "moved_out",
            Rule::Deceased => "deceased",
            Rule::Complete => "complete",
        }
    }

    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.code() == s)
    }

    pub fn label_key(&self) -> &'static str {
        match self {
            Rule::FutureDate => "rule.future_date",
            Rule::BeforeBirth => "rule.before_birth",
            Rule::OutOfOrder => "rule.out_of_order",
            Rule::TooSoon => "rule.too_soon",
            Rule::UnknownLot => "rule.unknown_lot",
            Rule::MovedOut => "rule.moved_out",
            Rule::Deceased => "rule.deceased",
            Rule::Complete => "rule.complete",
        }
    }

    /// The stored comma list of a dose's failed rules.
    pub fn join(rules: &[Rule]) -> Option<String> {
        (!rules.is_empty()).then(|| rules.iter().map(|r| r.code()).collect::<Vec<_>>().join(","))
    }

    pub fn split(stored: Option<&str>) -> Vec<Rule> {
        stored
            .unwrap_or_default()
            .split(',')
            .filter_map(Rule::parse)
            .collect()
    }
}

/// A dose already on the person's record that counts (valid, or waiting
/// in the queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prior {
    pub dose_number: u8,
    pub administered_on: NaiveDate,
}

/// The highest dose on record, the one the next is measured from.
pub fn last(prior: &[Prior]) -> Option<Prior> {
    prior
        .iter()
        .copied()
        .max_by_key(|p| (p.dose_number, p.administered_on))
}

/// The dose number due next; `None` past the last a dose number can be.
pub fn due(prior: &[Prior]) -> Option<u8> {
    let next = last(prior).map_or(1, |p| p.dose_number.saturating_add(1));
    (next <= crate::domain::DoseNumber::MAX).then_some(next)
}

/// The last dose a ticket is for. A ticket printed for dose 1 is the
/// primary-series ticket and covers the whole series (three doses for the
/// infant products, two otherwise); any other ticket covers its own dose.
pub fn last_covered(ticket_dose: u8, interval: &Interval) -> u8 {
    if ticket_dose == 1 {
        interval.primary_doses.clamp(2, 3) as u8
    } else {
        ticket_dose
    }
}

/// Everything the rules look at.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub today: NaiveDate,
    pub birth: NaiveDate,
    pub moved_out_on: Option<NaiveDate>,
    pub deceased_on: Option<NaiveDate>,
    pub prior: &'a [Prior],
    pub ticket_dose: u8,
    pub interval: Interval,
    pub administered_on: NaiveDate,
    pub lot_known: bool,
}

/// What the dose is for, once its number is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The dose number it is recorded as (the last covered one when the
    /// ticket is complete or the record is already at the last number).
    pub dose_number: u8,
    pub rules: Vec<Rule>,
    /// When too soon: the first date the dose would have been on time.
    pub earliest: Option<NaiveDate>,
}

pub fn check(f: &Facts<'_>) -> Verdict {
    let mut rules = Vec::new();
    let date = f.administered_on;
    if date > f.today {
        rules.push(Rule::FutureDate);
    }
    if date < f.birth {
        rules.push(Rule::BeforeBirth);
    }
    let previous = last(f.prior);
    if f.prior.iter().any(|p| p.administered_on > date) {
        rules.push(Rule::OutOfOrder);
    }
    let covered = last_covered(f.ticket_dose, &f.interval);
    let dose_number = match due(f.prior) {
        Some(n) if n <= covered => n,
        Some(n) => {
            rules.push(Rule::Complete);
            n
        }
        None => {
            rules.push(Rule::Complete);
            crate::domain::DoseNumber::MAX
        }
    };
    let earliest = previous
        .filter(|p| p.administered_on <= date)
        .map(|p| f.interval.earliest(dose_number, p.administered_on))
        .filter(|e| date < *e);
    if earliest.is_some() {
        rules.push(Rule::TooSoon);
    }
    if !f.lot_known {
        rules.push(Rule::UnknownLot);
    }
    if f.moved_out_on.is_some_and(|d| d <= date) {
        rules.push(Rule::MovedOut);
    }
    if f.deceased_on.is_some_and(|d| d <= date) {
        rules.push(Rule::Deceased);
    }
    Verdict {
        dose_number,
        rules,
        earliest,
    }
}

/// Five-year age band (its lower bound, 100 for everyone older) on a date:
/// coarse enough for statistics, never a birth date.
pub fn age_band(birth: NaiveDate, on: NaiveDate) -> i32 {
    let years = on.years_since(birth).unwrap_or(0) as i32;
    (years / 5 * 5).min(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const PFIZER: Interval = Interval {
        primary_doses: 2,
        dose2_min_days: Some(19),
        dose3_min_days: None,
        booster_min_months: 3,
    };

    fn facts<'a>(prior: &'a [Prior], date: &str) -> Facts<'a> {
        Facts {
            today: d("2023-06-01"),
            birth: d("1980-04-01"),
            moved_out_on: None,
            deceased_on: None,
            prior,
            ticket_dose: 1,
            interval: PFIZER,
            administered_on: d(date),
            lot_known: true,
        }
    }

    fn first() -> [Prior; 1] {
        [Prior {
            dose_number: 1,
            administered_on: d("2023-05-01"),
        }]
    }

    #[test]
    fn a_clean_dose_passes() {
        let v = check(&facts(&[], "2023-05-01"));
        assert_eq!((v.dose_number, v.rules), (1, vec![]));
        let prior = first();
        let v = check(&facts(&prior, "2023-05-20"));
        assert_eq!((v.dose_number, v.rules), (2, vec![]));
    }

    #[test]
    fn each_rule_catches_its_case() {
        let prior = first();
        let only = |f: Facts<'_>| check(&f).rules;
        assert_eq!(only(facts(&[], "2023-06-02")), vec![Rule::FutureDate]);
        let mut f = facts(&[], "1979-01-01");
        f.today = d("2023-06-01");
        assert_eq!(only(f), vec![Rule::BeforeBirth]);
        assert_eq!(
            only(facts(&prior, "2023-04-01")),
            vec![Rule::OutOfOrder],
            "dated before the dose already recorded"
        );
        let v = check(&facts(&prior, "2023-05-19"));
        assert_eq!(v.rules, vec![Rule::TooSoon]);
        assert_eq!(v.earliest, Some(d("2023-05-20")));
        let mut f = facts(&[], "2023-05-01");
        f.lot_known = false;
        assert_eq!(only(f), vec![Rule::UnknownLot]);
        let mut f = facts(&[], "2023-05-01");
        f.moved_out_on = Some(d("2023-04-30"));
        assert_eq!(only(f), vec![Rule::MovedOut]);
        let mut f = facts(&[], "2023-05-01");
        f.deceased_on = Some(d("2023-05-01"));
        assert_eq!(only(f), vec![Rule::Deceased]);
        // A flag dated after the dose does not make the dose wrong.
        let mut f = facts(&[], "2023-05-01");
        f.moved_out_on = Some(d("2023-05-02"));
        assert_eq!(only(f), vec![]);
        let both = [
            first()[0],
            Prior {
                dose_number: 2,
                administered_on: d("2023-05-25"),
            },
        ];
        let v = check(&facts(&both, "2023-05-31"));
        assert_eq!(v.dose_number, 3);
        assert!(v.rules.contains(&Rule::Complete), "{:?}", v.rules);
    }

    #[test]
    fn a_booster_ticket_covers_its_own_dose() {
        let both = [
            first()[0],
            Prior {
                dose_number: 2,
                administered_on: d("2023-05-25"),
            },
        ];
        let mut f = facts(&both, "2023-05-31");
        f.ticket_dose = 3;
        f.today = d("2023-12-01");
        f.administered_on = d("2023-08-25");
        assert_eq!(check(&f).rules, vec![]);
        f.administered_on = d("2023-08-24");
        assert_eq!(check(&f).rules, vec![Rule::TooSoon]);
    }

    #[test]
    fn stored_rule_lists_round_trip() {
        let rules = vec![Rule::TooSoon, Rule::UnknownLot];
        let stored = Rule::join(&rules);
        assert_eq!(stored.as_deref(), Some("too_soon,unknown_lot"));
        assert_eq!(Rule::split(stored.as_deref()), rules);
        assert_eq!(Rule::join(&[]), None);
    }

    #[test]
    fn age_bands_are_coarse() {
        assert_eq!(age_band(d("1980-04-01"), d("2023-03-31")), 40);
        assert_eq!(age_band(d("1980-04-01"), d("2025-04-01")), 45);
        assert_eq!(age_band(d("1900-01-01"), d("2023-01-01")), 100);
    }
}

//! Business rules, one module per flow of the product. No HTTP here.

pub mod accounts;
pub mod certificates;
mod csv_lines;
pub mod dose_checks;
pub mod doses;
pub mod exports;
pub mod faults;
pub mod import_jobs;
pub mod import_settle;
pub mod imports;
pub mod issuer;
pub mod keys;
pub mod municipalities;
pub mod networks;
pub mod provisions;
pub mod residents;
pub mod sites;
pub mod statistics;
pub mod tickets;
pub mod transfer;
pub mod transfer_bulk;
pub mod vaccines;

use chrono::{NaiveDateTime, Utc};

/// Wall-clock time as stored (UTC, no zone: both backends agree on it).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// Today's date in Japan, where every dose is given.
pub fn today_in_japan() -> chrono::NaiveDate {
    (Utc::now() + chrono::Duration::hours(9)).date_naive()
}

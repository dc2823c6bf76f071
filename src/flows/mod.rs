//! Business rules, one module per flow of the product. No HTTP here.

pub mod accounts;
pub mod doses;
pub mod exports;
pub mod import_jobs;
pub mod imports;
pub mod issuer;
pub mod keys;
pub mod municipalities;
pub mod networks;
pub mod residents;
pub mod tickets;

use chrono::{NaiveDateTime, Utc};

/// Wall-clock time as stored (UTC, no zone: both backends agree on it).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

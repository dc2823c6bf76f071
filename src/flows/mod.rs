//! Business rules, one module per flow of the product. No HTTP here.

pub mod accounts;
pub mod issuer;
pub mod keys;
pub mod municipalities;
pub mod networks;
pub mod residents;

use chrono::{NaiveDateTime, Utc};

/// Wall-clock time as stored (UTC, no zone: both backends agree on it).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

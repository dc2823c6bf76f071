//! Business rules, one module per flow of the product. No HTTP here.

pub mod access_record;
pub mod account_issue;
pub mod accounts;
pub mod certificates;
pub mod changes;
mod context;
mod csv_lines;
pub mod dose_batch;
pub mod dose_checks;
pub mod doses;
pub mod erasure;
pub mod export_approval;
pub mod exports;
pub mod faults;
pub mod import_jobs;
pub mod import_settle;
pub mod imports;
pub mod issuer;
pub mod keys;
mod line_errors;
pub mod log_review;
pub mod municipalities;
pub mod networks;
pub mod provisions;
pub mod reconcile;
pub mod recording;
pub mod resident_doses;
pub mod residents;
pub mod sites;
pub mod statistics;
pub mod tickets;
pub mod transfer;
pub mod transfer_bulk;
pub mod vaccines;

pub use context::{AppState, JOB_LEASE, Stopped};

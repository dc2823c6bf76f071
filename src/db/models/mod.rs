//! Row types, one module per table group. Finders of tenant rows take the
//! municipality (through a `tenancy::Scope`) in their signature.

pub mod accounts;
pub mod audit_log;
pub mod certificates;
pub mod dose_batch_lines;
pub mod dose_events;
pub mod doses;
pub mod export_requests;
pub mod held_inquiries;
pub mod import_jobs;
pub mod issuer_keys;
pub mod job_leases;
pub mod log_reviews;
pub mod networks;
pub mod notice_items;
pub mod provisions;
pub mod reconcile_items;
pub mod resident_events;
pub mod residents;
pub mod sealed_cells;
pub mod sites;
pub mod staging;
pub mod tenants;
pub mod tickets;
pub mod vaccines;

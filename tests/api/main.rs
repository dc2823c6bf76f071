//! One integration-test binary: the real application over real HTTP, on
//! SQLite by default and on PostgreSQL when TEST_DATABASE_URL names one.

mod helpers;

mod held;

mod accounts;
mod backends;
mod browser;
mod busy;
mod certificates;
mod changes;
mod cli;
mod doses;
mod erasure;
mod exports;
mod jobs;
mod lazyfs;
mod log_review;
mod openapi;
mod partitions;
mod power_cut;
mod protection;
mod residents;
mod roles;
mod second_factor;
mod statistics;
mod transfers;
mod web;

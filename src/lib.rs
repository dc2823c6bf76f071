//! VRS: vaccination records for Japanese municipalities, each in its own
//! encrypted partition.

pub mod audit;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod csvout;
pub mod db;
pub mod demo;
pub mod domain;
pub mod flows;
pub mod i18n;
pub mod logging;
pub mod private_dir;
pub mod qr;
pub mod shc;
pub mod startup;
pub mod tenancy;
pub mod web;

//! `vrs bench …`: measurements of core operations, each reported beside a
//! baseline measured in the same run on the same machine.

use crate::crypto::{AadContext, BlindIndexer, Sealer};
use crate::demo::demo_resident;
use crate::domain::MunicipalityCode;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use std::fmt::Write;
use std::hint::black_box;
use std::time::Instant;

pub mod cards;
pub mod contention;
mod daily;
mod export;
mod import;
pub mod pages;
pub mod record;
mod seal;
pub mod statistics;
pub mod transfer;

pub use daily::daily;
pub use export::*;
pub use import::*;
pub use seal::*;

/// The machine a benchmark ran on and how busy it was: its load average
/// when the run began and when it ended. A ratio to a baseline holds only
/// if nothing else was competing for the cores, and this says whether.
pub(crate) struct Machine {
    before: String,
}

impl Machine {
    pub(crate) fn now() -> Machine {
        Machine {
            before: load_average(),
        }
    }

    pub(crate) fn line(&self) -> String {
        format!(
            "machine: {} cores, {}; load average (1/5/15 min) {} at the start, {} at the end",
            cores(),
            cpu_model(),
            self.before,
            load_average()
        )
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// A database of its own for one measurement: a SQLite file in a fresh
/// folder, or a fresh schema in the PostgreSQL database `postgres_url` names
/// (dropped afterwards). Never the application's own database.
pub struct Scratch {
    pub pool: crate::db::Pool,
    url: crate::db::DatabaseUrl,
    dir: std::path::PathBuf,
    pg: Option<(String, String)>,
}

impl Scratch {
    pub fn new(postgres_url: Option<&str>) -> anyhow::Result<Scratch> {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let dir = std::env::temp_dir().join(format!("vrs-bench-{}", uuid::Uuid::new_v4()));
        crate::private_dir::create(&dir)?;
        let (url, pg) = match postgres_url {
            Some(base) => {
                let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
                let mut c = diesel::PgConnection::establish(base)?;
                c.batch_execute(&format!("CREATE SCHEMA {schema}"))?;
                let sep = if base.contains('?') { '&' } else { '?' };
                (
                    crate::db::DatabaseUrl::parse(&format!(
                        "{base}{sep}options=-csearch_path%3D{schema}"
                    ))?,
                    Some((base.to_string(), schema)),
                )
            }
            None => (crate::db::DatabaseUrl::Sqlite(dir.join("bench.db")), None),
        };
        let pool = crate::db::connect(&url, 4)?;
        crate::db::migrate(&mut *pool.get()?)?;
        Ok(Scratch { pool, url, dir, pg })
    }

    /// The scratch database's URL, for a pool or an application of its own.
    pub fn url(&self) -> &crate::db::DatabaseUrl {
        &self.url
    }

    /// A private folder that lives as long as the scratch database.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The settings `vrs serve` would be started with on this database,
    /// its data folder (master key) inside the scratch folder.
    pub fn common(&self) -> crate::config::Common {
        crate::config::Common {
            data_dir: self.dir.join("data"),
            audit_witness: None,
            migration_database_url: None,
            database_url: Some(self.url.clone()),
            master_key_file: Some(self.dir.join("data/master.key")),
            production: false,
        }
    }

    pub fn backend(&self) -> &'static str {
        if self.pg.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }
}

/// The `p` quantile (0–1) of sorted times, in milliseconds.
pub(crate) fn percentile(sorted: &[std::time::Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// An account of a bench municipality with a known password (no change
/// asked at first login); returns its login and password.
pub(crate) fn bench_account(
    conn: &mut crate::db::DbConn,
    audit: &crate::audit::AuditKey,
    new: crate::flows::accounts::NewAccount,
) -> anyhow::Result<(String, String)> {
    let password =
        crate::domain::NewPassword::parse(&format!("bench-{}", uuid::Uuid::new_v4().simple()))?;
    let login = new.login_id.as_str().to_string();
    let (_, password) = crate::flows::accounts::create(
        conn,
        audit,
        &crate::audit::Actor::default(),
        new,
        Some(password),
    )?;
    Ok((login, password.as_str().to_string()))
}

/// An active ticket the bench issued, for the given dose number.
pub(crate) fn active_ticket(
    code: &str,
    ticket_number: String,
    resident_id: String,
    dose_number: i32,
    at: chrono::NaiveDateTime,
) -> crate::db::models::tickets::TicketRow {
    crate::db::models::tickets::TicketRow {
        municipality_code: code.into(),
        ticket_number,
        resident_id,
        kind: 1,
        dose_number,
        status: crate::db::models::tickets::ACTIVE.into(),
        issued_at: at,
        issued_by: "bench".into(),
        invalidated_at: None,
        invalidated_reason: None,
        staged_seq: None,
        retired_seq: None,
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        // Kept for a look at what the bench measured (query plans).
        if std::env::var_os("VRS_BENCH_KEEP").is_some() {
            eprintln!("bench: kept {} and its database", self.dir.display());
            return;
        }
        if let Some((base, schema)) = &self.pg
            && let Ok(mut c) = diesel::PgConnection::establish(base)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Peak resident memory of this process since the last reset, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Starts a new peak-memory window (Linux: writing 5 to clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The state a server would have, on a scratch database, for jobs run by
/// a benchmark (its spool and witness in `work`).
pub(crate) fn bench_state(
    db: &Scratch,
    master: &std::sync::Arc<crate::crypto::MasterKey>,
    audit: crate::audit::AuditKey,
    work: &std::path::Path,
) -> anyhow::Result<crate::flows::AppState> {
    let witness = crate::audit::witness::Witness::open(&work.join("audit-witness.log"), &audit)?;
    Ok(crate::flows::AppState {
        pool: db.pool.clone(),
        master: master.clone(),
        audit,
        spool_dir: work.join("spool"),
        import_limits: crate::flows::imports::Limits::default(),
        transfer: crate::flows::transfer::Settings::default(),
        issuer_url: String::from("http://localhost:8080"),
        stats_min_cell: crate::flows::statistics::DEFAULT_MIN_CELL,
        runner: "bench".into(),
        witness: std::sync::Arc::new(witness),
        commits: crate::startup::commit_group(&db.pool)?,
    })
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1)
}

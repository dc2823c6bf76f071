//! The command line: `vrs serve | migrate | municipality | keys | demo | bench`.

use crate::config::{Common, ServeArgs};
use crate::crypto::{MasterKey, MasterKeySource};
use crate::domain::{MunicipalityCode, Registry};
use crate::startup::{self, Application};
use crate::{demo, flows};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod audit;
mod bench;
mod keys;
mod serve;
pub use audit::*;
pub use bench::BenchCmd;
pub use keys::*;
use serve::serve;

#[derive(Debug, Parser)]
#[command(
    name = "vrs",
    version,
    about = "Vaccination record system for Japanese municipalities"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the web server (the default command).
    Serve(ServeArgs),
    /// Apply pending database migrations (they also run at every start).
    Migrate {
        /// Revert every migration instead (destroys all data).
        #[arg(long)]
        revert_all: bool,
    },
    /// Municipalities: list, enable as a tenant, erase.
    #[command(subcommand)]
    Municipality(MunicipalityCmd),
    /// Keys: rotate the master key or a municipality's data key.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Fill three real municipalities with demo residents.
    Demo,
    /// The operation log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Provision records (提供記録) of transfer inquiries.
    #[command(subcommand)]
    Provisions(ProvisionsCmd),
    /// The statistics' running counts.
    #[command(subcommand)]
    Statistics(StatisticsCmd),
    /// Measure the speed of core operations on this machine.
    #[command(subcommand)]
    Bench(BenchCmd),
}

#[derive(Debug, Subcommand)]
pub enum ProvisionsCmd {
    /// Delete every municipality's provision records older than 7 years (the
    /// server also does this every hour); each deletion is logged.
    Purge,
}

#[derive(Debug, Subcommand)]
pub enum StatisticsCmd {
    /// Count every municipality's doses again from the records (the
    /// database keeps the counts as doses change; this is for a database
    /// whose counts were never kept, or to check them). Safe while the
    /// server records doses: each is counted once.
    Recount,
}

fn parse_code(s: &str) -> Result<MunicipalityCode, String> {
    Registry::global()
        .lookup("municipality code", s)
        .map(|m| m.code)
        .map_err(|e| format!("{}: {}", e.field, e.reason.message_en()))
}

#[derive(Debug, Subcommand)]
pub enum MunicipalityCmd {
    /// List enabled municipalities.
    List,
    /// Show a code from the national registry.
    Show {
        #[arg(value_parser = parse_code)]
        code: MunicipalityCode,
    },
    /// Make a municipality a tenant: creates its data and index keys.
    Enable {
        #[arg(value_parser = parse_code)]
        code: MunicipalityCode,
    },
    /// Destroy a municipality's keys and delete its data. Irreversible.
    Erase {
        #[arg(value_parser = parse_code)]
        code: MunicipalityCode,
        /// Repeat the code to confirm.
        #[arg(long, value_parser = parse_code)]
        confirm: MunicipalityCode,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let common = cli.common;
    match cli
        .command
        .unwrap_or(Command::Serve(ServeArgs::default_args()))
    {
        Command::Serve(args) => serve(&common, args),
        Command::Migrate { revert_all } => {
            let url = common.database_url();
            let pool = crate::db::connect(&url, 1)?;
            let mut conn = pool.get()?;
            if revert_all {
                let mut owner = startup::owner_connection(&common)?;
                let n = crate::db::revert_all(owner.as_mut().unwrap_or(&mut *conn))?;
                println!("reverted {n} migrations on {url}");
            } else {
                let n = startup::migrate(&common, &mut conn)?;
                println!("applied {n} migrations on {url}");
            }
            Ok(())
        }
        Command::Municipality(cmd) => municipality(&common, cmd),
        Command::Keys(cmd) => keys::run(&common, cmd),
        Command::Demo => {
            let prepared = startup::prepare(&common, 2)?;
            let mut conn = prepared.state.pool.get()?;
            let summary = demo::seed(&mut conn, &prepared.state.master, &prepared.state.audit)?;
            print!("{summary}");
            Ok(())
        }
        Command::Audit(AuditCmd::Verify { witness }) => {
            let prepared = startup::prepare(&common, 2)?;
            let mut conn = prepared.state.pool.get()?;
            let files = if witness.is_empty() {
                vec![common.audit_witness_path()]
            } else {
                witness
            };
            audit::verify(&mut conn, &prepared.state.audit, &files)
        }
        Command::Audit(AuditCmd::Witness) => {
            let prepared = startup::prepare(&common, 2)?;
            let mut conn = prepared.state.pool.get()?;
            crate::audit::flush(&mut conn, &prepared.state.audit)?;
            let n = prepared
                .state
                .witness
                .record(&mut conn, &prepared.state.audit)?;
            println!(
                "{n} chain heads written to {}",
                prepared.state.witness.path().display()
            );
            Ok(())
        }
        Command::Statistics(StatisticsCmd::Recount) => {
            let prepared = startup::prepare(&common, 2)?;
            let mut conn = prepared.state.pool.get()?;
            let r = crate::flows::statistics::recount(&mut conn)?;
            println!(
                "statistics recounted from the doses of {} municipalities: {} counts corrected",
                r.municipalities, r.corrected
            );
            Ok(())
        }
        Command::Provisions(ProvisionsCmd::Purge) => {
            let prepared = startup::prepare(&common, 2)?;
            let mut conn = prepared.state.pool.get()?;
            let purged = crate::flows::provisions::purge_expired(
                &mut conn,
                &prepared.state.master,
                &prepared.state.audit,
                &crate::audit::Actor::default(),
                "command",
                crate::clock::now(),
            )?;
            if purged.is_empty() {
                println!("no provision records past retention");
            }
            for (code, n) in purged {
                println!("{code}: {n} provision records past retention deleted");
            }
            Ok(())
        }
        Command::Bench(cmd) => bench::run(cmd),
    }
}

fn municipality(common: &Common, cmd: MunicipalityCmd) -> anyhow::Result<()> {
    if let MunicipalityCmd::Show { code } = &cmd {
        let m = Registry::global()
            .get(code)
            .context("not in the registry")?;
        println!(
            "{}\t{}\t{}\t{:?}",
            m.code,
            m.full_name(),
            m.name_kana,
            m.kind
        );
        return Ok(());
    }
    let prepared = startup::prepare(common, 2)?;
    let mut conn = prepared.state.pool.get()?;
    match cmd {
        MunicipalityCmd::List => {
            for (t, m) in flows::municipalities::list(&mut conn)? {
                println!(
                    "{}\t{}\t{}\tkey v{}",
                    t.municipality_code,
                    m.map(|m| m.full_name()).unwrap_or_default(),
                    t.status,
                    t.active_key_version
                );
            }
        }
        MunicipalityCmd::Enable { code } => {
            let m = flows::municipalities::enable(&mut conn, &prepared.state.master, code)?;
            println!("enabled {} {} with a new data key", code, m.full_name());
        }
        MunicipalityCmd::Erase { code, confirm } => {
            anyhow::ensure!(
                code == confirm,
                "--confirm {confirm} does not repeat {code}; nothing erased"
            );
            // Erasure removes what the server's role may not (provision
            // records): as the tables' owner when one is configured.
            let mut owner = startup::owner_connection(common)?;
            let n = flows::municipalities::erase(owner.as_mut().unwrap_or(&mut *conn), code)?;
            println!("erased {code}: keys destroyed, {n} rows deleted");
        }
        MunicipalityCmd::Show { .. } => unreachable!("handled above"),
    }
    Ok(())
}

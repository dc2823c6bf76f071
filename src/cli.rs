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

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Rotate the master key and/or municipalities' data keys.
    Rotate {
        /// Replace the master key: every wrapped key is re-wrapped under a
        /// new one, written to the key file (the old file is kept as .old).
        #[arg(long)]
        master: bool,
        /// When the master key comes from VRS_MASTER_KEY: file to write the new key to.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
        /// Re-key these municipalities (data key and index key), re-sealing all their rows.
        #[arg(long = "municipality", value_parser = parse_code)]
        municipalities: Vec<MunicipalityCode>,
        /// Re-key every enabled municipality.
        #[arg(long)]
        all_municipalities: bool,
        /// Seconds between a municipality's new key becoming active and the
        /// last pass over its rows: longer than any request of a running
        /// server takes, so what a request began with the old key is sealed
        /// again too. 0 when no server is running.
        #[arg(long, default_value_t = 60)]
        grace: u64,
    },
    /// Sign new certificates with a new issuer key. The old key stays
    /// published in the JWKS, so every card it signed still verifies.
    RotateIssuer,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check every line of every chain against its MACs, and every chain's
    /// length against the witness file(s); exits non-zero if a line was
    /// changed, removed or reordered, a chain was cut short or deleted, or a
    /// witness line does not verify.
    Verify {
        /// Witness files to check against (default: the server's,
        /// --audit-witness); give the copies shipped elsewhere.
        #[arg(long)]
        witness: Vec<std::path::PathBuf>,
    },
    /// Write the heads of every chain to the witness file now (the server
    /// does so every minute).
    Witness,
}

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Sealing + blind-indexing a resident vs raw AES-256-GCM.
    Seal {
        /// Residents to seal.
        #[arg(long, default_value_t = 200_000)]
        n: usize,
    },
    /// Importing a resident file vs the plain insert of the same rows.
    Import {
        /// Lines in the generated file.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// A scratch PostgreSQL database to measure on (a schema is created
        /// and dropped); without it, a temporary SQLite file.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Recording doses through the HTTP API under load (wrk) vs GET /health.
    Record {
        /// Length of the measured run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Open connections of the load generator (wrk -c).
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Tickets to prepare, spread over four municipalities: each request
        /// uses a ticket of its own, so this bounds the requests of a run.
        #[arg(long, default_value_t = 120_000)]
        tickets: usize,
        /// Length of the GET /health baseline run.
        #[arg(long, default_value_t = 15)]
        health_seconds: u64,
        /// HTTP workers of the server (default: one per core, as `vrs serve`).
        #[arg(long)]
        workers: Option<usize>,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Every page of the route table opened by a city's staff, administrator
    /// and site tablet, in a municipality of a city's size.
    Pages {
        /// Residents of the municipality, each with an active ticket.
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        /// Doses spread over them.
        #[arg(long, default_value_t = 3_000_000)]
        doses: usize,
        /// Timed requests per page.
        #[arg(long, default_value_t = 100)]
        requests: usize,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// A large resident import of one municipality next to doses recorded
    /// for others' tickets (wrk), each against itself alone.
    Contention {
        /// The long job next to the tablets.
        #[arg(long, value_enum, default_value_t = crate::bench::contention::Job::Import)]
        job: crate::bench::contention::Job,
        /// Lines of the resident file imported; residents of the municipality
        /// whose keys rotate; doses recounted.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Length of the recording run with no import.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Open connections of the load generator (wrk -c): tablets.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Pause of each connection between two recordings, in ms.
        #[arg(long, default_value_t = 50)]
        pause_ms: u64,
        /// Tickets prepared, spread over three municipalities: each
        /// recording uses one, so this bounds the recordings of both runs.
        #[arg(long, default_value_t = 300_000)]
        tickets: usize,
        /// HTTP workers of the server (default: one per core, as `vrs serve`).
        #[arg(long)]
        workers: Option<usize>,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Transfer inquiries (window and bulk) with a large municipality asked.
    Transfer {
        /// Residents of the municipality asked.
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        /// Of them, movers (two doses each): the bulk file's lines.
        #[arg(long, default_value_t = 100_000)]
        movers: usize,
        /// Window inquiries timed, of each kind (match, miss).
        #[arg(long, default_value_t = 2000)]
        inquiries: usize,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Issuing SMART Health Cards (bundle, DEFLATE, ES256, QR) vs the bare signature.
    Cards {
        /// Cards to issue in each measured run.
        #[arg(long, default_value_t = 20_000)]
        n: usize,
        /// Doses on each card.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=8))]
        doses: u8,
    },
    /// The national statistics dashboard over many doses vs counting them directly.
    Statistics {
        /// Doses in the database.
        #[arg(long, default_value_t = 10_000_000)]
        doses: usize,
        /// Dashboard requests timed, of each kind.
        #[arg(long, default_value_t = 50)]
        requests: usize,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Streaming the ledger CSV vs reading the same rows plainly.
    Export {
        /// Doses in the municipality.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
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
        Command::Keys(cmd) => keys(&common, cmd),
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
            audit_verify(&mut conn, &prepared.state.audit, &files)
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
        Command::Bench(BenchCmd::Seal { n }) => {
            print!("{}", crate::bench::seal(n));
            Ok(())
        }
        Command::Bench(BenchCmd::Import { rows, postgres }) => {
            print!("{}", crate::bench::import(rows, postgres.as_deref())?);
            Ok(())
        }
        Command::Bench(BenchCmd::Record {
            seconds,
            connections,
            tickets,
            health_seconds,
            workers,
            postgres,
        }) => {
            let opts = crate::bench::record::Options {
                seconds,
                connections,
                tickets,
                health_seconds,
                workers,
            };
            print!("{}", crate::bench::record::run(&opts, postgres.as_deref())?);
            Ok(())
        }
        Command::Bench(BenchCmd::Pages {
            residents,
            doses,
            requests,
            postgres,
        }) => {
            let opts = crate::bench::pages::Options {
                residents,
                doses,
                requests,
            };
            print!("{}", crate::bench::pages::run(&opts, postgres.as_deref())?);
            Ok(())
        }
        Command::Bench(BenchCmd::Transfer {
            residents,
            movers,
            inquiries,
            postgres,
        }) => {
            let opts = crate::bench::transfer::Options {
                residents,
                movers,
                inquiries,
            };
            print!(
                "{}",
                crate::bench::transfer::run(&opts, postgres.as_deref())?
            );
            Ok(())
        }
        Command::Bench(BenchCmd::Contention {
            job,
            rows,
            seconds,
            connections,
            pause_ms,
            tickets,
            workers,
            postgres,
        }) => {
            let opts = crate::bench::contention::Options {
                job,
                rows,
                seconds,
                connections,
                pause_ms,
                tickets,
                workers,
            };
            print!(
                "{}",
                crate::bench::contention::run(&opts, postgres.as_deref())?
            );
            Ok(())
        }
        Command::Bench(BenchCmd::Cards { n, doses }) => {
            print!("{}", crate::bench::cards::run(n, doses.into()));
            Ok(())
        }
        Command::Bench(BenchCmd::Statistics {
            doses,
            requests,
            postgres,
        }) => {
            print!(
                "{}",
                crate::bench::statistics::run(doses, requests.max(5), postgres.as_deref())?
            );
            Ok(())
        }
        Command::Bench(BenchCmd::Export { rows, postgres }) => {
            print!("{}", crate::bench::export(rows, postgres.as_deref())?);
            Ok(())
        }
    }
}

impl ServeArgs {
    fn default_args() -> ServeArgs {
        // Parsing an empty argument list applies every default and env var.
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            s: ServeArgs,
        }
        Wrap::parse_from(["vrs"]).s
    }
}

fn serve(common: &Common, args: ServeArgs) -> anyhow::Result<()> {
    if args.demo && common.production {
        return Err(crate::config::ConfigError::DemoInProduction.into());
    }
    // A server that holds the owner's URL could lift the wall it runs
    // behind: in production the owner migrates (`vrs migrate`) apart.
    anyhow::ensure!(
        !(common.production && common.migration_database_url.is_some()),
        "in production the server does not take --migration-database-url: run `vrs migrate` \
         with the tables' owner's URL first, then serve with the server's role alone"
    );
    let prepared = startup::prepare(common, 16)?;
    if common.production
        && !args
            .issuer_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    {
        return Err(crate::config::ConfigError::IssuerUrlInProduction.into());
    }
    let interrupted = prepared.state.recover_interrupted_jobs()?;
    if interrupted > 0 {
        println!("{interrupted} import job(s) interrupted by the last stop were marked failed.");
    }
    if prepared.created_master_key {
        println!(
            "Created a new master key at {} (readable only by you). Back it up: without it no \
             municipality's data can be read.",
            common.master_key_path().display()
        );
    }
    if prepared.created_issuer_key {
        println!("Created the certificate issuer signing key.");
    }
    if let Some((login, password)) = &prepared.bootstrap_operator {
        println!(
            "Created the platform operator account: log in as `{login}` with the one-time \
             password {} (you will be asked to change it).",
            password.as_str()
        );
    }
    if common.migration_database_url.is_some() {
        tracing::warn!(
            "the server holds the tables' owner's URL (--migration-database-url): in production \
             run `vrs migrate` with it, then serve without it"
        );
    }
    if prepared.owns_tables {
        tracing::warn!(
            "the server's PostgreSQL role owns the tables, so it could lift row-level security \
             or change a policy; give the owner's URL as --migration-database-url and run the \
             server as a role that owns nothing (see README, \"Two database roles\")"
        );
    }
    if !prepared.durability.durable {
        tracing::warn!(
            settings = %prepared.durability.settings,
            "the database does not put a commit on disk before it returns: a power cut can lose \
             doses already answered as recorded; run PostgreSQL with fsync=on, \
             synchronous_commit=on and full_page_writes=on (README, \"Durability\")"
        );
    }
    if prepared.rls_bypassed {
        tracing::warn!(
            "the PostgreSQL role bypasses row-level security (superuser or BYPASSRLS); \
             run the application as an ordinary role so the database enforces partitions"
        );
    }
    if args.demo {
        let mut conn = prepared.state.pool.get()?;
        print!(
            "{}",
            demo::seed(&mut conn, &prepared.state.master, &prepared.state.audit)?
        );
    }
    let app = Application::build(prepared.state, &args)?;
    let host = match args.bind.ip() {
        ip if ip.is_unspecified() => "localhost".to_string(),
        ip if ip.is_ipv6() => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    println!(
        "VRS is listening on {}://{}:{}/ (database {})",
        app.scheme(),
        host,
        app.port(),
        common.database_url()
    );
    println!(
        "Operator tasks run from this command line: `vrs municipality enable CODE`, \
         `vrs keys rotate`, `vrs --help`."
    );
    actix_web::rt::System::new()
        .block_on(app.run_until_stopped())
        .context("server stopped")
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

fn keys(common: &Common, cmd: KeysCmd) -> anyhow::Result<()> {
    let (master, new_key_file, municipalities, all_municipalities, grace) = match cmd {
        KeysCmd::Rotate {
            master,
            new_key_file,
            municipalities,
            all_municipalities,
            grace,
        } => (
            master,
            new_key_file,
            municipalities,
            all_municipalities,
            std::time::Duration::from_secs(grace),
        ),
        KeysCmd::RotateIssuer => {
            let prepared = startup::prepare(common, 2)?;
            let mut conn = prepared.state.pool.get()?;
            let actor = crate::audit::Actor {
                account_id: None,
                login_id: Some("cli".into()),
                client_addr: None,
            };
            let (old, new) = flows::issuer::rotate(
                &mut conn,
                &prepared.state.master,
                &prepared.state.audit,
                &actor,
            )?;
            println!(
                "issuer key rotated: new cards are signed with {new}; {} stays published",
                old.as_deref().unwrap_or("no earlier key")
            );
            return Ok(());
        }
    };
    anyhow::ensure!(
        master || all_municipalities || !municipalities.is_empty(),
        "say what to rotate: --master, --municipality CODE or --all-municipalities"
    );
    let prepared = startup::prepare(common, 2)?;
    let mut conn = prepared.state.pool.get()?;
    let mut current = prepared.state.master.clone();
    if master {
        current = std::sync::Arc::new(rotate_master(&mut conn, &current, new_key_file)?);
    }
    let mut codes = municipalities;
    if all_municipalities {
        for t in crate::db::models::tenants::TenantRow::active(&mut conn)? {
            codes.push(MunicipalityCode::parse(&t.municipality_code)?);
        }
    }
    for code in codes {
        println!(
            "municipality {code}: sealing with a new key version; the server can keep running"
        );
        let r = flows::keys::rotate_tenant(&mut conn, &current, code, grace)?;
        println!(
            "municipality {code}: now key v{}, {} residents and {} other sealed values sealed again, old keys destroyed",
            r.version, r.residents, r.cells
        );
    }
    Ok(())
}

/// Writes the new key beside the old one first, re-wraps in one transaction,
/// then swaps the files, so a crash at any point leaves a key that opens the
/// database: before commit the old file, after it `master.key.new`.
fn rotate_master(
    conn: &mut crate::db::DbConn,
    old: &MasterKey,
    new_key_file: Option<PathBuf>,
) -> anyhow::Result<MasterKey> {
    match (&old.source, new_key_file) {
        (MasterKeySource::Env(var), None) => anyhow::bail!(
            "the master key comes from {var}: give --new-key-file PATH for the new key, then \
             put its content in {var}"
        ),
        (_, Some(path)) => {
            let new = MasterKey::generate(MasterKeySource::File(path.clone()));
            new.write_new_file(&path)?;
            let r = flows::keys::rotate_master(conn, old, &new)?;
            println!(
                "master key rotated: {} municipality keys and {} issuer keys re-wrapped; new key in {}",
                r.tenant_keys,
                r.issuer_keys,
                path.display()
            );
            Ok(new)
        }
        (MasterKeySource::File(path), None) => {
            let staged = path.with_extension("key.new");
            let new = MasterKey::generate(MasterKeySource::File(path.clone()));
            new.write_new_file(&staged)?;
            let r = flows::keys::rotate_master(conn, old, &new)?;
            let retired = path.with_extension("key.old");
            std::fs::rename(path, &retired)
                .with_context(|| format!("moving {} aside", path.display()))?;
            std::fs::rename(&staged, path)
                .with_context(|| format!("installing the new key as {}", path.display()))?;
            println!(
                "master key rotated: {} municipality keys and {} issuer keys re-wrapped; \
                 old key kept as {} (destroy it once backups made with it are gone)",
                r.tenant_keys,
                r.issuer_keys,
                retired.display()
            );
            Ok(new)
        }
    }
}

/// `vrs audit verify`: every chain against its MACs and against what the
/// witness files saw; one line per chain, a non-zero exit on any finding.
fn audit_verify(
    conn: &mut crate::db::DbConn,
    key: &crate::audit::AuditKey,
    files: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    let mut all = crate::audit::witness::Witnessed::default();
    let mut findings = 0;
    for file in files {
        let w = crate::audit::witness::read(file, key)?;
        for line in &w.bad_lines {
            findings += 1;
            println!(
                "witness {}: line {line} does not verify (changed, or not written by this deployment)",
                file.display()
            );
        }
        all.merge(w);
    }
    for r in crate::audit::verify(conn, key, None, Some(&all.heads))? {
        let witnessed = r
            .witnessed
            .map(|w| format!(", witnessed up to line {w}"))
            .unwrap_or_default();
        if r.intact() {
            println!("{}: {} lines, intact{witnessed}", r.chain, r.lines);
            continue;
        }
        findings += 1;
        if let Some(seq) = r.broken_at {
            println!(
                "{}: BROKEN at line {seq} (changed, removed or reordered); intact up to line {}",
                r.chain,
                r.vouched()
            );
        } else if r.missing {
            println!(
                "{}: MISSING: an active municipality with no operation-log line at all",
                r.chain
            );
        } else {
            println!(
                "{}: TRUNCATED: the witness saw line {}, which the log no longer holds as it was ({} lines now); the witness vouches up to line {}",
                r.chain,
                r.witnessed.unwrap_or_default(),
                r.lines,
                r.confirmed.unwrap_or_default()
            );
        }
    }
    anyhow::ensure!(
        findings == 0,
        "{findings} finding(s) in the operation log or its witness"
    );
    Ok(())
}

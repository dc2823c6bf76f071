//! `vrs bench contention`: one municipality's long job — a large resident
//! import, a key rotation, or a statistics recount — while site tablets
//! record doses for tickets of other municipalities through the machine
//! API (wrk on loopback, every connection pausing between requests, as a
//! busy day's tablets do, not a flood), on the same server and database.
//! Reported next to each other, in the same run: the recording with no job
//! and during the job (doses/s, p50/p99, non-2xx), and the job alone and
//! during the recording. Each job runs through the product's own code (the
//! import through its job: spooled file, journal line, lease, short write
//! batches, publication, operation-log line).

use super::record::{
    self, BenchServer, LOT, LUA_COMMON, LUA_RECORD, POOL_SIZE, PRODUCT, WRK_THREADS, WrkRun,
};
use super::{BenchImport, Scratch, cores, write_resident_file};
use crate::domain::MunicipalityCode;
use anyhow::Context;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

/// The long job measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Job {
    /// A resident file of `rows` lines imported (once alone, once by
    /// another municipality during the recording).
    Import,
    /// The data and index keys of a municipality holding `rows` residents
    /// rotated (twice: alone, then during the recording).
    Rotate,
    /// Every count recomputed from `rows` doses of one municipality (and
    /// the tablets' own), with the counts made wrong first.
    Recount,
}

impl Job {
    fn name(&self) -> &'static str {
        match self {
            Job::Import => "import",
            Job::Rotate => "key rotation",
            Job::Recount => "statistics recount",
        }
    }
}

/// What `vrs bench contention` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub job: Job,
    /// Lines of the resident file imported; residents whose keys rotate;
    /// doses recounted.
    pub rows: usize,
    /// Length of the recording run with no import.
    pub seconds: u64,
    /// Open connections of the load generator (wrk -c): tablets.
    pub connections: usize,
    /// Pause of each connection between two recordings.
    pub pause_ms: u64,
    /// Tickets prepared for the two recording runs together.
    pub tickets: usize,
    /// HTTP workers of the server (default: one per core).
    pub workers: Option<usize>,
}

/// The municipalities whose tickets the tablets scan (those of `bench
/// record` but the first), and the two that import: one alone, one while
/// the tablets record.
const RECORDED: [&str; 3] = ["131016", "012025", "271004"];
const IMPORTS_ALONE: &str = "082040";
const IMPORTS_DURING: &str = "011002";

/// The recording script with a pause between requests on each connection
/// and idempotency keys of its own (`phase`).
fn script(
    dir: &Path,
    phase: &str,
    tickets: &Path,
    token: &str,
    pause_ms: u64,
) -> anyhow::Result<std::path::PathBuf> {
    let date = crate::clock::today_in_japan() - chrono::Duration::days(1);
    let path = dir.join(format!("{phase}.lua"));
    std::fs::write(
        &path,
        LUA_COMMON.to_string()
            + &LUA_RECORD
                .replace("@TICKETS@", &tickets.to_string_lossy())
                .replace("@TOKEN@", token)
                .replace("@DATE@", &date.to_string())
                .replace("@THREADS@", &WRK_THREADS.to_string())
                .replace("@PRODUCT@", PRODUCT)
                .replace("@LOT@", LOT)
                .replace("\"bench-%d-", &format!("\"{phase}-%d-"))
            + &format!("\nfunction delay()\n  return {pause_ms}\nend\n"),
    )?;
    Ok(path)
}

/// Writes tickets `from..to` of each recorded municipality, in turn.
fn ticket_file(
    path: &Path,
    codes: &[MunicipalityCode],
    range: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in range {
        for code in codes {
            writeln!(w, "{code}{}", record::ticket_number(i))?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Stops wrk as one stops it by hand (SIGINT): it reports what it did.
fn interrupt(child: &std::process::Child) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .context("kill -INT wrk")?;
    anyhow::ensure!(status.success(), "kill -INT wrk: {status}");
    Ok(())
}

pub fn run(opts: &Options, postgres_url: Option<&str>) -> anyhow::Result<String> {
    let machine = super::Machine::now();
    record::require_wrk()?;
    anyhow::ensure!(opts.seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!(
        opts.connections >= WRK_THREADS,
        "--connections must be at least {WRK_THREADS} (one per wrk thread)"
    );
    let recorded = RECORDED
        .iter()
        .map(|c| MunicipalityCode::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let alone_code = MunicipalityCode::parse(IMPORTS_ALONE)?;
    let during_code = MunicipalityCode::parse(IMPORTS_DURING)?;
    let per_municipality = opts
        .tickets
        .max(2 * recorded.len())
        .div_ceil(recorded.len());
    let half = per_municipality / 2;

    let scratch = Scratch::new(postgres_url)?;
    let backend = scratch.backend();
    let common = scratch.common();
    let prepared = crate::startup::prepare(&common, POOL_SIZE)?;
    let state = prepared.state.clone();

    let setup = Instant::now();
    let mut conn = state.pool.get()?;
    let database = record::durability(&mut conn);
    record::add_lot(&mut conn)?;
    for &code in &recorded {
        record::fill_municipality(&mut conn, &state.master, code, per_municipality)?;
    }
    for code in [alone_code, during_code] {
        crate::flows::municipalities::enable(&mut conn, &state.master, code)?;
    }
    crate::db::refresh_statistics(&mut conn)?;
    let (login, password) = record::site_tablet(&mut conn, &state.audit, recorded[0])?;
    let (before, _) = record::stored(&mut conn, &state.master, &state.audit, &recorded)?;
    drop(conn);
    let work = scratch.dir().join("files");
    crate::private_dir::create(&work)?;
    let file = work.join("residents.csv");
    let importer = BenchImport::from_state(state.clone());
    // What the job works on, made ready: the import's two requests; the
    // rotated municipality's residents; the recounted doses.
    let mut bytes = 0;
    let mut requests = Vec::new();
    match opts.job {
        Job::Import => {
            bytes = write_resident_file(&file, opts.rows)?;
            requests.push(importer.request(alone_code, &file)?);
            requests.push(importer.request(during_code, &file)?);
        }
        Job::Rotate => {
            bytes = write_resident_file(&file, opts.rows)?;
            importer.run(importer.request(alone_code, &file)?)?;
        }
        Job::Recount => {
            let mut conn = state.pool.get()?;
            let start = crate::clock::today_in_japan() - chrono::Duration::days(720);
            super::statistics::fill_doses(
                &mut conn,
                &state.master,
                alone_code,
                0,
                opts.rows,
                start,
                700,
            )?;
            crate::db::refresh_statistics(&mut conn)?;
        }
    }
    let mut run_job = || -> anyhow::Result<()> {
        match opts.job {
            Job::Import => {
                importer.run(requests.remove(0))?;
            }
            Job::Rotate => {
                let mut conn = state.pool.get()?;
                crate::flows::keys::rotate_tenant(
                    &mut conn,
                    &state.master,
                    alone_code,
                    std::time::Duration::ZERO,
                )?;
            }
            Job::Recount => {
                let mut conn = state.pool.get()?;
                // Counts gone wrong everywhere, so that the recount writes
                // as well as reads.
                crate::db::write_transaction(&mut conn, |c| {
                    use diesel::connection::SimpleConnection;
                    c.batch_execute(
                        "UPDATE stat_daily SET n = n + 1; UPDATE stat_open SET n = n + 1",
                    )
                })?;
                let r = crate::flows::statistics::recount(&mut conn)?;
                anyhow::ensure!(r.corrected > 0, "the recount corrected nothing");
            }
        }
        Ok(())
    };
    let first = work.join("tickets-alone.txt");
    ticket_file(&first, &recorded, 0..half)?;
    let second = work.join("tickets-during.txt");
    ticket_file(&second, &recorded, half..per_municipality)?;
    let setup_secs = setup.elapsed().as_secs_f64();

    let server = BenchServer::start(prepared.state, opts.workers)?;
    let port = server.port;
    let url = format!("http://127.0.0.1:{port}/api/v1/doses");
    let measured = (|| -> anyhow::Result<(WrkRun, WrkRun, f64, f64)> {
        let token = record::api_token(port, &login, &password)?;
        anyhow::ensure!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "unexpected characters in the session token"
        );
        // 1. The tablets alone.
        let alone_script = script(&work, "alone", &first, &token, opts.pause_ms)?;
        let rec_alone = record::collect_wrk(record::spawn_wrk(
            opts.connections,
            opts.seconds,
            &alone_script,
            &url,
        )?)?;
        // 2. The job alone (the server idle).
        let start = Instant::now();
        run_job()?;
        let job_alone = start.elapsed().as_secs_f64();
        // 3. The job while the tablets record, for as long as it runs.
        let during_script = script(&work, "during", &second, &token, opts.pause_ms)?;
        let wrk = record::spawn_wrk(opts.connections, 86_400, &during_script, &url)?;
        let start = Instant::now();
        let done = run_job();
        let job_during = start.elapsed().as_secs_f64();
        interrupt(&wrk)?;
        let rec_during = record::collect_wrk(wrk)?;
        done?;
        Ok((rec_alone, rec_during, job_alone, job_during))
    })();
    server.stop();
    let (rec_alone, rec_during, job_alone, job_during) = measured?;

    let mut conn = state.pool.get()?;
    let (after, logged) = record::stored(&mut conn, &state.master, &state.audit, &recorded)?;
    // What the job left is checked: each file whole in its municipality;
    // every resident sealed with the third key version, the only one
    // left; with the tablets stopped, counts a further recount finds right.
    let job_check: String = match opts.job {
        Job::Import => {
            for code in [alone_code, during_code] {
                let p = crate::tenancy::Partition::open(&mut conn, &state.master, code)?;
                let n = p.read(&mut conn, crate::flows::residents::count)?;
                anyhow::ensure!(
                    n == opts.rows as i64,
                    "the import of {code} stored {n} residents, not {}",
                    opts.rows
                );
            }
            "both imports stored every line".into()
        }
        Job::Rotate => {
            let keys = crate::db::models::tenants::TenantKeyRow::for_municipality(
                &mut conn,
                alone_code.as_str(),
            )?;
            anyhow::ensure!(
                keys.len() == 1 && keys[0].version == 3,
                "after two rotations {alone_code} holds key versions {:?}",
                keys.iter().map(|k| k.version).collect::<Vec<_>>()
            );
            let (left, cells) =
                crate::flows::keys::reseal_pass(&mut conn, &state.master, alone_code)?;
            anyhow::ensure!(
                left == 0 && cells == 0,
                "{left} residents and {cells} cells were still sealed with an old key"
            );
            let p = crate::tenancy::Partition::open(&mut conn, &state.master, alone_code)?;
            let n = p.read(&mut conn, crate::flows::residents::count)?;
            anyhow::ensure!(n == opts.rows as i64, "{n} residents after the rotations");
            format!("{n} residents, all under key version 3, the only one left")
        }
        Job::Recount => {
            let r = crate::flows::statistics::recount(&mut conn)?;
            anyhow::ensure!(
                r.corrected == 0,
                "{} counts were wrong after the recount next to the tablets",
                r.corrected
            );
            "a recount after the run found every count right".into()
        }
    };
    drop(conn);
    drop(state);
    drop(scratch);
    let stored: i64 = after.values().sum::<i64>() - before.values().sum::<i64>();
    let answered = (rec_alone.requests + rec_during.requests) as i64;
    anyhow::ensure!(
        rec_alone.exhausted == 0 && rec_during.exhausted == 0,
        "the tickets ran out during a recording run: raise --tickets"
    );
    anyhow::ensure!(
        stored >= answered - (rec_alone.non_2xx + rec_during.non_2xx) as i64,
        "wrk counted {answered} answers but only {stored} doses are stored"
    );

    let mut out = String::new();
    let what = match opts.job {
        Job::Import => format!(
            "a {}-line resident import ({:.1} MiB)",
            opts.rows,
            bytes as f64 / (1024.0 * 1024.0)
        ),
        Job::Rotate => format!(
            "a key rotation of a municipality of {} residents",
            opts.rows
        ),
        Job::Recount => format!("a statistics recount of {} doses and more", opts.rows),
    };
    let _ = writeln!(
        out,
        "bench contention: {what} next to doses recorded through POST /api/v1/doses, on {backend}"
    );
    let _ = writeln!(out, "  {}", machine.line());
    let _ = writeln!(
        out,
        "  database: {database}; server pool {POOL_SIZE} connections, {} HTTP workers",
        opts.workers.unwrap_or_else(cores)
    );
    let _ = writeln!(
        out,
        "  tablets: wrk -t{WRK_THREADS} -c{}, each connection pausing {} ms between recordings, tickets of {} (set up in {setup_secs:.1} s); {stored} doses stored by the runs, {logged} doses.record log lines in all",
        opts.connections,
        opts.pause_ms,
        RECORDED.join(", ")
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| recording | requests | seconds | doses/s | p50 ms | p99 ms | max ms | non-2xx | socket errors |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, r) in [
        ("no job (baseline)", &rec_alone),
        (&*format!("during the {}", opts.job.name()), &rec_during),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {} |",
            r.requests,
            r.secs,
            r.requests as f64 / r.secs,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.non_2xx,
            r.socket_error_total()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| {} of {} rows | seconds | rows/s | ratio to alone |",
        opts.job.name(),
        opts.rows
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (name, secs) in [
        ("alone (baseline)", job_alone),
        ("while the tablets record", job_during),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {secs:.1} | {:.0} | {:.2} |",
            opts.rows as f64 / secs,
            secs / job_alone
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  checked after the run: {job_check}");
    let p99_met = rec_during.p99_ms < 500.0;
    let clean = rec_during.non_2xx == 0 && rec_during.socket_error_total() == 0;
    let slow = job_during / job_alone;
    let _ = writeln!(
        out,
        "  targets: recording p99 during the job < 500 ms -> {} ({:.1} ms); 0 non-2xx -> {} ({}); job <= 1.5x alone -> {} ({slow:.2}x)",
        if p99_met { "met" } else { "NOT met" },
        rec_during.p99_ms,
        if clean { "met" } else { "NOT met" },
        rec_during.non_2xx + rec_during.socket_error_total(),
        if slow <= 1.5 { "met" } else { "NOT met" },
    );
    Ok(out)
}

//! `vrs bench record`: doses recorded through the real HTTP machine API
//! (`POST /api/v1/doses`, a site tablet's bearer token, one fresh ticket and
//! idempotency key per request) by an HTTP load generator on loopback, for a
//! fixed time, against `GET /health` on the same server with the same load
//! generator settings: the HTTP stack's ceiling on this machine.
//!
//! The load generator is `wrk` (Debian: `apt-get install -y wrk`), driven by
//! a Lua script written next to a file of the tickets, so every request
//! records a dose for a ticket no other request uses. Afterwards the doses
//! and their operation-log lines are counted in the database: what wrk saw
//! answered must be there.

mod fill;
mod wrk;
use super::{Scratch, cores};
use crate::audit::Actor;
use crate::config::{AccessLog, ServeArgs};
use crate::db::DbConn;
use crate::db::models::audit_log::AuditRow;
use crate::db::models::doses::{self as dose_rows, DoseRow};
use crate::db::models::residents::ResidentRow;
use crate::db::models::tickets::TicketRow;
use crate::db::models::vaccines::LotRow;
use crate::domain::{AddresseeNumber, LoginId, MunicipalityCode, MyNumber, Role};
use crate::flows::doses::NewDose;
use crate::flows::residents::{self, NewResident};
use crate::startup::{self, Application};
use anyhow::Context;
pub use fill::*;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
pub(crate) use wrk::*;

/// 古河市, 千代田区, 函館市, 大阪市: the tickets are spread over four
/// partitions, as doses at a site come from residents of several
/// municipalities.
pub const MUNICIPALITIES: [&str; 4] = ["082040", "131016", "012025", "271004"];
pub(super) const PRODUCT: &str = "PFZ_JN1_12P";
pub(super) const LOT: &str = "FA1000";
/// wrk's threads: one per core of the 2-core machine the target names.
pub(super) const WRK_THREADS: usize = 2;
/// The server's database pool, as `vrs serve` opens it.
pub(super) const POOL_SIZE: u32 = 16;
const BATCH: usize = 5000;

/// What `vrs bench record` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub seconds: u64,
    pub connections: usize,
    pub tickets: usize,
    pub health_seconds: u64,
    /// HTTP workers of the server (default: one per core, as `vrs serve`).
    pub workers: Option<usize>,
}

/// One HTTP/1.1 request on its own connection; the status and the body.
fn http_once(port: u16, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to the bench server on port {port}"))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .context("no HTTP status in the server's answer")?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Signs the tablet in through the API, as a site system would.
pub(super) fn api_token(port: u16, login: &str, password: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "login_id": login, "password": password }).to_string();
    let (status, answer) = http_once(port, "POST", "/api/v1/sessions", &body)?;
    anyhow::ensure!(
        status == 201,
        "POST /api/v1/sessions answered {status}: {answer}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&answer).context("POST /api/v1/sessions: not JSON")?;
    v["token"]
        .as_str()
        .map(str::to_string)
        .context("POST /api/v1/sessions: no token")
}

/// The server of a bench, on a thread of its own, as `vrs serve` runs it.
pub(super) struct BenchServer {
    pub(super) port: u16,
    handle: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl BenchServer {
    pub(super) fn start(
        state: crate::flows::AppState,
        workers: Option<usize>,
    ) -> anyhow::Result<BenchServer> {
        let args = ServeArgs {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_cert: None,
            tls_key: None,
            static_dir: std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static")),
            demo: false,
            trusted_proxies: Vec::new(),
            workers,
            import_max_mib: 64,
            import_max_lines: 100_000,
            inquiry_rate_account: 60,
            inquiry_rate_municipality: 1000,
            inquiry_answer_ms: 15,
            issuer_url: None,
            stats_min_cell: 10,
            access_log: AccessLog::All,
        };
        let app = Application::build(state, &args)?;
        let port = app.port();
        let server = app.into_server();
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || actix_web::rt::System::new().block_on(server))?;
        Ok(BenchServer {
            port,
            handle,
            thread,
        })
    }

    /// Stops it once every request sent is answered or dropped.
    pub(super) fn stop(self) {
        actix_web::rt::System::new().block_on(self.handle.stop(true));
        let _ = self.thread.join();
    }
}

pub(super) fn parse_wrk(text: &str) -> anyhow::Result<WrkRun> {
    let mut run = WrkRun {
        output: text.to_string(),
        ..WrkRun::default()
    };
    let num = |s: &str| s.trim().trim_end_matches(',').parse::<f64>().ok();
    let mut text_requests = None;
    let mut done = None;
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            run.rps = num(v).context("wrk: unreadable Requests/sec")?;
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            run.non_2xx = num(v).context("wrk: unreadable Non-2xx count")? as u64;
        } else if let Some(v) = l.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for (i, part) in v.split(',').enumerate().take(4) {
                run.socket_errors[i] =
                    part.split_whitespace()
                        .nth(1)
                        .and_then(num)
                        .context("wrk: unreadable socket errors")? as u64;
            }
        } else if l.contains(" requests in ") {
            text_requests = l.split_whitespace().next().and_then(num);
        } else if let Some(v) = l.strip_prefix("vrs-bench:") {
            let fields: std::collections::HashMap<&str, f64> = v
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .filter_map(|(k, v)| Some((k, v.parse::<f64>().ok()?)))
                .collect();
            done = Some(fields);
        }
    }
    let done = done.context("wrk: the script's summary line is missing")?;
    let get = |k: &str| {
        done.get(k)
            .copied()
            .with_context(|| format!("wrk: no {k} in the summary line"))
    };
    run.requests = get("requests")? as u64;
    run.secs = get("duration_us")? / 1e6;
    run.p50_ms = get("p50_us")? / 1e3;
    run.p90_ms = get("p90_us")? / 1e3;
    run.p99_ms = get("p99_us")? / 1e3;
    run.max_ms = get("max_us")? / 1e3;
    run.exhausted = get("exhausted")? as u64;
    anyhow::ensure!(
        text_requests == Some(run.requests as f64) && get("status_errors")? as u64 == run.non_2xx,
        "wrk's report and its script's summary disagree:\n{text}"
    );
    Ok(run)
}

/// Doses recorded per 10-second window of the run, from their own
/// `recorded_at`: the lowest and highest rate of the full windows.
fn windows(
    conn: &mut DbConn,
    master: &crate::crypto::MasterKey,
    codes: &[MunicipalityCode],
    start: chrono::NaiveDateTime,
    seconds: u64,
) -> anyhow::Result<Option<(f64, f64)>> {
    const WINDOW: i64 = 10;
    let full = (seconds as i64 / WINDOW) as usize;
    let mut counts = vec![0u64; full];
    for &code in codes {
        let partition = crate::tenancy::Partition::open(conn, master, code)?;
        let times = partition.read(conn, |_scope, conn| DoseRow::recorded_since(conn, start))?;
        for t in times {
            let i = (t - start).num_seconds() / WINDOW;
            if let Some(c) = usize::try_from(i).ok().and_then(|i| counts.get_mut(i)) {
                *c += 1;
            }
        }
    }
    let rate = |c: &u64| *c as f64 / WINDOW as f64;
    Ok(counts
        .iter()
        .map(rate)
        .fold(None, |acc: Option<(f64, f64)>, r| match acc {
            None => Some((r, r)),
            Some((lo, hi)) => Some((lo.min(r), hi.max(r))),
        }))
}

/// Stored doses of the bench municipalities per status, and their
/// `doses.record` operation-log lines.
pub(super) fn stored(
    conn: &mut DbConn,
    master: &crate::crypto::MasterKey,
    key: &crate::audit::AuditKey,
    codes: &[MunicipalityCode],
) -> anyhow::Result<(std::collections::BTreeMap<String, i64>, i64)> {
    let mut per_status = std::collections::BTreeMap::new();
    let mut logged = 0;
    // Lines still waiting to be chained count once they are chained.
    crate::audit::flush(conn, key)?;
    for &code in codes {
        let partition = crate::tenancy::Partition::open(conn, master, code)?;
        let counts = partition.read(conn, |_, conn| DoseRow::count_per_status(conn))?;
        for (status, n) in counts {
            *per_status.entry(status).or_insert(0) += n;
        }
        logged += AuditRow::count_of_action(conn, code.as_str(), "doses.record")?;
    }
    Ok((per_status, logged))
}

/// What the database behind the bench is, and its durability settings.
pub(super) fn durability(conn: &mut DbConn) -> String {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct About {
        #[diesel(sql_type = diesel::sql_types::Text)]
        about: String,
    }
    let about = match conn {
        DbConn::Postgresql(c) => diesel::sql_query(
            "SELECT 'PostgreSQL ' || current_setting('server_version') || ' over ' || \
             CASE WHEN inet_server_addr() IS NULL THEN 'Unix socket' \
                  ELSE 'TCP ' || host(inet_server_addr()) END AS about",
        )
        .get_result::<About>(c),
        DbConn::Sqlite(c) => diesel::sql_query("SELECT 'SQLite ' || sqlite_version() AS about")
            .get_result::<About>(c),
    }
    .map(|a| a.about)
    .unwrap_or_else(|_| "the database".into());
    match crate::db::durability(conn) {
        Ok(d) if d.durable => format!("{about} ({}, durable)", d.settings),
        Ok(d) => format!("{about} ({}, NOT durable)", d.settings),
        Err(_) => about,
    }
}

/// `vrs bench record`.
pub fn run(opts: &Options, postgres_url: Option<&str>) -> anyhow::Result<String> {
    let machine = super::Machine::now();
    anyhow::ensure!(opts.seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!(
        opts.connections >= WRK_THREADS,
        "--connections must be at least {WRK_THREADS} (one per wrk thread)"
    );
    require_wrk()?;
    let codes = MUNICIPALITIES
        .iter()
        .map(|c| MunicipalityCode::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let per_municipality = opts.tickets.max(codes.len()).div_ceil(codes.len());

    // The database and the application state, as `vrs serve` opens them.
    let scratch = Scratch::new(postgres_url)?;
    let backend = scratch.backend();
    let common = scratch.common();
    let prepared = startup::prepare(&common, POOL_SIZE)?;
    let state = prepared.state.clone();

    let setup_start = Instant::now();
    let mut conn = state.pool.get()?;
    let database = durability(&mut conn);
    add_lot(&mut conn)?;
    for &code in &codes {
        fill_municipality(&mut conn, &state.master, code, per_municipality)?;
    }
    // As after any bulk load: the planner sees the tables' real sizes.
    crate::db::refresh_statistics(&mut conn)?;
    let (login, password) = site_tablet(&mut conn, &state.audit, codes[0])?;
    let (before, _) = stored(&mut conn, &state.master, &state.audit, &codes)?;
    drop(conn);
    let setup_secs = setup_start.elapsed().as_secs_f64();

    // Ticket file: the municipalities in turn, so consecutive requests go
    // to different partitions.
    let tickets_path = scratch.dir().join("tickets.txt");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tickets_path)?);
        for i in 0..per_municipality {
            for code in &codes {
                writeln!(w, "{code}{}", ticket_number(i))?;
            }
        }
        w.flush()?;
    }
    let total_tickets = per_municipality * codes.len();

    let server = BenchServer::start(prepared.state, opts.workers)?;
    let port = server.port;

    let measured = (|| {
        let token = api_token(port, &login, &password)?;
        anyhow::ensure!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "unexpected characters in the session token"
        );
        // Yesterday in Japan: never a future date, whatever the clock does
        // during the run.
        let date = crate::clock::today_in_japan() - chrono::Duration::days(1);
        let record_script = scratch.dir().join("record.lua");
        std::fs::write(
            &record_script,
            LUA_COMMON.to_string()
                + &LUA_RECORD
                    .replace("@TICKETS@", &tickets_path.to_string_lossy())
                    .replace("@TOKEN@", &token)
                    .replace("@DATE@", &date.to_string())
                    .replace("@THREADS@", &WRK_THREADS.to_string())
                    .replace("@PRODUCT@", PRODUCT)
                    .replace("@LOT@", LOT),
        )?;
        let health_script = scratch.dir().join("health.lua");
        std::fs::write(&health_script, LUA_COMMON)?;

        let base = format!("http://127.0.0.1:{port}");
        let health = run_wrk(
            opts.connections,
            opts.health_seconds,
            &health_script,
            &format!("{base}/health"),
        )?;
        let start = crate::clock::now();
        let logged_before = crate::logging::bytes_written();
        let doses = run_wrk(
            opts.connections,
            opts.seconds,
            &record_script,
            &format!("{base}/api/v1/doses"),
        )?;
        let log_bytes = crate::logging::bytes_written() - logged_before;
        Ok((health, doses, start, log_bytes))
    })();

    // Every request wrk sent is answered or dropped before anything is
    // counted.
    server.stop();
    let (health, doses, start, log_bytes) = measured?;

    let mut conn = state.pool.get()?;
    let (mut per_status, logged) = stored(&mut conn, &state.master, &state.audit, &codes)?;
    let spread = windows(&mut conn, &state.master, &codes, start, opts.seconds)?;
    drop(conn);
    drop(state);
    drop(scratch);
    // Only what the run recorded.
    for (status, n) in &before {
        *per_status.entry(status.clone()).or_insert(0) -= n;
    }
    per_status.retain(|_, n| *n != 0);
    let history: i64 = before.values().sum();
    let stored_total: i64 = per_status.values().sum();
    let valid = per_status.get(dose_rows::VALID).copied().unwrap_or(0);

    // Nothing below counts unless every request recorded a dose.
    anyhow::ensure!(
        health.non_2xx == 0 && health.socket_error_total() == 0,
        "GET /health: {} non-2xx answers, socket errors {:?}\n{}",
        health.non_2xx,
        health.socket_errors,
        health.output
    );
    anyhow::ensure!(
        doses.exhausted == 0,
        "the {total_tickets} tickets ran out before the end of the run: raise --tickets"
    );
    anyhow::ensure!(
        doses.non_2xx == 0,
        "POST /api/v1/doses: {} of {} answers were not 2xx\n{}",
        doses.non_2xx,
        doses.requests,
        doses.output
    );
    anyhow::ensure!(
        doses.socket_error_total() == 0,
        "POST /api/v1/doses: socket errors (connect, read, write, timeout) {:?}\n{}",
        doses.socket_errors,
        doses.output
    );
    anyhow::ensure!(
        stored_total >= doses.requests as i64,
        "wrk counted {} answered recordings but only {stored_total} doses are stored",
        doses.requests
    );
    anyhow::ensure!(
        valid == stored_total,
        "some doses were queued instead of recorded: {per_status:?}"
    );
    anyhow::ensure!(
        logged == stored_total,
        "{stored_total} doses stored but {logged} doses.record operation-log lines"
    );

    let rate = doses.requests as f64 / doses.secs;
    let ratio = rate / health.rps;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bench record: doses through POST /api/v1/doses on {backend}, {} s, wrk -t{WRK_THREADS} -c{} on loopback",
        opts.seconds, opts.connections
    );
    let _ = writeln!(out, "  {}", machine.line());
    let _ = writeln!(
        out,
        "  database: {database}; server pool {POOL_SIZE} connections, {} HTTP workers",
        opts.workers.unwrap_or_else(cores)
    );
    let _ = writeln!(
        out,
        "  data: {} municipalities x ({per_municipality} residents with one active ticket each + {per_municipality} with a dose already recorded): {total_tickets} tickets, {history} doses before the run; set up in {setup_secs:.1} s; one site tablet of {}",
        codes.len(),
        codes[0]
    );
    let _ = writeln!(
        out,
        "  stored by the run: {stored_total} doses (all valid), {logged} doses.record log lines; wrk counted {} answered (the rest were in flight when wrk stopped)",
        doses.requests
    );
    let _ = writeln!(
        out,
        "  log: {log_bytes} bytes written while recording, {:.0} bytes per 1,000 recorded doses (VRS_LOG={}, access log: every request)",
        log_bytes as f64 * 1000.0 / stored_total.max(1) as f64,
        std::env::var("VRS_LOG").unwrap_or_else(|_| "info".into())
    );
    if let Some((lo, hi)) = spread {
        let _ = writeln!(
            out,
            "  doses recorded per 10 s window of the run (by their recorded_at): lowest {lo:.0}/s, highest {hi:.0}/s"
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| measurement | requests | seconds | req/s | p50 ms | p90 ms | p99 ms | max ms | ratio to baseline |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, r, ratio) in [
        ("GET /health (baseline)", &health, 1.0),
        ("POST /api/v1/doses", &doses, ratio),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {ratio:.2} |",
            r.requests,
            r.secs,
            r.requests as f64 / r.secs,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  target: >= 1000 recorded doses/s for {} s -> {} ({rate:.0}/s, {:.2}x the /health baseline)",
        opts.seconds,
        if rate >= 1000.0 && opts.seconds >= 60 {
            "met"
        } else if rate >= 1000.0 {
            "rate met, run shorter than the target's minute"
        } else {
            "NOT met"
        },
        ratio
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let text = "Running 1m test @ http://127.0.0.1:1/api/v1/doses
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.01ms    2.00ms  40.00ms   80.00%
    Req/Sec   900.00     50.00     1.00k    70.00%
  Latency Distribution
     50%    8.50ms
     75%    9.50ms
     90%   11.00ms
     99%   20.00ms
  107000 requests in 1.00m, 40.00MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   1783.33
Transfer/sec:    682.00KB
vrs-bench: requests=107000 duration_us=60000000 p50_us=8500 p90_us=11000 p99_us=20000 max_us=40000 status_errors=3 exhausted=0
";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.requests, 107_000);
        assert_eq!(r.non_2xx, 3);
        assert_eq!(r.socket_errors, [0, 1, 0, 2]);
        assert!((r.rps - 1783.33).abs() < 1e-9);
        assert!((r.secs - 60.0).abs() < 1e-9);
        assert!((r.p99_ms - 20.0).abs() < 1e-9);
        assert!(parse_wrk("no summary").is_err());
    }
}

//! `vrs bench pages`: every page of the route table (`web::route_table`,
//! read from the handlers' own `#[get]` attributes) opened by the accounts
//! of a municipality's daily work — staff with every permission, an
//! administrator, a site's tablet — in a city-sized municipality, each page
//! timed over many requests through the real HTTP server; `GET /health` on
//! the same server is the baseline. A page an account may not open (a
//! redirect to the login or another page, 403, 404) is listed with the
//! answers it gave, not timed.

use super::record::{BenchServer, add_lot, durability, site_tablet};
use super::{Machine, Scratch, percentile};
use crate::audit::Actor;
use crate::db::DbConn;
use crate::db::models::dose_events::DoseEventRow;
use crate::db::models::doses::{self as dose_rows, DoseRow};
use crate::db::models::residents::ResidentRow;
use crate::db::models::tickets::TicketRow;
use crate::domain::{AddresseeNumber, LoginId, MunicipalityCode, MyNumber, Permission, Role};
use crate::flows::residents;
use crate::startup;
use anyhow::Context;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

/// 古河市: the city the bench fills.
const CITY: &str = "082040";
/// Rows per insert transaction while filling.
const BATCH: usize = 5000;
/// One resident in this many had a dose sent to the 要確認 queue (about
/// the share of records that needed a look in the real campaign)…
const QUEUED_EVERY: usize = 20;
/// …and one in this many still waits there.
const WAITING_EVERY: usize = 2000;
/// Targets of the issue: daily pages, and the statistics pages.
const PAGE_TARGET_MS: f64 = 100.0;
const STATISTICS_TARGET_MS: f64 = 300.0;
/// Lines of the resident import whose job pages are timed.
const IMPORT_LINES: usize = 2000;
/// Requests of a download (CSV, NDJSON): each is timed to its first byte.
const DOWNLOAD_REQUESTS: usize = 5;

#[derive(Debug, Clone)]
pub struct Options {
    pub residents: usize,
    pub doses: usize,
    pub requests: usize,
}

/// One account of the run, signed in.
struct Account {
    label: &'static str,
    cookie: String,
}

/// One timed page.
struct Timed {
    pattern: &'static str,
    file: &'static str,
    path: String,
    account: &'static str,
    download: bool,
    bytes: usize,
    p50: f64,
    p99: f64,
}

/// A made-up resident of the city: unique 宛名番号 and individual number
/// (its ticket numbers start at 5,000,000,000, clear of the import file's).
fn city_resident(code: MunicipalityCode, i: usize) -> anyhow::Result<residents::NewResident> {
    let mut r = crate::demo::demo_resident(code, i % 1000);
    r.addressee_number = AddresseeNumber::parse(&format!("C{i:09}"))?;
    r.my_number = Some(MyNumber::from_body(20_000_000_000 + i as u64));
    Ok(r)
}

/// Fills the city: `n` residents with an active ticket each and `doses`
/// doses spread over them (first, second, … dose a month apart, the months
/// of a three-year campaign); one resident in [`QUEUED_EVERY`] had a dose
/// in the queue (its events written as the queue writes them), one in
/// [`WAITING_EVERY`] still waits. Returns a resident in the middle, with doses.
fn fill_city(
    conn: &mut DbConn,
    master: &crate::crypto::MasterKey,
    code: MunicipalityCode,
    n: usize,
    doses: usize,
) -> anyhow::Result<String> {
    crate::flows::municipalities::enable(conn, master, code)?;
    let partition = crate::tenancy::Partition::open(conn, master, code)?;
    let at = crate::clock::now();
    let start = chrono::NaiveDate::from_ymd_opt(2021, 3, 1).unwrap_or_default();
    let mut middle = String::new();
    let mut given = 0usize;
    let began = Instant::now();
    for first in (0..n).step_by(BATCH) {
        let last = (first + BATCH).min(n);
        let people = (first..last)
            .map(|i| city_resident(code, i))
            .collect::<anyhow::Result<Vec<_>>>()?;
        partition.run(conn, |scope, conn| {
            let mut rows = Vec::with_capacity(people.len());
            let mut tickets = Vec::with_capacity(people.len());
            let mut dose_rows = Vec::new();
            let mut events = Vec::new();
            for (k, p) in people.iter().enumerate() {
                let i = first + k;
                let id = crate::domain::new_record_id();
                if i == n / 2 {
                    middle = id.clone();
                }
                // Doses owed to residents so far, spread evenly.
                let owed = (i + 1) * doses / n - given;
                given += owed;
                for d in 0..owed {
                    let on = start
                        + chrono::Duration::days(((i % 900) + 30 * d) as i64)
                            .min(chrono::Duration::days(1300));
                    let queued = d + 1 == owed && i.is_multiple_of(QUEUED_EVERY);
                    let waiting = queued && i.is_multiple_of(WAITING_EVERY);
                    let dose_id = crate::domain::new_record_id();
                    if queued {
                        // A third of the queue's history within the last
                        // 60 days, the rest in the campaign's years.
                        let queued_at = if i % 3 == 0 {
                            at - chrono::Duration::days((i % 60) as i64)
                        } else {
                            on.and_hms_opt(10, 0, 0).unwrap_or_default()
                        };
                        let mut kinds = vec![("queued", queued_at)];
                        if !waiting {
                            kinds.push(("confirmed", queued_at + chrono::Duration::days(2)));
                        }
                        for (kind, when) in kinds {
                            events.push(DoseEventRow {
                                municipality_code: code.to_string(),
                                id: crate::domain::new_record_id(),
                                dose_id: dose_id.clone(),
                                resident_id: id.clone(),
                                at: when,
                                kind: kind.into(),
                                account_id: None,
                                detail: Some("unknown_lot".into()),
                                reason_sealed: None,
                            });
                        }
                    }
                    dose_rows.push(DoseRow {
                        municipality_code: code.to_string(),
                        id: dose_id,
                        resident_id: id.clone(),
                        dose_number: d as i32 + 1,
                        administered_on: on,
                        recorded_at: at,
                        ticket_number: None,
                        site_municipality_code: Some(code.to_string()),
                        site_name: Some(format!("ベンチ会場{}", i % 40)),
                        product_code: super::record::PRODUCT.into(),
                        lot_number: Some(super::record::LOT.into()),
                        origin: dose_rows::RECORDED.into(),
                        origin_municipality_code: None,
                        recorded_by: None,
                        status: if waiting {
                            dose_rows::PENDING.into()
                        } else {
                            dose_rows::VALID.into()
                        },
                        site_id: None,
                        idempotency_key: None,
                        quality_flags: queued.then(|| "unknown_lot".to_string()),
                        supersedes: None,
                        age_band: Some(((i % 18) * 5) as i32),
                        sex: Some(if i % 2 == 0 { "1" } else { "2" }.into()),
                    });
                }
                tickets.push(super::active_ticket(
                    code.as_str(),
                    format!("{:010}", 5_000_000_000 + i),
                    id.clone(),
                    owed as i32 + 1,
                    at,
                ));
                rows.push(residents::new_row(scope, p, id, at));
            }
            ResidentRow::insert_many(conn, &rows)?;
            TicketRow::insert_many(conn, &tickets)?;
            for chunk in dose_rows.chunks(BATCH) {
                DoseRow::insert_many(conn, chunk)?;
            }
            for event in &events {
                event.insert(conn)?;
            }
            Ok::<_, residents::ResidentError>(())
        })?;
        if last.is_multiple_of(100_000) || last == n {
            eprintln!(
                "bench pages: {last} of {n} residents, {given} doses stored ({:.0} s)",
                began.elapsed().as_secs_f64()
            );
        }
    }
    Ok(middle)
}

/// Staff with every permission and an administrator of the city.
fn city_accounts(
    conn: &mut DbConn,
    audit: &crate::audit::AuditKey,
    code: MunicipalityCode,
) -> anyhow::Result<Vec<(&'static str, String, String)>> {
    use crate::flows::accounts;
    let mut out = Vec::new();
    for (label, role, permissions) in [
        (
            "staff",
            Role::MunicipalStaff,
            Permission::ALL
                .iter()
                .map(|p| p.code().to_string())
                .collect(),
        ),
        ("administrator", Role::MunicipalAdmin, Vec::new()),
    ] {
        let (login, password) = super::bench_account(
            conn,
            audit,
            accounts::NewAccount {
                login_id: LoginId::parse(&format!("{code}-bench-{label}"))?,
                role,
                municipality: Some(code),
                prefecture_code: None,
                display_name: format!("ベンチ{label}"),
                permissions,
                expires_on: None,
                device_name: None,
                responsible_person: None,
                site_id: None,
                must_change_password: false,
            },
        )?;
        out.push((label, login, password));
    }
    Ok(out)
}

/// Signs an account in as the login form does and returns its cookie.
fn sign_in(
    state: &crate::flows::AppState,
    label: &'static str,
    login: &str,
    password: &str,
) -> anyhow::Result<Account> {
    let typed = crate::flows::accounts::Credentials {
        login,
        password,
        code: "",
        device: None,
    };
    let success = crate::flows::accounts::login(
        &state.pool,
        &state.master,
        &state.audit,
        &typed,
        "127.0.0.1",
    )
    .map_err(|e| anyhow::anyhow!("signing in {label}: {e}"))?;
    Ok(Account {
        label,
        cookie: format!("{}={}", crate::web::SESSION_COOKIE, success.token),
    })
}

/// One answer: status, whether it is a download, bytes read, and the time
/// to its end (to its first byte for a download).
struct Answer {
    status: u16,
    download: bool,
    bytes: usize,
    took: Duration,
}

fn get(port: u16, path: &str, cookie: &str) -> anyhow::Result<Answer> {
    let began = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to the bench server on port {port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{cookie}\
         Accept-Language: ja\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::with_capacity(64 * 1024);
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        let got = s.read(&mut buf)?;
        anyhow::ensure!(got > 0, "GET {path}: the server closed without an answer");
        raw.extend_from_slice(&buf[..got]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .context("no HTTP status in the server's answer")?;
    let download = head.contains("content-disposition: attachment")
        || head.contains("content-type: text/csv")
        || head.contains("ndjson");
    if download {
        // The first bytes of the body are there: that is when a download
        // starts for the person who asked. Its speed is `bench export`'s.
        let took = began.elapsed();
        return Ok(Answer {
            status,
            download,
            bytes: raw.len() - head_end - 4,
            took,
        });
    }
    s.read_to_end(&mut raw)?;
    Ok(Answer {
        status,
        download,
        bytes: raw.len() - head_end - 4,
        took: began.elapsed(),
    })
}

fn time_path(
    port: u16,
    path: &str,
    cookie: &str,
    requests: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut times = Vec::with_capacity(requests);
    let mut bytes = 0;
    for _ in 0..requests {
        let a = get(port, path, cookie)?;
        anyhow::ensure!(
            a.status == 200,
            "GET {path} answered {} during the run",
            a.status
        );
        times.push(a.took);
        bytes = a.bytes;
    }
    times.sort_unstable();
    Ok((times, bytes))
}

/// A path of the pattern with every parameter filled, or the parameter no
/// value is known for.
fn fill(pattern: &str, resident: &str, job: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return Err(pattern.to_string());
        };
        let name = &rest[open + 1..open + close];
        let value = match (name, &rest[..open]) {
            ("id", before) if before.ends_with("/residents/") => resident.to_string(),
            ("id", before) if before.ends_with("/residents/imports/") => job.to_string(),
            ("code", _) => "ja".to_string(),
            _ => return Err(format!("{{{name}}}")),
        };
        out.push_str(&value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub fn run(opts: &Options, postgres_url: Option<&str>) -> anyhow::Result<String> {
    let machine = Machine::now();
    anyhow::ensure!(opts.residents >= 1, "--residents must be at least 1");
    anyhow::ensure!(opts.requests >= 2, "--requests must be at least 2");
    let code = MunicipalityCode::parse(CITY)?;
    let scratch = Scratch::new(postgres_url)?;
    let common = scratch.common();
    let prepared = startup::prepare(&common, super::record::POOL_SIZE)?;
    let state = prepared.state.clone();

    let setup_start = Instant::now();
    let mut conn = state.pool.get()?;
    let database = durability(&mut conn);
    add_lot(&mut conn)?;
    let resident = fill_city(&mut conn, &state.master, code, opts.residents, opts.doses)?;
    crate::db::refresh_statistics(&mut conn)?;
    let mut logins = city_accounts(&mut conn, &state.audit, code)?;
    let (tablet_login, tablet_password) = site_tablet(&mut conn, &state.audit, code)?;
    logins.push(("tablet", tablet_login, tablet_password));
    // The bench's terminal is on the city's LG-WAN, as staff's are.
    crate::flows::networks::add(
        &mut conn,
        &state.audit,
        &Actor::default(),
        code,
        crate::domain::Network::parse("127.0.0.0/8")?,
        "bench",
    )?;
    drop(conn);
    // A resident import of the day's changes, for the job's pages.
    let file = scratch.dir().join("changes.csv");
    super::write_resident_file(&file, IMPORT_LINES)?;
    let job = super::import_file(&scratch, &state.master, code, &file)?;
    let setup_secs = setup_start.elapsed().as_secs_f64();

    let accounts = logins
        .iter()
        .map(|(label, login, password)| sign_in(&state, label, login, password))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let nobody = [Account {
        label: "anyone",
        cookie: String::new(),
    }];
    let server = BenchServer::start(prepared.state, None)?;
    let port = server.port;

    let measured = (|| {
        let (health, _) = time_path(port, "/health", "", opts.requests)?;
        let mut timed = Vec::new();
        let mut untimed: Vec<(&'static str, String)> = Vec::new();
        for &(file, pattern) in crate::web::route_table::GET_ROUTES {
            let path = match fill(pattern, &resident, &job.id) {
                Ok(p) => p,
                Err(missing) => {
                    untimed.push((pattern, format!("no value for {missing} in the bench")));
                    continue;
                }
            };
            let mut answers = Vec::new();
            let mut found = false;
            // A page anyone may open (the login, the verify page, /health)
            // is timed once, without a session.
            let anyone = get(port, &path, "")?.status == 200;
            let asking: &[Account] = if anyone { &nobody } else { &accounts };
            for account in asking {
                let first = get(port, &path, &account.cookie)?;
                if first.status != 200 {
                    answers.push(format!("{} {}", account.label, first.status));
                    continue;
                }
                let requests = if first.download {
                    DOWNLOAD_REQUESTS
                } else {
                    opts.requests
                };
                let (times, bytes) = time_path(port, &path, &account.cookie, requests)?;
                timed.push(Timed {
                    pattern,
                    file,
                    path: path.clone(),
                    account: account.label,
                    download: first.download,
                    bytes,
                    p50: percentile(&times, 0.5),
                    p99: percentile(&times, 0.99),
                });
                found = true;
            }
            if !found {
                untimed.push((pattern, answers.join(", ")));
            }
        }
        Ok::<_, anyhow::Error>((health, timed, untimed))
    })();
    server.stop();
    let (health, timed, untimed) = measured?;
    drop(state);
    drop(scratch);

    let health_p99 = percentile(&health, 0.99);
    let mut out = String::new();
    writeln!(
        out,
        "bench pages: {} residents and {} doses in one municipality ({CITY}), \
         {} requests per page (downloads: {DOWNLOAD_REQUESTS}, timed to their first byte), \
         one at a time",
        opts.residents, opts.doses, opts.requests
    )?;
    writeln!(out, "database: {database}")?;
    writeln!(out, "{}", machine.line())?;
    writeln!(out, "setup: {setup_secs:.0} s")?;
    writeln!(
        out,
        "baseline GET /health: p50 {:.2} ms, p99 {health_p99:.2} ms",
        percentile(&health, 0.5)
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| page | served by | account | bytes | p50 ms | p99 ms | p99 / health p99 | target | met |"
    )?;
    writeln!(
        out,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )?;
    let mut missed = 0;
    for t in &timed {
        let target = if t.pattern.starts_with("/statistics") {
            STATISTICS_TARGET_MS
        } else {
            PAGE_TARGET_MS
        };
        let met = t.p99 < target;
        if !met {
            missed += 1;
        }
        writeln!(
            out,
            "| `{}`{} | {} | {} | {} | {:.1} | {:.1} | {:.0} | < {target:.0} ms | {} |",
            t.path.replace(&resident, "{id}").replace(&job.id, "{id}"),
            if t.download { " (first byte)" } else { "" },
            t.file,
            t.account,
            t.bytes,
            t.p50,
            t.p99,
            t.p99 / health_p99.max(0.001),
            if met { "yes" } else { "NO" }
        )?;
    }
    writeln!(out)?;
    writeln!(out, "not timed (the answers each account got):")?;
    for (pattern, why) in &untimed {
        writeln!(out, "  {pattern}: {why}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} of {} timed pages within their target",
        timed.len() - missed,
        timed.len()
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn parameters_are_filled_or_named() {
        assert_eq!(
            fill("/residents/{id}/ticket", "r1", "j1"),
            Ok("/residents/r1/ticket".into())
        );
        assert_eq!(
            fill("/residents/imports/{id}/status", "r1", "j1"),
            Ok("/residents/imports/j1/status".into())
        );
        assert_eq!(fill("/lang/{code}", "r1", "j1"), Ok("/lang/ja".into()));
        assert_eq!(fill("/transfers/bulk/{id}", "r1", "j1"), Err("{id}".into()));
        assert_eq!(fill("/statistics", "r1", "j1"), Ok("/statistics".into()));
    }

    #[test]
    fn the_route_table_is_read_from_the_handlers() {
        let table = crate::web::route_table::GET_ROUTES;
        assert!(table.contains(&("web/statistics.rs", "/statistics/municipality")));
        assert!(table.contains(&("web/records/search.rs", "/residents")));
        assert!(table.len() >= 40, "{table:?}");
    }
}

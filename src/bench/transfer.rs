//! `vrs bench transfer`: the transfer inquiry with a large municipality
//! asked. The source (古河市, 082040) holds `residents` people, the first
//! `movers` of whom moved to 千代田区 (131016) with two doses each.
//!
//! - Window inquiries: the flow the server runs for one inquiry (both
//!   partitions, provision records, copies, log lines), timed one by one:
//!   matches, and misses sent to a wrong municipality (函館市, 012025). The
//!   baseline is the single indexed lookup of one resident by blind index
//!   in the same database. What a client sees is the later of the flow's
//!   time and the answer floor (`--inquiry-answer-ms`, default 15 ms).
//! - The bulk inquiry: a file of all movers through the job's flow, against
//!   the resident import of the same number of lines in the same run.

use super::percentile;
use super::{Scratch, import_file, write_resident_file};
use crate::audit::Actor;
use crate::db::models::residents::ResidentRow;
use crate::domain::{Consent, IdDocument, InquiryPurpose, MunicipalityCode, MyNumber};
use crate::flows::transfer::{self, Answer, Channel, Inquiry, RateLimits};
use std::fmt::Write;
use std::time::{Duration, Instant};

pub struct Options {
    pub residents: usize,
    pub movers: usize,
    pub inquiries: usize,
}

/// Two samples of times side by side: their medians and the two-sample
/// Kolmogorov–Smirnov statistic D (the largest gap between their empirical
/// distribution functions), with the critical value at the 5 % level. A
/// few lines of arithmetic, written here rather than taken from a crate.
fn compare(a: &[Duration], b: &[Duration]) -> String {
    let sorted = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let critical = 1.358 * ((n + m) / (n * m)).sqrt();
    format!(
        "medians {:.2} / {:.2} ms, Kolmogorov-Smirnov D = {d:.3} (5 % critical value {critical:.3}: {})",
        percentile(&a, 0.5),
        percentile(&b, 0.5),
        if d < critical {
            "indistinguishable"
        } else {
            "DISTINGUISHABLE"
        }
    )
}

pub(crate) fn summary(mut d: Vec<Duration>) -> String {
    d.sort();
    format!(
        "p50 {:.2} / p90 {:.2} / p99 {:.2} / max {:.2} ms",
        percentile(&d, 0.5),
        percentile(&d, 0.9),
        percentile(&d, 0.99),
        percentile(&d, 1.0)
    )
}

pub fn run(opts: &Options, postgres_url: Option<&str>) -> anyhow::Result<String> {
    let machine = super::Machine::now();
    let residents = opts.residents.max(1000);
    let movers = opts.movers.clamp(100, residents);
    let inquiries = opts.inquiries.clamp(10, movers / 2);
    let db = Scratch::new(postgres_url)?;
    let master = std::sync::Arc::new(crate::crypto::MasterKey::generate(
        crate::crypto::MasterKeySource::Env("VRS_BENCH"),
    ));
    let source = MunicipalityCode::parse("082040")?;
    let asking = MunicipalityCode::parse("131016")?;
    let elsewhere = MunicipalityCode::parse("012025")?;
    let mut conn = db.pool.get()?;
    for code in [source, asking, elsewhere] {
        crate::flows::municipalities::enable(&mut conn, &master, code)?;
    }
    let audit = crate::audit::AuditKey::load_or_create(&mut conn, &master)?;
    crate::flows::vaccines::seed(&mut conn)?;

    // The source's residents, through the import; two doses for each mover.
    let work = db.dir().join("files");
    crate::private_dir::create(&work)?;
    let big = work.join("source.csv");
    write_resident_file(&big, residents)?;
    let source_p = crate::tenancy::Partition::open(&mut conn, &master, source)?;
    let setup = Instant::now();
    import_file(&db, &master, source, &big)?;
    source_p.run(&mut conn, |scope, conn| {
        let mut after = String::new();
        let mut given = 0;
        while given < movers {
            let page = ResidentRow::page_of_municipality(scope, conn, &after, 5000)?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            let mut doses = Vec::new();
            for r in page.iter().take(movers - given) {
                for k in 0..2u8 {
                    doses.push(crate::flows::doses::NewDose {
                        resident_id: r.id.clone(),
                        dose_number: crate::domain::DoseNumber::new(k + 1).unwrap_or_default(),
                        administered_on: chrono::NaiveDate::from_ymd_opt(2021, 6, 1)
                            .unwrap_or_default()
                            + chrono::Duration::days(28 * i64::from(k)),
                        ticket_number: None,
                        site_municipality: Some(source),
                        site_name: Some("古河市中央公民館".into()),
                        product_code: "PFZ_ORIG_12P".into(),
                        lot_number: Some("FA1234".into()),
                        recorded_by: None,
                        age_band: Some(70),
                        sex: Some("1".into()),
                    });
                }
            }
            given += page.len().min(movers - given);
            crate::flows::doses::append(scope, conn, &doses)?;
        }
        Ok::<_, crate::flows::residents::ResidentError>(())
    })?;
    // The movers in the asking municipality: the same generator gives the
    // first `movers` lines the same 宛名番号 and numbers. Its import is the
    // bulk inquiry's baseline.
    let asking_file = work.join("asking.csv");
    write_resident_file(&asking_file, movers)?;
    let asking_p = crate::tenancy::Partition::open(&mut conn, &master, asking)?;
    let start = Instant::now();
    import_file(&db, &master, asking, &asking_file)?;
    let import_secs = start.elapsed().as_secs_f64();
    crate::db::refresh_statistics(&mut conn)?;
    if let crate::db::DbConn::Postgresql(c) = &mut *conn {
        use diesel::connection::SimpleConnection;
        c.batch_execute("VACUUM (ANALYZE) residents, doses")?;
    }
    let setup_secs = setup.elapsed().as_secs_f64();
    let number = |i: usize| MyNumber::from_body(10_000_000_000 + i as u64);

    // Baseline: one resident found by blind index, in the source.
    let mut base = Vec::with_capacity(inquiries);
    for i in 0..inquiries {
        let n = number(residents - 1 - i);
        let t = Instant::now();
        let found = source_p.read(&mut conn, |scope, conn| {
            ResidentRow::find_by_my_number_index_and_municipality(
                scope,
                conn,
                &scope.my_number_indexes(&n),
            )
        })?;
        base.push(t.elapsed());
        anyhow::ensure!(found.is_some(), "baseline lookup found nobody");
    }

    // Window inquiries: matches (each mover once), then misses.
    let actor = Actor::account("bench", "131016-bench", "127.0.0.1");
    let limits = RateLimits {
        per_account_hour: u32::MAX,
        per_municipality_hour: u32::MAX,
    };
    let floor = crate::flows::transfer::Settings::default().answer_floor;
    let ask = |conn: &mut crate::db::DbConn, i: usize, to: MunicipalityCode| {
        let inquiry = Inquiry {
            asking,
            source: to,
            number: number(i),
            consent: Consent {
                id_document: IdDocument::MyNumberCard,
                checked_by: "bench".into(),
            },
            purpose: InquiryPurpose::TicketIssuance,
            channel: Channel::Window,
        };
        let t = Instant::now();
        let answer = transfer::inquire(conn, &master, &audit, limits, &actor, &inquiry);
        let took = t.elapsed();
        // Held back as the server holds its answer (slept, as it sleeps).
        floor.observe(took);
        std::thread::sleep(floor.hold().saturating_sub(t.elapsed()));
        (took, t.elapsed(), answer)
    };
    let mut matched = Vec::with_capacity(inquiries);
    let mut missed = Vec::with_capacity(inquiries);
    let mut answered_match = Vec::with_capacity(inquiries);
    let mut answered_miss = Vec::with_capacity(inquiries);
    for i in 0..inquiries {
        let (d, seen, a) = ask(&mut conn, i, source);
        anyhow::ensure!(
            matches!(
                a,
                Ok(Answer::Matched {
                    newly_copied: 2,
                    ..
                })
            ),
            "inquiry {i} did not match: {a:?}"
        );
        matched.push(d);
        answered_match.push(seen);
        let (d, seen, a) = ask(&mut conn, inquiries + i, elsewhere);
        anyhow::ensure!(matches!(a, Ok(Answer::NoMatch)), "inquiry {i}: {a:?}");
        missed.push(d);
        answered_miss.push(seen);
    }
    let answered: Vec<Duration> = answered_match
        .iter()
        .chain(&answered_miss)
        .copied()
        .collect();

    // The bulk inquiry over every mover.
    let bulk_file = work.join("movers.csv");
    {
        use std::io::Write as _;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&bulk_file)?);
        writeln!(
            w,
            "宛名番号,個人番号,転出元市区町村コード,本人同意,本人確認書類"
        )?;
        for i in 0..movers {
            writeln!(
                w,
                "B{i:09},{},{source},1,個人番号カード",
                String::from_utf8_lossy(&number(i).expose_digits())
            )?;
        }
        w.flush()?;
    }
    let state = super::bench_state(&db, &master, audit.clone(), &work)?;
    let open =
        || std::fs::File::open(&bulk_file).map(|f| Box::new(f) as Box<dyn std::io::Read + Send>);
    let progress = crate::flows::imports::Progress::default();
    let start = Instant::now();
    let outcome = crate::flows::transfer_bulk::run(
        &mut conn,
        &state,
        &asking_p,
        crate::flows::transfer_bulk::Job {
            id: "bench",
            actor: &actor,
            purpose: InquiryPurpose::TicketIssuance,
            keep_alive: &|_| Ok(()),
        },
        &open,
        crate::flows::imports::FileEncoding::Auto,
        crate::flows::imports::Limits::default(),
        &progress,
    )
    .map_err(|e| anyhow::anyhow!("bulk inquiry: {e}"))?;
    let bulk_secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        outcome.matched as usize == movers,
        "bulk matched {} of {movers}",
        outcome.matched
    );
    let backend = db.backend();
    drop(conn);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "bench transfer: {residents} residents in the municipality asked, {movers} movers (2 doses each), on {backend}"
    );
    let _ = writeln!(out, "  {}", machine.line());
    let _ = writeln!(
        out,
        "  set-up (import, doses, statistics): {setup_secs:.1} s"
    );
    let _ = writeln!(
        out,
        "  one resident by blind index (baseline):      {}",
        summary(base.clone())
    );
    let _ = writeln!(
        out,
        "  window inquiry, match (2 doses copied):      {}",
        summary(matched.clone())
    );
    let _ = writeln!(
        out,
        "  window inquiry, wrong municipality (no match): {}",
        summary(missed.clone())
    );
    let _ = writeln!(
        out,
        "  match vs miss, working time: {}",
        compare(&matched, &missed)
    );
    let _ = writeln!(
        out,
        "  match vs miss, as answered:  {}",
        compare(&answered_match, &answered_miss)
    );
    let mut all = answered.clone();
    all.sort();
    let p99 = percentile(&all, 0.99);
    let mut work_all: Vec<Duration> = matched.iter().chain(&missed).copied().collect();
    work_all.sort();
    let _ = writeln!(
        out,
        "  answers as a client sees them (floor {:.1} ms at the end): {}  (target p99 < 20 ms -> {}); flow p99 / baseline p99: {:.1}x",
        floor.current().as_secs_f64() * 1000.0,
        summary(answered),
        if p99 < 20.0 { "met" } else { "NOT met" },
        percentile(&work_all, 0.99)
            / percentile(
                &{
                    let mut b = base;
                    b.sort();
                    b
                },
                0.99
            )
            .max(1e-6)
    );
    let rate = movers as f64 / bulk_secs;
    let _ = writeln!(
        out,
        "  resident import of {movers} lines (baseline): {:>8.0} lines/s  ({import_secs:.2} s)",
        movers as f64 / import_secs
    );
    let _ = writeln!(
        out,
        "  bulk inquiry of {movers} lines:               {rate:>8.0} lines/s  ({bulk_secs:.2} s, {} matched, {} doses; {:.2}x the import's rate; target >= 5000 lines/s -> {})",
        outcome.matched,
        outcome.doses,
        rate / (movers as f64 / import_secs),
        if rate >= 5000.0 { "met" } else { "NOT met" }
    );
    Ok(out)
}

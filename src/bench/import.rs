//! `vrs bench import`: the product's import of a registry file against the
//! database's fastest plain insert of the same rows, and the re-imports of a
//! month's changes; the files and the job runner other benchmarks share.

use super::*;

/// Writes a registry file of `rows` made-up residents, with ticket numbers,
/// as a municipality's system would export it.
pub fn write_resident_file(path: &std::path::Path, rows: usize) -> std::io::Result<u64> {
    write_resident_file_with(path, rows, |_| false)
}

/// The same file, the residents for which `moved` holds with a new address
/// (a month's changes, for a re-import).
pub fn write_resident_file_with(
    path: &std::path::Path,
    rows: usize,
    moved: impl Fn(usize) -> bool,
) -> std::io::Result<u64> {
    use std::io::Write as _;
    let code = MunicipalityCode::parse("082040").expect("valid");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(
        "宛名番号,個人番号,氏名,氏名カナ,生年月日,性別,住所,接種券番号,券種,回数\r\n".as_bytes(),
    )?;
    for i in 0..rows {
        let p = demo_resident(code, i % 1000);
        let number = crate::domain::MyNumber::from_body(10_000_000_000 + i as u64);
        writeln!(
            w,
            "B{:09},{},{},{},{},{},{},{:010},1,1\r",
            i,
            String::from_utf8_lossy(&number.expose_digits()),
            p.name_kanji.as_str(),
            p.name_kana.as_str(),
            p.birth_date.date(),
            p.sex.code(),
            p.address.unwrap_or_default() + if moved(i) { "（転居）" } else { "" },
            1_000_000_000 + i as u64,
        )?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The blind-index values the product will store for each line of `path`,
/// one line of hex per line, computed beforehand (untimed) with the
/// product's own keys, so the baseline can insert rows with exactly the
/// product's index keys.
fn write_index_file(
    scope: &crate::tenancy::Scope<'_>,
    path: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let today = crate::clock::now().date();
    let mut reader = csv::Reader::from_path(path)?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    for rec in reader.records() {
        let rec = rec?;
        let new = crate::flows::residents::NewResident {
            addressee_number: crate::domain::AddresseeNumber::parse(&rec[0])?,
            my_number: Some(crate::domain::MyNumber::parse(&rec[1])?),
            name_kanji: crate::domain::PersonName::parse(&rec[2])?,
            name_kana: crate::domain::KanaName::parse(&rec[3])?,
            birth_date: crate::domain::BirthDate::parse(&rec[4], today)?,
            sex: crate::domain::Sex::parse(&rec[5])?,
            address: Some(rec[6].to_string()),
        };
        let digits = new.my_number.as_ref().map(|n| scope.my_number_index(n));
        writeln!(
            w,
            "{},{},{},{}",
            hex::encode(scope.addressee_index(new.addressee_number.as_str())),
            hex::encode(digits.unwrap_or_default()),
            hex::encode(scope.birth_bucket(new.birth_date.date())),
            hex::encode(crate::flows::residents::content_mac(scope, &new)),
        )?;
    }
    w.flush()?;
    Ok(())
}

/// The fastest plain way the database offers to store the same rows the
/// import stores (a resident and a ticket per line), unsealed: the file's
/// cells go straight into the same columns, in one transaction, as COPY on
/// PostgreSQL (row-level security lifted for the table owner) or fixed-size
/// multi-row INSERTs on SQLite. With `keys`, the index columns get the
/// product's blind-index values (read from that file, hex); without, the
/// clear cells themselves.
fn plain_insert(
    scratch: &Scratch,
    path: &std::path::Path,
    keys: Option<&std::path::Path>,
) -> anyhow::Result<(u64, f64)> {
    use crate::db::DbConn;
    use crate::db::models::residents::ResidentRow;
    use crate::db::models::tickets::TicketRow;
    use crate::db::schema::{residents, tickets};
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    let code = "131016";
    let mut conn = scratch.pool.get()?;
    crate::flows::municipalities::enable(
        &mut conn,
        &crate::crypto::MasterKey::generate(crate::crypto::MasterKeySource::Env("VRS_BENCH")),
        MunicipalityCode::parse(code)?,
    )?;
    if let DbConn::Postgresql(c) = &mut *conn {
        c.batch_execute(
            "ALTER TABLE residents NO FORCE ROW LEVEL SECURITY; \
             ALTER TABLE tickets NO FORCE ROW LEVEL SECURITY;",
        )?;
    }
    let start = Instant::now();
    let at = crate::clock::now();
    let lines = crate::db::write_transaction(&mut conn, |conn| {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(
            std::io::BufReader::with_capacity(
                256 * 1024,
                std::fs::File::open(path)
                    .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?,
            ),
        );
        let mut rec = csv::ByteRecord::new();
        let mut key_lines = match keys {
            Some(k) => Some(std::io::BufRead::lines(std::io::BufReader::new(
                std::fs::File::open(k)
                    .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?,
            ))),
            None => None,
        };
        let mut people = Vec::with_capacity(5000);
        let mut tix = Vec::with_capacity(5000);
        let mut lines = 0u64;
        let flush = |conn: &mut DbConn, people: &mut Vec<ResidentRow>, tix: &mut Vec<TicketRow>| {
            match conn {
                DbConn::Postgresql(c) => {
                    diesel::copy_from(residents::table)
                        .from_insertable(&*people)
                        .execute(c)?;
                    diesel::copy_from(tickets::table)
                        .from_insertable(&*tix)
                        .execute(c)?;
                }
                DbConn::Sqlite(c) => {
                    for chunk in people.chunks(400) {
                        diesel::insert_into(residents::table)
                            .values(chunk)
                            .execute(c)?;
                    }
                    for chunk in tix.chunks(1000) {
                        diesel::insert_into(tickets::table)
                            .values(chunk)
                            .execute(c)?;
                    }
                }
            }
            people.clear();
            tix.clear();
            Ok::<_, diesel::result::Error>(())
        };
        while reader
            .read_byte_record(&mut rec)
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?
        {
            let cell = |i: usize| rec.get(i).unwrap_or(b"").to_vec();
            let id = crate::domain::new_record_id();
            // [addressee, my number, birth bucket, content]: the product's
            // values, or the clear cells.
            let idx: [Vec<u8>; 4] = match key_lines.as_mut().and_then(|l| l.next()) {
                Some(line) => {
                    let line =
                        line.map_err(|e| diesel::result::Error::QueryBuilderError(e.into()))?;
                    let mut parts = line.split(',').map(|h| hex::decode(h).unwrap_or_default());
                    [(); 4].map(|_| parts.next().unwrap_or_default())
                }
                None => [cell(0), cell(1), cell(4), rec.as_slice().to_vec()],
            };
            let [a_idx, n_idx, bucket, mac] = idx;
            people.push(ResidentRow {
                municipality_code: code.into(),
                id: id.clone(),
                addressee_index: a_idx,
                my_number_index: Some(n_idx),
                addressee_number_sealed: cell(0),
                my_number_sealed: Some(cell(1)),
                name_kanji_sealed: cell(2),
                name_kana_sealed: cell(3),
                birth_date_sealed: cell(4),
                sex_sealed: cell(5),
                address_sealed: Some(cell(6)),
                moved_out_on: None,
                deceased_on: None,
                address_protected: false,
                created_at: at,
                updated_at: at,
                content_mac: Some(mac),
                birth_bucket: Some(bucket),
                staged_seq: None,
                protected_from: None,
                protected_until: None,
                protection_review: None,
            });
            tix.push(active_ticket(
                code,
                String::from_utf8_lossy(&cell(7)).into_owned(),
                id,
                1,
                at,
            ));
            lines += 1;
            // The same batch size as the import's.
            if people.len() == 5000 {
                flush(conn, &mut people, &mut tix)?;
            }
        }
        flush(conn, &mut people, &mut tix)?;
        Ok::<_, diesel::result::Error>(lines)
    })?;
    Ok((lines, start.elapsed().as_secs_f64()))
}

/// The product's import of a file on disk, without size limits, as a job
/// of the municipality (journal line, lease, operation-log line), run on
/// this thread. The file is spooled first, as an upload is, untimed.
pub(crate) struct BenchImport {
    state: crate::flows::AppState,
}

impl BenchImport {
    pub(crate) fn new(
        db: &Scratch,
        master: &std::sync::Arc<crate::crypto::MasterKey>,
        work: &std::path::Path,
    ) -> anyhow::Result<BenchImport> {
        let mut conn = db.pool.get()?;
        let audit = crate::audit::AuditKey::load_or_create(&mut conn, master)?;
        Ok(BenchImport {
            state: bench_state(db, master, audit, work)?,
        })
    }

    /// Imports with the state of a running bench server.
    pub(crate) fn from_state(state: crate::flows::AppState) -> BenchImport {
        BenchImport { state }
    }

    /// Spools `file` (untimed); returns the request, ready to run.
    pub(crate) fn request(
        &self,
        code: MunicipalityCode,
        file: &std::path::Path,
    ) -> anyhow::Result<crate::flows::import_jobs::Request> {
        use std::io::Read;
        let mut w = crate::crypto::spool::SpoolWriter::create(&self.state.spool_dir, u64::MAX)?;
        let mut f = std::fs::File::open(file)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n])?;
        }
        Ok(crate::flows::import_jobs::Request {
            kind: crate::flows::import_jobs::JobKind::Residents,
            municipality: code,
            actor: crate::audit::Actor::account("bench", "bench", "127.0.0.1"),
            file_name: "residents.csv".into(),
            encoding: crate::flows::imports::FileEncoding::Auto,
            limits: crate::flows::imports::Limits {
                max_bytes: u64::MAX,
                max_lines: u64::MAX,
            },
            spool: w.finish()?,
            numbers: Ok(()),
        })
    }

    /// Runs a spooled import to its end; fails unless it succeeded.
    pub(crate) fn run(
        &self,
        req: crate::flows::import_jobs::Request,
    ) -> anyhow::Result<crate::flows::import_jobs::Job> {
        let job = crate::flows::import_jobs::run_now(&self.state, req)?;
        anyhow::ensure!(
            job.status == crate::flows::import_jobs::SUCCEEDED,
            "import {}: {} {}",
            job.status,
            job.message.clone().unwrap_or_default(),
            job.errors
                .first()
                .map(|e| e.message_en.clone())
                .unwrap_or_default()
        );
        Ok(job)
    }
}

/// Imports a file on disk into a municipality (see `BenchImport`).
pub(crate) fn import_file(
    db: &Scratch,
    master: &std::sync::Arc<crate::crypto::MasterKey>,
    code: MunicipalityCode,
    file: &std::path::Path,
) -> anyhow::Result<crate::flows::import_jobs::Job> {
    let work = file.parent().unwrap_or(std::path::Path::new("."));
    let b = BenchImport::new(db, master, work)?;
    let req = b.request(code, file)?;
    b.run(req)
}

/// `vrs bench import`: a file of `rows` lines imported by the product (parse,
/// validate, seal, match, issue tickets, write) against the plain insert of
/// the same rows, each into a fresh database of the same backend.
pub fn import(rows: usize, postgres_url: Option<&str>) -> anyhow::Result<String> {
    let machine = Machine::now();
    let work = std::env::temp_dir().join(format!("vrs-bench-file-{}", uuid::Uuid::new_v4()));
    crate::private_dir::create(&work)?;
    let file = work.join("residents.csv");
    let bytes = write_resident_file(&file, rows)?;

    // The product's database and keys first: the baseline borrows its
    // blind-index values.
    let db = Scratch::new(postgres_url)?;
    let master = std::sync::Arc::new(crate::crypto::MasterKey::generate(
        crate::crypto::MasterKeySource::Env("VRS_BENCH"),
    ));
    let code = MunicipalityCode::parse("082040")?;
    let mut conn = db.pool.get()?;
    crate::flows::municipalities::enable(&mut conn, &master, code)?;
    let partition = crate::tenancy::Partition::open(&mut conn, &master, code)?;
    let keys = work.join("keys.txt");
    write_index_file(&partition.sealing_scope(), &file, &keys)?;

    reset_peak_rss();
    let base_db = Scratch::new(postgres_url)?;
    let (base_lines, base_secs) = plain_insert(&base_db, &file, Some(&keys))?;
    let base_peak = peak_rss_mib();
    let backend = base_db.backend();
    drop(base_db);
    let clear_db = Scratch::new(postgres_url)?;
    let (_, clear_secs) = plain_insert(&clear_db, &file, None)?;
    drop(clear_db);

    drop(conn);
    let job = BenchImport::new(&db, &master, &work)?;
    let req = job.request(code, &file)?;
    reset_peak_rss();
    let start = Instant::now();
    let outcome = job.run(req)?;
    let secs = start.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    let more = reimports(&db, &master, &work, rows, code)?;
    drop(db);
    let _ = std::fs::remove_dir_all(&work);

    anyhow::ensure!(outcome.inserted as usize == rows && base_lines as usize == rows);
    let rate = rows as f64 / secs;
    let base_rate = rows as f64 / base_secs;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bench import: {rows} lines ({:.1} MiB, UTF-8) on {backend}",
        bytes as f64 / (1024.0 * 1024.0)
    );
    let _ = writeln!(out, "  {}", machine.line());
    let _ = writeln!(
        out,
        "  plain insert, unsealed, the product's index keys (baseline): {base_rate:>9.0} lines/s  ({base_secs:.2} s, peak RSS {base_peak:.0} MiB)"
    );
    let _ = writeln!(
        out,
        "  plain insert, unsealed, clear cells as index keys:           {:>9.0} lines/s  ({clear_secs:.2} s)",
        rows as f64 / clear_secs
    );
    let _ = writeln!(
        out,
        "  product import (parse, validate, seal, match, issue tickets): {rate:>9.0} lines/s  ({secs:.2} s, peak RSS {peak:.0} MiB)"
    );
    let _ = writeln!(
        out,
        "  ratio product/baseline: {:.2}  (target >= 0.80 -> {}); product/clear-key insert: {:.2}",
        rate / base_rate,
        if rate / base_rate >= 0.8 {
            "met"
        } else {
            "NOT met"
        },
        clear_secs / secs
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| import into a municipality that already holds residents | lines | seconds | lines/s | ratio to baseline |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (name, lines, secs) in &more.runs {
        let _ = writeln!(
            out,
            "| {name} | {lines} | {secs:.2} | {:.0} | {:.2} |",
            *lines as f64 / secs,
            (*lines as f64 / secs) / base_rate
        );
    }
    let _ = writeln!(
        out,
        "  re-import time (to the end of the job, moving the changed attributes into place included), {} lines against {}: {:.1}x for 10x the lines",
        rows,
        rows / 10,
        more.growth,
    );
    let reimport_ratio = more
        .runs
        .first()
        .map(|(_, l, s)| (*l as f64 / s) / base_rate)
        .unwrap_or(0.0);
    let _ = writeln!(
        out,
        "  target: re-import >= 0.50 of the plain insert -> {} ({reimport_ratio:.2}); growth from {} to {} lines linear (<= 12x) -> {}",
        if reimport_ratio >= 0.5 {
            "met"
        } else {
            "NOT met"
        },
        rows / 10,
        rows,
        if more.growth <= 12.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(out)
}

/// The re-import cases of `bench import`.
struct Reimports {
    /// (case, lines, seconds).
    runs: Vec<(String, usize, f64)>,
    /// Time of the full re-import over the tenth-size one.
    growth: f64,
}

/// Re-imports of a file with half its residents changed, into a
/// municipality holding the file already (`code`, which the first import
/// filled, and a tenth-size one), and the first big file after a 40-line
/// pilot import (a planner whose statistics say the table is tiny).
fn reimports(
    db: &Scratch,
    master: &std::sync::Arc<crate::crypto::MasterKey>,
    work: &std::path::Path,
    rows: usize,
    code: MunicipalityCode,
) -> anyhow::Result<Reimports> {
    let job = BenchImport::new(db, master, work)?;
    let changed = work.join("residents-changed.csv");
    write_resident_file_with(&changed, rows, |i| i % 2 == 0)?;
    let small = work.join("residents-small.csv");
    write_resident_file(&small, rows / 10)?;
    let small_changed = work.join("residents-small-changed.csv");
    write_resident_file_with(&small_changed, rows / 10, |i| i % 2 == 0)?;
    let pilot = work.join("residents-pilot.csv");
    write_resident_file(&pilot, 40)?;
    let full = work.join("residents.csv");
    let (tenth, piloted) = (
        MunicipalityCode::parse("131016")?,
        MunicipalityCode::parse("012025")?,
    );
    let mut conn = db.pool.get()?;
    for c in [tenth, piloted] {
        crate::flows::municipalities::enable(&mut conn, master, c)?;
    }
    drop(conn);
    let timed = |code, file: &std::path::Path| -> anyhow::Result<f64> {
        let req = job.request(code, file)?;
        let start = Instant::now();
        job.run(req)?;
        Ok(start.elapsed().as_secs_f64())
    };
    // Timed to the end of the job's work, which includes moving the changed
    // attributes into place after the file became visible.
    let full_secs = timed(code, &changed)?;
    timed(tenth, &small)?;
    let tenth_secs = timed(tenth, &small_changed)?;
    timed(piloted, &pilot)?;
    let piloted_secs = timed(piloted, &full)?;
    Ok(Reimports {
        runs: vec![
            (
                format!("{rows} lines, half changed, into {rows} held"),
                rows,
                full_secs,
            ),
            (
                format!("{} lines, half changed, into {} held", rows / 10, rows / 10),
                rows / 10,
                tenth_secs,
            ),
            (
                format!("{rows} lines after a 40-line pilot import"),
                rows,
                piloted_secs,
            ),
        ],
        growth: full_secs / tenth_secs,
    })
}

//! `vrs bench daily`: a municipality's daily operations — the registry's
//! change file and a clinics' dose batch of the same number of lines, each
//! against the resident import of that many lines in the same run — and
//! the rendering of reminder notices.

use super::*;
use crate::flows::import_jobs::{self, JobKind, Request};

/// The jobs of a bench run, spooled from files on disk.
struct Jobs {
    state: crate::flows::AppState,
    code: MunicipalityCode,
}

impl Jobs {
    /// Spools `text` (untimed) and runs it as a job of `kind`; returns the
    /// seconds it took and the job as it ended.
    fn run(
        &self,
        kind: JobKind,
        file: &std::path::Path,
    ) -> anyhow::Result<(f64, import_jobs::Job)> {
        let b = import::BenchImport::from_state(self.state.clone());
        let mut req: Request = b.request(self.code, file)?;
        req.kind = kind;
        let start = Instant::now();
        let job = b.run(req)?;
        Ok((start.elapsed().as_secs_f64(), job))
    }
}

/// The change file: for the residents of the resident file, a mix of the
/// registry's changes — address changes, name changes, move-outs, deaths —
/// and arrivals of new people.
fn write_change_file(path: &std::path::Path, rows: usize) -> std::io::Result<()> {
    use std::io::Write as _;
    let day = crate::clock::today_in_japan() - chrono::Duration::days(1);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all("宛名番号,異動事由,異動日,氏名,氏名カナ,生年月日,性別,住所\r\n".as_bytes())?;
    for i in 0..rows {
        let line = match i % 10 {
            0..=3 => format!("B{i:09},転居,{day},,,,,古河市新町{}番地\r\n", i % 97),
            4 | 5 => format!("B{i:09},氏名変更,{day},古河　改{},,,,\r\n", i % 13),
            6 | 7 => format!("B{i:09},転出,{day},,,,,\r\n"),
            8 => format!("B{i:09},死亡,{day},,,,,\r\n"),
            _ => format!(
                "N{i:09},転入,{day},古河　新{},コガ　シン,1980-01-01,2,古河市中央町1\r\n",
                i % 13
            ),
        };
        w.write_all(line.as_bytes())?;
    }
    w.flush()
}

/// The dose batch: one dose for each resident of the resident file, on
/// the tickets the file gave them, at the bench's clinic.
fn write_dose_file(path: &std::path::Path, rows: usize, site: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let day = crate::clock::today_in_japan() - chrono::Duration::days(2);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all("接種券,接種日,製品コード,ロット番号,医療機関,回数\r\n".as_bytes())?;
    for i in 0..rows {
        writeln!(
            w,
            "{:010},{day},PFZ_JN1_12P,FA{:04},{site},1\r",
            1_000_000_000 + i as u64,
            1000 + i % 5
        )?;
    }
    w.flush()
}

/// `vrs bench daily`.
pub fn daily(rows: usize, notices: usize, postgres_url: Option<&str>) -> anyhow::Result<String> {
    let machine = Machine::now();
    let work = std::env::temp_dir().join(format!("vrs-bench-daily-{}", uuid::Uuid::new_v4()));
    crate::private_dir::create(&work)?;
    let master = std::sync::Arc::new(crate::crypto::MasterKey::generate(
        crate::crypto::MasterKeySource::Env("VRS_BENCH"),
    ));
    let code = MunicipalityCode::parse("082040")?;
    let residents = work.join("residents.csv");
    write_resident_file(&residents, rows)?;
    let changes = work.join("changes.csv");
    write_change_file(&changes, rows)?;
    let site = "古河市ベンチ診療所";
    let doses = work.join("doses.csv");
    write_dose_file(&doses, rows, site)?;

    // Two municipalities' databases alike: the baseline's import and the
    // product's daily work each start from an empty partition.
    let measure = |db: &Scratch| -> anyhow::Result<Jobs> {
        let mut conn = db.pool.get()?;
        crate::flows::vaccines::seed(&mut conn)?;
        crate::flows::municipalities::enable(&mut conn, &master, code)?;
        let audit = crate::audit::AuditKey::load_or_create(&mut conn, &master)?;
        for n in 0..5 {
            crate::db::models::vaccines::LotRow {
                product_code: "PFZ_JN1_12P".into(),
                lot_number: format!("FA{:04}", 1000 + n),
                expires_on: None,
                created_by: None,
                created_at: crate::clock::now(),
            }
            .insert(&mut conn)?;
        }
        let actor = crate::audit::Actor::account("bench", "bench", "127.0.0.1");
        crate::flows::sites::register(
            &mut conn,
            &audit,
            &actor,
            code,
            &crate::flows::sites::SiteName::parse(site)?,
            crate::flows::sites::SiteKind::Clinic,
        )?;
        Ok(Jobs {
            state: bench_state(db, &master, audit, &work)?,
            code,
        })
    };
    let db = Scratch::new(postgres_url)?;
    let backend = db.backend();
    let jobs = measure(&db)?;
    let (import_secs, imported) = jobs.run(JobKind::Residents, &residents)?;
    anyhow::ensure!(
        imported.inserted as usize == rows,
        "the import inserted {}",
        imported.inserted
    );
    // The doses first (each on a current resident), then the changes.
    let (dose_secs, dosed) = jobs.run(JobKind::Doses, &doses)?;
    let (change_secs, changed) = jobs.run(JobKind::Changes, &changes)?;
    anyhow::ensure!(changed.lines_seen as usize == rows && dosed.lines_seen as usize == rows);

    // Notices: the residents due their second dose, each given a letter;
    // then `notices` of them rendered as the print pages render them.
    let query = crate::flows::due::DueQuery {
        dose: 2,
        from: crate::clock::today_in_japan(),
        to: crate::clock::today_in_japan() + chrono::Duration::days(60),
        include_ended: false,
        include_protected: false,
    };
    let params = work.join("notices.json");
    std::fs::write(&params, serde_json::to_vec(&query)?)?;
    let (letters_secs, letters) = jobs.run(JobKind::Notices, &params)?;
    let wanted = notices.min(letters.lines_seen as usize);
    let render_start = Instant::now();
    let rendered = crate::web::render_notice_pages(&jobs.state, code, &letters.id, wanted)?;
    let render_secs = render_start.elapsed().as_secs_f64();
    drop(jobs);
    drop(db);
    let _ = std::fs::remove_dir_all(&work);

    let rate = |secs: f64| rows as f64 / secs;
    let base = rate(import_secs);
    let mut out = String::new();
    let _ = writeln!(out, "bench daily: {rows} lines each on {backend}");
    let _ = writeln!(out, "  {}", machine.line());
    let _ = writeln!(
        out,
        "  resident import (baseline):          {:>9.0} lines/s  ({import_secs:.2} s)",
        base
    );
    let _ = writeln!(
        out,
        "  change file (異動), 40% 転居, 20% 氏名変更, 20% 転出, 10% 死亡, 10% 転入: {:>9.0} lines/s  ({change_secs:.2} s)  ratio {:.2} (target >= 0.50 -> {})",
        rate(change_secs),
        rate(change_secs) / base,
        if rate(change_secs) / base >= 0.5 {
            "met"
        } else {
            "NOT met"
        }
    );
    let _ = writeln!(
        out,
        "  dose batch (予診票), one dose per ticket: {:>9.0} lines/s  ({dose_secs:.2} s)  ratio {:.2} (target >= 0.50 -> {})",
        rate(dose_secs),
        rate(dose_secs) / base,
        if rate(dose_secs) / base >= 0.5 {
            "met"
        } else {
            "NOT met"
        }
    );
    let verdict = if rendered >= 10_000 {
        if render_secs < 60.0 { "met" } else { "NOT met" }.to_string()
    } else {
        format!(
            "not measured: only {rendered} letters; 10,000 at this rate would take {:.1} s",
            render_secs * 10_000.0 / (rendered.max(1) as f64)
        )
    };
    let _ = writeln!(
        out,
        "  notices: {} letters made ({letters_secs:.2} s); {rendered} rendered as print pages in {render_secs:.2} s (target: 10,000 in under 60 s -> {verdict})",
        letters.lines_seen,
    );
    Ok(out)
}

//! `vrs bench export`: the ledger CSV against reading the same rows.

use super::*;

/// `vrs bench export`: the ledger CSV of a municipality with `rows` doses
/// (four per resident), streamed to a sink that only counts bytes, against
/// reading the same rows with the same query and doing nothing with them.
pub fn export(rows: usize, postgres_url: Option<&str>) -> anyhow::Result<String> {
    let machine = Machine::now();
    use crate::db::models::doses::DoseRow;
    use crate::db::models::residents::ResidentRow;
    use crate::flows::exports::{self, CsvEncoding};
    let rows = rows.max(4);
    let db = Scratch::new(postgres_url)?;
    let master = std::sync::Arc::new(crate::crypto::MasterKey::generate(
        crate::crypto::MasterKeySource::Env("VRS_BENCH"),
    ));
    let code = MunicipalityCode::parse("082040")?;
    let mut conn = db.pool.get()?;
    crate::flows::municipalities::enable(&mut conn, &master, code)?;
    let partition = crate::tenancy::Partition::open(&mut conn, &master, code)?;

    // The residents, through the import; then their doses.
    let work = std::env::temp_dir().join(format!("vrs-bench-file-{}", uuid::Uuid::new_v4()));
    crate::private_dir::create(&work)?;
    let file = work.join("residents.csv");
    write_resident_file(&file, rows.div_ceil(4))?;
    import_file(&db, &master, code, &file)?;
    let _ = std::fs::remove_dir_all(&work);
    let products = [
        "PFZ_ORIG_12P",
        "MOD_ORIG",
        "PFZ_BIV_BA45_12P",
        "PFZ_XBB_12P",
    ];
    partition.run(&mut conn, |scope, conn| {
        let mut after = String::new();
        let mut made = 0usize;
        let site = Some(code);
        while made < rows {
            let page = ResidentRow::page_of_municipality(scope, conn, &after, 2500)?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            let mut doses = Vec::with_capacity(page.len() * 4);
            for r in &page {
                for (k, product) in products.iter().enumerate() {
                    if made == rows {
                        break;
                    }
                    made += 1;
                    doses.push(crate::flows::doses::NewDose {
                        resident_id: r.id.clone(),
                        dose_number: crate::domain::DoseNumber::new(k as u8 + 1)
                            .unwrap_or_default(),
                        administered_on: chrono::NaiveDate::from_ymd_opt(2021, 6, 1)
                            .unwrap_or_default()
                            + chrono::Duration::days(120 * k as i64),
                        ticket_number: Some(format!("{:010}", 1_000_000_000 + made)),
                        site_municipality: site,
                        site_name: Some("古河市中央公民館".into()),
                        product_code: (*product).into(),
                        lot_number: Some(format!("FA{:04}", made % 10_000)),
                        recorded_by: None,
                        age_band: None,
                        sex: None,
                    });
                }
            }
            crate::flows::doses::append(scope, conn, &doses)?;
        }
        Ok::<_, crate::flows::residents::ResidentError>(())
    })?;

    // As after any bulk load: fresh statistics, and one untimed pass so the
    // baseline is not the run that warms the caches.
    crate::db::refresh_statistics(&mut conn)?;
    if let crate::db::DbConn::Postgresql(c) = &mut *conn {
        // What autovacuum would soon do after a million inserts; done now
        // so it does not run on the other core in the middle of a timing.
        use diesel::connection::SimpleConnection;
        c.batch_execute("VACUUM (ANALYZE) residents, tickets, doses")?;
    }
    let read_all = |conn: &mut crate::db::DbConn| {
        partition.read(conn, |scope, conn| {
            let mut after = String::new();
            let mut n = 0usize;
            loop {
                let page = DoseRow::export_page(scope, conn, &after, 10_000)?;
                let Some(last) = page.last() else { break };
                after = last.id.clone();
                n += black_box(page).len();
            }
            Ok::<_, crate::db::DbError>(n)
        })
    };
    read_all(&mut conn)?;
    // Baseline: the same query, pages of the same size, nothing done with rows.
    let start = Instant::now();
    let read = read_all(&mut conn)?;
    let base_secs = start.elapsed().as_secs_f64();

    let mut lines = Vec::new();
    for encoding in [CsvEncoding::Utf8Bom, CsvEncoding::ShiftJis] {
        reset_peak_rss();
        let mut bytes = 0usize;
        let start = Instant::now();
        let n = exports::stream_doses(&mut conn, &partition, encoding, |chunk| {
            bytes += black_box(chunk).len();
            true
        })?;
        let secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(n as usize == rows, "exported {n} of {rows}");
        lines.push((encoding, secs, bytes, peak_rss_mib()));
    }
    anyhow::ensure!(read == rows);
    let backend = db.backend();
    drop(conn);
    drop(db);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "bench export: {rows} doses ({} residents) on {backend}",
        rows.div_ceil(4)
    );
    let _ = writeln!(out, "  {}", machine.line());
    let _ = writeln!(
        out,
        "  same query, rows only (baseline): {:>9.0} rows/s  ({base_secs:.2} s)",
        rows as f64 / base_secs
    );
    for (encoding, secs, bytes, peak) in lines {
        let rate = rows as f64 / secs;
        let _ = writeln!(
            out,
            "  ledger CSV, {:<4}                 {rate:>9.0} rows/s  ({secs:.2} s, {:.0} MiB out, peak RSS {peak:.0} MiB, {:.2}x baseline time; target >= 200000 rows/s -> {})",
            encoding.code(),
            bytes as f64 / (1024.0 * 1024.0),
            secs / base_secs,
            if rate >= 200_000.0 { "met" } else { "NOT met" }
        );
    }
    Ok(out)
}

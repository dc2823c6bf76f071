//! `vrs bench statistics`: the national dashboard over a country's worth of
//! doses. The doses go into the doses table of 94 municipalities (two in
//! every prefecture) through the same inserts as the product's, so the
//! triggers keep the counts as they would in service; the dashboard's
//! queries are then timed. The baseline, measured in the same run, is the
//! same breakdowns counted straight from the doses table, one municipality
//! at a time, as a system without running counts would have to.

use super::Scratch;
use super::transfer::summary;
use crate::db::models::doses::DoseRow;
use crate::db::models::residents::ResidentRow;
use crate::domain::{MunicipalityCode, MunicipalityKind, Registry};
use crate::flows::statistics::{self as stats, Area, Period};
use chrono::NaiveDate;
use diesel::prelude::*;
use std::fmt::Write;
use std::time::{Duration, Instant};

const PRODUCTS: [&str; 6] = [
    "PFZ_ORIG_12P",
    "MOD_ORIG",
    "PFZ_BIV_BA45_12P",
    "PFZ_XBB_12P",
    "MOD_XBB_12P",
    "DS_XBB",
];

/// Two municipalities of every prefecture.
fn municipalities() -> Vec<MunicipalityCode> {
    let mut by_pref: std::collections::BTreeMap<String, Vec<MunicipalityCode>> = Default::default();
    for m in Registry::global()
        .all()
        .filter(|m| m.kind == MunicipalityKind::Municipality)
    {
        let v = by_pref
            .entry(m.code.prefecture_code().to_string())
            .or_default();
        if v.len() < 2 {
            v.push(m.code);
        }
    }
    by_pref.into_values().flatten().collect()
}

pub fn run(doses: usize, requests: usize, postgres_url: Option<&str>) -> anyhow::Result<String> {
    let machine = super::Machine::now();
    let doses = doses.max(10_000);
    let db = Scratch::new(postgres_url)?;
    let master =
        crate::crypto::MasterKey::generate(crate::crypto::MasterKeySource::Env("VRS_BENCH"));
    let mut conn = db.pool.get()?;
    let munis = municipalities();
    for code in &munis {
        crate::flows::municipalities::enable(&mut conn, &master, *code)?;
    }
    let per_muni = doses.div_ceil(munis.len());
    let start_day = NaiveDate::from_ymd_opt(2021, 2, 17).unwrap_or_default();
    let days = 1140;
    let setup = Instant::now();
    let mut written = 0usize;
    for (m, code) in munis.iter().enumerate() {
        if written >= doses {
            break;
        }
        fill_doses(
            &mut conn,
            &master,
            *code,
            m,
            per_muni.min(doses - written),
            start_day,
            days,
        )?;
        written += per_muni.min(doses - written);
    }
    crate::db::refresh_statistics(&mut conn)?;
    let setup_secs = setup.elapsed().as_secs_f64();
    let cells: i64 = crate::db::schema::stat_daily::table
        .count()
        .get_result(&mut *conn)?;

    // The dashboard, as a national viewer first opens it, then a year of
    // one prefecture.
    let year = Period::months(
        NaiveDate::from_ymd_opt(2022, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2022, 12, 1).unwrap_or_default(),
    );
    let mut timed = |area: &Area, period: Period| -> anyhow::Result<(Vec<Duration>, i64)> {
        let mut d = Vec::with_capacity(requests);
        let mut total = 0;
        for _ in 0..requests {
            let t = Instant::now();
            total = stats::dashboard(&mut conn, area, period)?.total;
            d.push(t.elapsed());
        }
        Ok((d, total))
    };
    let (national, total) = timed(&Area::Nation, Period::all())?;
    let (tokyo, _) = timed(&Area::Prefecture("13".into()), year)?;
    anyhow::ensure!(
        total as usize == written,
        "the counts hold {total} doses of {written}"
    );

    // Baseline: the same breakdowns straight from the doses, municipality
    // by municipality (row-level security allows no other way).
    let base = Instant::now();
    let mut base_total = 0i64;
    for code in &munis {
        let partition = crate::tenancy::Partition::open(&mut conn, &master, *code)?;
        let (p, muni) = match &*conn {
            crate::db::DbConn::Postgresql(_) => ("$1", code.to_string()),
            crate::db::DbConn::Sqlite(_) => ("?", code.to_string()),
        };
        base_total += partition.read(&mut conn, |_, conn| {
            let mut sum = 0i64;
            for q in [
                "administered_on, dose_number",
                "product_code",
                "age_band",
                "sex",
            ] {
                let rows: Vec<(i64,)> = diesel::sql_query(format!(
                    "SELECT CAST(count(*) AS BIGINT) AS n FROM doses \
                     WHERE municipality_code = {p} AND status = 'valid' GROUP BY {q}"
                ))
                .bind::<diesel::sql_types::Text, _>(&muni)
                .load::<CountRow>(conn.db())?
                .into_iter()
                .map(|r| (r.n,))
                .collect();
                if q == "sex" {
                    sum += rows.iter().map(|r| r.0).sum::<i64>();
                }
            }
            Ok::<_, crate::db::DbError>(sum)
        })?;
    }
    let base_ms = base.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(base_total == total, "the recount found {base_total}");

    let mut national_sorted = national.clone();
    national_sorted.sort();
    let p99 = national_sorted
        .get(((national_sorted.len() as f64 - 1.0) * 0.99).round() as usize)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bench statistics: {written} doses in {} municipalities of 47 prefectures over {days} days, on {}",
        munis.len(),
        db.backend()
    );
    let _ = writeln!(out, "  {}", machine.line());
    let _ = writeln!(
        out,
        "  set-up (residents, doses through the counting triggers): {setup_secs:.1} s; {cells} daily cells"
    );
    let _ = writeln!(
        out,
        "  the same breakdowns counted from the doses (baseline): {base_ms:.0} ms"
    );
    let _ = writeln!(
        out,
        "  national dashboard, all time ({requests} requests): {}  (target p99 < 300 ms -> {}); {:.0}x faster than the baseline",
        summary(national),
        if p99 < 300.0 { "met" } else { "not met" },
        base_ms / p99.max(0.001)
    );
    let _ = writeln!(
        out,
        "  Tokyo, one year ({requests} requests): {}",
        summary(tokyo)
    );
    Ok(out)
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Residents (sealed fields as filler: the statistics never read them) and
/// `count` valid doses of one municipality, three per person, spread over
/// `days` days from `start_day`, through the product's inserts (so the
/// triggers count them). `m` makes the ids unique across municipalities.
pub(super) fn fill_doses(
    conn: &mut crate::db::DbConn,
    master: &crate::crypto::MasterKey,
    code: MunicipalityCode,
    m: usize,
    count: usize,
    start_day: NaiveDate,
    days: usize,
) -> anyhow::Result<()> {
    let people_per_muni = count.div_ceil(3);
    let partition = crate::tenancy::Partition::open(conn, master, code)?;
    partition.run(conn, |_scope, conn| {
        // Residents as stored rows (their sealed fields are filler: the
        // statistics never read them).
        let residents: Vec<ResidentRow> = (0..people_per_muni)
            .map(|i| ResidentRow {
                municipality_code: code.to_string(),
                id: format!("{m:03}-{i:08}"),
                addressee_index: format!("{m}-{i}").into_bytes(),
                addressee_number_sealed: vec![0; 8],
                name_kanji_sealed: vec![0; 8],
                name_kana_sealed: vec![0; 8],
                birth_date_sealed: vec![0; 8],
                sex_sealed: vec![0; 8],
                created_at: crate::clock::now(),
                updated_at: crate::clock::now(),
                ..ResidentRow::default()
            })
            .collect();
        for chunk in residents.chunks(20_000) {
            ResidentRow::insert_many(conn, chunk)?;
        }
        let mut batch = Vec::with_capacity(20_000);
        for i in 0..count {
            let person = i / 3;
            let n = (i % 3) as i32 + 1 + if person % 4 == 0 { 3 } else { 0 };
            let day = (person * 7 + n as usize * 97 + m * 13) % days;
            let on = start_day + chrono::Duration::days(day as i64);
            batch.push(DoseRow {
                municipality_code: code.to_string(),
                id: format!("{m:03}-{i:09}"),
                resident_id: format!("{m:03}-{person:08}"),
                dose_number: n,
                administered_on: on,
                recorded_at: crate::clock::now(),
                ticket_number: None,
                site_municipality_code: Some(code.to_string()),
                site_name: None,
                product_code: PRODUCTS[(day * PRODUCTS.len()) / days].to_string(),
                lot_number: None,
                origin: crate::db::models::doses::RECORDED.into(),
                origin_municipality_code: None,
                recorded_by: None,
                status: crate::db::models::doses::VALID.into(),
                site_id: None,
                idempotency_key: None,
                quality_flags: None,
                supersedes: None,
                age_band: Some(((person * 37) % 21 * 5) as i32),
                sex: Some(["1", "2"][person % 2].into()),
            });
            if batch.len() == 20_000 {
                DoseRow::insert_many(conn, &batch)?;
                batch.clear();
            }
        }
        DoseRow::insert_many(conn, &batch)?;
        Ok::<_, crate::db::DbError>(())
    })?;
    Ok(())
}

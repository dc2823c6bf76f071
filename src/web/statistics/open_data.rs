//! The open data anyone may download: dose counts by area, date, age band
//! and product as NDJSON and CSV, and the summaries by date and prefecture,
//! with small cells suppressed.

use super::*;

/// The open data's area: the whole country, or one prefecture; else the
/// name of the bad field.
pub(super) fn public_area(filter: &Filter) -> Result<Area, &'static str> {
    match filter.area.as_deref().map(str::trim) {
        None | Some("") | Some("all") => Ok(Area::Nation),
        Some(p) if prefectures().iter().any(|(c, _)| c == p) => Ok(Area::Prefecture(p.into())),
        Some(_) => Err("area"),
    }
}

/// A filter that cannot be read: the answer names the field, in both
/// languages (the page's form cannot send one; a typed URL can).
pub(super) fn bad_filter(field: &str) -> HttpResponse {
    let (ja, en) = match field {
        "area" => (
            "地域は all か都道府県コード2桁（例: 13）で指定してください",
            "must be all or a two-digit prefecture code (e.g. 13)",
        ),
        _ => (
            "年月はYYYY-MM（例: 2022-01）で指定してください",
            "must be a month as YYYY-MM (e.g. 2022-01)",
        ),
    };
    HttpResponse::BadRequest()
        .content_type("text/plain; charset=utf-8")
        .body(format!("{field}: {ja}\n{field}: {en}\n"))
}

/// The area and period of a download, or the name of a bad field.
pub(super) fn public_filter(filter: &Filter) -> Result<(Area, Period), &'static str> {
    Ok((public_area(filter)?, filter.period()?))
}

pub(super) fn download(body: String, media: &str, name: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(media)
        .insert_header(("access-control-allow-origin", "*"))
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

pub(super) async fn open_rows(
    state: &AppState,
    filter: &Filter,
) -> Result<Result<Vec<stats::OpenRow>, &'static str>, AppError> {
    let (area, period) = match public_filter(filter) {
        Ok(v) => v,
        Err(r) => return Ok(Err(r)),
    };
    let min = state.stats_min_cell;
    let rows = with_db(state, move |conn| {
        Ok(stats::open_rows(conn, &area, period, min)?)
    })
    .await?;
    Ok(Ok(rows))
}

/// Open data as the national system published it: one JSON object a line
/// with date, prefecture, gender, age, medical_worker, status and count.
/// VRS records no occupation, so medical_worker is null.
#[get("/statistics/open-data.ndjson")]
pub(super) async fn open_ndjson(
    state: web::Data<AppState>,
    q: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    let rows = match open_rows(&state, &q).await? {
        Ok(rows) => rows,
        Err(field) => return Ok(bad_filter(field)),
    };
    let mut body = String::new();
    for r in rows {
        let line = serde_json::json!({
            "date": r.date.to_string(),
            "prefecture": r.prefecture,
            "gender": r.gender(),
            "age": r.age_group,
            "medical_worker": null,
            "status": r.dose_number,
            "count": r.count,
        });
        let _ = writeln!(body, "{line}");
    }
    Ok(download(
        body,
        "application/x-ndjson",
        "vaccination-open-data.ndjson",
    ))
}

#[get("/statistics/open-data.csv")]
pub(super) async fn open_csv(
    state: web::Data<AppState>,
    q: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    let rows = match open_rows(&state, &q).await? {
        Ok(rows) => rows,
        Err(field) => return Ok(bad_filter(field)),
    };
    let mut body = String::from("date,prefecture,gender,age,medical_worker,status,count\r\n");
    for r in rows {
        let _ = write!(
            body,
            "{},{},{},{},,{},{}\r\n",
            r.date,
            r.prefecture,
            r.gender(),
            r.age_group,
            r.dose_number,
            r.count
        );
    }
    Ok(download(
        body,
        "text/csv; charset=utf-8",
        "vaccination-open-data.csv",
    ))
}

/// A summary table: one row per key, a column per dose number and the
/// total; cells under the minimum are left empty.
pub(super) fn summary_csv(first: &str, rows: &[(String, Vec<(i32, i64)>)], min: i64) -> String {
    let mut doses: Vec<i32> = rows
        .iter()
        .flat_map(|(_, v)| v.iter().map(|(d, _)| *d))
        .collect();
    doses.sort_unstable();
    doses.dedup();
    let mut out = String::from(first);
    for d in &doses {
        let _ = write!(out, ",dose_{d}");
    }
    out.push_str(",total\r\n");
    for (key, v) in rows {
        out.push_str(key);
        for d in &doses {
            let n: i64 = v.iter().filter(|(k, _)| k == d).map(|(_, n)| n).sum();
            match shown(n, min) {
                Some(n) => {
                    let _ = write!(out, ",{n}");
                }
                None => out.push(','),
            }
        }
        let total: i64 = v.iter().map(|(_, n)| n).sum();
        match shown(total, min) {
            Some(n) => {
                let _ = write!(out, ",{n}\r\n");
            }
            None => out.push_str(",\r\n"),
        }
    }
    out
}

#[get("/statistics/summary-by-date.csv")]
pub(super) async fn summary_by_date(
    state: web::Data<AppState>,
    q: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    let ((area, period), min) = match public_filter(&q) {
        Ok(v) => (v, state.stats_min_cell),
        Err(field) => return Ok(bad_filter(field)),
    };
    let d = with_db(&state, move |conn| {
        Ok(stats::dashboard(conn, &area, period)?)
    })
    .await?;
    let mut rows: Vec<(String, Vec<(i32, i64)>)> = Vec::new();
    for (day, dose, n) in d.by_day {
        let key = day.to_string();
        match rows.last_mut() {
            Some((k, v)) if *k == key => v.push((dose, n)),
            _ => rows.push((key, vec![(dose, n)])),
        }
    }
    Ok(download(
        summary_csv("date", &rows, min),
        "text/csv; charset=utf-8",
        "summary-by-date.csv",
    ))
}

#[get("/statistics/summary-by-prefecture.csv")]
pub(super) async fn summary_by_prefecture(
    state: web::Data<AppState>,
    q: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    let (period, min) = match q.period() {
        Ok(p) => (p, state.stats_min_cell),
        Err(field) => return Ok(bad_filter(field)),
    };
    let by_pref = with_db(&state, move |conn| {
        Ok(stats::by_prefecture_and_dose(conn, period)?)
    })
    .await?;
    let mut rows: Vec<(String, Vec<(i32, i64)>)> = Vec::new();
    for (pref, dose, n) in by_pref {
        match rows.last_mut() {
            Some((k, v)) if *k == pref => v.push((dose, n)),
            _ => rows.push((pref, vec![(dose, n)])),
        }
    }
    Ok(download(
        summary_csv("prefecture", &rows, min),
        "text/csv; charset=utf-8",
        "summary-by-prefecture.csv",
    ))
}

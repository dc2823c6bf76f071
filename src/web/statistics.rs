//! Flow 7's pages: the dashboard of national and prefectural viewers
//! (charts and tables by day, dose number, product, age band, sex and
//! area), and the open data anyone may download. Every number comes from
//! the running counts (`flows::statistics`); cells under the configured
//! minimum are suppressed wherever they are shown or published.

mod open_data;
use super::charts;
use super::{AppError, Authed, Ctx, Nav, render, with_db};
use crate::domain::{MunicipalityCode, MunicipalityKind, Registry, Role, VaccineCatalog};
use crate::flows::AppState;
use crate::flows::statistics::{self as stats, Area, Dashboard, Period};
use crate::i18n::T;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;
use std::fmt::Write;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(dashboard)
        .service(open_data::open_ndjson)
        .service(open_data::open_csv)
        .service(open_data::summary_by_date)
        .service(open_data::summary_by_prefecture)
        .service(municipal);
}

/// The 47 prefectures: two-digit code and name (from the registry, once).
pub fn prefectures() -> &'static [(String, String)] {
    static LIST: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        Registry::global()
            .all()
            .filter(|m| m.kind == MunicipalityKind::Prefecture)
            .map(|m| (m.code.prefecture_code().to_string(), m.name.clone()))
            .collect()
    })
}

fn prefecture_name(code: &str) -> String {
    prefectures()
        .iter()
        .find(|(c, _)| c == code)
        .map(|(_, n)| n.clone())
        .unwrap_or_else(|| code.to_string())
}

fn area_name(code: &str) -> String {
    if code.len() == 2 {
        return prefecture_name(code);
    }
    MunicipalityCode::parse(code)
        .ok()
        .and_then(|c| Registry::global().get(&c).map(|m| m.full_name()))
        .unwrap_or_else(|| code.to_string())
}

#[derive(Deserialize, Default)]
struct Filter {
    /// First month, YYYY-MM.
    from: Option<String>,
    /// Last month, YYYY-MM.
    to: Option<String>,
    /// `all`, or a prefecture's two-digit code.
    area: Option<String>,
}

fn month(s: Option<&str>) -> Option<NaiveDate> {
    let s = s?.trim();
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok()
}

impl Filter {
    /// The period asked for, or the name of the bad field.
    fn period(&self) -> Result<Period, &'static str> {
        let bad = |f: &Option<String>| {
            f.as_deref().is_some_and(|v| !v.trim().is_empty()) && month(f.as_deref()).is_none()
        };
        if bad(&self.from) {
            return Err("from");
        }
        if bad(&self.to) {
            return Err("to");
        }
        let all = Period::all();
        Ok(Period::months(
            month(self.from.as_deref()).unwrap_or(all.from),
            month(self.to.as_deref()).unwrap_or(all.to),
        ))
    }

    /// The area asked for, or `None` for one this viewer may not see.
    fn area(&self, auth: &Authed) -> Result<Area, AppError> {
        let asked = self
            .area
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        let known = |p: &str| prefectures().iter().any(|(c, _)| c == p);
        match auth.role() {
            Some(Role::NationalViewer) => match asked {
                None | Some("all") => Ok(Area::Nation),
                Some(p) if known(p) => Ok(Area::Prefecture(p.to_string())),
                Some(_) => Err(AppError::BadRequest("area".into())),
            },
            Some(Role::PrefecturalViewer) => {
                let own = auth
                    .account
                    .prefecture_code
                    .clone()
                    .ok_or(AppError::Forbidden)?;
                match asked {
                    None => Ok(Area::Prefecture(own)),
                    Some(p) if p == own => Ok(Area::Prefecture(own)),
                    Some(_) => Err(AppError::Forbidden),
                }
            }
            _ => Err(AppError::Forbidden),
        }
    }
}

/// A count as a table shows it: the number, or the suppression mark.
pub struct Cell {
    pub label: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "statistics/dashboard.html")]
struct DashboardPage {
    t: T,
    nav: Nav,
    national: bool,
    area_label: String,
    area_code: String,
    from: String,
    to: String,
    prefectures: &'static [(String, String)],
    total: String,
    min_cell: i64,
    day_chart: String,
    panels: Vec<Panel>,
    query: String,
}

/// One breakdown: its chart and the same numbers as a table.
pub struct Panel {
    pub id: &'static str,
    pub title: &'static str,
    pub chart: String,
    pub table: Vec<Cell>,
}

fn shown(n: i64, min: i64) -> Option<i64> {
    (n >= min).then_some(n)
}

fn cells(items: &[(String, Option<i64>)], suppressed: &str) -> Vec<Cell> {
    items
        .iter()
        .map(|(label, v)| Cell {
            label: label.clone(),
            value: v
                .map(charts::thousands)
                .unwrap_or_else(|| suppressed.to_string()),
        })
        .collect()
}

fn age_label(t: &T, band: i32) -> String {
    if band < 0 {
        t.s("stats.unknown").to_string()
    } else if band >= 100 {
        "100+".into()
    } else {
        format!("{band}–{}", band + 4)
    }
}

fn product_label(t: &T, code: &str) -> String {
    VaccineCatalog::global()
        .get(code)
        .map(|p| {
            if t.is_en() {
                p.product_en.clone()
            } else {
                p.product_ja.clone()
            }
        })
        .unwrap_or_else(|| code.to_string())
}

fn render_dashboard(
    t: T,
    auth: &Authed,
    d: &Dashboard,
    filter: &Filter,
    area: &Area,
    min: i64,
) -> Result<HttpResponse, AppError> {
    let supp = t.with_n("stats.suppressed", min);
    // The time series: one line per dose number, a point for every day from
    // the first dose to the last (a day without one is a true zero); a
    // count under the minimum breaks the line instead of being drawn.
    let days: Vec<NaiveDate> = match (d.by_day.first(), d.by_day.last()) {
        (Some(first), Some(last)) => first.0.iter_days().take_while(|x| *x <= last.0).collect(),
        _ => Vec::new(),
    };
    let doses: Vec<i32> = d.by_dose.iter().map(|c| c.key).collect();
    let series: Vec<(String, Vec<Option<i64>>)> = doses
        .iter()
        .map(|&k| {
            let mut v = vec![Some(0i64); days.len()];
            for (day, dose, n) in &d.by_day {
                if *dose == k
                    && let Ok(i) = days.binary_search(day)
                {
                    v[i] = shown(*n, min).or((*n == 0).then_some(0));
                }
            }
            (t.with_n("stats.dose_n", k), v)
        })
        .collect();
    let day_labels: Vec<String> = days.iter().map(|d| d.to_string()).collect();
    let dose_items: Vec<(String, Option<i64>)> = d
        .by_dose
        .iter()
        .map(|c| (t.with_n("stats.dose_n", c.key), shown(c.n, min)))
        .collect();
    let product_items: Vec<(String, Option<i64>)> = d
        .by_product
        .iter()
        .map(|c| (product_label(&t, &c.key), shown(c.n, min)))
        .collect();
    let age_items: Vec<(String, Option<i64>)> = d
        .by_age
        .iter()
        .map(|c| (age_label(&t, c.key), shown(c.n, min)))
        .collect();
    let sex_items: Vec<(String, Option<i64>)> = d
        .by_sex
        .iter()
        .map(|c| (t.code_label("sex.", &c.key), shown(c.n, min)))
        .collect();
    let area_items: Vec<(String, Option<i64>)> = d
        .by_area
        .iter()
        .map(|c| (area_name(&c.key), shown(c.n, min)))
        .collect();
    let (area_label, area_code) = match area {
        Area::Nation => (t.s("stats.nation").to_string(), "all".to_string()),
        Area::Prefecture(p) => (prefecture_name(p), p.clone()),
    };
    let mut query = format!("area={area_code}");
    for (k, v) in [("from", &filter.from), ("to", &filter.to)] {
        if let Some(v) = v.as_deref().filter(|v| month(Some(v)).is_some()) {
            let _ = write!(query, "&{k}={v}");
        }
    }
    let page = DashboardPage {
        nav: Nav::for_account(auth, "/statistics"),
        national: auth.role() == Some(Role::NationalViewer),
        from: filter.from.clone().unwrap_or_default(),
        to: filter.to.clone().unwrap_or_default(),
        prefectures: prefectures(),
        total: charts::thousands(d.total),
        min_cell: min,
        day_chart: charts::lines(t.s("stats.by_day"), &day_labels, &series),
        panels: [
            ("by-dose", "stats.by_dose", &dose_items),
            ("by-product", "stats.by_product", &product_items),
            ("by-age", "stats.by_age", &age_items),
            ("by-sex", "stats.by_sex", &sex_items),
            ("by-area", "stats.by_area", &area_items),
        ]
        .into_iter()
        .map(|(id, key, items)| Panel {
            id,
            title: key,
            chart: charts::bars(t.s(key), items, &supp),
            table: cells(items, &supp),
        })
        .collect(),
        area_label,
        area_code,
        query,
        t,
    };
    render(&page)
}

#[get("/statistics")]
async fn dashboard(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<Filter>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::NationalViewer, Role::PrefecturalViewer])?;
    let filter = q.into_inner();
    let area = filter.area(&auth)?;
    let period = match filter.period() {
        Ok(p) => p,
        Err(field) => return Ok(open_data::bad_filter(field)),
    };
    let a = area.clone();
    let d = with_db(&state, move |conn| Ok(stats::dashboard(conn, &a, period)?)).await?;
    render_dashboard(ctx.t, &auth, &d, &filter, &area, state.stats_min_cell)
}

#[derive(Template)]
#[template(path = "statistics/municipal.html")]
struct MunicipalPage {
    t: T,
    nav: Nav,
    municipality: String,
    residents: String,
    progress_chart: String,
    progress: Vec<Cell>,
    queue_chart: String,
    /// The queue now, by site and by rule.
    breakdowns: Vec<Panel>,
    queue_now: String,
}

/// A municipality's own picture, for its staff and administrators: the
/// share of its current residents with each dose, month by month, and the
/// 要確認 queue over the last 60 days, by site and by rule.
#[get("/statistics/municipality")]
async fn municipal(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = match auth.role() {
        Some(Role::MunicipalAdmin) => auth.municipality().ok_or(AppError::Forbidden)?,
        _ => auth.require_staff(crate::domain::Permission::Residents)?,
    };
    let (st, actor) = (state.clone(), auth.actor());
    let (progress, quality) = super::in_partition(&state, code, move |scope, conn| {
        let p = stats::progress(scope, conn)?;
        let q = stats::quality(scope, conn, 60)?;
        super::log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "statistics.municipal",
            None,
            None,
        )?;
        Ok((p, q))
    })
    .await?;
    let t = ctx.t;
    let share = |n: i64| {
        if progress.residents > 0 {
            (n * 100 + progress.residents / 2) / progress.residents
        } else {
            0
        }
    };
    let series: Vec<(String, Vec<Option<i64>>)> = progress
        .cumulative
        .iter()
        .map(|(d, v)| {
            (
                t.with_n("stats.dose_n", d),
                v.iter().map(|n| Some(share(*n))).collect(),
            )
        })
        .collect();
    let table: Vec<Cell> = progress
        .cumulative
        .iter()
        .map(|(d, v)| {
            let n = v.last().copied().unwrap_or(0);
            Cell {
                label: t.with_n("stats.dose_n", d),
                value: format!("{} ({} %)", charts::thousands(n), share(n)),
            }
        })
        .collect();
    let all = |v: &[i64]| v.iter().map(|n| Some(*n)).collect::<Vec<_>>();
    let mut queue_series = vec![(t.s("stats.queue_total").to_string(), all(&quality.total))];
    for (rule, v) in &quality.per_rule {
        queue_series.push((t.s(rule.label_key()).to_string(), all(v)));
    }
    let day_labels: Vec<String> = quality.days.iter().map(|d| d.to_string()).collect();
    let site_items: Vec<(String, Option<i64>)> = quality
        .now_by_site
        .iter()
        .map(|(s, n)| {
            let name = if s.is_empty() {
                t.s("stats.unknown").to_string()
            } else {
                s.clone()
            };
            (name, Some(*n))
        })
        .collect();
    let rule_items: Vec<(String, Option<i64>)> = quality
        .now_by_rule
        .iter()
        .map(|(r, n)| (t.s(r.label_key()).to_string(), Some(*n)))
        .collect();
    let panel = |id: &'static str, title: &'static str, items: &[(String, Option<i64>)]| Panel {
        id,
        title,
        chart: charts::bars(t.s(title), items, ""),
        table: cells(items, ""),
    };
    let page = MunicipalPage {
        nav: Nav::for_account(&auth, "/statistics/municipality"),
        municipality: Registry::global()
            .get(&code)
            .map(|m| m.full_name())
            .unwrap_or_else(|| code.to_string()),
        residents: charts::thousands(progress.residents),
        progress_chart: charts::lines(t.s("stats.progress"), &progress.months, &series),
        progress: table,
        queue_chart: charts::lines(t.s("stats.queue"), &day_labels, &queue_series),
        breakdowns: vec![
            panel("queue-by-site", "stats.queue_by_site", &site_items),
            panel("queue-by-rule", "stats.queue_by_rule", &rule_items),
        ],
        queue_now: charts::thousands(quality.total.last().copied().unwrap_or(0)),
        t,
    };
    render(&page)
}

//! The municipality's 要確認 queue: doses recorded at sites that failed a
//! data-quality check, with how many came from each site. Staff open the
//! record to confirm, correct or reject each one.

use super::{AppError, Authed, Ctx, Nav, in_partition, log_in_scope, render};
use crate::domain::Permission;
use crate::flows::AppState;
use crate::flows::dose_checks::Rule;
use crate::i18n::T;
use actix_web::{HttpResponse, get, web};
use askama::Template;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(queue);
}

struct Item {
    resident_id: String,
    recorded_at: String,
    site: String,
    dose_number: i32,
    date: String,
    product: String,
    lot: String,
    rules: Vec<Rule>,
}

/// One bar of the per-site chart.
struct Bar {
    site: Option<String>,
    count: i64,
    /// Width in the chart's 0–100 coordinate space.
    width: i64,
    y: usize,
}

#[derive(Template)]
#[template(path = "doses/queue.html")]
struct QueuePage {
    t: T,
    nav: Nav,
    total: i64,
    bars: Vec<Bar>,
    chart_height: usize,
    items: Vec<Item>,
}

const SHOWN: i64 = 200;
const BAR_PITCH: usize = 28;

#[get("/doses/queue")]
async fn queue(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_staff(Permission::Residents)?;
    let (st, actor) = (state.clone(), auth.actor());
    let (q, master) = in_partition(&state, code, move |scope, conn| {
        let q = crate::flows::doses::queue(scope, conn, SHOWN).map_err(AppError::failed)?;
        let master = crate::flows::vaccines::Master::load(conn)?;
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "doses.queue.view",
            None,
            Some(format!("waiting={}", q.total)),
        )?;
        Ok((q, master))
    })
    .await?;
    let max = q.per_site.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let bars: Vec<Bar> = q
        .per_site
        .into_iter()
        .enumerate()
        .map(|(i, (site, count))| Bar {
            site,
            width: (count * 100 / max).max(1),
            count,
            y: i * BAR_PITCH,
        })
        .collect();
    let items = q
        .doses
        .into_iter()
        .map(|d| Item {
            resident_id: d.resident_id,
            recorded_at: crate::clock::jst(d.recorded_at),
            site: d.site_name.unwrap_or_default(),
            dose_number: d.dose_number,
            date: d.administered_on.to_string(),
            product: master
                .get(&d.product_code)
                .map(|p| p.product_ja.clone())
                .unwrap_or(d.product_code),
            lot: d.lot_number.unwrap_or_default(),
            rules: Rule::split(d.quality_flags.as_deref()),
        })
        .collect();
    render(&QueuePage {
        nav: Nav::for_account(&auth, "/doses/queue"),
        total: q.total,
        chart_height: bars.len() * BAR_PITCH,
        bars,
        items,
        t: ctx.t,
    })
}

//! The municipality's 要確認 queue: doses recorded at sites that failed a
//! data-quality check, with how many came from each site. Staff filter it
//! (site, rule, date, lot) and open a record to act on one dose, or
//! confirm, reject or correct the lot of many at once with one reason.

use super::{
    AppError, Authed, Ctx, Nav, PostedPairs, field_message, in_partition, log_in_scope,
    render_form, see_other, with_db,
};
use crate::domain::{ChangeReason, LotNumber, Permission};
use crate::flows::AppState;
use crate::flows::dose_checks::Rule;
use crate::flows::doses::{BulkAction, QueueFilter};
use crate::i18n::T;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(queue).service(bulk);
}

struct Item {
    id: String,
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

/// The filter as the form shows it back.
#[derive(serde::Deserialize, Default, Clone)]
struct FilterForm {
    #[serde(default)]
    site: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    lot: String,
    #[serde(default)]
    done: Option<String>,
}

impl FilterForm {
    fn of_pairs(p: &PostedPairs) -> FilterForm {
        FilterForm {
            site: p.one("site").into(),
            rule: p.one("rule").into(),
            from: p.one("from").into(),
            to: p.one("to").into(),
            lot: p.one("lot").into(),
            done: None,
        }
    }

    /// The filter, or the first field that cannot be one.
    fn parse(&self, t: &T) -> Result<QueueFilter, String> {
        let date = |key: &str, v: &str| match v.trim() {
            "" => Ok(None),
            v => crate::domain::parse_date_field("date", v)
                .map(Some)
                .map_err(|e| format!("{}: {}", t.s(key), field_message(t, e.reason))),
        };
        let rule = match self.rule.as_str() {
            "" => None,
            r => Some(Rule::parse(r).ok_or_else(|| {
                format!(
                    "{}: {}",
                    t.s("queue.rules"),
                    field_message(t, crate::domain::Reason::UnknownChoice)
                )
            })?),
        };
        let lot = match self.lot.trim() {
            "" => None,
            l => Some(
                LotNumber::parse(l)
                    .map_err(|e| format!("{}: {}", t.s("records.lot"), field_message(t, e.reason)))?
                    .as_str()
                    .to_string(),
            ),
        };
        Ok(QueueFilter {
            site: (!self.site.is_empty()).then(|| self.site.clone()),
            rule,
            from: date("queue.from", &self.from)?,
            to: date("queue.to", &self.to)?,
            lot,
        })
    }

    /// The filter as a query string, to come back to the same list.
    fn query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("site", &self.site),
            ("rule", &self.rule),
            ("from", &self.from),
            ("to", &self.to),
            ("lot", &self.lot),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }
}

#[derive(Template)]
#[template(path = "doses/queue.html")]
struct QueuePage {
    t: T,
    nav: Nav,
    csrf: String,
    total: i64,
    matching: i64,
    bars: Vec<Bar>,
    chart_height: usize,
    items: Vec<Item>,
    filter: FilterForm,
    rules: Vec<Rule>,
    error: Option<String>,
    done: Option<String>,
}

const SHOWN: i64 = 200;
const BAR_PITCH: usize = 28;

async fn page(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    filter: FilterForm,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_staff(Permission::Residents)?;
    let (parsed, error) = match (filter.parse(&ctx.t), error) {
        (Ok(f), e) => (f, e),
        (Err(e), _) => (QueueFilter::default(), Some(e)),
    };
    let (st, actor) = (state.clone(), auth.actor());
    let (q, master) = in_partition(state, code, move |scope, conn| {
        let q =
            crate::flows::doses::queue(scope, conn, &parsed, SHOWN).map_err(AppError::failed)?;
        let master = crate::flows::vaccines::Master::load(conn)?;
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "doses.queue.view",
            None,
            Some(format!("waiting={} shown={}", q.total, q.doses.len())),
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
            id: d.id,
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
    let done = filter.done.clone().filter(|d| d.parse::<u32>().is_ok());
    let bad = error.is_some();
    render_form(
        &QueuePage {
            nav: Nav::for_account(auth, "/doses/queue"),
            csrf: auth.session.csrf_token.clone(),
            total: q.total,
            matching: q.matching,
            chart_height: bars.len() * BAR_PITCH,
            bars,
            items,
            filter,
            rules: Rule::ALL.to_vec(),
            error,
            done,
            t: ctx.t,
        },
        bad,
    )
}

#[get("/doses/queue")]
async fn queue(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<FilterForm>,
) -> Result<HttpResponse, AppError> {
    page(ctx, &auth, &state, q.into_inner(), None).await
}

/// The bulk form: which doses (those ticked, or every one the filter
/// keeps), what to do, why.
fn parse_bulk(t: &T, form: &PostedPairs) -> Result<(BulkAction, ChangeReason, bool), String> {
    let field = |key: &str, r| format!("{}: {}", t.s(key), field_message(t, r));
    let reason =
        ChangeReason::parse(form.one("reason")).map_err(|e| field("dose.reason", e.reason))?;
    let action = match form.one("action") {
        "confirm" => BulkAction::Confirm,
        "reject" => BulkAction::Reject,
        "correct_lot" => BulkAction::CorrectLot(
            LotNumber::parse(form.one("new_lot")).map_err(|e| field("queue.new_lot", e.reason))?,
        ),
        _ => return Err(field("queue.action", crate::domain::Reason::UnknownChoice)),
    };
    let all = form.one("scope") == "all";
    if !all && form.all("dose").next().is_none() {
        return Err(t.s("queue.choose").to_string());
    }
    Ok((action, reason, all))
}

#[post("/doses/queue/bulk")]
async fn bulk(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_staff(Permission::Residents)?;
    let form = PostedPairs::parse(&body);
    auth.check_csrf(form.one("csrf"))?;
    let filter_form = FilterForm::of_pairs(&form);
    let filter = match filter_form.parse(&ctx.t) {
        Ok(f) => f,
        Err(e) => return page(ctx, &auth, &state, filter_form, Some(e)).await,
    };
    let (action, reason, all) = match parse_bulk(&ctx.t, &form) {
        Ok(b) => b,
        Err(e) => return page(ctx, &auth, &state, filter_form, Some(e)).await,
    };
    // A dose id that is no id is not silently dropped: the form is refused.
    let chosen: Vec<String> = form
        .all("dose")
        .map(super::path_id)
        .collect::<Result<_, _>>()
        .map_err(|_| AppError::BadRequest("dose".into()))?;
    let (st, actor) = (state.clone(), auth.actor());
    let done = with_db(&state, move |conn| {
        crate::flows::doses::bulk_review(
            conn,
            &st,
            code,
            (if all { None } else { Some(chosen) }, &filter),
            &action,
            &reason,
            &actor,
        )
        .map_err(AppError::failed)
    })
    .await?;
    let query = filter_form.query();
    let sep = if query.is_empty() { "" } else { "&" };
    Ok(see_other(&format!(
        "/doses/queue?{query}{sep}done={}#result",
        done.done
    )))
}

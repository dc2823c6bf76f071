//! Retention and erasure: the administrator sets how long records of
//! residents who moved out or died are kept, sees those past it, may
//! export them (no individual number), and erases them — one, or all
//! listed, after confirming that it cannot be undone.

use crate::domain::MunicipalityCode;
use crate::flows::AppState;
use crate::flows::erasure::{self, Due};
use crate::i18n::T;
use crate::web::{
    AppError, Authed, Ctx, Nav, csv_download, in_partition, log_in_scope, render_form, see_other,
    with_db,
};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

pub(super) struct DueLine {
    id: String,
    addressee: String,
    flag: String,
    on: String,
}

#[derive(Template)]
#[template(path = "admin/retention.html")]
struct RetentionPage {
    t: T,
    nav: Nav,
    csrf: String,
    years: u32,
    cutoff: String,
    due: Vec<DueLine>,
    error: Option<String>,
    done: Option<String>,
}

/// The day before which a move-out or death is past retention, and the
/// years it stands on.
async fn cutoff(state: &AppState, code: MunicipalityCode) -> Result<(u32, NaiveDate), AppError> {
    let years = with_db(state, move |conn| Ok(erasure::retention_years(conn, code)?)).await?;
    Ok((
        years,
        erasure::cutoff(crate::clock::today_in_japan(), years),
    ))
}

async fn page(
    t: T,
    auth: &Authed,
    state: &AppState,
    error: Option<String>,
    done: Option<String>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let (years, before) = cutoff(state, code).await?;
    let due = in_partition(state, code, move |scope, conn| {
        Ok(erasure::due(scope, conn, before)?)
    })
    .await?;
    let line = |d: Due| {
        let (flag, on) = match (d.deceased_on, d.moved_out_on) {
            (Some(on), _) => ("retention.deceased", on),
            (None, Some(on)) => ("retention.moved_out", on),
            (None, None) => ("retention.moved_out", before),
        };
        DueLine {
            id: d.id,
            addressee: d.addressee,
            flag: t.s(flag).to_string(),
            on: on.to_string(),
        }
    };
    let due = due.into_iter().map(line).collect();
    let bad = error.is_some();
    render_form(
        &RetentionPage {
            nav: Nav::for_account(auth, "/admin/retention"),
            csrf: auth.session.csrf_token.clone(),
            years,
            cutoff: before.to_string(),
            due,
            error,
            done,
            t,
        },
        bad,
    )
}

#[get("/admin/retention")]
pub(super) async fn retention_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<crate::web::DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let done = q.into_inner().one_of(&["saved", "erased"]);
    page(ctx.t, &auth, &state, None, done).await
}

#[derive(Deserialize)]
pub(super) struct YearsForm {
    csrf: String,
    #[serde(default)]
    years: String,
}

/// Years a record is kept at the most.
const YEARS_MAX: u32 = 150;

#[post("/admin/retention/settings")]
pub(super) async fn save_years(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<YearsForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let Some(years) = form
        .years
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|y| (1..=YEARS_MAX).contains(y))
    else {
        let t = ctx.t;
        let msg = format!(
            "{}: {}",
            t.s("retention.years"),
            t.s("form.whole_number")
                .replace("{min}", "1")
                .replace("{max}", &YEARS_MAX.to_string())
        );
        return page(t, &auth, &state, Some(msg), None).await;
    };
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(erasure::set_retention_years(
            conn, &st.audit, &actor, code, years,
        )?)
    })
    .await?;
    Ok(see_other("/admin/retention?done=saved"))
}

#[get("/admin/retention.csv")]
pub(super) async fn retention_csv(
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let (_, before) = cutoff(&state, code).await?;
    let (st, actor) = (state.clone(), auth.actor());
    let lines = in_partition(&state, code, move |scope, conn| {
        let lines = erasure::export_lines(scope, conn, before)?;
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "residents.retention_export",
            None,
            Some(format!("rows={}", lines.len())),
        )?;
        Ok(lines)
    })
    .await?;
    Ok(csv_download(
        format!("retention-{code}.csv"),
        crate::csvout::utf8_bom(&erasure::EXPORT_HEADER, lines.into_iter()),
    ))
}

#[derive(Deserialize)]
pub(super) struct EraseForm {
    csrf: String,
    /// One resident, or none for every one listed.
    #[serde(default)]
    id: String,
    confirm: Option<String>,
    /// The cutoff the list was shown with: another one (the period was
    /// changed meanwhile, or the day turned) erases nothing.
    #[serde(default)]
    cutoff: String,
}

#[post("/admin/retention/erase")]
pub(super) async fn erase(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<EraseForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    if form.confirm.is_none() {
        let msg = ctx.t.s("retention.confirm_needed").to_string();
        return page(ctx.t, &auth, &state, Some(msg), None).await;
    }
    let one = match form.id.trim() {
        "" => None,
        id => Some(crate::web::path_id(id)?),
    };
    let (_, before) = cutoff(&state, code).await?;
    if form.cutoff.trim() != before.to_string() {
        let msg = ctx.t.s("retention.changed").to_string();
        return page(ctx.t, &auth, &state, Some(msg), None).await;
    }
    let (st, actor) = (state.clone(), auth.actor());
    let erased = in_partition(&state, code, move |scope, conn| {
        let ids = match one {
            Some(id) => vec![id],
            None => erasure::due(scope, conn, before)?
                .into_iter()
                .map(|d| d.id)
                .collect(),
        };
        Ok(erasure::erase(
            scope, conn, &st.audit, &actor, before, &ids,
        )?)
    })
    .await?;
    if erased == 0 {
        return Err(AppError::NotFound);
    }
    Ok(see_other("/admin/retention?done=erased"))
}

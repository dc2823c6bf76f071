//! Reconciliation of a full resident file (整合性確認): upload, the job's
//! page with what the comparison found — new, changed and absent people —
//! and the decision staff take for the absent.

use super::jobs::{self, JobLine, JobView};
use super::{
    AppError, Authed, Ctx, Nav, PostedPairs, field_message, in_partition, log_in_scope, path_id,
    render_form, see_other,
};
use crate::domain::{ChangeReason, MunicipalityCode, Permission};
use crate::flows::AppState;
use crate::flows::import_jobs::JobKind;
use crate::flows::reconcile::{self, Decision, Item, Outcome};
use crate::flows::residents::Flag;
use crate::i18n::T;
use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(upload)
        .service(show)
        .service(status)
        .service(decide);
}

const BASE: &str = "/residents/reconcile";
/// Items of each kind a page lists.
const LISTED: i64 = 200;

fn staff(auth: &Authed) -> Result<MunicipalityCode, AppError> {
    auth.require_staff(Permission::Residents)
}

#[derive(Template)]
#[template(path = "reconcile/index.html")]
struct IndexPage {
    t: T,
    nav: Nav,
    csrf: String,
    error: Option<String>,
    jobs: Vec<JobLine>,
    max_mb: u64,
    max_lines: u64,
}

async fn index_page(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    code: MunicipalityCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let jobs = jobs::journal(state, code, JobKind::RECONCILE, BASE).await?;
    let bad = error.is_some();
    render_form(
        &IndexPage {
            nav: Nav::for_account(auth, BASE),
            csrf: auth.session.csrf_token.clone(),
            error,
            jobs,
            max_mb: state.import_limits.max_bytes / (1024 * 1024),
            max_lines: state.import_limits.max_lines,
            t: ctx.t,
        },
        bad,
    )
}

#[get("/residents/reconcile")]
async fn index(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    index_page(ctx, &auth, &state, code, None).await
}

#[post("/residents/reconcile")]
async fn upload(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: Multipart,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    match jobs::upload(&state, &auth, &ctx.t, form, (JobKind::Reconcile, BASE)).await? {
        Ok(page) => Ok(page),
        Err(m) => index_page(ctx, &auth, &state, code, Some(m)).await,
    }
}

/// One kind of item as the page lists it.
struct Listed {
    found: i64,
    settled: i64,
    items: Vec<Item>,
}

#[derive(Template)]
#[template(path = "reconcile/show.html")]
struct ShowPage {
    t: T,
    nav: Nav,
    csrf: String,
    view: JobView,
    outcome: Option<Outcome>,
    message: String,
    absent: Listed,
    new: Listed,
    changed: Listed,
    /// What the decision form says was wrong, or was done.
    error: Option<String>,
    done: Option<String>,
    today: String,
}

#[derive(serde::Deserialize, Default)]
struct ShowQuery {
    done: Option<String>,
}

async fn show_page(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    id: String,
    (error, done): (Option<String>, Option<String>),
) -> Result<HttpResponse, AppError> {
    let code = staff(auth)?;
    let job = jobs::load(state, code, JobKind::RECONCILE, id.clone()).await?;
    let outcome: Option<Outcome> = job.outcome(JobKind::RECONCILE);
    let (st, actor, jid, listed) = (state.clone(), auth.actor(), id.clone(), outcome.is_some());
    let (absent, new, changed) = in_partition(state, code, move |scope, conn| {
        let counts = reconcile::counts(conn, &jid)?;
        let mut list = |kind: &str| -> Result<Listed, AppError> {
            let (found, settled) = counts
                .iter()
                .find(|(k, _, _)| k == kind)
                .map_or((0, 0), |(_, f, s)| (*f, *s));
            let items = if listed {
                reconcile::items(scope, conn, &jid, kind, (0, LISTED))?
            } else {
                Vec::new()
            };
            Ok(Listed {
                found,
                settled,
                items,
            })
        };
        let lists = (list("absent")?, list("new")?, list("changed")?);
        if listed {
            // The lists name people: reading them is logged.
            log_in_scope(
                scope,
                conn,
                &st.audit,
                &actor,
                "residents.reconcile",
                Some(format!("import:{jid}")),
                Some("view".into()),
            )?;
        }
        Ok(lists)
    })
    .await?;
    let message = super::imports::failure_message(&ctx.t, job.message.as_deref());
    let bad = error.is_some();
    render_form(
        &ShowPage {
            nav: Nav::for_account(auth, BASE),
            csrf: auth.session.csrf_token.clone(),
            view: JobView::of(BASE, &job),
            outcome,
            message,
            absent,
            new,
            changed,
            error,
            done,
            today: crate::clock::today_in_japan().to_string(),
            t: ctx.t,
        },
        bad,
    )
}

#[get("/residents/reconcile/{id}")]
async fn show(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<ShowQuery>,
) -> Result<HttpResponse, AppError> {
    let done = q.into_inner().done.filter(|d| d.parse::<u32>().is_ok());
    show_page(ctx, &auth, &state, path_id(&path)?, (None, done)).await
}

#[get("/residents/reconcile/{id}/status")]
async fn status(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = jobs::load(&state, code, JobKind::RECONCILE, path_id(&path)?).await?;
    Ok(jobs::status_of(&job))
}

/// The decision form, parsed: the items chosen, what to do, why.
fn parse_decision(t: &T, form: &PostedPairs) -> Result<(Vec<i64>, Decision, ChangeReason), String> {
    let items: Vec<i64> = form
        .all("item")
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| t.s("reconcile.choose").to_string())?;
    if items.is_empty() {
        return Err(t.s("reconcile.choose").to_string());
    }
    let field = |key: &str, r| format!("{}: {}", t.s(key), field_message(t, r));
    let reason =
        ChangeReason::parse(form.one("reason")).map_err(|e| field("records.reason", e.reason))?;
    let decision = match form.one("decision") {
        "keep" => Decision::Keep,
        d => {
            let flag = Flag::parse(d)
                .ok_or_else(|| field("reconcile.decision", crate::domain::Reason::UnknownChoice))?;
            let on = crate::domain::parse_date_field("date", form.one("date"))
                .and_then(|d| {
                    if d > crate::clock::today_in_japan() {
                        Err(crate::domain::FieldError {
                            field: "date",
                            reason: crate::domain::Reason::FutureDate,
                        })
                    } else {
                        Ok(d)
                    }
                })
                .map_err(|e| field("records.flag_date", e.reason))?;
            Decision::Flag(flag, on)
        }
    };
    Ok((items, decision, reason))
}

#[post("/residents/reconcile/{id}/absent")]
async fn decide(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    let form = PostedPairs::parse(&body);
    auth.check_csrf(form.one("csrf"))?;
    let (items, decision, reason) = match parse_decision(&ctx.t, &form) {
        Ok(d) => d,
        Err(e) => return show_page(ctx, &auth, &state, id, (Some(e), None)).await,
    };
    jobs::load(&state, code, JobKind::RECONCILE, id.clone()).await?;
    let (st, actor, jid) = (state.clone(), auth.actor(), id.clone());
    let n = in_partition(&state, code, move |scope, conn| {
        Ok(reconcile::settle_absent(
            scope,
            conn,
            (&jid, &items),
            decision,
            &reason,
            (&actor, &st.audit),
        )?)
    })
    .await?;
    Ok(see_other(&format!("{BASE}/{id}?done={n}#absent")))
}

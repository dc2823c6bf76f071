//! Dose batches from clinics: upload, the job's page with what became of
//! the lines, its status for the progress bar, the journal, and the
//! per-line result file (tickets, never an individual number).

use super::jobs::{self, JobLine, JobView};
use super::{AppError, Authed, Ctx, Nav, in_partition, log_in_scope, path_id, render, render_form};
use crate::domain::{MunicipalityCode, Permission};
use crate::flows::AppState;
use crate::flows::dose_batch::{self, Outcome};
use crate::flows::dose_checks::Rule;
use crate::flows::import_jobs::JobKind;
use crate::i18n::T;
use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(upload)
        .service(show)
        .service(status)
        .service(result);
}

const BASE: &str = "/doses/batches";

fn staff(auth: &Authed) -> Result<MunicipalityCode, AppError> {
    auth.require_staff(Permission::Residents)
}

#[derive(Template)]
#[template(path = "dose_batches/index.html")]
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
    let jobs = jobs::journal(state, code, JobKind::DOSES, BASE).await?;
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

#[get("/doses/batches")]
async fn index(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    index_page(ctx, &auth, &state, code, None).await
}

#[post("/doses/batches")]
async fn upload(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: Multipart,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    match jobs::upload(&state, &auth, &ctx.t, form, (JobKind::Doses, BASE)).await? {
        Ok(page) => Ok(page),
        Err(m) => index_page(ctx, &auth, &state, code, Some(m)).await,
    }
}

#[derive(Template)]
#[template(path = "dose_batches/show.html")]
struct ShowPage {
    t: T,
    nav: Nav,
    view: JobView,
    outcome: Option<Outcome>,
    message: String,
}

#[get("/doses/batches/{id}")]
async fn show(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = jobs::load(&state, code, JobKind::DOSES, path_id(&path)?).await?;
    let outcome: Option<Outcome> = job.outcome(JobKind::DOSES);
    let message = super::imports::failure_message(&ctx.t, job.message.as_deref());
    render(&ShowPage {
        nav: Nav::for_account(&auth, BASE),
        view: JobView::of(BASE, &job),
        outcome,
        message,
        t: ctx.t,
    })
}

#[get("/doses/batches/{id}/status")]
async fn status(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = jobs::load(&state, code, JobKind::DOSES, path_id(&path)?).await?;
    Ok(jobs::status_of(&job))
}

/// The result file: one line per line of the batch, in Japanese.
#[get("/doses/batches/{id}/result.csv")]
async fn result(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    jobs::load(&state, code, JobKind::DOSES, id.clone()).await?;
    let (st, actor, t) = (state.clone(), auth.actor(), ctx.t.clone());
    let body = in_partition(&state, code, move |scope, conn| {
        let mut rows = Vec::new();
        let mut after = 0;
        loop {
            let page = dose_batch::result_lines(conn, &id, after, 5000)?;
            let Some(last) = page.last() else { break };
            after = last.line;
            rows.extend(page.into_iter().map(|r| {
                vec![
                    r.line.to_string(),
                    r.ticket_number,
                    r.administered_on.to_string(),
                    t.s(&format!("batch.outcome.{}", r.outcome)).to_string(),
                    r.dose_number.map(|d| d.to_string()).unwrap_or_default(),
                    Rule::split(r.rules.as_deref())
                        .iter()
                        .map(|rule| t.s(rule.label_key()).to_string())
                        .collect::<Vec<_>>()
                        .join("、"),
                    r.refusal
                        .map(|c| t.s(&format!("batch.refusal.{c}")).to_string())
                        .unwrap_or_default(),
                ]
            }));
        }
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "doses.batch_result",
            Some(format!("import:{id}")),
            Some(format!("lines={}", rows.len())),
        )?;
        Ok(crate::csvout::utf8_bom(&dose_batch::RESULT_HEADER, rows))
    })
    .await?;
    Ok(super::csv_download("dose-batch-result.csv".into(), body))
}

//! The resident registry's change file (異動): upload, the job's progress
//! page with what the file did, its status for the progress bar, the
//! journal, and the ticket sheets of the people it registered.

use super::imports::{PageQuery, ticket_sheets};
use super::jobs::{self, JobLine, JobView};
use super::{AppError, Authed, Ctx, Nav, path_id, render, render_form};
use crate::domain::{ChangeKind, MunicipalityCode, Permission};
use crate::flows::AppState;
use crate::flows::changes::Outcome;
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
        .service(sheet);
}

const BASE: &str = "/residents/changes";

fn staff(auth: &Authed) -> Result<MunicipalityCode, AppError> {
    auth.require_staff(Permission::Residents)
}

/// A 異動事由 as the page lists it: the word and the file's code.
pub struct KindLine {
    pub word: &'static str,
    pub code: &'static str,
    pub effect: String,
}

#[derive(Template)]
#[template(path = "changes/index.html")]
struct IndexPage {
    t: T,
    nav: Nav,
    csrf: String,
    error: Option<String>,
    jobs: Vec<JobLine>,
    kinds: Vec<KindLine>,
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
    let jobs = jobs::journal(state, code, JobKind::CHANGES, BASE).await?;
    let kinds = ChangeKind::ALL
        .into_iter()
        .map(|k| KindLine {
            word: k.word(),
            code: k.code(),
            effect: ctx.t.s(&format!("changes.kind.{}", k.code())).to_string(),
        })
        .collect();
    let bad = error.is_some();
    render_form(
        &IndexPage {
            nav: Nav::for_account(auth, BASE),
            csrf: auth.session.csrf_token.clone(),
            error,
            jobs,
            kinds,
            max_mb: state.import_limits.max_bytes / (1024 * 1024),
            max_lines: state.import_limits.max_lines,
            t: ctx.t,
        },
        bad,
    )
}

#[get("/residents/changes")]
async fn index(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    index_page(ctx, &auth, &state, code, None).await
}

#[post("/residents/changes")]
async fn upload(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: Multipart,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    match jobs::upload(&state, &auth, &ctx.t, form, (JobKind::Changes, BASE)).await? {
        Ok(page) => Ok(page),
        Err(m) => index_page(ctx, &auth, &state, code, Some(m)).await,
    }
}

#[derive(Template)]
#[template(path = "changes/show.html")]
struct ShowPage {
    t: T,
    nav: Nav,
    view: JobView,
    outcome: Option<Outcome>,
    message: String,
}

#[get("/residents/changes/{id}")]
async fn show(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = jobs::load(&state, code, JobKind::CHANGES, path_id(&path)?).await?;
    let outcome: Option<Outcome> = job.outcome(JobKind::CHANGES);
    let message = super::imports::failure_message(&ctx.t, job.message.as_deref());
    render(&ShowPage {
        nav: Nav::for_account(&auth, BASE),
        view: JobView::of(BASE, &job),
        outcome,
        message,
        t: ctx.t,
    })
}

#[get("/residents/changes/{id}/status")]
async fn status(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = jobs::load(&state, code, JobKind::CHANGES, path_id(&path)?).await?;
    Ok(jobs::status_of(&job))
}

#[get("/residents/changes/{id}/tickets")]
async fn sheet(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    ticket_sheets(
        ctx,
        &auth,
        &state,
        code,
        (JobKind::CHANGES, BASE),
        path_id(&path)?,
        q.page,
    )
    .await
}

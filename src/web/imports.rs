//! The eligible-resident file: upload (spooled sealed), the job's progress
//! page, its JSON status for the progress bar, the journal, and the ticket
//! sheets of an import.

use super::jobs::{self, JobLine, JobView};
use super::sheets::{SheetPage, into_sheets};
use super::{AppError, Authed, Ctx, Nav, in_partition, log_in_scope, path_id, render, render_form};
use crate::domain::{MunicipalityCode, Permission};
use crate::flows::AppState;
use crate::flows::import_jobs::{self, JobKind};
use crate::flows::tickets;
use crate::i18n::T;
use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(upload)
        .service(show)
        .service(status)
        .service(sheet);
}

/// Where the import's pages are.
const BASE: &str = "/residents/imports";

fn staff(auth: &Authed) -> Result<MunicipalityCode, AppError> {
    auth.require_staff(Permission::Residents)
}

#[derive(Template)]
#[template(path = "imports/index.html")]
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
    let jobs = jobs::journal(state, code, JobKind::RESIDENTS, BASE).await?;
    let bad = error.is_some();
    let resp = render_form(
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
    )?;
    Ok(resp)
}

#[get("/residents/imports")]
async fn index(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    index_page(ctx, &auth, &state, code, None).await
}

#[post("/residents/imports")]
async fn upload(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: Multipart,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    match jobs::upload(&state, &auth, &ctx.t, form, (JobKind::Residents, BASE)).await? {
        Ok(page) => Ok(page),
        Err(m) => index_page(ctx, &auth, &state, code, Some(m)).await,
    }
}

#[derive(Template)]
#[template(path = "imports/show.html")]
struct ShowPage {
    t: T,
    nav: Nav,
    view: JobView,
    message: String,
}

#[get("/residents/imports/{id}")]
async fn show(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = jobs::load(&state, code, JobKind::RESIDENTS, path_id(&path)?).await?;
    let message = failure_message(&ctx.t, job.message.as_deref());
    render(&ShowPage {
        nav: Nav::for_account(&auth, BASE),
        view: JobView::of(BASE, &job),
        message,
        t: ctx.t,
    })
}

/// What a job's page says of how it ended, from its journal's message.
pub(super) fn failure_message(t: &T, message: Option<&str>) -> String {
    match message {
        Some("unreadable") => t.s("imports.unreadable").to_string(),
        Some("interrupted") => t.s("imports.interrupted").to_string(),
        Some("internal") => t.s("imports.internal").to_string(),
        Some(m) if m.starts_with("tickets_withheld=") => format!(
            "{} {}",
            t.s("imports.withheld"),
            m.trim_start_matches("tickets_withheld=")
        ),
        _ => String::new(),
    }
}

/// What the progress bar polls.
#[get("/residents/imports/{id}/status")]
async fn status(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = jobs::load(&state, code, JobKind::RESIDENTS, path_id(&path)?).await?;
    Ok(jobs::status_of(&job))
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    pub(super) page: Option<i64>,
}

/// Sheets per printed page of an import's tickets.
const SHEETS_PER_PAGE: i64 = 10;

#[get("/residents/imports/{id}/tickets")]
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
        (JobKind::RESIDENTS, BASE),
        path_id(&path)?,
        q.page,
    )
    .await
}

/// A page of the ticket sheets a job of `kind` (whose pages are under
/// `base`) issued.
pub(super) async fn ticket_sheets(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    code: MunicipalityCode,
    (kind, base): (&'static str, &str),
    id: String,
    page: Option<i64>,
) -> Result<HttpResponse, AppError> {
    let page = page.unwrap_or(1).max(1);
    let per = SHEETS_PER_PAGE * tickets::PER_SHEET;
    let (st, actor, jid) = (state.clone(), auth.actor(), id.clone());
    let (labels, total) = in_partition(state, code, move |scope, conn| {
        // A job of another municipality (or none) is simply not found.
        import_jobs::find(scope, conn, kind, &jid)?.ok_or(AppError::NotFound)?;
        let (labels, total) = tickets::labels_of_import(scope, conn, &jid, (page - 1) * per, per)?;
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "ticket.print",
            Some(format!("import:{jid}")),
            Some(format!("page={page} tickets={}", labels.len())),
        )?;
        Ok((labels, total))
    })
    .await?;
    if labels.is_empty() && page > 1 {
        return Err(AppError::NotFound);
    }
    let pages = ((total + per - 1) / per).max(1);
    let href = |p: i64| format!("{base}/{id}/tickets?page={p}");
    render(&SheetPage {
        sheets: into_sheets(labels),
        back_href: format!("{base}/{id}"),
        prev_href: (page > 1).then(|| href(page - 1)),
        next_href: (page < pages).then(|| href(page + 1)),
        position: format!("{page} / {pages}"),
        t: ctx.t,
    })
}

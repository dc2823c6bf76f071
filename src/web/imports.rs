//! The eligible-resident file: upload (spooled sealed), the job's progress
//! page, its JSON status for the progress bar, the journal, and the ticket
//! sheets of an import.

use super::jobs::{self, JobLine, JobView};
use super::sheets::{SheetPage, into_sheets};
use super::{AppError, Authed, Ctx, Nav, in_partition, log_in_scope, path_id, render, render_form};
use crate::domain::{MunicipalityCode, Permission};
use crate::flows::AppState;
use crate::flows::import_jobs::{self, Job, JobKind};
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
    let upload = jobs::receive(form, &state, &auth, &ctx.t).await?;
    let spool = match upload.file {
        Ok(s) => s,
        Err(e) => return index_page(ctx, &auth, &state, code, Some(e)).await,
    };
    // A file with a 個人番号 column is held to the rules of the lookup by
    // number; the job refuses it (and logs) if this person may not.
    let numbers = super::guard::number_access(&state, &auth).await?;
    let req = import_jobs::Request {
        numbers,
        kind: JobKind::Residents,
        municipality: code,
        actor: auth.actor(),
        file_name: upload.file_name,
        encoding: upload.encoding,
        limits: state.import_limits,
        spool,
    };
    match jobs::start(&state, req, BASE).await? {
        Ok(page) => Ok(page),
        Err(key) => {
            let m = ctx.t.s(key).to_string();
            index_page(ctx, &auth, &state, code, Some(m)).await
        }
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

async fn load_job(state: &AppState, code: MunicipalityCode, id: String) -> Result<Job, AppError> {
    in_partition(state, code, move |s, c| {
        Ok(import_jobs::find(s, c, JobKind::RESIDENTS, &id)?)
    })
    .await?
    .ok_or(AppError::NotFound)
}

#[get("/residents/imports/{id}")]
async fn show(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = load_job(&state, code, path_id(&path)?).await?;
    let message = match job.message.as_deref() {
        Some("unreadable") => ctx.t.s("imports.unreadable").to_string(),
        Some("interrupted") => ctx.t.s("imports.interrupted").to_string(),
        Some("internal") => ctx.t.s("imports.internal").to_string(),
        Some(m) if m.starts_with("tickets_withheld=") => format!(
            "{} {}",
            ctx.t.s("imports.withheld"),
            m.trim_start_matches("tickets_withheld=")
        ),
        _ => String::new(),
    };
    render(&ShowPage {
        nav: Nav::for_account(&auth, BASE),
        view: JobView::of(BASE, &job),
        message,
        t: ctx.t,
    })
}

/// What the progress bar polls.
#[get("/residents/imports/{id}/status")]
async fn status(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let job = load_job(&state, code, path_id(&path)?).await?;
    Ok(jobs::status_of(&job))
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
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
    let id = path_id(&path)?;
    let page = q.page.unwrap_or(1).max(1);
    let per = SHEETS_PER_PAGE * tickets::PER_SHEET;
    let (st, actor, jid) = (state.clone(), auth.actor(), id.clone());
    let (labels, total) = in_partition(&state, code, move |scope, conn| {
        // A job of another municipality (or none) is simply not found.
        import_jobs::find(scope, conn, JobKind::RESIDENTS, &jid)?.ok_or(AppError::NotFound)?;
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
    let href = |p: i64| format!("/residents/imports/{id}/tickets?page={p}");
    render(&SheetPage {
        sheets: into_sheets(labels),
        back_href: format!("/residents/imports/{id}"),
        prev_href: (page > 1).then(|| href(page - 1)),
        next_href: (page < pages).then(|| href(page + 1)),
        position: format!("{page} / {pages}"),
        t: ctx.t,
    })
}

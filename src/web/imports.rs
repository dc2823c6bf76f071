//! The eligible-resident file: upload (spooled sealed), the job's progress
//! page, its JSON status for the progress bar, the journal, and the ticket
//! sheets of an import.

use super::sheets::{SheetPage, into_sheets};
use super::{AppError, Authed, Ctx, Nav, in_partition, log_in_scope, path_id, render};
use crate::crypto::spool::{SpoolError, SpoolWriter};
use crate::db::models::import_jobs::ImportJobRow;
use crate::domain::{MunicipalityCode, Permission};
use crate::flows::AppState;
use crate::flows::import_jobs::{self, JobKind};
use crate::flows::imports::{FileEncoding, LineError};
use crate::flows::tickets;
use crate::i18n::T;
use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(upload)
        .service(show)
        .service(status)
        .service(sheet);
}

fn staff(auth: &Authed) -> Result<MunicipalityCode, AppError> {
    auth.require_staff(Permission::Residents)
}

pub struct JobLine {
    pub id: String,
    pub created: String,
    pub login: String,
    pub client: String,
    pub file: String,
    pub sha: String,
    pub status: String,
    pub lines: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub errors: i64,
}

impl From<&ImportJobRow> for JobLine {
    fn from(j: &ImportJobRow) -> JobLine {
        JobLine {
            id: j.id.clone(),
            created: (j.created_at + chrono::Duration::hours(9))
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            login: j.login_id.clone(),
            client: j.client_addr.clone(),
            file: j.file_name.clone(),
            sha: j.file_sha256.chars().take(12).collect(),
            status: j.status.clone(),
            lines: j.lines_seen,
            inserted: j.inserted,
            updated: j.updated,
            unchanged: j.unchanged,
            errors: j.error_count,
        }
    }
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
    let jobs = in_partition(state, code, |s, c| {
        Ok(import_jobs::recent(s, c, JobKind::RESIDENTS)?)
    })
    .await?;
    let bad = error.is_some();
    let mut resp = render(&IndexPage {
        nav: Nav::for_account(auth, "/residents/imports"),
        csrf: auth.session.csrf_token.clone(),
        error,
        jobs: jobs.iter().map(JobLine::from).collect(),
        max_mb: state.import_limits.max_bytes / (1024 * 1024),
        max_lines: state.import_limits.max_lines,
        t: ctx.t,
    })?;
    if bad {
        *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
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

/// An uploaded form: its small text fields, and its file spooled sealed.
pub(super) struct Upload {
    fields: std::collections::HashMap<String, String>,
    pub file_name: String,
    pub spool: Option<crate::crypto::spool::Spool>,
    too_large: bool,
}

impl Upload {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }

    /// What is wrong with the file, in the page's language: too large, or
    /// missing.
    pub fn problem(&self, t: &T, limit: u64) -> Option<String> {
        if self.too_large {
            return Some(format!(
                "{} ({} MB)",
                t.s("imports.too_large"),
                limit / (1024 * 1024)
            ));
        }
        match &self.spool {
            Some(s) if !s.is_empty() => None,
            _ => Some(t.s("imports.no_file").to_string()),
        }
    }
}

/// Reads the multipart form: the small text fields, and the file streamed
/// straight into a sealed spool (no larger than the import limit).
pub(super) async fn receive(mut form: Multipart, state: &AppState) -> Result<Upload, AppError> {
    let mut up = Upload {
        fields: Default::default(),
        file_name: String::new(),
        spool: None,
        too_large: false,
    };
    let limit = state.import_limits.max_bytes;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| AppError::BadRequest(e.to_string()))?;
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            up.file_name = field
                .content_disposition()
                .and_then(|d| d.get_filename().map(str::to_string))
                .unwrap_or_default();
            let mut w = SpoolWriter::create(&state.spool_dir, limit)
                .map_err(|e| AppError::Internal(e.into()))?;
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| AppError::BadRequest(e.to_string()))?;
                match w.write(&chunk) {
                    Ok(()) => {}
                    Err(SpoolError::TooLarge(_)) => {
                        up.too_large = true;
                        break;
                    }
                    Err(e) => return Err(AppError::Internal(e.into())),
                }
            }
            if up.too_large {
                // Drain the rest so the client sees our answer, not a reset.
                while let Some(chunk) = field.next().await {
                    if chunk.is_err() {
                        break;
                    }
                }
                continue;
            }
            up.spool = Some(w.finish().map_err(|e| AppError::Internal(e.into()))?);
        } else {
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| AppError::BadRequest(e.to_string()))?;
                if value.len() + chunk.len() > 256 {
                    return Err(AppError::BadRequest("form field too long".into()));
                }
                value.extend_from_slice(&chunk);
            }
            up.fields
                .insert(name, String::from_utf8_lossy(&value).into_owned());
        }
    }
    Ok(up)
}

#[post("/residents/imports")]
async fn upload(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: Multipart,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let upload = receive(form, &state).await?;
    auth.check_csrf(upload.field("csrf"))?;
    let error = upload.problem(&ctx.t, state.import_limits.max_bytes);
    let encoding = upload.field("encoding").to_string();
    let Some(encoding) = FileEncoding::parse(&encoding) else {
        return Err(AppError::BadRequest("encoding".into()));
    };
    if let Some(e) = error {
        return index_page(ctx, &auth, &state, code, Some(e)).await;
    }
    let Some(spool) = upload.spool else {
        return Err(AppError::BadRequest("file".into()));
    };
    // A file with a 個人番号 column is held to the rules of the lookup by
    // number; the job refuses it (and logs) if this person may not.
    let numbers = super::guard::number_access(&state, &auth).await?;
    let st = state.clone();
    let req = import_jobs::Request {
        numbers,
        kind: JobKind::Residents,
        municipality: code,
        actor: auth.actor(),
        file_name: upload.file_name,
        encoding,
        limits: state.import_limits,
        spool,
    };
    let started = web::block(move || import_jobs::start(&st, req))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    match started {
        Ok(id) => Ok(HttpResponse::SeeOther()
            .insert_header(("location", format!("/residents/imports/{id}")))
            .finish()),
        Err(e) => match e.refusal_key() {
            Some(key) => {
                let m = ctx.t.s(key).to_string();
                index_page(ctx, &auth, &state, code, Some(m)).await
            }
            None => Err(AppError::failed(e)),
        },
    }
}

#[derive(Template)]
#[template(path = "imports/show.html")]
struct ShowPage {
    t: T,
    nav: Nav,
    job: JobLine,
    running: bool,
    percent: u8,
    lines_live: u64,
    errors: Vec<LineError>,
    more_errors: i64,
    message: String,
}

async fn load_job(
    state: &AppState,
    code: MunicipalityCode,
    id: String,
) -> Result<ImportJobRow, AppError> {
    in_partition(state, code, move |s, c| {
        Ok(import_jobs::find(s, c, JobKind::RESIDENTS, &id)?)
    })
    .await?
    .ok_or(AppError::NotFound)
}

pub(super) fn is_running(job: &ImportJobRow) -> bool {
    job.status == import_jobs::QUEUED || job.status == import_jobs::RUNNING
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
    let JobView {
        running,
        percent,
        lines_live,
        errors,
        more_errors,
    } = JobView::of(&job);
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
        nav: Nav::for_account(&auth, "/residents/imports"),
        job: JobLine::from(&job),
        running,
        percent,
        lines_live,
        errors,
        more_errors,
        message,
        t: ctx.t,
    })
}

#[derive(serde::Serialize)]
struct Status {
    status: String,
    percent: u8,
    lines: u64,
    done: bool,
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
    Ok(status_of(job))
}

/// What a job's page shows of its progress and errors, for the resident
/// import's and the bulk inquiry's pages alike.
pub(super) struct JobView {
    pub running: bool,
    pub percent: u8,
    pub lines_live: u64,
    pub errors: Vec<LineError>,
    pub more_errors: i64,
}

impl JobView {
    pub fn of(job: &ImportJobRow) -> JobView {
        let live = import_jobs::progress_of(&job.id);
        let running = is_running(job);
        let (percent, lines_live) = match (&live, running) {
            (Some(p), true) => (
                p.percent(),
                p.lines.load(std::sync::atomic::Ordering::Relaxed),
            ),
            (_, true) => (0, 0),
            _ => (100, job.lines_seen as u64),
        };
        let errors: Vec<LineError> = job
            .errors
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or_default();
        JobView {
            running,
            percent,
            lines_live,
            more_errors: job.error_count - errors.len() as i64,
            errors,
        }
    }
}

/// A job's progress as the progress bar polls it.
pub(super) fn status_of(job: ImportJobRow) -> HttpResponse {
    let running = is_running(&job);
    let live = import_jobs::progress_of(&job.id);
    let body = Status {
        percent: match (&live, running) {
            (Some(p), true) => p.percent(),
            (_, true) => 0,
            _ => 100,
        },
        lines: live
            .as_ref()
            .map(|p| p.lines.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap_or(job.lines_seen as u64),
        done: !running,
        status: job.status,
    };
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(body)
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

//! What the resident import and the bulk inquiry share as pages: the file
//! received (spooled sealed as it arrives), the start of the background job,
//! its journal line, its progress page and the status the progress bar
//! polls.

use super::{AppError, Authed};
use crate::crypto::spool::{Spool, SpoolError, SpoolWriter};
use crate::flows::AppState;
use crate::flows::import_jobs::{self, Job};
use crate::flows::imports::{FileEncoding, LineError};
use crate::i18n::T;
use actix_multipart::Multipart;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use std::collections::HashMap;

/// A job as its journal and its page show it.
pub struct JobLine {
    /// The job's page.
    pub link: String,
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

impl JobLine {
    /// The line of `job`, whose pages are under `base`.
    pub fn of(base: &str, job: &Job) -> JobLine {
        JobLine {
            link: format!("{base}/{}", job.id),
            created: crate::clock::jst(job.created_at),
            login: job.login_id.clone(),
            client: job.client_addr.clone(),
            file: job.file_name.clone(),
            sha: job.file_sha256.chars().take(12).collect(),
            status: job.status.clone(),
            lines: job.lines_seen,
            inserted: job.inserted,
            updated: job.updated,
            unchanged: job.unchanged,
            errors: job.error_count,
        }
    }
}

/// The municipality's latest jobs of `kind` as its journal lists them.
pub async fn journal(
    state: &AppState,
    code: crate::domain::MunicipalityCode,
    kind: &'static str,
    base: &str,
) -> Result<Vec<JobLine>, AppError> {
    let jobs = super::in_partition(state, code, move |s, c| {
        Ok(import_jobs::recent(s, c, kind)?)
    })
    .await?;
    Ok(jobs.iter().map(|j| JobLine::of(base, j)).collect())
}

/// What a job's page shows of its progress and errors.
pub struct JobView {
    pub line: JobLine,
    pub running: bool,
    pub percent: u8,
    pub lines_live: u64,
    pub errors: Vec<LineError>,
    pub more_errors: i64,
}

impl JobView {
    pub fn of(base: &str, job: &Job) -> JobView {
        let (percent, lines_live) = job.progress();
        JobView {
            line: JobLine::of(base, job),
            running: job.is_running(),
            percent,
            lines_live,
            errors: job.errors.clone(),
            more_errors: job.more_errors(),
        }
    }
}

#[derive(serde::Serialize)]
struct Status {
    status: String,
    percent: u8,
    lines: u64,
    done: bool,
}

/// A job's progress as the progress bar polls it.
pub fn status_of(job: &Job) -> HttpResponse {
    let (percent, lines) = job.progress();
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(Status {
            status: job.status.clone(),
            percent,
            lines,
            done: !job.is_running(),
        })
}

/// An uploaded form: its small text fields, its encoding and its file.
pub struct Received {
    fields: HashMap<String, String>,
    pub file_name: String,
    pub encoding: FileEncoding,
    /// The file spooled sealed, or what is wrong with it in the page's
    /// language (too large, missing).
    pub file: Result<Spool, String>,
}

impl Received {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Reads the multipart form of a job's upload and checks its CSRF token:
/// the small text fields, and the file streamed straight into a sealed spool
/// no larger than the import limit.
pub async fn receive(
    form: Multipart,
    state: &AppState,
    auth: &Authed,
    t: &T,
) -> Result<Received, AppError> {
    let limit = state.import_limits.max_bytes;
    let (fields, file_name, spool) = read_form(form, &state.spool_dir, limit).await?;
    let field = |n: &str| fields.get(n).map(String::as_str).unwrap_or("");
    auth.check_csrf(field("csrf"))?;
    let encoding =
        FileEncoding::parse(field("encoding")).ok_or(AppError::BadRequest("encoding".into()))?;
    let file = match spool {
        None => Err(format!(
            "{} ({} MB)",
            t.s("imports.too_large"),
            limit / (1024 * 1024)
        )),
        Some(Some(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(t.s("imports.no_file").to_string()),
    };
    Ok(Received {
        fields,
        file_name,
        encoding,
        file,
    })
}

/// The form's fields, the file's name, and its spool: `None` when it was
/// larger than `limit`, `Some(None)` when no file came.
type Form = (HashMap<String, String>, String, Option<Option<Spool>>);

async fn read_form(
    mut form: Multipart,
    spool_dir: &std::path::Path,
    limit: u64,
) -> Result<Form, AppError> {
    let (mut fields, mut file_name, mut spool) = (HashMap::new(), String::new(), Some(None));
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| AppError::BadRequest(e.to_string()))?;
        let name = field.name().unwrap_or("").to_string();
        if name != "file" {
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| AppError::BadRequest(e.to_string()))?;
                if value.len() + chunk.len() > 256 {
                    return Err(AppError::BadRequest("form field too long".into()));
                }
                value.extend_from_slice(&chunk);
            }
            fields.insert(name, String::from_utf8_lossy(&value).into_owned());
            continue;
        }
        file_name = field
            .content_disposition()
            .and_then(|d| d.get_filename().map(str::to_string))
            .unwrap_or_default();
        let mut w =
            SpoolWriter::create(spool_dir, limit).map_err(|e| AppError::Internal(e.into()))?;
        let mut too_large = false;
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| AppError::BadRequest(e.to_string()))?;
            match w.write(&chunk) {
                Ok(()) => {}
                Err(SpoolError::TooLarge(_)) => {
                    too_large = true;
                    break;
                }
                Err(e) => return Err(AppError::Internal(e.into())),
            }
        }
        if too_large {
            // Drain the rest so the client sees our answer, not a reset.
            while let Some(chunk) = field.next().await {
                if chunk.is_err() {
                    break;
                }
            }
            spool = None;
            continue;
        }
        spool = Some(Some(w.finish().map_err(|e| AppError::Internal(e.into()))?));
    }
    Ok((fields, file_name, spool))
}

/// Starts the job off the request's thread. Its page under `base` on
/// success; a refusal staff can act on (another import running, keys being
/// rotated) as its message key.
pub async fn start(
    state: &AppState,
    req: import_jobs::Request,
    base: &str,
) -> Result<Result<HttpResponse, &'static str>, AppError> {
    let st = state.clone();
    let started = web::block(move || import_jobs::start(&st, req))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    match started {
        Ok(id) => Ok(Ok(HttpResponse::SeeOther()
            .insert_header(("location", format!("{base}/{id}")))
            .finish())),
        Err(e) => e.refusal_key().map(Err).ok_or_else(|| AppError::failed(e)),
    }
}

/// One municipality's job of `kind` by id: not found for any other.
pub async fn load(
    state: &AppState,
    code: crate::domain::MunicipalityCode,
    kind: &'static str,
    id: String,
) -> Result<Job, AppError> {
    super::in_partition(state, code, move |s, c| {
        Ok(import_jobs::find(s, c, kind, &id)?)
    })
    .await?
    .ok_or(AppError::NotFound)
}

/// Receives the upload of a resident-data file and starts its job of
/// `kind`: the job's page, or what the upload page must say (a file too
/// large or missing, another job running).
pub async fn upload(
    state: &AppState,
    auth: &Authed,
    t: &T,
    form: Multipart,
    (kind, base): (import_jobs::JobKind, &str),
) -> Result<Result<HttpResponse, String>, AppError> {
    let code = auth.require_staff(crate::domain::Permission::Residents)?;
    let upload = receive(form, state, auth, t).await?;
    let spool = match upload.file {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    // A file with a 個人番号 column is held to the rules of the lookup by
    // number; the job refuses it (and logs) if this person may not.
    let numbers = super::guard::number_access(state, auth).await?;
    let req = import_jobs::Request {
        numbers,
        kind,
        municipality: code,
        actor: auth.actor(),
        file_name: upload.file_name,
        encoding: upload.encoding,
        limits: state.import_limits,
        spool,
    };
    Ok(start(state, req, base)
        .await?
        .map_err(|key| t.s(key).to_string()))
}

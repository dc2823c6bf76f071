//! The bulk inquiry: a file of movers, asked line by line as a background
//! job, with a result file per line (no individual number in it).

use super::inquirer;
use crate::db::models::import_jobs::ImportJobRow;
use crate::db::models::provisions::{JobTally, ProvisionRow};
use crate::domain::{InquiryPurpose, MunicipalityCode};
use crate::flows::AppState;
use crate::flows::import_jobs::{self, JobKind};
use crate::flows::imports::{FileEncoding, LineError};
use crate::flows::{provisions, residents};
use crate::i18n::T;
use crate::web::imports::{self as upload_pages, receive};
use crate::web::{
    AppError, Authed, Ctx, Nav, field_message, in_partition, log_in_scope, path_id, render,
};
use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;

pub struct BulkJobLine {
    pub id: String,
    pub created: String,
    pub login: String,
    pub file: String,
    pub status: String,
    pub lines: i64,
}

impl From<&ImportJobRow> for BulkJobLine {
    fn from(j: &ImportJobRow) -> Self {
        BulkJobLine {
            id: j.id.clone(),
            created: crate::clock::jst(j.created_at),
            login: j.login_id.clone(),
            file: j.file_name.clone(),
            status: j.status.clone(),
            lines: j.lines_seen,
        }
    }
}

#[derive(Template)]
#[template(path = "transfers/bulk.html")]
struct BulkPage {
    t: T,
    nav: Nav,
    csrf: String,
    error: Option<String>,
    jobs: Vec<BulkJobLine>,
    purposes: Vec<(&'static str, &'static str)>,
}

async fn bulk_page(
    t: T,
    auth: &Authed,
    state: &AppState,
    code: MunicipalityCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let jobs = in_partition(state, code, |s, c| {
        Ok(import_jobs::recent(s, c, JobKind::TRANSFER)?)
    })
    .await?;
    let bad = error.is_some();
    let mut r = render(&BulkPage {
        nav: Nav::for_account(auth, "/transfers/bulk"),
        csrf: auth.session.csrf_token.clone(),
        error,
        jobs: jobs.iter().map(BulkJobLine::from).collect(),
        purposes: InquiryPurpose::ALL
            .iter()
            .map(|p| (p.code(), p.label_key()))
            .collect(),
        t,
    })?;
    if bad {
        *r.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

#[get("/transfers/bulk")]
pub(super) async fn bulk_index(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = inquirer(&state, &auth).await?;
    bulk_page(ctx.t, &auth, &state, code, None).await
}

#[post("/transfers/bulk")]
pub(super) async fn bulk_upload(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: Multipart,
) -> Result<HttpResponse, AppError> {
    let code = inquirer(&state, &auth).await?;
    let upload = receive(form, &state).await?;
    auth.check_csrf(upload.field("csrf"))?;
    let t = ctx.t;
    let purpose = match InquiryPurpose::parse(upload.field("purpose")) {
        Ok(p) => p,
        Err(e) => {
            let msg = format!("{}: {}", t.field(e.field), field_message(&t, e.reason));
            return bulk_page(t, &auth, &state, code, Some(msg)).await;
        }
    };
    let encoding = FileEncoding::parse(upload.field("encoding"))
        .ok_or_else(|| AppError::BadRequest("encoding".into()))?;
    if let Some(e) = upload.problem(&t, state.import_limits.max_bytes) {
        return bulk_page(t, &auth, &state, code, Some(e)).await;
    }
    let Some(spool) = upload.spool else {
        return Err(AppError::BadRequest("file".into()));
    };
    let st = state.clone();
    let req = import_jobs::Request {
        kind: JobKind::Transfer(purpose),
        municipality: code,
        actor: auth.actor(),
        file_name: upload.file_name,
        encoding,
        limits: state.import_limits,
        spool,
        // Only who passed `inquirer` reaches this page.
        numbers: Ok(()),
    };
    let started = web::block(move || import_jobs::start(&st, req))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    match started {
        Ok(id) => Ok(HttpResponse::SeeOther()
            .insert_header(("location", format!("/transfers/bulk/{id}")))
            .finish()),
        Err(e) => match e.refusal_key() {
            Some(key) => {
                let m = t.s(key).to_string();
                bulk_page(t, &auth, &state, code, Some(m)).await
            }
            None => Err(AppError::failed(e)),
        },
    }
}

async fn load_bulk(
    state: &AppState,
    code: MunicipalityCode,
    id: String,
) -> Result<(ImportJobRow, JobTally), AppError> {
    in_partition(state, code, move |s, c| {
        let job = import_jobs::find(s, c, JobKind::TRANSFER, &id)?.ok_or(AppError::NotFound)?;
        let tally = ProvisionRow::tally_of_job(c, &job.id)?;
        Ok((job, tally))
    })
    .await
}

#[derive(Template)]
#[template(path = "transfers/bulk_show.html")]
struct BulkShowPage {
    t: T,
    nav: Nav,
    job: BulkJobLine,
    running: bool,
    percent: u8,
    lines_live: u64,
    tally: JobTally,
    errors: Vec<LineError>,
    more_errors: i64,
    failed: bool,
    /// Stopped by a system stop: the lines answered before it stay answered.
    interrupted: bool,
}

#[get("/transfers/bulk/{id}")]
pub(super) async fn bulk_show(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = inquirer(&state, &auth).await?;
    let (job, tally) = load_bulk(&state, code, path_id(&path)?).await?;
    let upload_pages::JobView {
        running,
        percent,
        lines_live,
        errors,
        more_errors,
    } = upload_pages::JobView::of(&job);
    render(&BulkShowPage {
        nav: Nav::for_account(&auth, "/transfers/bulk"),
        more_errors,
        errors,
        failed: job.status == import_jobs::FAILED,
        interrupted: job.status == import_jobs::FAILED
            && job.message.as_deref() == Some("interrupted"),
        job: BulkJobLine::from(&job),
        running,
        percent,
        lines_live,
        tally,
        t: ctx.t,
    })
}

#[get("/transfers/bulk/{id}/status")]
pub(super) async fn bulk_status(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = inquirer(&state, &auth).await?;
    let (job, _) = load_bulk(&state, code, path_id(&path)?).await?;
    Ok(upload_pages::status_of(job))
}

/// The job's result, one line per file line: keyed by line number and
/// 宛名番号 — never the individual number.
#[get("/transfers/bulk/{id}/result.csv")]
pub(super) async fn bulk_result(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = inquirer(&state, &auth).await?;
    let id = path_id(&path)?;
    let (st, actor) = (state.clone(), auth.actor());
    let body = in_partition(&state, code, move |scope, conn| {
        let job =
            import_jobs::find(scope, conn, JobKind::TRANSFER, &id)?.ok_or(AppError::NotFound)?;
        let mut rows = Vec::new();
        let mut after = 0;
        loop {
            let page = ProvisionRow::of_job(conn, &job.id, after, 5000)?;
            let Some(last) = page.last() else { break };
            after = last.line_no.unwrap_or(i64::MAX);
            for r in page {
                let addressee = match &r.resident_id {
                    Some(rid) => residents::get(scope, conn, rid)?
                        .map(|p| p.addressee_number.as_str().to_string())
                        .unwrap_or_default(),
                    None => String::new(),
                };
                rows.push(vec![
                    r.line_no.map(|l| l.to_string()).unwrap_or_default(),
                    addressee,
                    r.provider_code.clone(),
                    provisions::name_of(&r.provider_code),
                    match r.outcome.as_str() {
                        crate::db::models::provisions::PROVIDED => "該当あり",
                        _ => "該当なし",
                    }
                    .to_string(),
                    r.dose_count.to_string(),
                    r.inquiry_id.clone(),
                ]);
            }
        }
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "transfer.bulk_result",
            Some(format!("import:{}", job.id)),
            Some(format!("lines={}", rows.len())),
        )?;
        Ok(crate::csvout::utf8_bom(
            &[
                "行番号",
                "宛名番号",
                "転出元市区町村コード",
                "転出元市区町村名",
                "照会結果",
                "取得した接種記録の件数",
                "照会ID",
            ],
            rows,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            "attachment; filename=\"transfer-result.csv\"",
        ))
        .insert_header(("cache-control", "no-store"))
        .body(body))
}

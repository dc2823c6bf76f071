//! The bulk inquiry: a file of movers, asked line by line as a background
//! job, with a result file per line (no individual number in it).

use super::inquirer;
use crate::domain::InquiryPurpose;
use crate::domain::MunicipalityCode;
use crate::flows::AppState;
use crate::flows::import_jobs::{self, Job, JobKind};
use crate::flows::transfer_bulk::{self, Tally};
use crate::i18n::T;
use crate::web::jobs::{self, JobLine, JobView};
use crate::web::{
    AppError, Authed, Ctx, Nav, field_message, in_partition, log_in_scope, path_id, render,
    render_form,
};
use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;

#[derive(Template)]
#[template(path = "transfers/bulk.html")]
struct BulkPage {
    t: T,
    nav: Nav,
    csrf: String,
    error: Option<String>,
    jobs: Vec<JobLine>,
    purposes: Vec<(&'static str, &'static str)>,
}

/// Where the bulk inquiry's pages are.
const BASE: &str = "/transfers/bulk";

async fn bulk_page(
    t: T,
    auth: &Authed,
    state: &AppState,
    code: MunicipalityCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let jobs = jobs::journal(state, code, JobKind::TRANSFER, BASE).await?;
    let bad = error.is_some();
    let r = render_form(
        &BulkPage {
            nav: Nav::for_account(auth, BASE),
            csrf: auth.session.csrf_token.clone(),
            error,
            jobs,
            purposes: InquiryPurpose::ALL
                .iter()
                .map(|p| (p.code(), p.label_key()))
                .collect(),
            t,
        },
        bad,
    )?;
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
    let t = ctx.t;
    let upload = jobs::receive(form, &state, &auth, &t).await?;
    let purpose = match InquiryPurpose::parse(upload.field("purpose")) {
        Ok(p) => p,
        Err(e) => {
            let msg = format!("{}: {}", t.field(e.field), field_message(&t, e.reason));
            return bulk_page(t, &auth, &state, code, Some(msg)).await;
        }
    };
    let spool = match upload.file {
        Ok(s) => s,
        Err(e) => return bulk_page(t, &auth, &state, code, Some(e)).await,
    };
    let req = import_jobs::Request {
        kind: JobKind::Transfer(purpose),
        municipality: code,
        actor: auth.actor(),
        file_name: upload.file_name,
        encoding: upload.encoding,
        limits: state.import_limits,
        spool,
        // Only who passed `inquirer` reaches this page.
        numbers: Ok(()),
    };
    match jobs::start(&state, req, BASE).await? {
        Ok(page) => Ok(page),
        Err(key) => {
            let m = t.s(key).to_string();
            bulk_page(t, &auth, &state, code, Some(m)).await
        }
    }
}

async fn load_bulk(
    state: &AppState,
    code: MunicipalityCode,
    id: String,
) -> Result<(Job, Tally), AppError> {
    in_partition(state, code, move |s, c| {
        let job = import_jobs::find(s, c, JobKind::TRANSFER, &id)?.ok_or(AppError::NotFound)?;
        let tally = transfer_bulk::tally(s, c, &job.id)?;
        Ok((job, tally))
    })
    .await
}

#[derive(Template)]
#[template(path = "transfers/bulk_show.html")]
struct BulkShowPage {
    t: T,
    nav: Nav,
    view: JobView,
    tally: Tally,
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
    render(&BulkShowPage {
        nav: Nav::for_account(&auth, BASE),
        failed: job.status == import_jobs::FAILED,
        interrupted: job.status == import_jobs::FAILED
            && job.message.as_deref() == Some("interrupted"),
        view: JobView::of(BASE, &job),
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
    Ok(jobs::status_of(&job))
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
        let rows = transfer_bulk::result_lines(scope, conn, &job.id)?;
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "transfer.bulk_result",
            Some(format!("import:{}", job.id)),
            Some(format!("lines={}", rows.len())),
        )?;
        Ok(crate::csvout::utf8_bom(&transfer_bulk::RESULT_HEADER, rows))
    })
    .await?;
    Ok(crate::web::csv_download("transfer-result.csv".into(), body))
}

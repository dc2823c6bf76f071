//! Flow 4's pages: the window inquiry (one person), the bulk inquiry (a file
//! of movers, as a background job), and the provision records about a
//! resident. The inquiry pages take individual numbers: staff with the
//! inquiry permission, on the municipality's LG-WAN terminals only.

use super::imports::{self as upload_pages, receive};
use super::{
    AppError, Authed, Ctx, Nav, field_message, in_partition, log_in_scope, path_id, render,
    require_lgwan_for, with_db,
};
use crate::db::models::doses::DoseRow;
use crate::db::models::import_jobs::ImportJobRow;
use crate::db::models::provisions::{JobTally, NoticeRow, ProvisionRow};
use crate::domain::{
    Consent, FieldError, IdDocument, InquiryPurpose, MunicipalityCode, MyNumber, Permission,
    Registry, source_municipality,
};
use crate::flows::import_jobs::{self, JobKind};
use crate::flows::imports::{FileEncoding, LineError};
use crate::flows::transfer::{self, Answer, Channel, Inquiry, TransferError};
use crate::flows::{provisions, residents};
use crate::i18n::T;
use crate::startup::AppState;
use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use std::sync::OnceLock;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(form_get)
        .service(inquire)
        .service(bulk_index)
        .service(bulk_upload)
        .service(bulk_show)
        .service(bulk_status)
        .service(bulk_result)
        .service(provisions_page)
        .service(provisions_csv)
        .service(close_notice);
}

pub const SOURCE_FIELD: &str = "転出元市区町村コード";
const AGAIN_FIELD: &str = "個人番号（確認）";

/// A municipality that can be asked, for the source field's suggestions.
pub struct SourceOption {
    pub code: String,
    pub name: String,
}

fn source_options() -> &'static [SourceOption] {
    static OPTIONS: OnceLock<Vec<SourceOption>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        Registry::global()
            .all()
            .filter(|m| m.can_be_tenant())
            .map(|m| SourceOption {
                code: m.code.to_string(),
                name: m.full_name(),
            })
            .collect()
    })
}

/// An inquiry sends an individual number to another municipality: staff
/// holding both the inquiry and the individual-number permission.
async fn inquirer(state: &AppState, auth: &Authed) -> Result<MunicipalityCode, AppError> {
    require_lgwan_for(state, auth, &[Permission::Inquiry, Permission::MyNumber]).await
}

/// What the form shows again after an error — never the number.
#[derive(Default)]
struct Typed {
    source: String,
    consent: bool,
    id_document: String,
    checked_by: String,
    purpose: String,
}

#[derive(Template)]
#[template(path = "transfers/form.html")]
struct FormPage {
    t: T,
    nav: Nav,
    csrf: String,
    typed: Typed,
    errors: Vec<String>,
    options: &'static [SourceOption],
    documents: Vec<(&'static str, &'static str)>,
    purposes: Vec<(&'static str, &'static str)>,
}

fn form_page(
    t: T,
    auth: &Authed,
    typed: Typed,
    errors: Vec<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, AppError> {
    let mut r = render(&FormPage {
        nav: Nav::for_account(auth, "/transfers"),
        csrf: auth.session.csrf_token.clone(),
        typed,
        errors,
        options: source_options(),
        documents: IdDocument::ALL
            .iter()
            .map(|d| (d.code(), d.label_key()))
            .collect(),
        purposes: InquiryPurpose::ALL
            .iter()
            .map(|p| (p.code(), p.label_key()))
            .collect(),
        t,
    })?;
    *r.status_mut() = status;
    r.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

#[get("/transfers")]
async fn form_get(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    inquirer(&state, &auth).await?;
    let typed = Typed {
        checked_by: auth.account.display_name.clone(),
        purpose: InquiryPurpose::TicketIssuance.code().into(),
        ..Typed::default()
    };
    form_page(
        ctx.t,
        &auth,
        typed,
        Vec::new(),
        actix_web::http::StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct InquiryForm {
    csrf: String,
    #[serde(default)]
    my_number: String,
    #[serde(default)]
    my_number_again: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    consent: String,
    #[serde(default)]
    id_document: String,
    #[serde(default)]
    checked_by: String,
    #[serde(default)]
    purpose: String,
}

/// Everything an inquiry needs from a person's input, or every field's
/// problem (field name and reason, for the page's language).
pub struct Parsed {
    pub number: MyNumber,
    pub source: MunicipalityCode,
    pub consent: Consent,
    pub purpose: InquiryPurpose,
}

/// An inquiry's fields as typed or sent.
pub struct InquiryFields<'a> {
    pub number: &'a str,
    /// The number typed again, where the client confirms it that way.
    pub again: Option<&'a str>,
    pub source: &'a str,
    pub consent: bool,
    pub id_document: &'a str,
    pub checked_by: &'a str,
    pub purpose: &'a str,
}

/// Parses an inquiry's fields, the same for the form and the API. The
/// number must be typed twice alike (F26); `again` is `None` where the
/// client confirmed it otherwise.
pub fn parse_inquiry(
    asking: MunicipalityCode,
    f: &InquiryFields<'_>,
) -> Result<Parsed, Vec<FieldError>> {
    let mut errors = Vec::new();
    let number = MyNumber::parse(f.number).map_err(|e| errors.push(e)).ok();
    if let (Some(n), Some(again)) = (&number, f.again)
        && MyNumber::parse(again).ok().as_ref() != Some(n)
    {
        errors.push(FieldError {
            field: AGAIN_FIELD,
            reason: crate::domain::Reason::EntriesDiffer,
        });
    }
    let source = source_municipality(SOURCE_FIELD, f.source, asking)
        .map_err(|e| errors.push(e))
        .ok();
    let consent = Consent::parse(f.consent, f.id_document, f.checked_by)
        .map_err(|es| errors.extend(es))
        .ok();
    let purpose = InquiryPurpose::parse(f.purpose)
        .map_err(|e| errors.push(e))
        .ok();
    match (number, source, consent, purpose) {
        (Some(number), Some(source), Some(consent), Some(purpose)) if errors.is_empty() => {
            Ok(Parsed {
                number,
                source,
                consent,
                purpose,
            })
        }
        _ => Err(errors),
    }
}

/// Runs the inquiry on the blocking pool and answers no sooner than the
/// configured floor after `started`, whatever the outcome: how long an
/// answer takes must not say whether anyone matched.
pub async fn run_inquiry(
    state: &AppState,
    actor: crate::audit::Actor,
    inquiry: Inquiry,
    started: std::time::Instant,
) -> Result<Result<Answer, TransferError>, AppError> {
    let st = state.clone();
    let out = with_db(state, move |conn| {
        Ok(transfer::inquire(
            conn,
            &st.master,
            &st.audit,
            st.transfer.rates,
            &actor,
            &inquiry,
        ))
    })
    .await;
    let floor = &state.transfer.answer_floor;
    // Only inquiries that were asked of the other municipality teach the
    // floor: a flood of cheap refusals must not pull it down.
    if matches!(out, Ok(Ok(_))) {
        floor.observe(started.elapsed());
    }
    tokio::time::sleep_until((started + floor.hold()).into()).await;
    match out? {
        Err(TransferError::Tenancy(e)) => Err(e.into()),
        other => Ok(other),
    }
}

pub struct DoseLine {
    pub dose_number: i32,
    pub date: String,
    pub product: String,
    pub lot: String,
    pub site: String,
    pub site_municipality: String,
}

#[derive(Template)]
#[template(path = "transfers/result.html")]
struct ResultPage {
    t: T,
    nav: Nav,
    matched: bool,
    resident_id: String,
    source_name: String,
    doses: Vec<DoseLine>,
    newly_copied: usize,
    can_open: bool,
}

#[post("/transfers")]
async fn inquire(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<InquiryForm>,
) -> Result<HttpResponse, AppError> {
    let started = std::time::Instant::now();
    let code = inquirer(&state, &auth).await?;
    auth.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let typed = Typed {
        source: f.source.clone(),
        consent: f.consent == "1",
        id_document: f.id_document.clone(),
        checked_by: f.checked_by.clone(),
        purpose: f.purpose.clone(),
    };
    let parsed = parse_inquiry(
        code,
        &InquiryFields {
            number: &f.my_number,
            again: Some(&f.my_number_again),
            source: &f.source,
            consent: f.consent == "1",
            id_document: &f.id_document,
            checked_by: &f.checked_by,
            purpose: &f.purpose,
        },
    );
    let t = ctx.t;
    let p = match parsed {
        Ok(p) => p,
        Err(errors) => {
            let errors = errors
                .into_iter()
                .map(|e| format!("{}: {}", t.field(e.field), field_message(&t, e.reason)))
                .collect();
            return form_page(
                t,
                &auth,
                typed,
                errors,
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let source = p.source;
    let inquiry = Inquiry {
        asking: code,
        source,
        number: p.number,
        consent: p.consent,
        purpose: p.purpose,
        channel: Channel::Window,
    };
    let answer = run_inquiry(&state, auth.actor(), inquiry, started).await?;
    let refused = |key: &str, status| {
        let msg = t.s(key).to_string();
        form_page(
            t.clone(),
            &auth,
            Typed {
                source: String::new(),
                ..typed
            },
            vec![msg],
            status,
        )
    };
    match answer {
        Err(TransferError::NotResident) => refused(
            "transfer.not_resident",
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(_) => refused(
            "transfer.rate_limited",
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        ),
        Ok(answer) => {
            let lines = match &answer {
                Answer::Matched { doses, .. } => dose_lines(&state, doses.clone()).await?,
                Answer::NoMatch => Vec::new(),
            };
            let (matched, resident_id, newly_copied) = match answer {
                Answer::Matched {
                    resident_id,
                    newly_copied,
                    ..
                } => (true, resident_id, newly_copied),
                Answer::NoMatch => (false, String::new(), 0),
            };
            let mut r = render(&ResultPage {
                nav: Nav::for_account(&auth, "/transfers"),
                matched,
                source_name: if matched {
                    provisions::name_of(source.as_str())
                } else {
                    String::new()
                },
                resident_id,
                doses: lines,
                newly_copied,
                can_open: auth.permissions().contains(&Permission::Residents),
                t,
            })?;
            r.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                actix_web::http::header::HeaderValue::from_static("no-store"),
            );
            Ok(r)
        }
    }
}

/// Doses as the result page lists them, with product names.
async fn dose_lines(state: &AppState, doses: Vec<DoseRow>) -> Result<Vec<DoseLine>, AppError> {
    with_db(state, move |conn| {
        let master = crate::flows::vaccines::Master::load(conn)?;
        Ok(doses
            .into_iter()
            .map(|d| DoseLine {
                dose_number: d.dose_number,
                date: d.administered_on.to_string(),
                product: master
                    .get(&d.product_code)
                    .map(|p| p.product_ja.clone())
                    .unwrap_or(d.product_code),
                lot: d.lot_number.unwrap_or_default(),
                site: d.site_name.unwrap_or_default(),
                site_municipality: d
                    .site_municipality_code
                    .map(|c| provisions::name_of(&c))
                    .unwrap_or_default(),
            })
            .collect())
    })
    .await
}

// ---- the bulk inquiry ----

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
            created: super::auth::jst(j.created_at),
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
async fn bulk_index(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = inquirer(&state, &auth).await?;
    bulk_page(ctx.t, &auth, &state, code, None).await
}

#[post("/transfers/bulk")]
async fn bulk_upload(
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
        .map_err(|e| AppError::Internal(e.to_string()))?;
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
        let tally = ProvisionRow::tally_of_job(s, c, &job.id)?;
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
async fn bulk_show(
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
async fn bulk_status(
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
async fn bulk_result(
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
            let page = ProvisionRow::of_job(scope, conn, &job.id, after, 5000)?;
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

// ---- provision records about a resident ----

pub struct ProvisionLine {
    pub requested: String,
    pub side: String,
    pub requester: String,
    pub account: String,
    pub provider: String,
    pub channel: String,
    pub purpose: String,
    pub items: Vec<String>,
    pub dose_count: i32,
    pub outcome: String,
}

impl From<&ProvisionRow> for ProvisionLine {
    fn from(r: &ProvisionRow) -> Self {
        ProvisionLine {
            requested: super::auth::jst(r.requested_at),
            side: r.side.clone(),
            requester: format!(
                "{} {}",
                r.requester_code,
                provisions::name_of(&r.requester_code)
            ),
            account: r.requester_login_id.clone().unwrap_or_default(),
            provider: format!(
                "{} {}",
                r.provider_code,
                provisions::name_of(&r.provider_code)
            ),
            channel: r.channel.clone(),
            purpose: r.purpose.clone(),
            items: r
                .items
                .split(',')
                .filter(|i| !i.is_empty())
                .map(str::to_string)
                .collect(),
            dose_count: r.dose_count,
            outcome: r.outcome.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "transfers/provisions.html")]
struct ProvisionsPage {
    t: T,
    nav: Nav,
    resident_id: String,
    lines: Vec<ProvisionLine>,
}

/// Reads the records about one resident, with the log line of the read.
async fn provisions_of(
    state: &AppState,
    auth: &Authed,
    id: String,
    how: &'static str,
) -> Result<Vec<ProvisionRow>, AppError> {
    let code = auth.require_staff(Permission::Residents)?;
    let (st, actor) = (state.clone(), auth.actor());
    in_partition(state, code, move |scope, conn| {
        // A foreign or unknown id is simply not found.
        residents::get(scope, conn, &id)?.ok_or(AppError::NotFound)?;
        let rows = provisions::of_resident(scope, conn, &id)?;
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "provisions.read",
            Some(format!("resident:{id}")),
            Some(format!("as={how} records={}", rows.len())),
        )?;
        Ok(rows)
    })
    .await
}

#[get("/residents/{id}/provisions")]
async fn provisions_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&path)?;
    let rows = provisions_of(&state, &auth, id.clone(), "page").await?;
    render(&ProvisionsPage {
        nav: Nav::for_account(&auth, "/residents"),
        resident_id: id,
        lines: rows.iter().map(ProvisionLine::from).collect(),
        t: ctx.t,
    })
}

#[get("/residents/{id}/provisions.csv")]
async fn provisions_csv(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&path)?;
    let rows = provisions_of(&state, &auth, id, "csv").await?;
    let body = crate::csvout::utf8_bom(
        &provisions::CSV_HEADER,
        rows.iter().map(provisions::csv_line),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            "attachment; filename=\"provision-records.csv\"",
        ))
        .insert_header(("cache-control", "no-store"))
        .body(body))
}

// ---- notices for administrators ----

pub struct NoticeLine {
    pub id: String,
    pub at: String,
    pub kind: String,
    pub subject: String,
}

/// The municipality's open notices, for its administrators' dashboard.
pub async fn open_notices(
    state: &AppState,
    code: MunicipalityCode,
) -> Result<Vec<NoticeLine>, AppError> {
    in_partition(state, code, |scope, conn| {
        Ok(NoticeRow::open(scope, conn)?
            .into_iter()
            .map(|n| NoticeLine {
                id: n.id,
                at: super::auth::jst(n.at),
                kind: n.kind,
                // "municipality:131016" names the municipality that asked.
                subject: match n.subject.strip_prefix("municipality:") {
                    Some(c) => format!("{c} {}", provisions::name_of(c)),
                    None => n.subject.trim_start_matches("account:").to_string(),
                },
            })
            .collect())
    })
    .await
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

#[post("/admin/notices/{id}/close")]
async fn close_notice(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let id = path_id(&path)?;
    let (st, actor, by) = (state.clone(), auth.actor(), auth.account.login_id.clone());
    in_partition(&state, code, move |scope, conn| {
        if !NoticeRow::close(scope, conn, &id, &by, crate::flows::now())? {
            return Err(AppError::NotFound);
        }
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "notice.close",
            Some(format!("notice:{id}")),
            None,
        )
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/dashboard"))
        .finish())
}

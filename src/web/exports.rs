//! Flow 6: the ledger CSV, streamed. The producer runs on its own thread
//! with its own connection and hands encoded chunks to the response through
//! a small bounded channel, so memory stays flat however many doses there are.

use super::{AppError, Authed, Ctx, Nav, render, with_db};
use crate::audit::{self, Entry};
use crate::domain::Permission;
use crate::flows::AppState;
use crate::flows::export_approval::{self, Export, Standing};
use crate::flows::exports::{self, CsvEncoding};
use crate::i18n::T;
use crate::tenancy::Partition;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(doses_csv)
        .service(request_export);
}

/// Where the staff member stands with a download, where the municipality
/// asks for approval first.
pub(crate) async fn standing(
    state: &AppState,
    auth: &Authed,
    export: Export,
) -> Result<Standing, AppError> {
    let code = auth.municipality().ok_or(AppError::Forbidden)?;
    let account = auth.account.id.clone();
    with_db(state, move |conn| {
        Ok(export_approval::standing(conn, code, &account, &export)?)
    })
    .await
}

/// Opens an approved download once; false if it is not (yet) approved.
pub(crate) async fn take(
    state: &AppState,
    auth: &Authed,
    export: Export,
) -> Result<bool, AppError> {
    let code = auth.municipality().ok_or(AppError::Forbidden)?;
    let account = auth.account.id.clone();
    with_db(state, move |conn| {
        Ok(export_approval::take(conn, code, &account, &export)?)
    })
    .await
}

#[derive(Template)]
#[template(path = "exports/index.html")]
struct IndexPage {
    t: T,
    nav: Nav,
    csrf: String,
    export: Standing,
    export_kind: &'static str,
    export_subject: String,
}

#[get("/exports")]
async fn index(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    auth.require_staff(Permission::Export)?;
    let export = standing(&state, &auth, Export::Ledger).await?;
    render(&IndexPage {
        nav: Nav::for_account(&auth, "/exports"),
        csrf: auth.session.csrf_token.clone(),
        export,
        export_kind: "ledger",
        export_subject: String::new(),
        t: ctx.t,
    })
}

#[derive(Deserialize)]
struct RequestForm {
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    subject: String,
}

/// Asks an administrator to approve a download: the ledger (export
/// permission) or a resident's provision records (residents permission).
#[post("/exports/requests")]
async fn request_export(
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<RequestForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let (code, export, back) = match form.kind.as_str() {
        "ledger" => (
            auth.require_staff(Permission::Export)?,
            Export::Ledger,
            "/exports".to_string(),
        ),
        "provisions" => {
            let id = super::path_id(&form.subject)?;
            (
                auth.require_staff(Permission::Residents)?,
                Export::Provisions(id.clone()),
                format!("/residents/{id}/provisions"),
            )
        }
        _ => return Err(AppError::BadRequest("kind".into())),
    };
    if let Export::Provisions(id) = &export {
        // Only a resident of this municipality: another's is not found.
        let id = id.clone();
        super::in_partition(&state, code, move |scope, conn| {
            crate::flows::residents::protection_of(scope, conn, &id)?
                .map(|_| ())
                .ok_or(AppError::NotFound)
        })
        .await?;
    }
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(export_approval::request(
            conn, &st.audit, &actor, code, &export,
        )?)
    })
    .await?;
    Ok(super::see_other(&back))
}

#[derive(Deserialize)]
struct CsvQuery {
    encoding: Option<String>,
}

#[get("/exports/doses.csv")]
async fn doses_csv(
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<CsvQuery>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_staff(Permission::Export)?;
    let encoding = CsvEncoding::parse(q.encoding.as_deref().unwrap_or("utf8"))
        .ok_or_else(|| AppError::BadRequest("encoding".into()))?;
    if !take(&state, &auth, Export::Ledger).await? {
        return Ok(super::see_other("/exports"));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let st = state.get_ref().clone();
    let actor = auth.actor();
    // Fail before the first byte if the partition cannot be opened.
    let mut conn = {
        let pool = st.pool.clone();
        web::block(move || pool.get())
            .await
            .map_err(|e| AppError::Internal(e.into()))?
            .map_err(|e| AppError::from(crate::db::DbError::from(e)))?
    };
    std::thread::Builder::new()
        .name("export".into())
        .spawn(move || {
            let result = Partition::open(&mut conn, &st.master, code).and_then(|partition| {
                exports::stream_doses(&mut conn, &partition, encoding, |chunk| {
                    tx.blocking_send(chunk).is_ok()
                })
            });
            let (outcome, detail) = match &result {
                Ok(n) => ("ok", format!("encoding={} lines={n}", encoding.code())),
                Err(e) => {
                    tracing::error!(error = %e, "export failed");
                    ("failed", format!("encoding={}", encoding.code()))
                }
            };
            let _ = audit::record(
                &mut conn,
                &st.audit,
                &actor,
                Entry {
                    chain: code.as_str(),
                    action: "doses.export",
                    target: None,
                    outcome,
                    detail: Some(detail),
                },
            );
        })
        .map_err(|e| AppError::Internal(e.into()))?;
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, actix_web::Error>(web::Bytes::from(chunk)), rx))
    });
    let today = crate::clock::now().date().format("%Y%m%d");
    Ok(HttpResponse::Ok()
        .content_type(encoding.content_type())
        .insert_header((
            "content-disposition",
            format!(
                "attachment; filename=\"doses-{}-{today}-{}.csv\"",
                code.as_str(),
                encoding.code()
            ),
        ))
        .insert_header(("cache-control", "no-store"))
        .streaming(body))
}

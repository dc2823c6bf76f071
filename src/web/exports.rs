//! Flow 6: the ledger CSV, streamed. The producer runs on its own thread
//! with its own connection and hands encoded chunks to the response through
//! a small bounded channel, so memory stays flat however many doses there are.

use super::{AppError, Authed, Ctx, Nav, render};
use crate::audit::{self, Entry};
use crate::domain::Permission;
use crate::flows::AppState;
use crate::flows::exports::{self, CsvEncoding};
use crate::i18n::T;
use crate::tenancy::Partition;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(index).service(doses_csv);
}

#[derive(Template)]
#[template(path = "exports/index.html")]
struct IndexPage {
    t: T,
    nav: Nav,
}

#[get("/exports")]
async fn index(ctx: Ctx, auth: Authed) -> Result<HttpResponse, AppError> {
    auth.require_staff(Permission::Export)?;
    render(&IndexPage {
        nav: Nav::for_account(&auth, "/exports"),
        t: ctx.t,
    })
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

//! HTTP: routes, the request frame (request id, language, security headers,
//! error pages), and one module per group of pages. Handlers parse, call a
//! flow, render; no SQL here.

mod admin;
mod api;
mod auth;
mod certificates;
mod changes;
mod channels;
mod charts;
mod device;
mod dose_batches;
mod due;
mod error;
pub(crate) mod exports;
mod frame;
mod guard;
mod imports;
mod jobs;
mod operator;
mod oplog;
mod pages;
mod queue;
mod reconcile;
mod records;
mod residents;
mod sheets;
mod sites;
mod statistics;
mod system;
mod tablet;
mod transfers;
mod vaccines;

pub use auth::SESSION_COOKIE;

/// Every GET route of the server, read from the handlers' `#[get]`
/// attributes when the server is built (build.rs).
pub mod route_table {
    include!(concat!(env!("OUT_DIR"), "/routes.rs"));
}

pub use auth::Authed;
pub use due::render_notice_pages;
pub use error::AppError;
pub(crate) use error::outcome;
pub use frame::{Ctx, RequestInfo, Transport};
pub use guard::{Nav, require_lgwan, require_lgwan_for};
pub(crate) use guard::{NotRecorder, recorder_of};

use crate::db::TenantConn;
use actix_web::web;
use std::path::Path;

/// The largest form a page posts (an upload streams its file instead).
const FORM_LIMIT: usize = 64 * 1024;
/// The largest body read whole: the API's JSON requests.
const BODY_LIMIT: usize = 256 * 1024;

pub fn configure(
    cfg: &mut web::ServiceConfig,
    static_dir: &Path,
    transport: web::Data<Transport>,
    access_log: web::Data<crate::config::AccessLog>,
) {
    cfg.service(
        web::scope("")
            .wrap(actix_web::middleware::from_fn(frame::frame))
            .app_data(transport)
            .app_data(access_log)
            .app_data(
                web::FormConfig::default()
                    .limit(FORM_LIMIT)
                    .error_handler(|e, _| match e {
                        actix_web::error::UrlencodedError::Overflow { .. } => {
                            AppError::TooLarge.into()
                        }
                        e => AppError::BadRequest(e.to_string()).into(),
                    }),
            )
            // Bodies read whole (the API's JSON): larger ones are a 413.
            .app_data(web::PayloadConfig::default().limit(BODY_LIMIT))
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| AppError::BadRequest(e.to_string()).into()),
            )
            .service(
                actix_files::Files::new("/static", static_dir)
                    .use_etag(true)
                    .prefer_utf8(true),
            )
            .configure(system::routes)
            .configure(pages::routes)
            .configure(auth::routes)
            .configure(device::routes)
            .configure(admin::routes)
            .configure(residents::routes)
            .configure(imports::routes)
            .configure(changes::routes)
            .configure(reconcile::routes)
            .configure(dose_batches::routes)
            .configure(due::routes)
            .configure(records::routes)
            .configure(transfers::routes)
            .configure(certificates::routes)
            .configure(channels::routes)
            .configure(statistics::routes)
            .configure(exports::routes)
            .configure(tablet::routes)
            .configure(vaccines::routes)
            .configure(queue::routes)
            .configure(sites::routes)
            .configure(api::routes)
            .configure(operator::routes)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(AppError::NotFound)
            })),
    );
}

/// Renders an askama template as an HTML response.
pub fn render<T: askama::Template>(tpl: &T) -> Result<actix_web::HttpResponse, AppError> {
    let body = tpl.render().map_err(|e| AppError::Internal(e.into()))?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// A page with a form: answered 422 when what was sent is refused (the
/// page shows why beside the fields), so that a client can tell a refusal
/// from a page.
pub fn render_form<T: askama::Template>(
    tpl: &T,
    refused: bool,
) -> Result<actix_web::HttpResponse, AppError> {
    let mut r = render(tpl)?;
    if refused {
        *r.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

/// A CSV file as a download (kept from caches by the frame, as every page).
pub(crate) fn csv_download(name: String, body: Vec<u8>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

/// Runs database work on the blocking pool with a pooled connection.
pub async fn with_db<T, F>(state: &crate::flows::AppState, work: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::db::DbConn) -> Result<T, AppError> + Send + 'static,
{
    state.blocking(work).await
}

/// Runs writing work as `with_db` does, but on SQLite in the next commit
/// group (see `db::commit_group`): answered once its group is on disk. Work
/// the group could not take or run changed nothing, and is answered as a
/// busy database.
pub async fn with_db_grouped<T, F>(state: &crate::flows::AppState, work: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::db::DbConn) -> Result<T, AppError> + Send + 'static,
{
    state.grouped(work).await
}

/// A field error in the page's language.
pub fn field_message(t: &crate::i18n::T, reason: crate::domain::Reason) -> String {
    if t.is_en() {
        reason.message_en()
    } else {
        reason.message_ja()
    }
}

/// Runs work inside one municipality's partition (one scoped transaction)
/// on the blocking pool.
pub async fn in_partition<T, F>(
    state: &crate::flows::AppState,
    code: crate::domain::MunicipalityCode,
    work: F,
) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&crate::tenancy::Scope<'_>, &mut TenantConn<'_>) -> Result<T, AppError>
        + Send
        + 'static,
{
    let st = state.clone();
    with_db(state, move |conn| {
        let partition = crate::tenancy::Partition::open(conn, &st.master, code)?;
        partition.run(conn, work)
    })
    .await
}

/// An id from a URL path. Anything but a UUID is simply not found, the
/// same answer as another municipality's id.
pub fn path_id(raw: &str) -> Result<String, AppError> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| AppError::NotFound)
}

/// `?done=…` on a page a form sent back to: what was done, if it is one of
/// the page's own words (anything else is not echoed).
#[derive(serde::Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

impl DoneQuery {
    pub fn one_of(self, words: &[&str]) -> Option<String> {
        self.done.filter(|d| words.contains(&d.as_str()))
    }
}

/// A posted form whose keys may repeat (a list of checkboxes), read from
/// its body; serde's form reader keeps one value per key.
pub struct PostedPairs(Vec<(String, String)>);

impl PostedPairs {
    pub fn parse(body: &[u8]) -> PostedPairs {
        PostedPairs(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `key` ("" without one).
    pub fn one(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `key`, in the form's order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The answer to a form that was acted on: go and see `to`.
pub fn see_other(to: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::SeeOther()
        .insert_header(("location", to.to_string()))
        .finish()
}

/// Writes an operation-log line in the partition's own transaction, so the
/// record of a read or change commits (or not) with it.
pub fn log_in_scope(
    scope: &crate::tenancy::Scope<'_>,
    conn: &mut TenantConn<'_>,
    key: &crate::audit::AuditKey,
    actor: &crate::audit::Actor,
    action: &str,
    target: Option<String>,
    detail: Option<String>,
) -> Result<(), AppError> {
    crate::audit::append(
        conn,
        key,
        actor,
        crate::audit::Entry {
            chain: scope.code().as_str(),
            action,
            target,
            outcome: "ok",
            detail,
        },
    )
    .map_err(AppError::from)
}

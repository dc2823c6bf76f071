//! The operation log: the newest lines with filters, the chain's
//! verification (and the witness's), and the CSV export.

use crate::audit::{self, Entry};
use crate::domain::MunicipalityCode;
use crate::flows::AppState;
use crate::i18n::T;
use crate::web::oplog::{LogLine, log_line};
use crate::web::{AppError, Authed, Ctx, Nav, render, with_db};
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct LogQuery {
    action: Option<String>,
    login: Option<String>,
    outcome: Option<String>,
}

impl LogQuery {
    fn keep(&self, r: &audit::Recorded) -> bool {
        let has = |f: &Option<String>, v: &str| {
            f.as_deref()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .is_none_or(|f| v.contains(f))
        };
        has(&self.action, &r.action)
            && has(&self.login, r.login_id.as_deref().unwrap_or(""))
            && has(&self.outcome, &r.outcome)
    }
}

#[derive(Template)]
#[template(path = "admin/log.html")]
struct LogPage {
    t: T,
    nav: Nav,
    lines: Vec<LogLine>,
    total: i64,
    broken_at: Option<i64>,
    /// Cut short or deleted after the witness saw it: (line the witness
    /// saw, lines held).
    cut: Option<(i64, i64)>,
    action: String,
    login: String,
    outcome: String,
    export_query: String,
}

/// Lines of the chain newest first (at most `limit`), filtered, with the
/// chain's verification result.
fn load_log(
    conn: &mut crate::db::DbConn,
    state: &AppState,
    code: MunicipalityCode,
    q: &LogQuery,
    limit: i64,
) -> Result<(Vec<audit::Recorded>, audit::ChainReport), AppError> {
    let report = audit::verify(
        conn,
        &state.audit,
        Some(code.as_str()),
        Some(&state.witness.heads()),
    )?
    .pop()
    .ok_or_else(|| AppError::Internal("no report".into()))?;
    let rows = audit::recent(conn, code.as_str(), limit)?
        .into_iter()
        .filter(|r| q.keep(r))
        .collect();
    Ok((rows, report))
}

#[get("/admin/log")]
pub(super) async fn log_page(
    req: actix_web::HttpRequest,
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<LogQuery>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let q = q.into_inner();
    let st = state.clone();
    let (rows, report, q) = with_db(&state, move |conn| {
        let (rows, report) = load_log(conn, &st, code, &q, 500)?;
        Ok((rows, report, q))
    })
    .await?;
    let get = |v: &Option<String>| v.clone().unwrap_or_default();
    render(&LogPage {
        nav: Nav::for_account(&auth, "/admin/log"),
        lines: rows.iter().map(log_line).collect(),
        total: report.lines,
        broken_at: report.broken_at,
        cut: (report.truncated || report.missing)
            .then(|| (report.witnessed.unwrap_or_default(), report.lines)),
        export_query: req.query_string().to_string(),
        action: get(&q.action),
        login: get(&q.login),
        outcome: get(&q.outcome),
        t: ctx.t,
    })
}

#[get("/admin/log.csv")]
pub(super) async fn log_csv(
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<LogQuery>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let q = q.into_inner();
    let (st, actor) = (state.clone(), auth.actor());
    let rows = with_db(&state, move |conn| {
        let (rows, _) = load_log(conn, &st, code, &q, 100_000)?;
        audit::record(
            conn,
            &st.audit,
            &actor,
            Entry::done(
                code.as_str(),
                "log.export",
                None,
                Some(format!("rows={}", rows.len())),
            ),
        )?;
        Ok(rows)
    })
    .await?;
    let body = crate::csvout::utf8_bom(
        &[
            "連番",
            "日時(UTC)",
            "ログインID",
            "接続元",
            "操作",
            "対象",
            "結果",
            "詳細",
            "MAC",
        ],
        rows.iter().map(|r| {
            vec![
                r.seq.to_string(),
                r.at.to_string(),
                r.login_id.clone().unwrap_or_default(),
                r.client_addr.clone().unwrap_or_default(),
                r.action.clone(),
                r.target.clone().unwrap_or_default(),
                r.outcome.clone(),
                r.detail.clone().unwrap_or_default(),
                r.mac.clone(),
            ]
        }),
    );
    Ok(crate::web::csv_download(
        format!("operation-log-{code}.csv"),
        body,
    ))
}

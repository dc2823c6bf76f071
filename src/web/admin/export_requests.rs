//! Downloads of personal data waiting for an administrator (where the
//! municipality asks for approval): the requests, their approval or
//! refusal, and the setting itself.

use crate::flows::AppState;
use crate::flows::export_approval;
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, Nav, path_id, render, see_other, with_db};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub(super) struct RequestLine {
    id: String,
    what: String,
    requester: String,
    requested: String,
    pending: bool,
    status: String,
    decided_by: String,
}

#[derive(Template)]
#[template(path = "admin/export_requests.html")]
struct RequestsPage {
    t: T,
    nav: Nav,
    csrf: String,
    required: bool,
    lines: Vec<RequestLine>,
}

#[get("/admin/exports")]
pub(super) async fn requests_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let (required, requests) = with_db(&state, move |conn| {
        Ok((
            export_approval::required(conn, code)?,
            export_approval::requests(conn, code)?,
        ))
    })
    .await?;
    let t = ctx.t;
    let lines = requests
        .into_iter()
        .map(|r| RequestLine {
            what: t.code_label("export.kind.", &r.kind),
            pending: r.status == "pending",
            status: t.code_label("export.status.", &r.status),
            requester: r.requester,
            requested: crate::clock::jst(r.requested_at),
            decided_by: r.decided_by.unwrap_or_default(),
            id: r.id,
        })
        .collect();
    render(&RequestsPage {
        nav: Nav::for_account(&auth, "/admin/exports"),
        csrf: auth.session.csrf_token.clone(),
        required,
        lines,
        t,
    })
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    csrf: String,
    #[serde(default)]
    decision: String,
}

#[post("/admin/exports/{id}")]
pub(super) async fn decide(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let id = path_id(&path)?;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "refuse" => false,
        _ => return Err(AppError::BadRequest("decision".into())),
    };
    let (st, admin) = (state.clone(), auth.actor());
    let done = with_db(&state, move |conn| {
        Ok(export_approval::decide(
            conn, &st.audit, &admin, code, &id, approve,
        )?)
    })
    .await?;
    if !done {
        return Err(AppError::NotFound);
    }
    Ok(see_other("/admin/exports"))
}

#[derive(Deserialize)]
pub(super) struct SettingForm {
    csrf: String,
    required: Option<String>,
}

#[post("/admin/exports/setting")]
pub(super) async fn set_required(
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<SettingForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let on = form.required.is_some();
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(export_approval::set_required(
            conn, &st.audit, &actor, code, on,
        )?)
    })
    .await?;
    Ok(see_other("/admin/exports"))
}

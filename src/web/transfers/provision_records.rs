//! The provision records about a resident (who asked for or was given their
//! record, and when), and the notices administrators close.

use crate::domain::Permission;
use crate::flows::AppState;
use crate::flows::provisions::{self, Provision};
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, Nav, in_partition, log_in_scope, path_id, render};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

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

impl ProvisionLine {
    pub fn of(r: &Provision, t: &T) -> Self {
        // An empty code is a municipality withheld for a protected resident.
        let municipality = |code: &str| {
            if code.is_empty() {
                t.s("provisions.withheld").to_string()
            } else {
                format!("{code} {}", provisions::name_of(code))
            }
        };
        ProvisionLine {
            requested: crate::clock::jst(r.requested_at),
            side: r.side.clone(),
            requester: municipality(&r.requester_code),
            account: r.requester_login_id.clone().unwrap_or_default(),
            provider: municipality(&r.provider_code),
            channel: r.channel.clone(),
            purpose: r.purpose.clone(),
            items: r.items.clone(),
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
    csrf: String,
    resident_id: String,
    lines: Vec<ProvisionLine>,
    /// Where this staff member stands with the CSV, if approval is asked.
    export: crate::flows::export_approval::Standing,
}

/// Reads the records about one resident, with the log line of the read.
async fn provisions_of(
    state: &AppState,
    auth: &Authed,
    id: String,
    how: &'static str,
) -> Result<Vec<Provision>, AppError> {
    let code = auth.require_staff(Permission::Residents)?;
    let (st, actor) = (state.clone(), auth.actor());
    in_partition(state, code, move |scope, conn| {
        // A foreign or unknown id is simply not found.
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
pub(super) async fn provisions_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&path)?;
    let rows = provisions_of(&state, &auth, id.clone(), "page").await?;
    let export = crate::web::exports::standing(
        &state,
        &auth,
        crate::flows::export_approval::Export::Provisions(id.clone()),
    )
    .await?;
    render(&ProvisionsPage {
        nav: Nav::for_account(&auth, "/residents"),
        csrf: auth.session.csrf_token.clone(),
        resident_id: id,
        lines: rows.iter().map(|r| ProvisionLine::of(r, &ctx.t)).collect(),
        export,
        t: ctx.t,
    })
}

#[get("/residents/{id}/provisions.csv")]
pub(super) async fn provisions_csv(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path_id(&path)?;
    let export = crate::flows::export_approval::Export::Provisions(id.clone());
    if !crate::web::exports::take(&state, &auth, export).await? {
        return Ok(crate::web::see_other(&format!(
            "/residents/{id}/provisions"
        )));
    }
    let rows = provisions_of(&state, &auth, id, "csv").await?;
    let body = crate::csvout::utf8_bom(
        &provisions::CSV_HEADER,
        rows.iter().map(provisions::csv_line),
    );
    Ok(crate::web::csv_download(
        "provision-records.csv".into(),
        body,
    ))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

#[post("/admin/notices/{id}/close")]
pub(super) async fn close_notice(
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
        if !provisions::close_notice(scope, conn, &id, &by)? {
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

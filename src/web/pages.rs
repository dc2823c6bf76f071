//! Public pages: the top page and the municipality-code checker.

use super::{AppError, Ctx, render, render_form, with_db};
use crate::domain::{MunicipalityCode, MunicipalityKind, Registry};
use crate::flows::AppState;
use crate::i18n::T;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(home).service(check_code);
}

struct TenantView {
    code: String,
    name: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    t: T,
    tenants: Vec<TenantView>,
}

#[get("/")]
async fn home(ctx: Ctx, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let served = with_db(&state, |conn| {
        Ok(crate::flows::municipalities::served_all(conn)?)
    })
    .await?;
    let tenants = served
        .into_iter()
        .map(|m| TenantView {
            code: m.code.to_string(),
            name: m.full_name(),
        })
        .collect();
    render(&HomePage { t: ctx.t, tenants })
}

#[derive(Deserialize)]
struct CodeQuery {
    code: Option<String>,
}

struct CodeView {
    code: String,
    name: String,
    kana: String,
    kind_key: &'static str,
    tenant: bool,
}

#[derive(Template)]
#[template(path = "municipalities/check.html")]
struct CheckPage {
    t: T,
    input: String,
    error: Option<String>,
    result: Option<CodeView>,
}

/// A GET form: checking a code changes nothing, and the page works without
/// JavaScript.
#[get("/municipalities/check")]
async fn check_code(
    ctx: Ctx,
    state: web::Data<AppState>,
    query: web::Query<CodeQuery>,
) -> Result<HttpResponse, AppError> {
    let input = query.code.clone().unwrap_or_default();
    let (mut error, mut result) = (None, None);
    if !input.is_empty() {
        match Registry::global().lookup(MunicipalityCode::FIELD, &input) {
            Ok(m) => {
                let code = m.code.to_string();
                let lookup = m.code;
                let tenant = with_db(&state, move |conn| {
                    Ok(crate::flows::municipalities::served(conn, lookup)?)
                })
                .await?
                .is_some();
                result = Some(CodeView {
                    code,
                    name: m.full_name(),
                    kana: m.name_kana.clone(),
                    kind_key: match m.kind {
                        MunicipalityKind::Prefecture => "code.kind.prefecture",
                        MunicipalityKind::Municipality => "code.kind.municipality",
                        MunicipalityKind::Ward => "code.kind.ward",
                    },
                    tenant,
                });
            }
            Err(e) => {
                let label = ctx.t.s("code.label");
                error = Some(if ctx.t.is_en() {
                    format!("{label}: {}", e.reason.message_en())
                } else {
                    format!("{label}：{}", e.reason.message_ja())
                });
            }
        }
    }
    let status_bad = error.is_some();
    let resp = render_form(
        &CheckPage {
            t: ctx.t,
            input,
            error,
            result,
        },
        status_bad,
    )?;
    Ok(resp)
}

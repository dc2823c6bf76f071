//! The platform operator's screen: which municipalities are tenants, enabling
//! one with its first administrator, and the platform's own operational log.
//! Nothing here opens a municipality's partition.

use super::{AppError, Authed, Ctx, Nav, field_message, render, with_db};
use crate::audit::{self, Entry, PLATFORM_CHAIN};
use crate::db::models::audit_log::AuditRow;
use crate::domain::{LoginId, MunicipalityCode, PersonName, Registry, Role};
use crate::flows::accounts::{self, AccountError, NewAccount};
use crate::flows::municipalities::{self, TenantError};
use crate::i18n::T;
use crate::startup::AppState;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(operator_page).service(enable_municipality);
}

pub struct TenantLine {
    pub code: String,
    pub name: String,
    pub status: String,
    pub key_version: i32,
    pub enabled_at: String,
}

#[derive(Default, Deserialize)]
struct EnableForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    admin_login: String,
    #[serde(default)]
    admin_name: String,
}

#[derive(Default)]
struct EnableErrors {
    code: Option<String>,
    admin_login: Option<String>,
    admin_name: Option<String>,
}

#[derive(Template)]
#[template(path = "operator/index.html")]
struct OperatorPage {
    t: T,
    nav: Nav,
    csrf: String,
    tenants: Vec<TenantLine>,
    log: Vec<super::admin::LogLine>,
    form: EnableForm,
    errors: EnableErrors,
    created: Option<(String, String, String)>,
}

async fn page(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    form: EnableForm,
    errors: EnableErrors,
    created: Option<(String, String, String)>,
) -> Result<HttpResponse, AppError> {
    let (tenants, log) = with_db(state, |conn| {
        Ok((
            municipalities::list(conn).map_err(|e| AppError::Internal(e.to_string()))?,
            AuditRow::recent_of_chain(conn, PLATFORM_CHAIN, 100)?,
        ))
    })
    .await?;
    let bad = errors.code.is_some() || errors.admin_login.is_some() || errors.admin_name.is_some();
    let mut r = render(&OperatorPage {
        nav: Nav::for_account(auth, "/operator"),
        csrf: auth.session.csrf_token.clone(),
        tenants: tenants
            .into_iter()
            .map(|(t, m)| TenantLine {
                name: m.map(|m| m.full_name()).unwrap_or_default(),
                code: t.municipality_code,
                status: t.status,
                key_version: t.active_key_version,
                enabled_at: super::auth::jst(t.enabled_at),
            })
            .collect(),
        log: log.iter().map(super::admin::log_line).collect(),
        form,
        errors,
        created,
        t: ctx.t,
    })?;
    if bad {
        *r.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

#[get("/operator")]
async fn operator_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Operator])?;
    page(
        ctx,
        &auth,
        &state,
        EnableForm::default(),
        EnableErrors::default(),
        None,
    )
    .await
}

#[post("/operator/municipalities")]
async fn enable_municipality(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<EnableForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Operator])?;
    auth.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let t = &ctx.t;
    let msg = |label: &str, e: crate::domain::FieldError| {
        format!("{}: {}", t.s(label), field_message(t, e.reason))
    };
    let mut errors = EnableErrors::default();
    let code = Registry::global()
        .lookup(MunicipalityCode::FIELD, &form.code)
        .map(|m| m.code)
        .map_err(|e| errors.code = Some(msg("code.label", e)))
        .ok();
    let login = LoginId::parse(&form.admin_login)
        .map_err(|e| errors.admin_login = Some(msg("login.id", e)))
        .ok();
    let name = PersonName::parse(&form.admin_name)
        .map_err(|e| errors.admin_name = Some(msg("admin.accounts.name", e)))
        .ok();
    let (Some(code), Some(login), Some(name)) = (code, login, name) else {
        return page(ctx, &auth, &state, form, errors, None).await;
    };
    let (st, actor) = (state.clone(), auth.actor());
    let outcome = with_db(&state, move |conn| {
        let m = match municipalities::enable(conn, &st.master, code) {
            Ok(m) => m,
            Err(TenantError::Db(e)) => return Err(e.into()),
            Err(e) => return Ok(Err((true, e.to_string()))),
        };
        audit::record(
            conn,
            &st.audit,
            &actor,
            Entry {
                chain: PLATFORM_CHAIN,
                action: "municipality.enable",
                target: Some(format!("municipality:{code}")),
                outcome: "ok",
                detail: None,
            },
        )?;
        let new = NewAccount {
            login_id: login,
            role: Role::MunicipalAdmin,
            municipality: Some(code),
            prefecture_code: None,
            display_name: name.as_str().to_string(),
            permissions: Vec::new(),
            expires_on: None,
            device_name: None,
            responsible_person: None,
            must_change_password: true,
        };
        match accounts::create(conn, &st.audit, &actor, new, None) {
            Ok((row, pw)) => Ok(Ok((m.full_name(), row.login_id, pw.as_str().to_string()))),
            Err(AccountError::LoginTaken) => Ok(Err((false, String::new()))),
            Err(AccountError::Db(e)) => Err(e.into()),
        }
    })
    .await?;
    match outcome {
        Ok(created) => {
            page(
                ctx,
                &auth,
                &state,
                EnableForm::default(),
                EnableErrors::default(),
                Some(created),
            )
            .await
        }
        Err((true, _)) => {
            let e = EnableErrors {
                code: Some(ctx.t.s("operator.already_enabled").to_string()),
                ..Default::default()
            };
            page(ctx, &auth, &state, form, e, None).await
        }
        Err((false, _)) => {
            let e = EnableErrors {
                admin_login: Some(ctx.t.s("admin.accounts.login_taken").to_string()),
                ..Default::default()
            };
            page(ctx, &auth, &state, form, e, None).await
        }
    }
}

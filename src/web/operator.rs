//! The platform operator's screen: which municipalities are tenants, enabling
//! one with its first administrator, and the platform's own operational log.
//! Nothing here opens a municipality's partition.

use super::{AppError, Authed, Ctx, Nav, field_message, render_form, with_db};
use crate::audit::{self, Entry, PLATFORM_CHAIN};
use crate::domain::{LoginId, MunicipalityCode, PersonName, Registry, Role};
use crate::flows::AppState;
use crate::flows::accounts::{self, AccountError, NewAccount};
use crate::flows::municipalities::{self, TenantError};
use crate::i18n::T;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(operator_page)
        .service(enable_municipality)
        .service(create_viewer);
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

#[derive(Default, Deserialize)]
struct ViewerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    prefecture: String,
}

#[derive(Template)]
#[template(path = "operator/index.html")]
struct OperatorPage {
    t: T,
    nav: Nav,
    csrf: String,
    tenants: Vec<TenantLine>,
    log: Vec<super::oplog::LogLine>,
    form: EnableForm,
    errors: EnableErrors,
    created: Option<(String, String, String)>,
    viewer_error: Option<String>,
}

async fn page(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    form: EnableForm,
    errors: EnableErrors,
    created: Option<(String, String, String)>,
    viewer_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (tenants, log) = with_db(state, |conn| {
        Ok((
            municipalities::list(conn).map_err(AppError::failed)?,
            crate::audit::recent(conn, PLATFORM_CHAIN, 100)?,
        ))
    })
    .await?;
    let bad = errors.code.is_some()
        || errors.admin_login.is_some()
        || errors.admin_name.is_some()
        || viewer_error.is_some();
    let r = render_form(
        &OperatorPage {
            nav: Nav::for_account(auth, "/operator"),
            csrf: auth.session.csrf_token.clone(),
            tenants: tenants
                .into_iter()
                .map(|(t, m)| TenantLine {
                    name: m.map(|m| m.full_name()).unwrap_or_default(),
                    code: t.municipality_code,
                    status: t.status,
                    key_version: t.active_key_version,
                    enabled_at: crate::clock::jst(t.enabled_at),
                })
                .collect(),
            log: log.iter().map(super::oplog::log_line).collect(),
            form,
            errors,
            created,
            viewer_error,
            t: ctx.t,
        },
        bad,
    )?;
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
        return page(ctx, &auth, &state, form, errors, None, None).await;
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
            Entry::done(
                PLATFORM_CHAIN,
                "municipality.enable",
                Some(format!("municipality:{code}")),
                None,
            ),
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
            site_id: None,
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
                None,
            )
            .await
        }
        Err((true, _)) => {
            let e = EnableErrors {
                code: Some(ctx.t.s("operator.already_enabled").to_string()),
                ..Default::default()
            };
            page(ctx, &auth, &state, form, e, None, None).await
        }
        Err((false, _)) => {
            let e = EnableErrors {
                admin_login: Some(ctx.t.s("admin.accounts.login_taken").to_string()),
                ..Default::default()
            };
            page(ctx, &auth, &state, form, e, None, None).await
        }
    }
}

/// National and prefectural viewers are issued by the operator; a
/// prefectural viewer is bound to one prefecture.
#[post("/operator/viewers")]
async fn create_viewer(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<ViewerForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Operator])?;
    auth.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let t = &ctx.t;
    let msg = |label: &str, e: crate::domain::FieldError| {
        format!("{}: {}", t.s(label), field_message(t, e.reason))
    };
    let login = LoginId::parse(&form.login).map_err(|e| msg("login.id", e));
    let name = PersonName::parse(&form.name).map_err(|e| msg("admin.accounts.name", e));
    let scope = match form.kind.as_str() {
        "national_viewer" => Ok((Role::NationalViewer, None)),
        "prefectural_viewer" => {
            let p = form.prefecture.trim();
            let known = Registry::global().all().any(|m| {
                m.kind == crate::domain::MunicipalityKind::Prefecture
                    && m.code.prefecture_code() == p
            });
            if known {
                Ok((Role::PrefecturalViewer, Some(p.to_string())))
            } else {
                Err(t.s("operator.viewer.prefecture_invalid").to_string())
            }
        }
        _ => Err(t.s("admin.accounts.role_invalid").to_string()),
    };
    let (login, name, (role, prefecture)) = match (login, name, scope) {
        (Ok(l), Ok(n), Ok(s)) => (l, n, s),
        (l, n, s) => {
            let e = [l.err(), n.err(), s.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" / ");
            return page(
                ctx,
                &auth,
                &state,
                EnableForm::default(),
                EnableErrors::default(),
                None,
                Some(e),
            )
            .await;
        }
    };
    let (st, actor) = (state.clone(), auth.actor());
    let created = with_db(&state, move |conn| {
        let new = NewAccount {
            login_id: login,
            role,
            municipality: None,
            prefecture_code: prefecture,
            display_name: name.as_str().to_string(),
            permissions: Vec::new(),
            expires_on: None,
            device_name: None,
            responsible_person: None,
            site_id: None,
            must_change_password: true,
        };
        match accounts::create(conn, &st.audit, &actor, new, None) {
            Ok((row, pw)) => Ok(Some((
                row.display_name,
                row.login_id,
                pw.as_str().to_string(),
            ))),
            Err(AccountError::LoginTaken) => Ok(None),
            Err(AccountError::Db(e)) => Err(e.into()),
        }
    })
    .await?;
    match created {
        Some(c) => {
            page(
                ctx,
                &auth,
                &state,
                EnableForm::default(),
                EnableErrors::default(),
                Some(c),
                None,
            )
            .await
        }
        None => {
            let e = ctx.t.s("admin.accounts.login_taken").to_string();
            page(
                ctx,
                &auth,
                &state,
                EnableForm::default(),
                EnableErrors::default(),
                None,
                Some(e),
            )
            .await
        }
    }
}

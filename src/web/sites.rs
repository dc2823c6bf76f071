//! The administrator's vaccination sites: register, list with their
//! tablets, close. Tablet accounts are issued on the accounts page, bound
//! to one of these sites.

use super::{AppError, Authed, Ctx, Nav, field_message, path_id, render, with_db};
use crate::domain::Role;
use crate::flows::AppState;
use crate::flows::sites::{self, SiteKind, SiteName};
use crate::i18n::T;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(register).service(close);
}

struct SiteView {
    id: String,
    name: String,
    kind: &'static str,
    open: bool,
    tablets: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/sites.html")]
struct SitesPage {
    t: T,
    nav: Nav,
    csrf: String,
    sites: Vec<SiteView>,
    name: String,
    kind: String,
    error: Option<String>,
    registered: bool,
}

#[derive(Deserialize)]
struct ListQuery {
    registered: Option<u8>,
}

async fn page(
    ctx: &Ctx,
    auth: &Authed,
    state: &AppState,
    form: (String, String, Option<String>),
    registered: bool,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let (rows, accounts) = with_db(state, move |conn| {
        Ok((
            crate::flows::sites::of_municipality(conn, code)?,
            crate::flows::accounts::of_municipality(conn, code)?,
        ))
    })
    .await?;
    let sites = rows
        .into_iter()
        .map(|s| SiteView {
            tablets: accounts
                .iter()
                .filter(|a| {
                    a.site_id.as_deref() == Some(s.id.as_str()) && a.role == Role::SiteTablet.code()
                })
                .map(|a| {
                    format!(
                        "{} ({})",
                        a.login_id,
                        a.device_name.clone().unwrap_or_default()
                    )
                })
                .collect(),
            kind: match s.kind {
                Some(SiteKind::Clinic) => "sites.kind.clinic",
                _ => "sites.kind.mass",
            },
            open: s.open,
            id: s.id,
            name: s.name,
        })
        .collect();
    let (name, kind, error) = form;
    let status = if error.is_some() {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        actix_web::http::StatusCode::OK
    };
    let mut resp = render(&SitesPage {
        nav: Nav::for_account(auth, "/admin/sites"),
        csrf: auth.session.csrf_token.clone(),
        sites,
        name,
        kind,
        error,
        registered,
        t: ctx.t.clone(),
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

#[get("/admin/sites")]
async fn list(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    page(
        &ctx,
        &auth,
        &state,
        (String::new(), "mass".into(), None),
        q.registered == Some(1),
    )
    .await
}

#[derive(Deserialize)]
struct SiteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
}

#[post("/admin/sites")]
async fn register(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<SiteForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let code = auth.require_admin()?;
    let form = form.into_inner();
    // Each field parsed as its own type; the first that is wrong is named.
    let parsed = SiteName::parse(&form.name)
        .map_err(|e| ("sites.name", e.reason))
        .and_then(|name| match SiteKind::parse(&form.kind) {
            Some(kind) => Ok((name, kind)),
            None => Err(("sites.kind", crate::domain::Reason::UnknownChoice)),
        });
    let (name, kind) = match parsed {
        Ok(p) => p,
        Err((label, reason)) => {
            let msg = format!("{}: {}", ctx.t.s(label), field_message(&ctx.t, reason));
            // What was typed is shown again, but never a value no option has.
            let kind = SiteKind::parse(&form.kind)
                .map(|k| k.code().to_string())
                .unwrap_or_default();
            return page(&ctx, &auth, &state, (form.name, kind, Some(msg)), false).await;
        }
    };
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(sites::register(conn, &st.audit, &actor, code, &name, kind)?)
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/admin/sites?registered=1"))
        .finish())
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

#[post("/admin/sites/{id}/close")]
async fn close(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let code = auth.require_admin()?;
    let id = path_id(&path)?;
    let (st, actor) = (state.clone(), auth.actor());
    let closed = with_db(&state, move |conn| {
        Ok(sites::close(conn, &st.audit, &actor, code, &id)?)
    })
    .await?;
    if !closed {
        return Err(AppError::NotFound);
    }
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/admin/sites"))
        .finish())
}

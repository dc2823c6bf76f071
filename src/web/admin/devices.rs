//! A site tablet's device: the one-time code an administrator issues for
//! enrolling it (shown once, with what to do on the tablet), the
//! revocation of a lost device in one step, and the review of the shared
//! account.

use super::accounts::{CsrfOnly, account_action};
use crate::flows::AppState;
use crate::flows::accounts;
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, Nav, path_id, render, with_db};
use actix_web::{HttpResponse, post, web};
use askama::Template;

#[derive(Template)]
#[template(path = "admin/device_code.html")]
struct CodePage {
    t: T,
    nav: Nav,
    code: String,
    minutes: i64,
}

#[post("/admin/accounts/{id}/device-code")]
pub(super) async fn device_code(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let id = path_id(&id)?;
    let (st, actor) = (state.clone(), auth.actor());
    let issued = with_db(&state, move |conn| {
        Ok(accounts::issue_code(conn, &st.audit, &actor, code, &id)?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    let mut r = render(&CodePage {
        nav: Nav::for_account(&auth, "/admin/accounts"),
        code: issued,
        minutes: accounts::CODE_MINUTES,
        t: ctx.t,
    })?;
    r.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

#[post("/admin/accounts/{id}/shared-review")]
pub(super) async fn shared_review(
    auth: Authed,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    account_action(
        auth,
        state,
        id.into_inner(),
        &form.csrf,
        accounts::mark_shared_reviewed,
    )
    .await
}

#[post("/admin/accounts/{id}/device-revoke")]
pub(super) async fn device_revoke(
    auth: Authed,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    account_action(
        auth,
        state,
        id.into_inner(),
        &form.csrf,
        accounts::revoke_device,
    )
    .await
}

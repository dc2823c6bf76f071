//! Enrolling a site tablet's browser (`/device`): its login and the
//! one-time code an administrator issued; the browser keeps the device key
//! in an HttpOnly cookie, and the account then logs in only from it.

use super::auth::{PRELOGIN_COOKIE, check_prelogin, cookie};
use super::{AppError, Ctx, render, render_form, with_db};
use crate::flows::AppState;
use crate::flows::accounts;
use crate::i18n::T;
use actix_web::cookie::time::Duration;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(device_form).service(device_enrol);
}

#[derive(Template)]
#[template(path = "auth/device.html")]
struct DevicePage {
    t: T,
    csrf: String,
    login_id: String,
    error: bool,
    enrolled: bool,
}

/// A device key lasts as long as the device is in service.
const KEY_YEARS: i64 = 5;

#[get("/device")]
async fn device_form(req: HttpRequest, ctx: Ctx) -> Result<HttpResponse, AppError> {
    let csrf = uuid::Uuid::new_v4().simple().to_string();
    let mut resp = render(&DevicePage {
        t: ctx.t,
        csrf: csrf.clone(),
        login_id: String::new(),
        error: false,
        enrolled: false,
    })?;
    resp.add_cookie(&cookie(&req, PRELOGIN_COOKIE, csrf))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(resp)
}

#[derive(Deserialize)]
struct DeviceForm {
    csrf: String,
    #[serde(default)]
    login_id: String,
    #[serde(default)]
    code: String,
}

#[post("/device")]
async fn device_enrol(
    req: HttpRequest,
    ctx: Ctx,
    state: web::Data<AppState>,
    form: web::Form<DeviceForm>,
) -> Result<HttpResponse, AppError> {
    check_prelogin(&req, &form.csrf)?;
    let form = form.into_inner();
    let addr = super::auth::client_addr(&req);
    let st = state.clone();
    let (login, code) = (form.login_id.clone(), form.code);
    let key = with_db(&state, move |conn| {
        Ok(accounts::enrol(conn, &st.audit, &login, &code, &addr)?)
    })
    .await?;
    let enrolled = key.is_some();
    let page = DevicePage {
        t: ctx.t,
        csrf: form.csrf,
        login_id: form.login_id,
        error: !enrolled,
        enrolled,
    };
    let mut resp = render_form(&page, !enrolled)?;
    if let Some(key) = key {
        let mut c = cookie(&req, accounts::DEVICE_COOKIE, key);
        c.set_max_age(Duration::days(365 * KEY_YEARS));
        resp.add_cookie(&c)
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    Ok(resp)
}

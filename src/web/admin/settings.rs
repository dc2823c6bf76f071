//! The municipality's settings: its LG-WAN networks, the second-factor
//! requirement, and which certificate channels answer.

use crate::audit::{Actor, AuditKey};
use crate::domain::{MunicipalityCode, Network};
use crate::flows::AppState;
use crate::flows::certificates::{self, Channel};
use crate::flows::{accounts, municipalities, networks};
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, Nav, field_message, render_form, with_db};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "admin/networks.html")]
struct NetworksPage {
    t: T,
    nav: Nav,
    csrf: String,
    networks: Vec<networks::Declared>,
    client: String,
    client_inside: bool,
    input: String,
    label: String,
    error: Option<String>,
    require_totp: bool,
    channel_app: bool,
    channel_kiosk: bool,
    rules: accounts::PasswordRules,
    rules_error: Option<String>,
    require_devices: bool,
}

async fn networks_render(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    input: String,
    label: String,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    settings_render(ctx, auth, state, (input, label, error), None).await
}

/// The settings page; `network` is the network form as typed, with its
/// error, and `rules_error` the password rules' error.
async fn settings_render(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    network: (String, String, Option<String>),
    rules_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (input, label, error) = network;
    let code = auth.require_admin()?;
    let (rows, settings, rules, require_devices) = with_db(state, move |conn| {
        let settings = municipalities::served(conn, code)?;
        let rules = accounts::rules_of(conn, Some(code.as_str()))?;
        let devices = accounts::devices_required(conn, code.as_str())?;
        Ok((networks::list(conn, code)?, settings, rules, devices))
    })
    .await?;
    let require_totp = settings.as_ref().is_some_and(|t| t.require_totp);
    let channels = settings.map(|t| t.channels).unwrap_or_default();
    let client_inside = auth.client_ip.is_some_and(|ip| {
        rows.iter()
            .filter_map(|n| Network::parse(&n.cidr).ok())
            .any(|n| n.contains(&ip))
    });
    let bad = error.is_some() || rules_error.is_some();
    let r = render_form(
        &NetworksPage {
            nav: Nav::for_account(auth, "/admin/networks"),
            csrf: auth.session.csrf_token.clone(),
            networks: rows,
            client: auth.addr.clone(),
            client_inside,
            input,
            label,
            error,
            require_totp,
            channel_app: channels.contains(&Channel::App),
            channel_kiosk: channels.contains(&Channel::Kiosk),
            rules,
            rules_error,
            require_devices,
            t: ctx.t,
        },
        bad,
    )?;
    Ok(r)
}

/// The administrator's municipality, once the settings form's CSRF token
/// is this session's.
fn posted(auth: &Authed, csrf: &str) -> Result<MunicipalityCode, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(csrf)?;
    Ok(code)
}

/// Saves one of the municipality's settings (each flow writes its own log
/// line) and goes back to the settings page, which shows the result.
async fn save<T, F>(
    state: &AppState,
    auth: &Authed,
    code: MunicipalityCode,
    work: F,
) -> Result<HttpResponse, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::db::DbConn, &AuditKey, &Actor, MunicipalityCode) -> Result<T, AppError>
        + Send
        + 'static,
{
    let (st, actor) = (state.clone(), auth.actor());
    with_db(state, move |conn| work(conn, &st.audit, &actor, code)).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/admin/networks"))
        .finish())
}

#[get("/admin/networks")]
pub(super) async fn networks_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    networks_render(ctx, &auth, &state, String::new(), String::new(), None).await
}

#[derive(Deserialize)]
struct NetworkForm {
    csrf: String,
    cidr: String,
    #[serde(default)]
    label: String,
}

#[post("/admin/networks")]
pub(super) async fn add_network(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<NetworkForm>,
) -> Result<HttpResponse, AppError> {
    let code = posted(&auth, &form.csrf)?;
    let form = form.into_inner();
    // The label is optional, but one given is text like any other: nothing
    // hidden, not cut silently.
    if let Err(e) = crate::domain::parse_optional_text("名称", &form.label, 100) {
        let msg = format!(
            "{}: {}",
            ctx.t.s("admin.networks.label"),
            field_message(&ctx.t, e.reason)
        );
        return networks_render(ctx, &auth, &state, form.cidr, form.label, Some(msg)).await;
    }
    match Network::parse(&form.cidr) {
        Ok(net) => {
            let label = form.label.clone();
            save(&state, &auth, code, move |conn, key, actor, code| {
                Ok(networks::add(conn, key, actor, code, net, &label)?)
            })
            .await
        }
        Err(e) => {
            let msg = format!(
                "{}: {}",
                ctx.t.s("admin.networks.cidr"),
                field_message(&ctx.t, e.reason)
            );
            networks_render(ctx, &auth, &state, form.cidr, form.label, Some(msg)).await
        }
    }
}

#[post("/admin/networks/delete")]
pub(super) async fn remove_network(
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<NetworkForm>,
) -> Result<HttpResponse, AppError> {
    let code = posted(&auth, &form.csrf)?;
    let net = Network::parse(&form.cidr).map_err(|_| AppError::NotFound)?;
    save(&state, &auth, code, move |conn, key, actor, code| {
        Ok(networks::remove(conn, key, actor, code, net)?)
    })
    .await
}

#[derive(Deserialize)]
struct SecurityForm {
    csrf: String,
    require_totp: Option<String>,
    require_devices: Option<String>,
}

/// Turns the second-factor requirement on or off for the municipality.
#[post("/admin/security")]
pub(super) async fn set_security(
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<SecurityForm>,
) -> Result<HttpResponse, AppError> {
    let code = posted(&auth, &form.csrf)?;
    let (totp, devices) = (form.require_totp.is_some(), form.require_devices.is_some());
    save(&state, &auth, code, move |conn, key, actor, code| {
        municipalities::set_require_totp(conn, key, actor, code, totp)?;
        Ok(accounts::require_devices(conn, key, actor, code, devices)?)
    })
    .await
}

#[derive(Deserialize)]
struct RulesForm {
    csrf: String,
    #[serde(default)]
    max_days: String,
    #[serde(default)]
    reuse: String,
}

/// How long passwords last and how many earlier ones may not be chosen
/// again, for the municipality's accounts.
#[post("/admin/password-rules")]
pub(super) async fn set_password_rules(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<RulesForm>,
) -> Result<HttpResponse, AppError> {
    let code = posted(&auth, &form.csrf)?;
    let number = |label: &str, v: &str, max: u32| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                format!(
                    "{}: {}",
                    ctx.t.s(label),
                    ctx.t
                        .s("form.whole_number")
                        .replace("{min}", "0")
                        .replace("{max}", &max.to_string())
                )
            })
    };
    let rules = number(
        "admin.password_rules.max_days",
        &form.max_days,
        accounts::PasswordRules::MAX_DAYS,
    )
    .and_then(|max_days| {
        let reuse = number(
            "admin.password_rules.reuse",
            &form.reuse,
            accounts::PasswordRules::MAX_REUSE,
        )?;
        Ok(accounts::PasswordRules { max_days, reuse })
    });
    let rules = match rules {
        Ok(r) => r,
        Err(msg) => {
            let none = (String::new(), String::new(), None);
            return settings_render(ctx, &auth, &state, none, Some(msg)).await;
        }
    };
    save(&state, &auth, code, move |conn, key, actor, code| {
        Ok(accounts::set_rules(conn, key, actor, code, rules)?)
    })
    .await
}

#[derive(Deserialize)]
struct ChannelsForm {
    csrf: String,
    app: Option<String>,
    kiosk: Option<String>,
}

/// Which certificate channels (app, kiosk) answer for the municipality.
#[post("/admin/certificate-channels")]
pub(super) async fn set_channels(
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<ChannelsForm>,
) -> Result<HttpResponse, AppError> {
    let code = posted(&auth, &form.csrf)?;
    let mut on = Vec::new();
    if form.app.is_some() {
        on.push(Channel::App);
    }
    if form.kiosk.is_some() {
        on.push(Channel::Kiosk);
    }
    save(&state, &auth, code, move |conn, key, actor, code| {
        Ok(certificates::set_channels(conn, key, actor, code, &on)?)
    })
    .await
}

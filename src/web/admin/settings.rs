//! The municipality's settings: its LG-WAN networks, the second-factor
//! requirement, and which certificate channels answer.

use crate::domain::Network;
use crate::flows::AppState;
use crate::flows::networks;
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, Nav, field_message, render, with_db};
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
}

async fn networks_render(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    input: String,
    label: String,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let (rows, settings) = with_db(state, move |conn| {
        let settings = crate::flows::municipalities::served(conn, code)?;
        Ok((networks::list(conn, code)?, settings))
    })
    .await?;
    let require_totp = settings.as_ref().is_some_and(|t| t.require_totp);
    let channels = settings.map(|t| t.channels).unwrap_or_default();
    use crate::flows::certificates::Channel;
    let client_inside = auth.client_ip.is_some_and(|ip| {
        rows.iter()
            .filter_map(|n| Network::parse(&n.cidr).ok())
            .any(|n| n.contains(&ip))
    });
    let bad = error.is_some();
    let mut r = render(&NetworksPage {
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
        t: ctx.t,
    })?;
    if bad {
        *r.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
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
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
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
            let (st, actor, label) = (state.clone(), auth.actor(), form.label.clone());
            with_db(&state, move |conn| {
                Ok(networks::add(conn, &st.audit, &actor, code, net, &label)?)
            })
            .await?;
            Ok(HttpResponse::SeeOther()
                .insert_header(("location", "/admin/networks"))
                .finish())
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
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let net = Network::parse(&form.cidr).map_err(|_| AppError::NotFound)?;
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(networks::remove(conn, &st.audit, &actor, code, net)?)
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/admin/networks"))
        .finish())
}

#[derive(Deserialize)]
struct SecurityForm {
    csrf: String,
    require_totp: Option<String>,
}

/// Turns the second-factor requirement on or off for the municipality.
#[post("/admin/security")]
pub(super) async fn set_security(
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<SecurityForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let on = form.require_totp.is_some();
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(crate::flows::municipalities::set_require_totp(
            conn, &st.audit, &actor, code, on,
        )?)
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/admin/networks"))
        .finish())
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
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    use crate::flows::certificates::Channel;
    let mut on = Vec::new();
    if form.app.is_some() {
        on.push(Channel::App);
    }
    if form.kiosk.is_some() {
        on.push(Channel::Kiosk);
    }
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(crate::flows::certificates::set_channels(
            conn, &st.audit, &actor, code, &on,
        )?)
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/admin/networks"))
        .finish())
}

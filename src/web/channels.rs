//! The operator's register of certificate channel clients (a citizen app's
//! backend, the kiosk issuance centre): each gets its own secret, shown
//! once, and can be revoked. Municipalities choose which channels answer.

use super::{AppError, Authed, Ctx, Nav, render_form, with_db};
use crate::domain::{Network, Role};
use crate::flows::AppState;
use crate::flows::certificates::{self as flow, Channel};
use crate::i18n::T;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(register).service(revoke);
}

pub struct ClientLine {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub networks: String,
    pub created_at: String,
    pub revoked_at: String,
}

#[derive(Template)]
#[template(path = "operator/channels.html")]
struct ChannelsPage {
    t: T,
    nav: Nav,
    csrf: String,
    clients: Vec<ClientLine>,
    /// The new client's name and secret, right after registering.
    created: Option<(String, String)>,
    error: Option<String>,
    name: String,
}

async fn page(
    t: T,
    auth: &Authed,
    state: &AppState,
    created: Option<(String, String)>,
    error: Option<String>,
    name: String,
) -> Result<HttpResponse, AppError> {
    let rows = with_db(state, |conn| Ok(flow::clients(conn)?)).await?;
    let bad = error.is_some();
    let mut r = render_form(
        &ChannelsPage {
            nav: Nav::for_account(auth, "/operator/channels"),
            csrf: auth.session.csrf_token.clone(),
            clients: rows
                .into_iter()
                .map(|c| ClientLine {
                    id: c.id,
                    name: c.name,
                    kind: c.kind,
                    networks: c.networks.join(", "),
                    created_at: crate::clock::jst(c.created_at),
                    revoked_at: c.revoked_at.map(crate::clock::jst).unwrap_or_default(),
                })
                .collect(),
            created,
            error,
            name,
            t,
        },
        bad,
    )?;
    r.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

#[get("/operator/channels")]
async fn list(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Operator])?;
    page(ctx.t, &auth, &state, None, None, String::new()).await
}

#[derive(Deserialize)]
struct RegisterForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    /// CIDRs, separated by commas, spaces or lines.
    #[serde(default)]
    networks: String,
}

#[post("/operator/channels")]
async fn register(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<RegisterForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Operator])?;
    auth.check_csrf(&form.csrf)?;
    let t = ctx.t;
    let shown = form.name.trim().chars().take(80).collect::<String>();
    // Each field's own error: the name as any text, the kind one of the
    // machine channels.
    let name = match crate::domain::parse_text("名称", &form.name, 80) {
        Ok(n) => n,
        Err(e) => {
            let msg = format!(
                "{}: {}",
                t.s("channels.name"),
                super::field_message(&t, e.reason)
            );
            return page(t, &auth, &state, None, Some(msg), shown).await;
        }
    };
    let Some(kind) = Channel::parse(form.kind.trim()).filter(|k| *k != Channel::Window) else {
        let msg = format!(
            "{}: {}",
            t.s("channels.kind"),
            super::field_message(&t, crate::domain::Reason::UnknownChoice)
        );
        return page(t, &auth, &state, None, Some(msg), name).await;
    };
    let parsed: Result<Vec<Network>, _> = form
        .networks
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(Network::parse)
        .collect();
    let networks = match parsed {
        Ok(n) if kind == Channel::Kiosk && n.is_empty() => {
            let msg = t.s("channels.kiosk_needs_network").to_string();
            return page(t, &auth, &state, None, Some(msg), name).await;
        }
        Ok(n) => n,
        Err(e) => {
            let msg = format!(
                "{}: {}",
                t.s("channels.networks"),
                super::field_message(&t, e.reason)
            );
            return page(t, &auth, &state, None, Some(msg), name).await;
        }
    };
    let (st, actor, n) = (state.clone(), auth.actor(), name.clone());
    let (_, secret) = with_db(&state, move |conn| {
        Ok(flow::register_client(
            conn, &st.audit, &actor, &n, kind, &networks,
        )?)
    })
    .await?;
    page(t, &auth, &state, Some((name, secret)), None, String::new()).await
}

#[derive(Deserialize)]
struct RevokeForm {
    csrf: String,
    id: String,
}

#[post("/operator/channels/revoke")]
async fn revoke(
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Operator])?;
    auth.check_csrf(&form.csrf)?;
    let id = super::path_id(&form.id)?;
    let (st, actor) = (state.clone(), auth.actor());
    with_db(&state, move |conn| {
        Ok(flow::revoke_client(conn, &st.audit, &actor, &id)?)
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/operator/channels"))
        .finish())
}

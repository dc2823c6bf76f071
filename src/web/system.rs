//! Machine-facing system endpoints: health, issuer keys, language switch.

use super::{AppError, with_db};
use crate::i18n::Lang;
use crate::startup::AppState;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpResponse, get, web};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(health)
        .service(jwks)
        .service(crl)
        .service(switch_lang);
}

/// Liveness and database reachability, for load balancers and monitoring.
#[get("/health")]
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let db = with_db(&state, |conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute("SELECT 1").map_err(AppError::from)
    })
    .await;
    let ok = db.is_ok();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "database": if ok { "ok" } else { "unreachable" },
        "version": env!("CARGO_PKG_VERSION"),
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The issuer's public keys, for any verifier (CORS open, as SMART Health
/// Cards verifiers fetch it from other origins).
#[get("/.well-known/jwks.json")]
async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let jwks = with_db(&state, |conn| Ok(crate::flows::issuer::jwks(conn)?)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("access-control-allow-origin", "*"))
        .insert_header(("cache-control", "public, max-age=300"))
        .json(jwks))
}

/// One issuer key's card revocation list (SMART Health Cards: method
/// `rid`, `ctr` equal to the key's `crlVersion` in the JWKS).
#[get("/.well-known/crl/{file}")]
async fn crl(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let kid = path
        .strip_suffix(".json")
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .filter(|k| {
            k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .ok_or(AppError::NotFound)?
        .to_string();
    let list = with_db(&state, move |conn| {
        Ok(crate::flows::issuer::crl(conn, &kid)?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header(("access-control-allow-origin", "*"))
        .insert_header(("cache-control", "public, max-age=60"))
        .json(list))
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Sets the language cookie and returns to the page the person was on.
#[get("/lang/{code}")]
async fn switch_lang(
    path: web::Path<String>,
    query: web::Query<Next>,
    transport: web::Data<super::frame::Transport>,
) -> Result<HttpResponse, AppError> {
    let lang = Lang::parse(&path).ok_or(AppError::NotFound)?;
    // Only same-site paths: never an open redirect.
    let next = query
        .next
        .as_deref()
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/");
    let cookie = Cookie::build(super::frame::LANG_COOKIE, lang.code())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(transport.secure)
        .max_age(actix_web::cookie::time::Duration::days(365))
        .finish();
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", next))
        .cookie(cookie)
        .finish())
}

//! Machine-facing system endpoints: health, issuer keys, language switch.

use super::{AppError, with_db};
use crate::flows::AppState;
use crate::i18n::Lang;
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
    let db = with_db(&state, |conn| Ok(crate::db::ping(conn)?)).await;
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

/// A return address given by the client, if it is a path of this site
/// that a `Location` header can carry as it is: one leading `/` (`//host`
/// and `/\\host` are other hosts to a browser, which also drops tabs and
/// line breaks before reading it), printable ASCII only (a control
/// character cannot be sent in a header at all).
fn same_site_path(next: &str) -> Option<&str> {
    let mut chars = next.chars();
    let ok = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && next.chars().all(|c| c.is_ascii_graphic() && c != '\\');
    ok.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::same_site_path;

    #[test]
    fn only_plain_paths_of_this_site_are_return_addresses() {
        for good in [
            "/",
            "/residents",
            "/municipalities/check?code=082040",
            "/a/b#c",
        ] {
            assert_eq!(same_site_path(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/x",
            "/\r\n/x",
            "/ /x",
            "/\u{7f}",
            "/あ",
            "evil.example",
            "/x\\y",
        ] {
            assert_eq!(same_site_path(bad), None, "{bad:?}");
        }
    }
}

/// Sets the language cookie and returns to the page the person was on.
#[get("/lang/{code}")]
async fn switch_lang(
    path: web::Path<String>,
    query: web::Query<Next>,
    transport: web::Data<super::frame::Transport>,
) -> Result<HttpResponse, AppError> {
    let lang = Lang::parse(&path).ok_or(AppError::NotFound)?;
    let next = query
        .next
        .as_deref()
        .and_then(same_site_path)
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

//! The frame around every request: request id, language, security headers,
//! error pages, and one access-log line with individual-number-like digit
//! runs masked.

use crate::config::AccessLog;
use crate::domain::mask_number_like;
use crate::i18n::{Lang, T};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use std::future::{Ready, ready};
use std::net::IpAddr;

pub const LANG_COOKIE: &str = "lang";

/// How requests reach us: over TLS or not (cookies get `Secure`, HSTS is
/// sent), and through which trusted reverse proxies.
pub struct Transport {
    pub secure: bool,
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Transport {
    /// The client's address: the socket's, unless the socket is a trusted
    /// proxy; then the nearest X-Forwarded-For hop that is not one.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let trusted = |ip: &IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        let peer = peer?;
        if !trusted(&peer) {
            return Some(peer);
        }
        let hops = forwarded_for.unwrap_or("");
        for hop in hops.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if trusted(&ip) => continue,
                Ok(ip) => return Some(ip),
                Err(_) => return None,
            }
        }
        Some(peer)
    }

    /// The host the client addressed: the request's own (`Host`, or the
    /// authority of an HTTP/2 request), or, from a trusted proxy only, the
    /// one it forwarded (`X-Forwarded-Host`). A header a client sets itself
    /// names nothing.
    pub fn host(&self, peer: Option<IpAddr>, req: &actix_web::dev::RequestHead) -> Option<String> {
        let trusted = peer.is_some_and(|p| self.trusted_proxies.iter().any(|n| n.contains(&p)));
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').next().unwrap_or("").trim().to_string())
        };
        if trusted && let Some(forwarded) = header("x-forwarded-host") {
            return Some(forwarded);
        }
        header("host").or_else(|| req.uri.authority().map(|a| a.as_str().to_string()))
    }
}

/// Set by the frame on every request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub request_id: String,
    pub lang: Lang,
    /// None when a trusted proxy forwarded something that is not an address.
    pub client_ip: Option<IpAddr>,
}

/// What a page handler needs to render: the translator and the request id.
#[derive(Clone)]
pub struct Ctx {
    pub t: T,
    pub request_id: String,
}

impl FromRequest for Ctx {
    type Error = Error;
    type Future = Ready<Result<Ctx, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let info = req
            .extensions()
            .get::<RequestInfo>()
            .cloned()
            .unwrap_or_else(|| RequestInfo {
                request_id: new_request_id(),
                lang: Lang::Ja,
                client_ip: None,
            });
        ready(Ok(Ctx {
            t: T::new(info.lang, req.path()),
            request_id: info.request_id,
        }))
    }
}

fn new_request_id() -> String {
    let id = uuid::Uuid::new_v4();
    id.simple().to_string()[..16].to_string()
}

/// Machine-facing paths answer errors in JSON, everything else with a page.
fn wants_json(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/.well-known/") || path == "/health"
}

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    t: T,
    status: u16,
    title: &'a str,
    message: &'a str,
    request_id: &'a str,
}

/// The title and message of an error page: by the error's kind where the
/// kind says more than its status, else by the status.
fn error_keys(status: u16, err: Option<&super::AppError>) -> (&'static str, &'static str) {
    match err {
        Some(super::AppError::OutsideLgwan) => return ("error.lgwan.title", "error.lgwan.message"),
        Some(super::AppError::Busy(_)) => return ("error.busy.title", "error.busy.message"),
        _ => {}
    }
    match status {
        400 | 422 => ("error.400.title", "error.400.message"),
        401 | 403 => ("error.403.title", "error.403.message"),
        404 => ("error.404.title", "error.404.message"),
        405 => ("error.405.title", "error.405.message"),
        413 => ("error.413.title", "error.413.message"),
        414 => ("error.414.title", "error.414.message"),
        503 => ("error.503.title", "error.503.message"),
        _ => ("error.500.title", "error.500.message"),
    }
}

fn error_body(
    status: u16,
    path: &str,
    info: &RequestInfo,
    err: Option<&super::AppError>,
) -> HttpResponse {
    let mut builder = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    );
    let busy = matches!(err, Some(super::AppError::Busy(_)));
    if busy {
        builder.insert_header((header::RETRY_AFTER, super::error::BUSY_RETRY_AFTER_SECS));
    }
    if wants_json(path) {
        use super::api::wire::{ApiError, ErrorCode};
        let code = match status {
            _ if busy => ErrorCode::Busy,
            400 | 422 => ErrorCode::BadRequest,
            401 | 403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            405 => ErrorCode::MethodNotAllowed,
            413 => ErrorCode::TooLarge,
            414 => ErrorCode::UriTooLong,
            503 => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        };
        let body = ApiError {
            request_id: Some(info.request_id.clone()),
            ..ApiError::of(code)
        };
        return builder.json(if busy { body.saying_busy() } else { body });
    }
    let t = T::new(info.lang, path);
    let (title_key, message_key) = error_keys(status, err);
    let page = ErrorPage {
        status,
        title: t.s(title_key),
        message: t.s(message_key),
        request_id: &info.request_id,
        t: t.clone(),
    };
    match page.render() {
        Ok(html) => builder.content_type("text/html; charset=utf-8").body(html),
        Err(_) => builder
            .content_type("text/plain; charset=utf-8")
            .body(format!("{status} — request id {}", info.request_id)),
    }
}

fn lang_of(req: &ServiceRequest) -> Lang {
    req.cookie(LANG_COOKIE)
        .and_then(|c| Lang::parse(c.value()))
        .unwrap_or_default()
}

/// The longest request address (path and query) any route takes: far
/// above any link or search this application makes.
const MAX_URI_BYTES: usize = 8 * 1024;

/// The answer to a request refused before any handler runs: its error page
/// (or JSON), the security headers and the request id, as every answer.
fn refused_before_handlers(
    req: ServiceRequest,
    status: u16,
    path: &str,
    info: &RequestInfo,
    secure: bool,
) -> ServiceResponse<BoxBody> {
    let (r, _) = req.into_parts();
    let mut res = ServiceResponse::new(r, error_body(status, path, info, None));
    set_security_headers(res.headers_mut(), secure, false);
    set_request_id(res.headers_mut(), info);
    res
}

fn set_request_id(headers: &mut actix_web::http::header::HeaderMap, info: &RequestInfo) {
    if let Ok(v) = HeaderValue::from_str(&info.request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
}

pub async fn frame(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = std::time::Instant::now();
    let transport = req.app_data::<web::Data<Transport>>().cloned();
    let access_log = req.app_data::<web::Data<AccessLog>>().cloned();
    let secure = transport.as_ref().is_some_and(|t| t.secure);
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let peer = req.peer_addr().map(|a| a.ip());
    let info = RequestInfo {
        request_id: new_request_id(),
        lang: lang_of(&req),
        client_ip: match &transport {
            Some(t) => t.client_ip(peer, forwarded.as_deref()),
            None => peer,
        },
    };
    req.extensions_mut().insert(info.clone());
    let method = req.method().to_string();
    let path = req.path().to_string();

    // An address longer than any route takes is refused before anything
    // reads it, with the same page on every route.
    if req.uri().to_string().len() > MAX_URI_BYTES {
        tracing::debug!(request_id = %info.request_id, "over-long address refused");
        let short: String = path.chars().take(64).collect();
        return Ok(refused_before_handlers(req, 414, &short, &info, secure));
    }

    // A state-changing request from another origin is refused before any
    // handler runs (the CSRF token is checked again by each form).
    if !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS")
        && cross_origin(&req, transport.as_ref().map(|t| t.get_ref()), peer)
    {
        tracing::warn!(request_id = %info.request_id, path = %mask_number_like(&path), "cross-origin request refused");
        return Ok(refused_before_handlers(req, 403, &path, &info, secure));
    }

    // Whatever a handler logs while it runs (an API refusal's fault, which
    // never reaches the error page below) carries the request id.
    let res = tracing::Instrument::instrument(
        next.call(req),
        tracing::error_span!("request", id = %info.request_id),
    )
    .await?;
    let status = res.status().as_u16();
    // Errors raised by handlers (and unknown routes) get the full error page;
    // a page that chose its own status (a form shown again with a 422) keeps it.
    // Pages send a person to where they can go on; machines get the status.
    let redirect_to = match res
        .response()
        .error()
        .and_then(|e| e.as_error::<super::AppError>())
    {
        Some(super::AppError::LoginRequired(why)) => Some(match why {
            Some("idle") => "/login?notice=idle",
            Some("aged") => "/login?notice=aged",
            Some("account_ended") => "/login?notice=account_ended",
            _ => "/login",
        }),
        Some(super::AppError::PasswordChangeRequired) => Some("/password"),
        Some(super::AppError::TotpRequired) => Some("/totp?required=1"),
        _ => None,
    }
    .filter(|_| !wants_json(&path));
    let mut res = if let Some(to) = redirect_to {
        let (req, _) = res.into_parts();
        let redirect = HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to))
            .finish();
        ServiceResponse::new(req, redirect)
    } else if let Some(err) = res.response().error() {
        let cause = mask_number_like(&match err.as_error::<super::AppError>() {
            Some(e) => e.cause_chain(),
            None => err.to_string(),
        });
        if matches!(
            err.as_error::<super::AppError>(),
            Some(super::AppError::Busy(_))
        ) {
            tracing::warn!(request_id = %info.request_id, error = %cause, "request met a busy database");
        } else if status >= 500 {
            tracing::error!(request_id = %info.request_id, error = %cause, "request failed");
        } else {
            tracing::debug!(request_id = %info.request_id, error = %cause, "request refused");
        }
        let body = error_body(status, &path, &info, err.as_error::<super::AppError>());
        let (req, _) = res.into_parts();
        ServiceResponse::new(req, body)
    } else {
        res.map_into_boxed_body()
    };
    set_security_headers(res.headers_mut(), secure, path.starts_with("/static/"));
    set_request_id(res.headers_mut(), &info);
    let access_log = access_log.as_ref().map_or(AccessLog::All, |a| *a.get_ref());
    if access_log.wants(status) {
        // One short line: the path without its query, digits that could be
        // an individual number masked.
        tracing::info!(
            "{method} {} {status} {}ms id={}",
            mask_number_like(&path),
            started.elapsed().as_millis(),
            info.request_id
        );
    }
    Ok(res)
}

/// Whether the request names an origin other than the one it was sent to.
fn cross_origin(req: &ServiceRequest, transport: Option<&Transport>, peer: Option<IpAddr>) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return false;
    };
    let no_proxies = Transport {
        secure: false,
        trusted_proxies: Vec::new(),
    };
    let host = transport.unwrap_or(&no_proxies).host(peer, req.head());
    let origin_host = origin.split("://").nth(1).unwrap_or("");
    origin == "null" || host.as_deref() != Some(origin_host)
}

fn set_security_headers(h: &mut header::HeaderMap, secure: bool, is_static: bool) {
    let set = |h: &mut header::HeaderMap, name: &'static str, value: &'static str| {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    // same-origin, not no-referrer: with no-referrer browsers send
    // `Origin: null` on form posts, which the cross-origin check must refuse.
    set(h, "referrer-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(self), microphone=(), geolocation=(), payment=()",
    );
    if secure {
        set(
            h,
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        );
    }
    if !is_static && !h.contains_key(header::CACHE_CONTROL) {
        // Pages may carry personal data: never keep them in a shared or back-button cache.
        set(h, "cache-control", "no-store");
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    /// A log writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A fault a handler logs itself (as the API does for the JSON refusals
    /// it answers with) names the request it happened in, the same id the
    /// answer carries.
    #[actix_web::test]
    async fn what_a_handler_logs_names_its_request() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = actix_web::test::init_service(
            actix_web::App::new()
                .wrap(actix_web::middleware::from_fn(frame))
                .route(
                    "/api/v1/fails",
                    web::get().to(|| async {
                        crate::web::api::internal(crate::web::AppError::Internal("x".into()))
                            .response()
                    }),
                ),
        )
        .await;
        let res = actix_web::test::call_service(
            &app,
            actix_web::test::TestRequest::get()
                .uri("/api/v1/fails")
                .to_request(),
        )
        .await;
        assert_eq!(res.status(), 500);
        let id = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(!id.is_empty());
        let logged = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let line = logged
            .lines()
            .find(|l| l.contains("api request failed"))
            .unwrap_or_else(|| panic!("no line for the fault in {logged:?}"));
        assert!(line.contains(&format!("id={id}")), "{line}");
    }

    fn t(proxies: &[&str]) -> Transport {
        Transport {
            secure: false,
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_forwarded_host_counts_only_from_a_trusted_proxy() {
        let req = actix_web::test::TestRequest::default()
            .insert_header(("host", "vrs.lg.jp"))
            .insert_header(("x-forwarded-host", "attacker.example"))
            .to_srv_request();
        let proxy = Some("10.0.0.5".parse::<IpAddr>().unwrap());
        let client = Some("192.0.2.9".parse::<IpAddr>().unwrap());
        let proxies = t(&["10.0.0.0/24"]);
        assert_eq!(
            proxies.host(client, req.head()).as_deref(),
            Some("vrs.lg.jp")
        );
        assert_eq!(
            proxies.host(proxy, req.head()).as_deref(),
            Some("attacker.example")
        );
        assert_eq!(t(&[]).host(proxy, req.head()).as_deref(), Some("vrs.lg.jp"));
    }

    #[test]
    fn client_ip_is_the_socket_unless_it_is_a_trusted_proxy() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // No trusted proxy: the header is ignored.
        assert_eq!(
            t(&[]).client_ip(Some(ip("192.0.2.1")), Some("10.1.1.1")),
            Some(ip("192.0.2.1"))
        );
        let tp = t(&["192.0.2.0/24"]);
        assert_eq!(
            tp.client_ip(Some(ip("192.0.2.1")), Some("10.1.1.1")),
            Some(ip("10.1.1.1"))
        );
        // A spoofed left-most hop is not believed; the nearest untrusted one is.
        assert_eq!(
            tp.client_ip(
                Some(ip("192.0.2.1")),
                Some("10.9.9.9, 203.0.113.5, 192.0.2.7")
            ),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(tp.client_ip(Some(ip("192.0.2.1")), Some("garbage")), None);
        // A request not from the proxy cannot claim an address.
        assert_eq!(
            tp.client_ip(Some(ip("198.51.100.1")), Some("10.1.1.1")),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn a_busy_database_is_said_so_with_when_to_try_again() {
        use super::super::AppError;
        let busy = AppError::Busy("database is locked".into());
        let info = RequestInfo {
            request_id: "r1".into(),
            lang: Lang::Ja,
            client_ip: None,
        };
        assert_eq!(
            error_keys(503, Some(&busy)),
            ("error.busy.title", "error.busy.message")
        );
        assert_eq!(
            error_keys(503, Some(&AppError::Unavailable("down".into()))),
            ("error.503.title", "error.503.message")
        );

        let page = error_body(503, "/residents/by-number", &info, Some(&busy));
        assert_eq!(page.status(), 503);
        assert_eq!(
            page.headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"5"[..])
        );
        let html = page.into_body().try_into_bytes().expect("a whole body");
        let html = String::from_utf8_lossy(&html);
        assert!(html.contains("ただいま混み合っています"), "{html}");
        assert!(
            !html.contains("database is locked"),
            "the cause stays in the log"
        );

        let api = error_body(503, "/api/v1/doses", &info, Some(&busy));
        assert_eq!(
            api.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(&b"5"[..])
        );
        let body: serde_json::Value =
            serde_json::from_slice(&api.into_body().try_into_bytes().expect("a whole body"))
                .expect("json");
        assert_eq!(body["error"], "busy");
        assert_eq!(body["request_id"], "r1");
        assert!(
            body["message_en"]
                .as_str()
                .is_some_and(|m| m.contains("Nothing was changed")),
            "{body}"
        );

        // Any other failure keeps its plain answer, with no invitation to retry.
        let internal = AppError::Internal("x".into());
        let page = error_body(500, "/api/v1/doses", &info, Some(&internal));
        assert!(!page.headers().contains_key(header::RETRY_AFTER));
    }
}

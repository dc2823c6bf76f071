//! Login, logout, password change, and the session extractor.
//!
//! The session cookie is HttpOnly, SameSite=Strict, Secure over TLS and
//! renewed at every login. Every state-changing form carries a CSRF token:
//! the session's own, or before login a double-submit token in a
//! SameSite=Strict cookie; the frame also refuses a cross-origin `Origin`.

use super::{AppError, Ctx, render, render_form, with_db};
use crate::domain::NewPassword;
use crate::flows::AppState;
use crate::flows::accounts::{self, LoginError, PasswordChangeError};
use crate::i18n::T;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;

pub const SESSION_COOKIE: &str = "vrs_session";
pub(super) const PRELOGIN_COOKIE: &str = "vrs_prelogin";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(totp_form)
        .service(totp_enrol)
        .service(login_form)
        .service(login_submit)
        .service(logout)
        .service(dashboard)
        .service(password_form)
        .service(password_submit);
}

/// The client's address as the frame determined it (socket, or trusted proxy).
pub fn client_ip(req: &HttpRequest) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<super::RequestInfo>()
        .and_then(|i| i.client_ip)
}

pub fn client_addr(req: &HttpRequest) -> String {
    client_ip(req)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn secure(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<super::frame::Transport>>()
        .is_some_and(|t| t.secure)
}

pub(super) fn cookie<'a>(req: &HttpRequest, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req))
        .finish()
}

use crate::crypto::same_token;

/// A form sent before login (login, device enrolment) carries the token of
/// its pre-login cookie (double submit).
pub(super) fn check_prelogin(req: &HttpRequest, csrf: &str) -> Result<(), AppError> {
    let pre = req
        .cookie(PRELOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if pre.is_empty() || !same_token(&pre, csrf) {
        return Err(AppError::Forbidden);
    }
    Ok(())
}

/// A live session and its account.
pub struct Authed {
    pub account: accounts::Account,
    pub session: accounts::Session,
    /// A tablet's open site.
    pub site: Option<crate::flows::sites::OpenSite>,
    /// Whether the account's ticket scans are paused.
    pub scans_paused: bool,
    pub token: String,
    pub addr: String,
    pub client_ip: Option<std::net::IpAddr>,
}

impl Authed {
    pub fn of(
        live: accounts::Live,
        token: String,
        addr: String,
        client_ip: Option<std::net::IpAddr>,
    ) -> Authed {
        Authed {
            account: live.account,
            session: live.session,
            site: live.site,
            scans_paused: live.scans_paused,
            token,
            addr,
            client_ip,
        }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), AppError> {
        if same_token(submitted, &self.session.csrf_token) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

impl FromRequest for Authed {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Authed, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let addr = client_addr(req);
        let ip = client_ip(req);
        Box::pin(async move {
            let (Some(token), Some(state)) = (token, state) else {
                return Err(AppError::LoginRequired(None));
            };
            let t = token.clone();
            let found = with_db(&state, move |conn| Ok(accounts::resolve_why(conn, &t)?)).await?;
            found
                .map(|live| Authed::of(live, token, addr, ip))
                .map_err(|why| AppError::LoginRequired(why.notice()))
        })
    }
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    t: T,
    csrf: String,
    login_id: String,
    error: bool,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct LoginQuery {
    notice: Option<String>,
}

#[get("/login")]
async fn login_form(
    req: HttpRequest,
    ctx: Ctx,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    let csrf = uuid::Uuid::new_v4().simple().to_string();
    let notice = match q.notice.as_deref() {
        Some("idle") => Some("login.notice.idle"),
        Some("logout") => Some("login.notice.logout"),
        Some("self_disabled") => Some("login.notice.self_disabled"),
        Some("aged") => Some("login.notice.aged"),
        Some("account_ended") => Some("login.notice.account_ended"),
        _ => None,
    };
    let mut resp = render(&LoginPage {
        t: ctx.t,
        csrf: csrf.clone(),
        login_id: String::new(),
        error: false,
        notice,
    })?;
    resp.add_cookie(&cookie(&req, PRELOGIN_COOKIE, csrf))
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(resp)
}

#[derive(Deserialize)]
struct LoginForm {
    login_id: String,
    password: String,
    csrf: String,
    #[serde(default)]
    code: String,
}

#[post("/login")]
async fn login_submit(
    req: HttpRequest,
    ctx: Ctx,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    check_prelogin(&req, &form.csrf)?;
    let form = form.into_inner();
    let addr = client_addr(&req);
    let st = state.clone();
    let (login_id, password, code) = (form.login_id.clone(), form.password, form.code);
    let device = req
        .cookie(accounts::DEVICE_COOKIE)
        .map(|c| c.value().to_string());
    let outcome = web::block(move || {
        let typed = accounts::Credentials {
            login: &login_id,
            password: &password,
            code: &code,
            device: device.as_deref(),
        };
        match accounts::login(&st.pool, &st.master, &st.audit, &typed, &addr) {
            Ok(s) => Ok(Ok(s)),
            Err(LoginError::Refused) => Ok(Err(())),
            Err(LoginError::Db(e)) => Err(AppError::from(e)),
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))??;
    match outcome {
        Ok(success) => {
            // A site's tablet goes straight to its one task.
            let next = if success.account.must_change_password {
                "/password"
            } else if success.account.role == crate::domain::Role::SiteTablet.code() {
                "/site"
            } else {
                "/dashboard"
            };
            let mut gone = cookie(&req, PRELOGIN_COOKIE, String::new());
            gone.make_removal();
            Ok(HttpResponse::SeeOther()
                .insert_header(("location", next))
                .cookie(cookie(&req, SESSION_COOKIE, success.token))
                .cookie(gone)
                .finish())
        }
        Err(()) => {
            let mut resp = render(&LoginPage {
                t: ctx.t,
                csrf: form.csrf,
                login_id: form.login_id,
                error: true,
                notice: None,
            })?;
            *resp.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
            Ok(resp)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    pub csrf: String,
}

#[post("/logout")]
async fn logout(
    req: HttpRequest,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let st = state.clone();
    with_db(&state, move |conn| {
        Ok(accounts::logout(
            conn,
            &st.audit,
            &auth.token,
            &auth.account,
            &auth.addr,
        )?)
    })
    .await?;
    let mut gone = cookie(&req, SESSION_COOKIE, String::new());
    gone.make_removal();
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/login?notice=logout"))
        .cookie(gone)
        .finish())
}

#[derive(Template)]
#[template(path = "auth/dashboard.html")]
struct DashboardPage {
    t: T,
    nav: super::Nav,
    display_name: String,
    login_id: String,
    role_key: &'static str,
    municipality: Option<String>,
    previous_login: Option<String>,
    previous_addr: Option<String>,
    expires_on: Option<String>,
    /// For administrators: open notices (inquiries past the rate, …).
    notices: Vec<NoticeLine>,
    is_admin: bool,
}

#[get("/dashboard")]
async fn dashboard(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<crate::flows::AppState>,
) -> Result<HttpResponse, AppError> {
    if auth.account.must_change_password {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/password"))
            .finish());
    }
    let role = accounts::role_of(&auth.account).ok_or(AppError::Forbidden)?;
    let municipality = auth
        .account
        .municipality_code
        .as_deref()
        .and_then(|c| crate::domain::MunicipalityCode::parse(c).ok())
        .and_then(|c| {
            crate::domain::Registry::global()
                .get(&c)
                .map(|m| format!("{} ({})", m.full_name(), c))
        });
    let is_admin = role == crate::domain::Role::MunicipalAdmin;
    let notices = match auth.municipality() {
        Some(code) if is_admin => open_notices(&state, code).await?,
        _ => Vec::new(),
    };
    render(&DashboardPage {
        notices,
        is_admin,
        nav: super::Nav::for_account(&auth, &ctx.t.path),
        t: ctx.t,
        display_name: auth.account.display_name.clone(),
        login_id: auth.account.login_id.clone(),
        role_key: role.label_key(),
        municipality,
        previous_login: auth.session.previous_login_at.map(crate::clock::jst),
        previous_addr: auth.session.previous_login_addr.clone(),
        expires_on: auth.account.expires_on.map(|d| d.to_string()),
    })
}

#[derive(Template)]
#[template(path = "auth/password.html")]
struct PasswordPage {
    t: T,
    nav: super::Nav,
    csrf: String,
    forced: bool,
    error: Option<String>,
    current_error: bool,
}

#[get("/password")]
async fn password_form(ctx: Ctx, auth: Authed) -> Result<HttpResponse, AppError> {
    render(&PasswordPage {
        nav: super::Nav::for_account(&auth, "/password"),
        t: ctx.t,
        csrf: auth.session.csrf_token.clone(),
        forced: auth.account.must_change_password,
        error: None,
        current_error: false,
    })
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

#[post("/password")]
async fn password_submit(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let again = |t: T, error: Option<String>, current_error: bool| {
        let r = render_form(
            &PasswordPage {
                nav: super::Nav::for_account(&auth, "/password"),
                csrf: auth.session.csrf_token.clone(),
                forced: auth.account.must_change_password,
                t,
                error,
                current_error,
            },
            true,
        )?;
        Ok::<_, AppError>(r)
    };
    let new = match NewPassword::parse(&form.new) {
        Ok(p) => p,
        Err(e) => {
            let msg = super::field_message(&ctx.t, e.reason);
            let label = ctx.t.s("password.new");
            return again(ctx.t.clone(), Some(format!("{label}: {msg}")), false);
        }
    };
    if form.new != form.confirm {
        let msg = ctx.t.s("password.mismatch").to_string();
        return again(ctx.t, Some(msg), false);
    }
    let st = state.clone();
    let (account, token, addr) = (auth.account.clone(), auth.token.clone(), auth.addr.clone());
    let result = web::block(move || {
        match accounts::change_password(
            &st.pool,
            &st.audit,
            &account,
            &token,
            &form.current,
            &new,
            &addr,
        ) {
            Ok(()) => Ok(Ok(())),
            Err(PasswordChangeError::Db(e)) => Err(AppError::from(e)),
            Err(e) => Ok(Err(e)),
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))??;
    match result {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/dashboard"))
            .finish()),
        Err(PasswordChangeError::WrongCurrent) => again(ctx.t, None, true),
        Err(PasswordChangeError::Reused) => {
            let msg = ctx.t.s("password.reused").to_string();
            again(ctx.t, Some(msg), false)
        }
        Err(_) => {
            let msg = ctx.t.s("password.unchanged").to_string();
            again(ctx.t, Some(msg), false)
        }
    }
}

#[derive(Template)]
#[template(path = "auth/totp.html")]
struct TotpPage {
    t: T,
    nav: super::Nav,
    csrf: String,
    enrolled: bool,
    required: bool,
    secret: String,
    qr_svg: String,
    error: bool,
}

fn totp_page(
    ctx: Ctx,
    auth: &Authed,
    secret: &[u8],
    error: bool,
    required: bool,
) -> Result<HttpResponse, AppError> {
    let uri = crate::crypto::totp::otpauth_uri(&auth.account.login_id, secret);
    let qr_svg = crate::qr::encode_text(&uri, crate::qr::Ecc::Medium)
        .map(|q| crate::qr::svg(&q, 200))
        .ok_or_else(|| AppError::Internal("the set-up URI does not fit a QR code".into()))?;
    let mut r = render(&TotpPage {
        nav: super::Nav::for_account(auth, "/totp"),
        csrf: auth.session.csrf_token.clone(),
        enrolled: auth.account.second_factor,
        required,
        secret: crate::crypto::totp::encode(secret),
        qr_svg,
        error,
        t: ctx.t,
    })?;
    if error {
        *r.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

#[derive(Deserialize)]
struct TotpQuery {
    required: Option<String>,
}

/// Enrolment: a fresh secret is shown (QR code and text) until a code from it
/// is entered; nothing is stored before that.
#[get("/totp")]
async fn totp_form(
    ctx: Ctx,
    auth: Authed,
    q: web::Query<TotpQuery>,
) -> Result<HttpResponse, AppError> {
    if auth.account.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    totp_page(
        ctx,
        &auth,
        &crate::crypto::totp::new_secret(),
        false,
        q.required.is_some(),
    )
}

#[derive(Deserialize)]
struct TotpForm {
    csrf: String,
    secret: String,
    code: String,
}

#[post("/totp")]
async fn totp_enrol(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<TotpForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let secret = crate::crypto::totp::decode(&form.secret)
        .ok_or_else(|| AppError::BadRequest("secret".into()))?;
    let (st, account, addr, s2) = (
        state.clone(),
        auth.account.clone(),
        auth.addr.clone(),
        secret.clone(),
    );
    let ok = with_db(&state, move |conn| {
        Ok(accounts::enrol_totp(
            conn, &st.master, &st.audit, &account, &s2, &form.code, &addr,
        )?)
    })
    .await?;
    if ok {
        Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/dashboard"))
            .finish())
    } else {
        totp_page(ctx, &auth, &secret, true, false)
    }
}

struct NoticeLine {
    pub id: String,
    pub at: String,
    pub kind: String,
    pub subject: String,
}

/// The municipality's open notices, for its administrators' dashboard.
async fn open_notices(
    state: &AppState,
    code: crate::domain::MunicipalityCode,
) -> Result<Vec<NoticeLine>, AppError> {
    super::in_partition(state, code, |scope, conn| {
        Ok(crate::flows::provisions::open_notices(scope, conn)?
            .into_iter()
            .map(|n| NoticeLine {
                id: n.id,
                at: crate::clock::jst(n.at),
                kind: n.kind,
                subject: n.subject,
            })
            .collect())
    })
    .await
}

//! The municipal administrator's screens: accounts (issue with least
//! privilege and an expiry, end, unlock, review, CSV), LG-WAN networks, and
//! the operation log (search, verify, CSV). Every query names the
//! administrator's own municipality; another municipality's ids are not found.

use super::{AppError, Authed, Ctx, Nav, field_message, render, with_db};
use crate::audit::{self, Entry};
use crate::clock::now;
use crate::db::models::accounts::AccountRow;
use crate::db::models::audit_log::AuditRow;
use crate::db::models::networks::NetworkRow;
use crate::domain::{MunicipalityCode, Network, Permission, Role};
use crate::flows::AppState;
use crate::flows::account_issue::{self, AccountField, AccountRequest, IssueError, Problem};
use crate::flows::accounts::{self, AccountStatus};
use crate::flows::networks;
use crate::i18n::T;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(accounts_page)
        .service(accounts_csv)
        .service(new_account_form)
        .service(create_account)
        .service(disable_account)
        .service(unlock_account)
        .service(networks_page)
        .service(add_network)
        .service(remove_network)
        .service(set_security)
        .service(set_channels)
        .service(log_page)
        .service(log_csv);
}

pub struct AccountView {
    pub id: String,
    pub login_id: String,
    pub display_name: String,
    pub role_key: &'static str,
    pub permission_keys: Vec<&'static str>,
    pub expires_on: String,
    pub status_key: &'static str,
    pub badge: &'static str,
    pub last_login: String,
    pub device: String,
    pub active: bool,
    pub locked: bool,
}

fn view(a: &AccountRow) -> AccountView {
    let status = AccountStatus::of(a, now());
    AccountView {
        id: a.id.clone(),
        login_id: a.login_id.clone(),
        display_name: a.display_name.clone(),
        role_key: Role::parse(&a.role)
            .map(|r| r.label_key())
            .unwrap_or("role.unknown"),
        permission_keys: Permission::parse_list(&a.permissions)
            .iter()
            .map(|p| p.label_key())
            .collect(),
        expires_on: a.expires_on.map(|d| d.to_string()).unwrap_or_default(),
        status_key: status.label_key(),
        badge: status.badge(),
        last_login: a
            .last_login_at
            .map(|t| {
                format!(
                    "{} {}",
                    crate::clock::jst(t),
                    a.last_login_addr.clone().unwrap_or_default()
                )
            })
            .unwrap_or_default(),
        device: match (&a.device_name, &a.responsible_person) {
            (Some(d), Some(p)) => format!("{d} / {p}"),
            _ => String::new(),
        },
        active: status != AccountStatus::Disabled,
        locked: status == AccountStatus::Locked,
    }
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage {
    t: T,
    nav: Nav,
    csrf: String,
    accounts: Vec<AccountView>,
    locked_count: usize,
    created: Option<(String, String)>,
}

#[get("/admin/accounts")]
async fn accounts_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let rows = with_db(&state, move |conn| {
        Ok(AccountRow::of_municipality(conn, code.as_str())?)
    })
    .await?;
    let accounts: Vec<AccountView> = rows.iter().map(view).collect();
    render(&AccountsPage {
        nav: Nav::for_account(&auth, "/admin/accounts"),
        csrf: auth.session.csrf_token.clone(),
        locked_count: accounts.iter().filter(|a| a.locked).count(),
        accounts,
        created: None,
        t: ctx.t,
    })
}

#[get("/admin/accounts.csv")]
async fn accounts_csv(auth: Authed, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let (st, actor) = (state.clone(), auth.actor());
    let rows = with_db(&state, move |conn| {
        let rows = AccountRow::of_municipality(conn, code.as_str())?;
        audit::record(
            conn,
            &st.audit,
            &actor,
            Entry {
                chain: code.as_str(),
                action: "account.export",
                target: None,
                outcome: "ok",
                detail: Some(format!("rows={}", rows.len())),
            },
        )?;
        Ok(rows)
    })
    .await?;
    let at = now();
    let body = crate::csvout::utf8_bom(
        &[
            "ログインID",
            "氏名",
            "権限",
            "業務権限",
            "有効期限",
            "状態",
            "最終ログイン",
            "最終ログイン元",
            "端末",
            "責任者",
            "作成日時",
        ],
        rows.iter().map(|a| {
            vec![
                a.login_id.clone(),
                a.display_name.clone(),
                a.role.clone(),
                a.permissions.clone(),
                a.expires_on.map(|d| d.to_string()).unwrap_or_default(),
                format!("{:?}", AccountStatus::of(a, at)).to_lowercase(),
                a.last_login_at.map(|t| t.to_string()).unwrap_or_default(),
                a.last_login_addr.clone().unwrap_or_default(),
                a.device_name.clone().unwrap_or_default(),
                a.responsible_person.clone().unwrap_or_default(),
                a.created_at.to_string(),
            ]
        }),
    );
    Ok(csv_download(format!("accounts-{code}.csv"), body))
}

pub fn csv_download(name: String, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

/// The end of the current fiscal year (31 March), the usual term of a
/// municipal post.
#[derive(Default, Deserialize)]
struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login_id: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    expires_on: String,
    #[serde(default)]
    device_name: String,
    #[serde(default)]
    responsible_person: String,
    #[serde(default)]
    site_id: String,
    #[serde(default)]
    perm_residents: Option<String>,
    #[serde(default)]
    perm_my_number: Option<String>,
    #[serde(default)]
    perm_inquiry: Option<String>,
    #[serde(default)]
    perm_certificates: Option<String>,
    #[serde(default)]
    perm_export: Option<String>,
}

impl AccountForm {
    fn permissions(&self) -> Vec<Permission> {
        [
            (&self.perm_residents, Permission::Residents),
            (&self.perm_my_number, Permission::MyNumber),
            (&self.perm_inquiry, Permission::Inquiry),
            (&self.perm_certificates, Permission::Certificates),
            (&self.perm_export, Permission::Export),
        ]
        .into_iter()
        .filter(|(v, _)| v.is_some())
        .map(|(_, p)| p)
        .collect()
    }
}

/// Field errors, each beside its field.
#[derive(Default)]
struct AccountErrors {
    login_id: Option<String>,
    display_name: Option<String>,
    role: Option<String>,
    expires_on: Option<String>,
    device: Option<String>,
    site: Option<String>,
}

impl AccountErrors {
    /// Each problem beside its field, in the page's language.
    fn of(t: &T, problems: &[(AccountField, Problem)]) -> AccountErrors {
        let mut e = AccountErrors::default();
        for (field, problem) in problems {
            let text = match problem {
                Problem::Field(f) => {
                    let label = match field {
                        AccountField::LoginId => "login.id",
                        AccountField::DisplayName => "admin.accounts.name",
                        AccountField::Responsible => "admin.accounts.responsible",
                        _ => "admin.accounts.device",
                    };
                    format!("{}: {}", t.s(label), field_message(t, f.reason))
                }
                Problem::RoleNotMunicipal => t.s("admin.accounts.role_invalid").to_string(),
                Problem::ExpiryPast => t.s("admin.accounts.expiry_past").to_string(),
                Problem::ExpiryInvalid => t.s("admin.accounts.expiry_invalid").to_string(),
                Problem::TabletNeedsDevice => t.s("admin.accounts.tablet_needs_device").to_string(),
                Problem::TabletNeedsSite => t.s("admin.accounts.tablet_needs_site").to_string(),
                Problem::LoginTaken => t.s("admin.accounts.login_taken").to_string(),
            };
            let slot = match field {
                AccountField::LoginId => &mut e.login_id,
                AccountField::DisplayName => &mut e.display_name,
                AccountField::Role => &mut e.role,
                AccountField::ExpiresOn => &mut e.expires_on,
                // One line under the device fields says what is missing.
                AccountField::Device | AccountField::Responsible => &mut e.device,
                AccountField::Site => &mut e.site,
            };
            *slot = Some(text);
        }
        e
    }
}

#[derive(Template)]
#[template(path = "admin/account_new.html")]
struct NewAccountPage {
    t: T,
    nav: Nav,
    csrf: String,
    form: AccountForm,
    errors: AccountErrors,
    /// The municipality's open sites, for binding a tablet account.
    sites: Vec<(String, String)>,
}

async fn open_sites(
    state: &AppState,
    code: MunicipalityCode,
) -> Result<Vec<(String, String)>, AppError> {
    with_db(state, move |conn| {
        Ok(account_issue::open_sites(conn, code)?)
    })
    .await
}

#[get("/admin/accounts/new")]
async fn new_account_form(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let sites = open_sites(&state, code).await?;
    render(&NewAccountPage {
        sites,
        nav: Nav::for_account(&auth, "/admin/accounts"),
        csrf: auth.session.csrf_token.clone(),
        form: AccountForm {
            role: "municipal_staff".into(),
            expires_on: account_issue::fiscal_year_end(now().date()).to_string(),
            ..Default::default()
        },
        errors: AccountErrors::default(),
        t: ctx.t,
    })
}

#[post("/admin/accounts")]
async fn create_account(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<AccountForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let req = AccountRequest {
        login_id: form.login_id.clone(),
        display_name: form.display_name.clone(),
        role: form.role.clone(),
        expires_on: form.expires_on.clone(),
        device_name: form.device_name.clone(),
        responsible_person: form.responsible_person.clone(),
        site_id: form.site_id.clone(),
        permissions: form.permissions(),
    };
    let (st, actor) = (state.clone(), auth.actor());
    let issued = state
        .blocking(move |conn| {
            account_issue::issue(conn, &st.audit, &actor, code, &req, now().date())
        })
        .await;
    let problems = match issued {
        Ok((row, pw)) => {
            let created = (row.login_id, pw.as_str().to_string());
            let rows = with_db(&state, move |conn| {
                Ok(AccountRow::of_municipality(conn, code.as_str())?)
            })
            .await?;
            let accounts: Vec<AccountView> = rows.iter().map(view).collect();
            return render(&AccountsPage {
                nav: Nav::for_account(&auth, "/admin/accounts"),
                csrf: auth.session.csrf_token.clone(),
                locked_count: accounts.iter().filter(|a| a.locked).count(),
                accounts,
                created: Some(created),
                t: ctx.t,
            });
        }
        Err(IssueError::Invalid(problems)) => problems,
        Err(e) => return Err(AppError::failed(e)),
    };
    let errors = AccountErrors::of(&ctx.t, &problems);
    let sites = open_sites(&state, code).await?;
    let mut r = render(&NewAccountPage {
        sites,
        nav: Nav::for_account(&auth, "/admin/accounts"),
        csrf: auth.session.csrf_token.clone(),
        form,
        errors,
        t: ctx.t,
    })?;
    *r.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(r)
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

async fn account_action(
    auth: Authed,
    state: web::Data<AppState>,
    id: String,
    csrf: &str,
    action: fn(
        &mut crate::db::DbConn,
        &crate::audit::AuditKey,
        &crate::audit::Actor,
        MunicipalityCode,
        &str,
    ) -> Result<bool, crate::db::DbError>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(csrf)?;
    let (st, actor) = (state.clone(), auth.actor());
    let found = with_db(&state, move |conn| {
        Ok(action(conn, &st.audit, &actor, code, &id)?)
    })
    .await?;
    if !found {
        return Err(AppError::NotFound);
    }
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/admin/accounts"))
        .finish())
}

#[post("/admin/accounts/{id}/disable")]
async fn disable_account(
    auth: Authed,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    account_action(auth, state, id.into_inner(), &form.csrf, accounts::disable).await
}

#[post("/admin/accounts/{id}/unlock")]
async fn unlock_account(
    auth: Authed,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    account_action(auth, state, id.into_inner(), &form.csrf, accounts::unlock).await
}

#[derive(Template)]
#[template(path = "admin/networks.html")]
struct NetworksPage {
    t: T,
    nav: Nav,
    csrf: String,
    networks: Vec<NetworkRow>,
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
    let (rows, tenant) = with_db(state, move |conn| {
        let tenant = crate::db::models::tenants::TenantRow::find(conn, code.as_str())?;
        Ok((networks::list(conn, code)?, tenant))
    })
    .await?;
    let require_totp = tenant.as_ref().is_some_and(|t| t.require_totp);
    let channels = tenant
        .map(|t| crate::flows::certificates::channels_enabled(&t.certificate_channels))
        .unwrap_or_default();
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
async fn networks_page(
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
async fn add_network(
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
async fn remove_network(
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
async fn set_security(
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
async fn set_channels(
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

pub struct LogLine {
    pub seq: i64,
    pub at: String,
    pub login_id: String,
    pub addr: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

pub fn log_line(r: &AuditRow) -> LogLine {
    LogLine {
        seq: r.seq,
        at: crate::clock::jst(r.at),
        login_id: r.login_id.clone().unwrap_or_default(),
        addr: r.client_addr.clone().unwrap_or_default(),
        action: r.action.clone(),
        target: r.target.clone().unwrap_or_default(),
        outcome: r.outcome.clone(),
        detail: r.detail.clone().unwrap_or_default(),
    }
}

#[derive(Deserialize, Default)]
struct LogQuery {
    action: Option<String>,
    login: Option<String>,
    outcome: Option<String>,
}

impl LogQuery {
    fn keep(&self, r: &AuditRow) -> bool {
        let has = |f: &Option<String>, v: &str| {
            f.as_deref()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .is_none_or(|f| v.contains(f))
        };
        has(&self.action, &r.action)
            && has(&self.login, r.login_id.as_deref().unwrap_or(""))
            && has(&self.outcome, &r.outcome)
    }
}

#[derive(Template)]
#[template(path = "admin/log.html")]
struct LogPage {
    t: T,
    nav: Nav,
    lines: Vec<LogLine>,
    total: i64,
    broken_at: Option<i64>,
    /// Cut short or deleted after the witness saw it: (line the witness
    /// saw, lines held).
    cut: Option<(i64, i64)>,
    action: String,
    login: String,
    outcome: String,
    export_query: String,
}

/// Lines of the chain newest first (at most `limit`), filtered, with the
/// chain's verification result.
fn load_log(
    conn: &mut crate::db::DbConn,
    state: &AppState,
    code: MunicipalityCode,
    q: &LogQuery,
    limit: i64,
) -> Result<(Vec<AuditRow>, audit::ChainReport), AppError> {
    let report = audit::verify(
        conn,
        &state.audit,
        Some(code.as_str()),
        Some(&state.witness.heads()),
    )?
    .pop()
    .ok_or_else(|| AppError::Internal("no report".into()))?;
    let rows = AuditRow::recent_of_chain(conn, code.as_str(), limit)?
        .into_iter()
        .filter(|r| q.keep(r))
        .collect();
    Ok((rows, report))
}

#[get("/admin/log")]
async fn log_page(
    req: actix_web::HttpRequest,
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<LogQuery>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let q = q.into_inner();
    let st = state.clone();
    let (rows, report, q) = with_db(&state, move |conn| {
        let (rows, report) = load_log(conn, &st, code, &q, 500)?;
        Ok((rows, report, q))
    })
    .await?;
    let get = |v: &Option<String>| v.clone().unwrap_or_default();
    render(&LogPage {
        nav: Nav::for_account(&auth, "/admin/log"),
        lines: rows.iter().map(log_line).collect(),
        total: report.lines,
        broken_at: report.broken_at,
        cut: (report.truncated || report.missing)
            .then(|| (report.witnessed.unwrap_or_default(), report.lines)),
        export_query: req.query_string().to_string(),
        action: get(&q.action),
        login: get(&q.login),
        outcome: get(&q.outcome),
        t: ctx.t,
    })
}

#[get("/admin/log.csv")]
async fn log_csv(
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<LogQuery>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let q = q.into_inner();
    let (st, actor) = (state.clone(), auth.actor());
    let rows = with_db(&state, move |conn| {
        let (rows, _) = load_log(conn, &st, code, &q, 100_000)?;
        audit::record(
            conn,
            &st.audit,
            &actor,
            Entry {
                chain: code.as_str(),
                action: "log.export",
                target: None,
                outcome: "ok",
                detail: Some(format!("rows={}", rows.len())),
            },
        )?;
        Ok(rows)
    })
    .await?;
    let body = crate::csvout::utf8_bom(
        &[
            "連番",
            "日時(UTC)",
            "ログインID",
            "接続元",
            "操作",
            "対象",
            "結果",
            "詳細",
            "MAC",
        ],
        rows.iter().map(|r| {
            vec![
                r.seq.to_string(),
                r.at.to_string(),
                r.login_id.clone().unwrap_or_default(),
                r.client_addr.clone().unwrap_or_default(),
                r.action.clone(),
                r.target.clone().unwrap_or_default(),
                r.outcome.clone(),
                r.detail.clone().unwrap_or_default(),
                r.mac.clone(),
            ]
        }),
    );
    Ok(csv_download(format!("operation-log-{code}.csv"), body))
}

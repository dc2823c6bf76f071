//! The municipality's accounts: issued with least privilege and an expiry,
//! ended, unlocked, reviewed on one page and as CSV.

use crate::audit::{self, Entry};
use crate::clock::now;
use crate::domain::{MunicipalityCode, Permission, Role};
use crate::flows::AppState;
use crate::flows::account_issue::{self, AccountField, AccountRequest, IssueError, Problem};
use crate::flows::accounts::{self, AccountStatus};
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, Nav, field_message, render, render_form, with_db};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

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
    pub tablet: bool,
    /// When its device was enrolled (JST), for a tablet that has one.
    pub enrolled: Option<String>,
    /// A shared account's next review, and whether it is due.
    pub review_on: String,
    pub review_due: bool,
}

/// What the list shows of the tablets beside each account.
struct Tablets {
    enrolled: std::collections::HashMap<String, chrono::NaiveDateTime>,
    reviews: std::collections::HashMap<String, Option<chrono::NaiveDate>>,
}

fn view(a: &accounts::Listed, tablets: &Tablets) -> AccountView {
    let status = a.status;
    let review = tablets.reviews.get(&a.id).copied().flatten();
    let today = crate::clock::today_in_japan();
    let enrolled = &tablets.enrolled;
    AccountView {
        review_on: review.map(|d| d.to_string()).unwrap_or_default(),
        review_due: tablets.reviews.contains_key(&a.id) && review.is_none_or(|d| d <= today),
        tablet: Role::parse(&a.role) == Some(Role::SiteTablet),
        enrolled: enrolled.get(&a.id).map(|t| crate::clock::jst(*t)),
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
    review: super::log::ReviewBanner,
}

/// The account list, with its last review; `created` is a new account's
/// login and first password, shown once.
async fn accounts_view(
    t: T,
    auth: &Authed,
    state: &AppState,
    created: Option<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let (rows, reviews, every, tablets) = with_db(state, move |conn| {
        let every = crate::flows::log_review::settings(conn, code)?.review_every_days;
        Ok((
            accounts::of_municipality(conn, code)?,
            crate::flows::log_review::review_state(conn, code, every)?,
            every,
            Tablets {
                enrolled: accounts::enrolled_devices(conn, code)?,
                reviews: accounts::shared_reviews(conn, code)?,
            },
        ))
    })
    .await?;
    let accounts: Vec<AccountView> = rows.iter().map(|a| view(a, &tablets)).collect();
    render(&AccountsPage {
        nav: Nav::for_account(auth, "/admin/accounts"),
        csrf: auth.session.csrf_token.clone(),
        locked_count: accounts.iter().filter(|a| a.locked).count(),
        accounts,
        created,
        review: super::log::banner(&t, &reviews, every),
        t,
    })
}

#[get("/admin/accounts")]
pub(super) async fn accounts_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    accounts_view(ctx.t, &auth, &state, None).await
}

#[get("/admin/accounts.csv")]
pub(super) async fn accounts_csv(
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let (st, actor) = (state.clone(), auth.actor());
    let rows = with_db(&state, move |conn| {
        let rows = accounts::of_municipality(conn, code)?;
        audit::record(
            conn,
            &st.audit,
            &actor,
            Entry::done(
                code.as_str(),
                "account.export",
                None,
                Some(format!("rows={}", rows.len())),
            ),
        )?;
        Ok(rows)
    })
    .await?;
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
                format!("{:?}", a.status).to_lowercase(),
                a.last_login_at.map(|t| t.to_string()).unwrap_or_default(),
                a.last_login_addr.clone().unwrap_or_default(),
                a.device_name.clone().unwrap_or_default(),
                a.responsible_person.clone().unwrap_or_default(),
                a.created_at.to_string(),
            ]
        }),
    );
    Ok(crate::web::csv_download(
        format!("accounts-{code}.csv"),
        body,
    ))
}

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
    #[serde(default)]
    perm_protected_address: Option<String>,
    #[serde(default)]
    perm_disclosure: Option<String>,
}

impl AccountForm {
    fn permissions(&self) -> Vec<Permission> {
        [
            (&self.perm_residents, Permission::Residents),
            (&self.perm_my_number, Permission::MyNumber),
            (&self.perm_inquiry, Permission::Inquiry),
            (&self.perm_certificates, Permission::Certificates),
            (&self.perm_export, Permission::Export),
            (&self.perm_protected_address, Permission::ProtectedAddress),
            (&self.perm_disclosure, Permission::Disclosure),
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
pub(super) async fn new_account_form(
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
pub(super) async fn create_account(
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
            return accounts_view(ctx.t, &auth, &state, Some(created)).await;
        }
        Err(IssueError::Invalid(problems)) => problems,
        Err(e) => return Err(AppError::failed(e)),
    };
    let errors = AccountErrors::of(&ctx.t, &problems);
    let sites = open_sites(&state, code).await?;
    let r = render_form(
        &NewAccountPage {
            sites,
            nav: Nav::for_account(&auth, "/admin/accounts"),
            csrf: auth.session.csrf_token.clone(),
            form,
            errors,
            t: ctx.t,
        },
        true,
    )?;
    Ok(r)
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    pub(super) csrf: String,
}

pub(super) async fn account_action(
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

#[derive(Deserialize)]
struct DisableForm {
    csrf: String,
    /// Sent by the confirmation page, after it said what will happen.
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "admin/confirm_disable.html")]
struct ConfirmDisablePage {
    t: T,
    nav: Nav,
    csrf: String,
    id: String,
    login_id: String,
    consequence: accounts::Consequence,
    /// Refused outright: the last active administrator.
    last_administrator: bool,
}

#[post("/admin/accounts/{id}/disable")]
pub(super) async fn disable_account(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<DisableForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let confirmed = form.confirm == "1";
    let (st, actor, target) = (state.clone(), auth.actor(), id.into_inner());
    let asked = target.clone();
    let outcome = with_db(&state, move |conn| {
        let done = accounts::disable(conn, &st.audit, &actor, code, &asked, confirmed)?;
        let login = match done {
            accounts::Disabled::Unconfirmed(_) | accounts::Disabled::LastAdministrator => {
                accounts::of_municipality(conn, code)?
                    .into_iter()
                    .find(|a| a.id == asked)
                    .map(|a| a.login_id)
            }
            _ => None,
        };
        Ok((done, login))
    })
    .await?;
    match outcome {
        (accounts::Disabled::NotFound, _) => Err(AppError::NotFound),
        (accounts::Disabled::Unconfirmed(consequence), login) => render(&ConfirmDisablePage {
            nav: Nav::for_account(&auth, "/admin/accounts"),
            csrf: auth.session.csrf_token.clone(),
            id: target,
            login_id: login.unwrap_or_default(),
            consequence,
            last_administrator: false,
            t: ctx.t,
        }),
        (accounts::Disabled::LastAdministrator, login) => render_form(
            &ConfirmDisablePage {
                nav: Nav::for_account(&auth, "/admin/accounts"),
                csrf: auth.session.csrf_token.clone(),
                id: target,
                login_id: login.unwrap_or_default(),
                consequence: accounts::Consequence { yourself: false },
                last_administrator: true,
                t: ctx.t,
            },
            true,
        ),
        // Their own session is gone: the login page says why.
        (accounts::Disabled::Done(c), _) if c.yourself => Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/login?notice=self_disabled"))
            .finish()),
        (accounts::Disabled::Done(_), _) => Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/admin/accounts"))
            .finish()),
    }
}

#[post("/admin/accounts/{id}/unlock")]
pub(super) async fn unlock_account(
    auth: Authed,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    account_action(auth, state, id.into_inner(), &form.csrf, accounts::unlock).await
}

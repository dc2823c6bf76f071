//! Who may reach what. Every page of a signed-in person calls one of these
//! before doing anything; a refusal is a 403 and, where personal data was at
//! stake, a line in the operation log.

use super::{AppError, Authed, with_db};
use crate::audit::{self, Actor, Entry};
use crate::domain::{MunicipalityCode, Permission, Role};
use crate::flows::AppState;
use crate::flows::accounts::chain_of;
use crate::flows::doses::Recorder;
use crate::flows::networks::NumberRefusal;
use crate::flows::recording::RecorderCtx;

impl Authed {
    pub fn role(&self) -> Option<Role> {
        Role::parse(&self.account.role)
    }

    pub fn municipality(&self) -> Option<MunicipalityCode> {
        self.account
            .municipality_code
            .as_deref()
            .and_then(|c| MunicipalityCode::parse(c).ok())
    }

    pub fn permissions(&self) -> Vec<Permission> {
        Permission::parse_list(&self.account.permissions)
    }

    pub fn actor(&self) -> Actor {
        Actor::account(&self.account.id, &self.account.login_id, &self.addr)
    }

    /// The account must have one of `roles` (and have set its own password).
    pub fn require(&self, roles: &[Role]) -> Result<Role, AppError> {
        if self.account.must_change_password {
            return Err(AppError::PasswordChangeRequired);
        }
        self.role()
            .filter(|r| roles.contains(r))
            .ok_or(AppError::Forbidden)
    }

    /// A municipal administrator, with its municipality.
    pub fn require_admin(&self) -> Result<MunicipalityCode, AppError> {
        self.require(&[Role::MunicipalAdmin])?;
        self.municipality().ok_or(AppError::Forbidden)
    }

    /// Municipal staff holding `permission`, with its municipality.
    pub fn require_staff(&self, permission: Permission) -> Result<MunicipalityCode, AppError> {
        self.require(&[Role::MunicipalStaff])?;
        if !self.permissions().contains(&permission) {
            return Err(AppError::Forbidden);
        }
        self.municipality().ok_or(AppError::Forbidden)
    }
}

/// For pages that show or accept an individual number: staff with the
/// individual-number permission, on a terminal inside one of the
/// municipality's declared LG-WAN networks. Tablets, viewers, operators and
/// administrators are refused wherever they are; a refusal is logged.
pub async fn require_lgwan(state: &AppState, auth: &Authed) -> Result<MunicipalityCode, AppError> {
    require_lgwan_for(state, auth, &[Permission::MyNumber]).await
}

/// As `require_lgwan`, for staff holding every one of `permissions` (the
/// transfer inquiry's pages: the inquiry and individual-number permissions).
pub async fn require_lgwan_for(
    state: &AppState,
    auth: &Authed,
    permissions: &[Permission],
) -> Result<MunicipalityCode, AppError> {
    let role_ok = match permissions
        .iter()
        .map(|p| auth.require_staff(*p))
        .find(Result::is_err)
    {
        Some(refused) => refused,
        None => auth.municipality().ok_or(AppError::Forbidden),
    };
    let checked = match &role_ok {
        Ok(code) => Some(terminal(state, auth, *code).await?),
        Err(_) => None,
    };
    let refusal = match checked {
        Some(Ok(())) => return role_ok,
        // The municipality may require a second factor of everyone who
        // handles individual numbers: send them to set it up first.
        Some(Err(NumberRefusal::SecondFactor)) => return Err(AppError::TotpRequired),
        Some(Err(r)) => r,
        None => NumberRefusal::Role,
    };
    let (st, actor, chain) = (state.clone(), auth.actor(), chain_of(&auth.account));
    with_db(state, move |conn| {
        Ok(audit::record(
            conn,
            &st.audit,
            &actor,
            Entry {
                chain: &chain,
                action: "my_number.access",
                target: None,
                outcome: "refused",
                detail: Some(format!("reason={}", refusal.code())),
            },
        )?)
    })
    .await?;
    Err(role_ok.err().unwrap_or(AppError::OutsideLgwan))
}

/// Whether this person, where they are, may hand individual numbers to a
/// job that may meet some (a resident file): as `require_lgwan`, answered
/// rather than enforced; the job refuses and logs if the file has them.
pub async fn number_access(
    state: &AppState,
    auth: &Authed,
) -> Result<Result<(), NumberRefusal>, AppError> {
    match auth.require_staff(Permission::MyNumber) {
        Ok(code) => terminal(state, auth, code).await,
        Err(_) => Ok(Err(NumberRefusal::Role)),
    }
}

async fn terminal(
    state: &AppState,
    auth: &Authed,
    code: MunicipalityCode,
) -> Result<Result<(), NumberRefusal>, AppError> {
    let ip = auth.client_ip;
    let has_second_factor = auth.account.second_factor;
    with_db(state, move |conn| {
        Ok(crate::flows::networks::terminal_check(
            conn,
            code,
            ip,
            has_second_factor,
        )?)
    })
    .await
}

/// The menu of a signed-in person, by role.
pub struct Nav {
    pub csrf: String,
    pub items: Vec<NavItem>,
}

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

impl Nav {
    pub fn for_account(auth: &Authed, path: &str) -> Nav {
        let mut items: Vec<(&'static str, &'static str)> = vec![("/dashboard", "dashboard.title")];
        match auth.role() {
            Some(Role::MunicipalAdmin) => items.extend([
                ("/admin/accounts", "admin.accounts.title"),
                ("/admin/networks", "admin.networks.title"),
                ("/admin/sites", "sites.title"),
                ("/admin/log", "admin.log.title"),
                ("/admin/held", "held.title"),
                ("/admin/retention", "retention.title"),
                ("/admin/exports", "export.admin_title"),
                ("/statistics/municipality", "stats.municipal.title"),
            ]),
            Some(Role::MunicipalStaff) => {
                let perms = auth.permissions();
                if perms.contains(&Permission::Residents) {
                    items.push(("/residents", "records.title"));
                    items.push(("/residents/imports", "imports.title"));
                    items.push(("/residents/changes", "changes.title"));
                    items.push(("/residents/reconcile", "reconcile.title"));
                    items.push(("/doses/queue", "queue.title"));
                    items.push(("/doses/batches", "batch.title"));
                    items.push(("/residents/due", "due.title"));
                    items.push(("/statistics/municipality", "stats.municipal.title"));
                }
                if perms.contains(&Permission::MyNumber) {
                    items.push(("/residents/by-number", "lookup.title"));
                }
                if perms.contains(&Permission::Inquiry) {
                    items.push(("/transfers", "transfer.title"));
                    items.push(("/transfers/bulk", "transfer.bulk.title"));
                }
                if perms.contains(&Permission::Certificates) {
                    items.push(("/verify", "verify.title"));
                }
                if perms.contains(&Permission::Export) {
                    items.push(("/exports", "exports.title"));
                }
            }
            Some(Role::Operator) => {
                items.push(("/operator", "operator.title"));
                items.push(("/operator/vaccines", "vaccines.title"));
                items.push(("/operator/channels", "channels.title"));
            }
            Some(Role::SiteTablet) => items.push(("/site", "site.title")),
            Some(Role::NationalViewer) | Some(Role::PrefecturalViewer) => {
                items.push(("/statistics", "stats.title"))
            }
            _ => {}
        }
        items.push(("/totp", "totp.title"));
        items.push(("/password", "password.title"));
        Nav {
            csrf: auth.session.csrf_token.clone(),
            items: items
                .into_iter()
                .map(|(href, label)| NavItem {
                    href,
                    label,
                    current: path == href,
                })
                .collect(),
        }
    }
}

/// Why an account cannot record.
pub enum NotRecorder {
    /// Not a role that records at all.
    Role,
    /// A tablet account whose site is missing or closed.
    NoSite,
}

/// The signed-in account as a recorder: a tablet with an open site, or a
/// municipal system (staff with the residents permission).
pub fn recorder_of(auth: &Authed) -> Result<Result<RecorderCtx, NotRecorder>, AppError> {
    let ctx = |site, only| RecorderCtx {
        recorder: Recorder {
            account_id: auth.account.id.clone(),
            site,
        },
        actor: auth.actor(),
        chain: chain_of(&auth.account),
        only,
        paused: auth.scans_paused,
    };
    match auth.require(&[Role::SiteTablet, Role::MunicipalStaff])? {
        Role::SiteTablet => Ok(auth
            .site
            .clone()
            .map(|s| ctx(Some(s), None))
            .ok_or(NotRecorder::NoSite)),
        _ => Ok(auth
            .require_staff(Permission::Residents)
            .map(|code| ctx(None, Some(code)))
            .map_err(|_| NotRecorder::Role)),
    }
}

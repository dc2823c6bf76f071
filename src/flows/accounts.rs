//! Accounts, login and sessions.
//!
//! Login answers the same, in the same time, for an unknown name, a wrong
//! password, a locked or an expired account: one argon2id verification is
//! always made (against a decoy hash when the name is unknown). Five failures
//! lock an account (or an unknown name) for 15 minutes; twenty from one
//! address lock that address.

mod devices;
mod password_rules;
mod sessions;
use crate::audit::{self, Actor, AuditKey, Entry, PLATFORM_CHAIN};
use crate::clock::now;
use crate::crypto::password;
use crate::db::models::accounts::{AccountRow, SessionParts, SessionRow, ThrottleRow};
use crate::db::models::tenants::KeysAndProduct;
use crate::db::{DbConn, DbError};
use crate::domain::{LoginId, MunicipalityCode, NewPassword, Role};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{Duration, NaiveDateTime};
pub use devices::*;
pub use password_rules::*;
pub use sessions::*;
use sha2::{Digest, Sha256};

pub const MAX_FAILURES: i32 = 5;
pub const MAX_FAILURES_PER_ADDR: i32 = 20;
pub const LOCK_MINUTES: i64 = 15;
pub const IDLE_MINUTES: i64 = 15;
pub const ABSOLUTE_HOURS: i64 = 12;

/// The signed-in account as a request sees it. The password hash and the
/// wrapped second factor stay in the database.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub login_id: String,
    pub role: String,
    pub municipality_code: Option<String>,
    pub prefecture_code: Option<String>,
    pub display_name: String,
    pub permissions: String,
    pub must_change_password: bool,
    pub expires_on: Option<chrono::NaiveDate>,
    /// Whether the account enrolled a TOTP second factor.
    pub second_factor: bool,
}

impl From<AccountRow> for Account {
    fn from(a: AccountRow) -> Account {
        Account {
            second_factor: a.totp_secret_wrapped.is_some(),
            id: a.id,
            login_id: a.login_id,
            role: a.role,
            municipality_code: a.municipality_code,
            prefecture_code: a.prefecture_code,
            display_name: a.display_name,
            permissions: a.permissions,
            must_change_password: a.must_change_password,
            expires_on: a.expires_on,
        }
    }
}

/// A live session as pages show it.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf_token: String,
    pub previous_login_at: Option<NaiveDateTime>,
    pub previous_login_addr: Option<String>,
}

impl From<SessionRow> for Session {
    fn from(s: SessionRow) -> Session {
        Session {
            csrf_token: s.csrf_token,
            previous_login_at: s.previous_login_at,
            previous_login_addr: s.previous_login_addr,
        }
    }
}

/// What the log line of an account's own operation needs of it, whether it
/// was read whole (a row) or is the signed-in account.
pub trait Held {
    fn id(&self) -> &str;
    fn municipality(&self) -> Option<&str>;
}

impl Held for AccountRow {
    fn id(&self) -> &str {
        &self.id
    }
    fn municipality(&self) -> Option<&str> {
        self.municipality_code.as_deref()
    }
}

impl Held for Account {
    fn id(&self) -> &str {
        &self.id
    }
    fn municipality(&self) -> Option<&str> {
        self.municipality_code.as_deref()
    }
}

/// The chain an account's operations are logged in.
pub fn chain_of(account: &impl Held) -> String {
    account
        .municipality()
        .map_or_else(|| PLATFORM_CHAIN.to_string(), str::to_string)
}

/// The log line of a change to an account, in its municipality's chain.
fn account_line(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    account: &impl Held,
    action: &str,
    detail: Option<String>,
) -> Result<(), DbError> {
    let target = Some(format!("account:{}", account.id()));
    audit::append(
        conn,
        key,
        actor,
        Entry::done(&chain_of(account), action, target, detail),
    )
}

pub fn role_of(account: &Account) -> Option<Role> {
    Role::parse(&account.role)
}

pub struct NewAccount {
    pub login_id: LoginId,
    pub role: Role,
    pub municipality: Option<MunicipalityCode>,
    pub prefecture_code: Option<String>,
    pub display_name: String,
    pub permissions: Vec<String>,
    pub expires_on: Option<chrono::NaiveDate>,
    pub device_name: Option<String>,
    pub responsible_person: Option<String>,
    /// The vaccination site of a tablet account.
    pub site_id: Option<String>,
    /// A password handed over by someone else must be changed at first login.
    pub must_change_password: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("login id is already taken")]
    LoginTaken,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl crate::db::DbCause for AccountError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            AccountError::Db(e) => Some(e),
            AccountError::LoginTaken => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(AccountError);

/// Creates an account with a one-time password that must be changed at first
/// login. Returns the account and that password (shown once, never stored).
pub fn create(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    new: NewAccount,
    password: Option<NewPassword>,
) -> Result<(Account, NewPassword), AccountError> {
    let password = password.unwrap_or_else(NewPassword::generate);
    let hash = password::hash(password.as_str());
    crate::db::write_transaction(conn, |conn| {
        if AccountRow::find_by_login_id(conn, new.login_id.as_str())?.is_some() {
            return Err(AccountError::LoginTaken);
        }
        let row = AccountRow {
            id: crate::domain::new_record_id(),
            login_id: new.login_id.as_str().to_string(),
            role: new.role.code().to_string(),
            municipality_code: new.municipality.map(|c| c.to_string()),
            prefecture_code: new.prefecture_code,
            display_name: new.display_name,
            permissions: new.permissions.join(","),
            password_hash: hash,
            must_change_password: new.must_change_password,
            expires_on: new.expires_on,
            disabled_at: None,
            device_name: new.device_name,
            responsible_person: new.responsible_person,
            failed_logins: 0,
            locked_until: None,
            last_login_at: None,
            last_login_addr: None,
            created_by: actor.account_id.clone(),
            created_at: now(),
            totp_secret_wrapped: None,
            totp_last_step: None,
            site_id: new.site_id,
        };
        row.insert(conn)?;
        account_line(
            conn,
            key,
            actor,
            &row,
            "account.create",
            Some(format!("role={}", row.role)),
        )?;
        Ok((row.into(), password))
    })
}

/// Creates the first operator account when there is none. Returns its login
/// and one-time password for the start-up message.
pub fn bootstrap_operator(
    conn: &mut DbConn,
    key: &AuditKey,
) -> Result<Option<(String, NewPassword)>, AccountError> {
    if AccountRow::count_operators(conn)? > 0 {
        return Ok(None);
    }
    let login = LoginId::parse("operator").expect("valid");
    let (row, pw) = create(
        conn,
        key,
        &Actor::default(),
        NewAccount {
            login_id: login,
            role: Role::Operator,
            municipality: None,
            prefecture_code: None,
            display_name: "運用事業者".into(),
            permissions: Vec::new(),
            expires_on: None,
            device_name: None,
            responsible_person: None,
            site_id: None,
            must_change_password: true,
        },
        None,
    )?;
    Ok(Some((row.login_id, pw)))
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("current password is wrong")]
    WrongCurrent,
    #[error("the new password must differ from the current one")]
    Unchanged,
    #[error("the new password is one of the account's earlier ones")]
    Reused,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl crate::db::DbCause for PasswordChangeError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            PasswordChangeError::Db(e) => Some(e),
            _ => None,
        }
    }
}

/// Changes a password after checking the current one; every other session of
/// the account is ended.
pub fn change_password(
    pool: &crate::db::Pool,
    key: &AuditKey,
    account: &Account,
    keep_session: &str,
    current: &str,
    new: &NewPassword,
    addr: &str,
) -> Result<(), PasswordChangeError> {
    let mut pooled = pool.get().map_err(DbError::from)?;
    let stored = stored_hash(&mut pooled, &account.id)?;
    if !stored.is_some_and(|h| password::verify(&h, current)) {
        return Err(PasswordChangeError::WrongCurrent);
    }
    if current == new.as_str() {
        return Err(PasswordChangeError::Unchanged);
    }
    let rules = rules_of(&mut pooled, account.municipality_code.as_deref())?;
    if reused(&mut pooled, &account.id, rules, new.as_str())? {
        return Err(PasswordChangeError::Reused);
    }
    let replaced = stored_hash(&mut pooled, &account.id)?;
    let hash = password::hash(new.as_str());
    crate::db::write_transaction(&mut pooled, |conn| {
        if let Some(old) = &replaced {
            remember(conn, &account.id, rules, old)?;
        }
        AccountRow::set_password(conn, &account.id, &hash, false)?;
        let keep = SessionRow::find(conn, &token_hash(keep_session))?;
        SessionRow::delete_for_account(conn, &account.id)?;
        if let Some(k) = keep {
            k.insert(conn)?;
        }
        let actor = Actor::account(&account.id, &account.login_id, addr);
        account_line(conn, key, &actor, account, "account.password_change", None)
    })
    .map_err(|e: DbError| PasswordChangeError::Db(e))
}

fn stored_hash(conn: &mut DbConn, id: &str) -> Result<Option<String>, DbError> {
    Ok(AccountRow::find(conn, id)?.map(|a| a.password_hash))
}

/// What disabling an account does beyond ending it, which the person who
/// asks is told before it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consequence {
    /// It is the account asking: its session ends at once.
    pub yourself: bool,
}

/// How a request to disable an account ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disabled {
    NotFound,
    Done(Consequence),
    /// Nothing was done: the consequence is to be confirmed first.
    Unconfirmed(Consequence),
    /// Refused: it is the municipality's last active administrator, and
    /// nobody could issue or lift accounts after it (the operator enables
    /// a municipality's first administrator only).
    LastAdministrator,
}

/// Ends an account at once (transfer, retirement): it can no longer log in and
/// its sessions end at their next request. The row stays, for the account
/// list and the log. Disabling yourself needs `confirmed`; the last active
/// administrator is never disabled.
pub fn disable(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    id: &str,
    confirmed: bool,
) -> Result<Disabled, DbError> {
    crate::db::write_transaction(conn, |conn| {
        AccountRow::lock_administrators(conn, code.as_str())?;
        let Some(acc) = AccountRow::find_by_id_and_municipality(conn, id, code.as_str())? else {
            return Ok(Disabled::NotFound);
        };
        // An administrator who is only locked out for a while still counts.
        let today = crate::clock::today_in_japan();
        let admin = |a: &AccountRow| {
            a.role == Role::MunicipalAdmin.code()
                && a.disabled_at.is_none()
                && a.expires_on.is_none_or(|d| d >= today)
        };
        if admin(&acc)
            && !AccountRow::of_municipality(conn, code.as_str())?
                .iter()
                .any(|a| a.id != acc.id && admin(a))
        {
            return Ok(Disabled::LastAdministrator);
        }
        let consequence = Consequence {
            yourself: actor.account_id.as_deref() == Some(acc.id.as_str()),
        };
        if consequence.yourself && !confirmed {
            return Ok(Disabled::Unconfirmed(consequence));
        }
        if acc.disabled_at.is_none() {
            AccountRow::disable(conn, &acc.id, now())?;
        }
        // Its sessions stay until their next request, which ends them as
        // no longer usable and tells the person why.
        account_line(
            conn,
            key,
            actor,
            &acc,
            "account.disable",
            consequence.yourself.then(|| "yourself=1".to_string()),
        )?;
        Ok(Disabled::Done(consequence))
    })
}

/// Lifts a lock before it runs out.
pub fn unlock(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    id: &str,
) -> Result<bool, DbError> {
    crate::db::write_transaction(conn, |conn| {
        let Some(acc) = AccountRow::find_by_id_and_municipality(conn, id, code.as_str())? else {
            return Ok(false);
        };
        AccountRow::unlock(conn, &acc.id)?;
        account_line(conn, key, actor, &acc, "account.unlock", None)?;
        Ok(true)
    })
}

/// An account as its municipality's administrator lists it: no password
/// hash, no second-factor secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub login_id: String,
    pub display_name: String,
    /// The stored role and permission codes (`Role::parse`,
    /// `Permission::parse_list` read them).
    pub role: String,
    pub permissions: String,
    pub expires_on: Option<chrono::NaiveDate>,
    /// As of the moment the list was read.
    pub status: AccountStatus,
    pub last_login_at: Option<NaiveDateTime>,
    pub last_login_addr: Option<String>,
    pub device_name: Option<String>,
    pub responsible_person: Option<String>,
    pub site_id: Option<String>,
    pub created_at: NaiveDateTime,
}

/// The municipality's accounts.
pub fn of_municipality(conn: &mut DbConn, code: MunicipalityCode) -> Result<Vec<Listed>, DbError> {
    let at = now();
    Ok(AccountRow::of_municipality(conn, code.as_str())?
        .into_iter()
        .map(|a| Listed {
            status: AccountStatus::of(&a, at),
            id: a.id,
            login_id: a.login_id,
            display_name: a.display_name,
            role: a.role,
            permissions: a.permissions,
            expires_on: a.expires_on,
            last_login_at: a.last_login_at,
            last_login_addr: a.last_login_addr,
            device_name: a.device_name,
            responsible_person: a.responsible_person,
            site_id: a.site_id,
            created_at: a.created_at,
        })
        .collect())
}

/// How an account stands today, for the administrator's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    Locked,
    Expired,
    Disabled,
}

impl AccountStatus {
    pub fn of(account: &AccountRow, at: NaiveDateTime) -> AccountStatus {
        if account.disabled_at.is_some() {
            AccountStatus::Disabled
        } else if account.expires_on.is_some_and(|d| d < at.date()) {
            AccountStatus::Expired
        } else if account.locked_until.is_some_and(|t| t > at) {
            AccountStatus::Locked
        } else {
            AccountStatus::Active
        }
    }

    pub fn label_key(&self) -> &'static str {
        match self {
            AccountStatus::Active => "status.active",
            AccountStatus::Locked => "status.locked",
            AccountStatus::Expired => "status.expired",
            AccountStatus::Disabled => "status.disabled",
        }
    }

    pub fn badge(&self) -> &'static str {
        match self {
            AccountStatus::Active => "badge--ok",
            AccountStatus::Locked => "badge--warn",
            AccountStatus::Expired | AccountStatus::Disabled => "badge--muted",
        }
    }
}

/// Enrols a TOTP secret after the person proved their app produces its codes.
pub fn enrol_totp(
    conn: &mut DbConn,
    master: &crate::crypto::MasterKey,
    key: &AuditKey,
    account: &Account,
    secret: &[u8],
    code: &str,
    addr: &str,
) -> Result<bool, DbError> {
    let Some(step) = crate::crypto::totp::verify(secret, code, crate::crypto::totp::now_unix())
    else {
        return Ok(false);
    };
    let wrapped = crate::crypto::totp::wrap(master, &account.id, secret);
    crate::db::write_transaction(conn, |conn| {
        AccountRow::set_totp(conn, &account.id, &wrapped, step)?;
        let actor = Actor::account(&account.id, &account.login_id, addr);
        account_line(conn, key, &actor, account, "account.totp_enrol", None)?;
        Ok(true)
    })
}

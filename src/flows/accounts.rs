//! Accounts, login and sessions.
//!
//! Login answers the same, in the same time, for an unknown name, a wrong
//! password, a locked or an expired account: one argon2id verification is
//! always made (against a decoy hash when the name is unknown). Five failures
//! lock an account (or an unknown name) for 15 minutes; twenty from one
//! address lock that address.

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
) -> Result<(AccountRow, NewPassword), AccountError> {
    let password = password.unwrap_or_else(NewPassword::generate);
    let hash = password::hash(password.as_str());
    crate::db::write_transaction(conn, |conn| {
        if AccountRow::find_by_login_id(conn, new.login_id.as_str())?.is_some() {
            return Err(AccountError::LoginTaken);
        }
        let row = AccountRow {
            id: uuid::Uuid::new_v4().to_string(),
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
        Ok((row, password))
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

/// A logged-in session: the cookie token (returned once) and what to show.
pub struct LoginSuccess {
    pub token: String,
    pub account: Account,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// One answer for unknown name, wrong password, locked or expired account.
    #[error("login refused")]
    Refused,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl crate::db::DbCause for LoginError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            LoginError::Db(e) => Some(e),
            LoginError::Refused => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(LoginError);

fn usable(account: &AccountRow, at: NaiveDateTime) -> bool {
    account.disabled_at.is_none()
        && account.expires_on.is_none_or(|d| d >= at.date())
        && account.locked_until.is_none_or(|t| t <= at)
}

fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64URL.encode(b)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a login. The argon2 work is done exactly once whatever the
/// outcome, and with no database connection held: a burst of logins must not
/// take the pool's connections from every other page while they hash.
/// What a person typed at the login form.
pub struct Credentials<'a> {
    pub login: &'a str,
    pub password: &'a str,
    /// The TOTP code; required only of accounts that enrolled one.
    pub code: &'a str,
}

pub fn login(
    pool: &crate::db::Pool,
    master: &crate::crypto::MasterKey,
    key: &AuditKey,
    typed: &Credentials<'_>,
    addr: &str,
) -> Result<LoginSuccess, LoginError> {
    let (login_input, password_input) = (typed.login, typed.password);
    let login = LoginId::parse(login_input).ok();
    let account = match &login {
        Some(l) => {
            let mut conn = pool.get().map_err(DbError::from)?;
            AccountRow::find_by_login_id(&mut conn, l.as_str())?
        }
        None => None,
    };
    let stored = account
        .as_ref()
        .map(|a| a.password_hash.as_str())
        .unwrap_or_else(|| password::decoy_hash());
    let password_ok = password::verify(stored, password_input) && account.is_some();

    let mut pooled = pool.get().map_err(DbError::from)?;
    let conn: &mut DbConn = &mut pooled;
    let at = now();

    let addr_key = format!("addr:{addr}");
    let addr_locked = ThrottleRow::find(conn, &addr_key)?
        .and_then(|t| t.locked_until)
        .is_some_and(|t| t > at);
    let actor = Actor {
        account_id: account.as_ref().map(|a| a.id.clone()),
        login_id: login.as_ref().map(|l| l.as_str().to_string()),
        client_addr: Some(addr.to_string()),
    };
    let chain = account
        .as_ref()
        .map(chain_of)
        .unwrap_or_else(|| PLATFORM_CHAIN.to_string());

    // The second factor, for accounts that enrolled one: a valid code whose
    // time step was not used before.
    let mut passes = password_ok && !addr_locked && account.as_ref().is_some_and(|a| usable(a, at));
    if let Some(acc) = account.as_ref().filter(|_| passes)
        && let Some(wrapped) = &acc.totp_secret_wrapped
    {
        let step = crate::crypto::totp::unwrap(master, &acc.id, wrapped).and_then(|secret| {
            crate::crypto::totp::verify(&secret, typed.code, crate::crypto::totp::now_unix())
        });
        passes = match step {
            Some(step) => AccountRow::take_totp_step(conn, &acc.id, step)?,
            None => false,
        };
    }

    match account {
        Some(acc) if passes => {
            let token = random_token();
            crate::db::write_transaction(conn, |conn| {
                SessionRow {
                    token_hash: token_hash(&token),
                    account_id: acc.id.clone(),
                    csrf_token: random_token(),
                    client_addr: addr.to_string(),
                    created_at: at,
                    last_seen_at: at,
                    previous_login_at: acc.last_login_at,
                    previous_login_addr: acc.last_login_addr.clone(),
                }
                .insert(conn)?;
                AccountRow::record_login(conn, &acc.id, at, addr)?;
                audit::append(conn, key, &actor, Entry::done(&chain, "login", None, None))?;
                Ok::<_, LoginError>(())
            })?;
            Ok(LoginSuccess {
                token,
                account: acc.into(),
            })
        }
        Some(acc) => {
            crate::db::write_transaction(conn, |conn| {
                let failures = acc.failed_logins + 1;
                let lock = (failures >= MAX_FAILURES).then(|| at + Duration::minutes(LOCK_MINUTES));
                let newly_locked = lock.is_some() && acc.locked_until.is_none_or(|t| t <= at);
                AccountRow::record_failure(
                    conn,
                    &acc.id,
                    if lock.is_some() { 0 } else { failures },
                    lock.or(acc.locked_until.filter(|t| *t > at)),
                )?;
                count_addr_failure(conn, &addr_key, at)?;
                let reason = if !usable(&acc, at) {
                    "unusable"
                } else if password_ok {
                    "second_factor"
                } else {
                    "password"
                };
                audit::append(
                    conn,
                    key,
                    &actor,
                    Entry {
                        chain: &chain,
                        action: "login",
                        target: None,
                        outcome: "refused",
                        detail: Some(format!("reason={reason}")),
                    },
                )?;
                if newly_locked {
                    account_line(
                        conn,
                        key,
                        &actor,
                        &acc,
                        "account.locked",
                        Some(format!("minutes={LOCK_MINUTES}")),
                    )?;
                }
                Ok::<_, LoginError>(())
            })?;
            Err(LoginError::Refused)
        }
        None => {
            crate::db::write_transaction(conn, |conn| {
                if let Some(l) = &login {
                    // Keyed by a hash: what was typed may be anything, even a number.
                    count_failure(
                        conn,
                        &format!("id:{}", token_hash(l.as_str())),
                        at,
                        MAX_FAILURES,
                    )?;
                }
                count_addr_failure(conn, &addr_key, at)?;
                audit::append(
                    conn,
                    key,
                    &actor,
                    Entry {
                        chain: PLATFORM_CHAIN,
                        action: "login",
                        target: None,
                        outcome: "refused",
                        detail: Some("reason=unknown".into()),
                    },
                )?;
                Ok::<_, LoginError>(())
            })?;
            Err(LoginError::Refused)
        }
    }
}

fn count_addr_failure(conn: &mut DbConn, key: &str, at: NaiveDateTime) -> Result<(), DbError> {
    count_failure(conn, key, at, MAX_FAILURES_PER_ADDR)
}

fn count_failure(conn: &mut DbConn, key: &str, at: NaiveDateTime, max: i32) -> Result<(), DbError> {
    let window = Duration::minutes(LOCK_MINUTES);
    let mut row = match ThrottleRow::find(conn, key)? {
        Some(r) if r.window_start + window > at => r,
        _ => ThrottleRow {
            throttle_key: key.to_string(),
            failures: 0,
            window_start: at,
            locked_until: None,
        },
    };
    row.failures += 1;
    if row.failures >= max {
        row.locked_until = Some(at + window);
    }
    row.save(conn)
}

/// Tickets a recorder may look up in vain within the lock window before its
/// scans pause: a real site misreads now and then, but walking through
/// ticket numbers to collect people's hints is stopped early.
pub const MAX_SCAN_MISSES: i32 = 20;

/// The throttle row of an account's scans is this plus the account's id.
const SCAN_KEY_PREFIX: &str = "scan:";

fn scan_key(account_id: &str) -> String {
    format!("{SCAN_KEY_PREFIX}{account_id}")
}

/// Counts a ticket the recorder looked up that does not exist.
pub fn count_scan_miss(conn: &mut DbConn, account_id: &str) -> Result<(), DbError> {
    count_failure(conn, &scan_key(account_id), now(), MAX_SCAN_MISSES)
}

/// The session behind a cookie token, if it is live: not idle past the
/// limit, not older than the absolute limit, its account still usable.
/// A dead session is deleted.
pub fn resolve(conn: &mut DbConn, token: &str) -> Result<Option<Live>, DbError> {
    let hash = token_hash(token);
    match SessionRow::find_with_account(conn, &hash, SCAN_KEY_PREFIX)? {
        Some(parts) => live(conn, &hash, parts),
        None => Ok(None),
    }
}

/// As `resolve`, reading with the session what recording a dose for a
/// ticket of `code` reads from the platform's tables (see
/// `SessionRow::find_for_recording`).
pub fn resolve_for_recording(
    conn: &mut DbConn,
    token: &str,
    code: MunicipalityCode,
    product: &str,
    lot: &str,
) -> Result<Option<(Live, Vec<KeysAndProduct>)>, DbError> {
    let hash = token_hash(token);
    let rows =
        SessionRow::find_for_recording(conn, &hash, SCAN_KEY_PREFIX, code.as_str(), product, lot)?;
    let Some((parts, _)) = rows.first() else {
        return Ok(None);
    };
    let parts = parts.clone();
    let read = rows.into_iter().filter_map(|(_, r)| r).collect();
    Ok(live(conn, &hash, parts)?.map(|l| (l, read)))
}

/// The session if it is live; a dead one is deleted.
fn live(conn: &mut DbConn, hash: &str, parts: SessionParts) -> Result<Option<Live>, DbError> {
    let at = now();
    let SessionParts {
        session,
        account,
        site,
        scans_locked_until,
    } = parts;
    let live = session.last_seen_at + Duration::minutes(IDLE_MINUTES) > at
        && session.created_at + Duration::hours(ABSOLUTE_HOURS) > at
        && usable(&account, at);
    if !live {
        SessionRow::delete(conn, hash)?;
        return Ok(None);
    }
    // Idle time is counted in half-minutes: a busy tablet or site system
    // does not write the session on every request.
    if at - session.last_seen_at >= Duration::seconds(30) {
        SessionRow::touch(conn, hash, at)?;
    }
    let site = crate::flows::sites::usable_for(&account, site);
    Ok(Some(Live {
        session: session.into(),
        account: account.into(),
        site,
        scans_paused: scans_locked_until.is_some_and(|t| t > at),
    }))
}

/// A live session, read with what every request asks of it.
#[derive(Debug, Clone)]
pub struct Live {
    pub session: Session,
    pub account: Account,
    /// A tablet's site, if it is open and of the account's municipality.
    pub site: Option<crate::flows::sites::OpenSite>,
    /// Whether the account's ticket scans are paused after too many misses.
    pub scans_paused: bool,
}

pub fn logout(
    conn: &mut DbConn,
    key: &AuditKey,
    token: &str,
    account: &Account,
    addr: &str,
) -> Result<(), DbError> {
    crate::db::write_transaction(conn, |conn| {
        SessionRow::delete(conn, &token_hash(token))?;
        let actor = Actor::account(&account.id, &account.login_id, addr);
        audit::append(
            conn,
            key,
            &actor,
            Entry::done(&chain_of(account), "logout", None, None),
        )
    })
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("current password is wrong")]
    WrongCurrent,
    #[error("the new password must differ from the current one")]
    Unchanged,
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
    let stored = AccountRow::find(&mut pooled, &account.id)?.map(|a| a.password_hash);
    if !stored.is_some_and(|h| password::verify(&h, current)) {
        return Err(PasswordChangeError::WrongCurrent);
    }
    if current == new.as_str() {
        return Err(PasswordChangeError::Unchanged);
    }
    let hash = password::hash(new.as_str());
    crate::db::write_transaction(&mut pooled, |conn| {
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

/// Ends an account at once (transfer, retirement): it can no longer log in and
/// its sessions end. The row stays, for the account list and the log.
pub fn disable(
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
        if acc.disabled_at.is_none() {
            AccountRow::disable(conn, &acc.id, now())?;
        }
        SessionRow::delete_for_account(conn, &acc.id)?;
        account_line(conn, key, actor, &acc, "account.disable", None)?;
        Ok(true)
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

//! Signing in and the sessions that follow: the login with its throttles
//! and second factor, the live session behind a cookie or bearer token (idle
//! and absolute limits), the scan-miss count of a tablet, and the logout.

use super::*;

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

pub(super) fn usable(account: &AccountRow, at: NaiveDateTime) -> bool {
    account.disabled_at.is_none()
        && account.expires_on.is_none_or(|d| d >= at.date())
        && account.locked_until.is_none_or(|t| t <= at)
}

pub(super) fn random_token() -> String {
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
    /// The key the browser holds for its enrolled device, if any: required
    /// of a site tablet bound to one.
    pub device: Option<&'a str>,
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

    // A tablet bound to a device logs in only from it.
    let device_ok = match account.as_ref() {
        Some(acc) if passes => device_allows(conn, acc, typed.device)?,
        _ => true,
    };
    passes &= device_ok;

    match account {
        Some(mut acc) if passes => {
            let token = random_token();
            // A password past its municipality's limit is changed first. Not
            // a site tablet's: its shared password is its administrator's to
            // change, and it is bound to its device instead.
            let rules = rules_of(conn, acc.municipality_code.as_deref())?;
            let aged = !acc.must_change_password
                && Role::parse(&acc.role) != Some(Role::SiteTablet)
                && AccountRow::password_set_at(conn, &acc.id)?
                    .is_some_and(|set| expired(rules, set, at));
            crate::db::write_transaction(conn, |conn| {
                if aged {
                    AccountRow::require_password_change(conn, &acc.id)?;
                }
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
            acc.must_change_password |= aged;
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
                } else if !device_ok {
                    "device"
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
    Ok(resolve_why(conn, token)?.ok())
}

/// Why a session is no longer live, for the page that asks the person to
/// sign in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No such session (never signed in here, logged out, or ended by a
    /// password change elsewhere).
    Unknown,
    /// Left unused past the idle limit.
    Idle,
    /// Older than the absolute limit.
    Aged,
    /// Its account was disabled or has expired.
    AccountEnded,
}

impl Ended {
    /// The login page's notice for it (`/login?notice=…`).
    pub fn notice(&self) -> Option<&'static str> {
        match self {
            Ended::Unknown => None,
            Ended::Idle => Some("idle"),
            Ended::Aged => Some("aged"),
            Ended::AccountEnded => Some("account_ended"),
        }
    }
}

/// As `resolve`, saying why a session that is not live ended.
pub fn resolve_why(conn: &mut DbConn, token: &str) -> Result<Result<Live, Ended>, DbError> {
    let hash = token_hash(token);
    match SessionRow::find_with_account(conn, &hash, SCAN_KEY_PREFIX)? {
        Some(parts) => live(conn, &hash, parts),
        None => Ok(Err(Ended::Unknown)),
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
    Ok(live(conn, &hash, parts)?.ok().map(|l| (l, read)))
}

/// The session if it is live; a dead one is deleted.
fn live(
    conn: &mut DbConn,
    hash: &str,
    parts: SessionParts,
) -> Result<Result<Live, Ended>, DbError> {
    let at = now();
    let SessionParts {
        session,
        account,
        site,
        scans_locked_until,
    } = parts;
    let ended = if !usable(&account, at) {
        Some(Ended::AccountEnded)
    } else if session.created_at + Duration::hours(ABSOLUTE_HOURS) <= at {
        Some(Ended::Aged)
    } else if session.last_seen_at + Duration::minutes(IDLE_MINUTES) <= at {
        Some(Ended::Idle)
    } else {
        None
    };
    if let Some(why) = ended {
        SessionRow::delete(conn, hash)?;
        return Ok(Err(why));
    }
    // Idle time is counted in half-minutes: a busy tablet or site system
    // does not write the session on every request.
    if at - session.last_seen_at >= Duration::seconds(30) {
        SessionRow::touch(conn, hash, at)?;
    }
    let site = crate::flows::sites::usable_for(&account, site);
    Ok(Ok(Live {
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

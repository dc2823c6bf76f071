//! Site tablets bound to the devices they were enrolled on. An
//! administrator issues a one-time code (15 minutes); typed on the tablet
//! with its login, it enrols that browser, which keeps a random device key
//! in a cookie (the database keeps its SHA-256). From then on the account
//! logs in only with that key; a lost device is revoked in one step, which
//! also ends its sessions. A municipality may refuse every tablet not yet
//! enrolled.

use super::*;
use crate::db::models::accounts::{DeviceRow, SharedReview};
use chrono::NaiveDate;

/// How long an enrolment code may be used.
pub const CODE_MINUTES: i64 = 15;

/// The name of the cookie that holds a device's key.
pub const DEVICE_COOKIE: &str = "vrs_device";

/// Letters a person reads off one screen and types on another: no 0/O,
/// 1/I/L.
const CODE_LETTERS: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 10;

fn new_code() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..CODE_LEN)
        .map(|_| CODE_LETTERS[rng.gen_range(0..CODE_LETTERS.len())] as char)
        .collect()
}

/// A code as typed: spaces and hyphens dropped, letters upper-cased.
fn normalised(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// The municipality's tablet account `id`, if it is one.
fn tablet_of(
    conn: &mut DbConn,
    code: MunicipalityCode,
    id: &str,
) -> Result<Option<AccountRow>, DbError> {
    Ok(AccountRow::find(conn, id)?.filter(|a| {
        a.municipality_code.as_deref() == Some(code.as_str())
            && Role::parse(&a.role) == Some(Role::SiteTablet)
    }))
}

/// Issues an enrolment code for a tablet account of `code`; none if the
/// account is not one. The code is shown once.
pub fn issue_code(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    id: &str,
) -> Result<Option<String>, DbError> {
    let Some(tablet) = tablet_of(conn, code, id)? else {
        return Ok(None);
    };
    let enrol = new_code();
    crate::db::write_transaction(conn, |conn| {
        let expires = now() + Duration::minutes(CODE_MINUTES);
        DeviceRow::set_code(conn, &tablet.id, &token_hash(&enrol), expires)?;
        account_line(conn, key, actor, &tablet, "account.device_code", None)
    })?;
    Ok(Some(enrol))
}

/// Enrols the browser that typed a tablet's login and a valid code: the
/// device key it is to keep, or none (one answer for every refusal).
pub fn enrol(
    conn: &mut DbConn,
    key: &AuditKey,
    login: &str,
    typed_code: &str,
    addr: &str,
) -> Result<Option<String>, DbError> {
    let Some(tablet) = LoginId::parse(login)
        .ok()
        .map(|l| AccountRow::find_by_login_id(conn, l.as_str()))
        .transpose()?
        .flatten()
        .filter(|a| Role::parse(&a.role) == Some(Role::SiteTablet))
    else {
        return Ok(None);
    };
    let device_key = random_token();
    let actor = Actor::account(&tablet.id, &tablet.login_id, addr);
    crate::db::write_transaction(conn, |conn| {
        let code_hash = token_hash(&normalised(typed_code));
        let done = DeviceRow::enrol(
            conn,
            &tablet.id,
            &code_hash,
            &token_hash(&device_key),
            now(),
        )?;
        if done {
            // Sessions begun elsewhere end: the account is this device's now.
            SessionRow::delete_for_account(conn, &tablet.id)?;
            account_line(conn, key, &actor, &tablet, "account.device_enrol", None)?;
        }
        Ok::<_, DbError>(done.then_some(device_key))
    })
}

/// A change to one of `code`'s tablet accounts, with its log line, in one
/// transaction; false if `id` is not one.
#[allow(clippy::too_many_arguments)]
fn change_tablet(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    id: &str,
    action: &str,
    detail: Option<String>,
    work: impl FnOnce(&mut DbConn, &str) -> Result<(), DbError>,
) -> Result<bool, DbError> {
    let Some(tablet) = tablet_of(conn, code, id)? else {
        return Ok(false);
    };
    crate::db::write_transaction(conn, |conn| {
        work(conn, &tablet.id)?;
        account_line(conn, key, actor, &tablet, action, detail)
    })?;
    Ok(true)
}

/// Unbinds a tablet's device and ends its sessions; false if `id` is not
/// a tablet account of `code`.
pub fn revoke_device(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    id: &str,
) -> Result<bool, DbError> {
    change_tablet(
        conn,
        key,
        actor,
        code,
        id,
        "account.device_revoke",
        None,
        |conn, id| {
            DeviceRow::revoke(conn, id)?;
            SessionRow::delete_for_account(conn, id)?;
            Ok(())
        },
    )
}

/// Whether the municipality refuses tablets not yet enrolled.
pub fn devices_required(conn: &mut DbConn, code: &str) -> Result<bool, DbError> {
    use crate::db::schema::tenants;
    use diesel::prelude::*;
    Ok(tenants::table
        .find(code)
        .select(tenants::require_enrolled_devices)
        .first::<bool>(conn)
        .optional()?
        .unwrap_or(false))
}

pub fn require_devices(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    on: bool,
) -> Result<(), DbError> {
    use crate::db::schema::tenants;
    use diesel::prelude::*;
    let line = ("tenant.require_devices", format!("on={on}"));
    crate::flows::municipalities::save_setting(conn, key, actor, code, line, |conn| {
        diesel::update(tenants::table.find(code.as_str()))
            .set(tenants::require_enrolled_devices.eq(on))
            .execute(conn)?;
        Ok(())
    })
}

/// Whether an account may log in from a browser holding `device` (its
/// cookie's key, if any): any account but a tablet may; a tablet bound to
/// a device only with its key; one not bound unless its municipality
/// requires enrolment.
pub(super) fn device_allows(
    conn: &mut DbConn,
    account: &AccountRow,
    device: Option<&str>,
) -> Result<bool, DbError> {
    if Role::parse(&account.role) != Some(Role::SiteTablet) {
        return Ok(true);
    }
    let bound = DeviceRow::of(conn, &account.id)?.and_then(|d| d.device_key_hash);
    Ok(match bound {
        Some(hash) => device.is_some_and(|k| crate::crypto::same_token(&token_hash(k), &hash)),
        None => match account.municipality_code.as_deref() {
            Some(code) => !devices_required(conn, code)?,
            None => false,
        },
    })
}

/// When each of a municipality's tablets was enrolled, by account id.
pub fn enrolled_devices(
    conn: &mut DbConn,
    code: MunicipalityCode,
) -> Result<std::collections::HashMap<String, NaiveDateTime>, DbError> {
    Ok(DeviceRow::enrolled_of_municipality(conn, code.as_str())?
        .into_iter()
        .collect())
}

/// Days between reviews of a shared (tablet) account: who holds it, and
/// whether it is still needed.
pub const SHARED_REVIEW_DAYS: i64 = 90;

/// The day a shared account issued or reviewed on `today` is next due.
pub fn next_shared_review(today: NaiveDate) -> NaiveDate {
    today + Duration::days(SHARED_REVIEW_DAYS)
}

/// When each of a municipality's tablets is next to be reviewed (none:
/// never reviewed, so due now).
pub fn shared_reviews(
    conn: &mut DbConn,
    code: MunicipalityCode,
) -> Result<std::collections::HashMap<String, Option<NaiveDate>>, DbError> {
    Ok(SharedReview::of_municipality(conn, code.as_str())?
        .into_iter()
        .collect())
}

/// Records that a tablet account of `code` was reviewed today: its next
/// review is due in `SHARED_REVIEW_DAYS`. False if it is not one.
pub fn mark_shared_reviewed(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    id: &str,
) -> Result<bool, DbError> {
    let next = next_shared_review(crate::clock::today_in_japan());
    let detail = Some(format!("next={next}"));
    change_tablet(
        conn,
        key,
        actor,
        code,
        id,
        "account.shared_review",
        detail,
        |conn, id| {
            SharedReview::set(conn, id, next)?;
            Ok(())
        },
    )
}

/// Sets a new shared account's first review.
pub fn schedule_shared_review(
    conn: &mut DbConn,
    id: &str,
    today: NaiveDate,
) -> Result<(), DbError> {
    SharedReview::set(conn, id, next_shared_review(today))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_without_look_alike_letters_and_is_typed_loosely() {
        let c = new_code();
        assert_eq!(c.len(), CODE_LEN);
        assert!(c.bytes().all(|b| CODE_LETTERS.contains(&b)));
        assert_eq!(normalised(" abcd-ef23 45 "), "ABCDEF2345");
    }
}

//! An administrator issues an account of their own municipality: the rules
//! of the form (least privilege, an expiry, a tablet bound to a device, a
//! responsible person and one of the municipality's open sites), checked
//! all at once so that every field's problem is shown beside it.

use super::accounts::{self, AccountError, NewAccount};
use crate::audit::{Actor, AuditKey};
use crate::db::models::sites::SiteRow;
use crate::db::{DbConn, DbError};
use crate::domain::{
    FieldError, LoginId, MunicipalityCode, NewPassword, Permission, PersonName, Role,
    parse_optional_text,
};
use chrono::{Datelike, NaiveDate};

/// The form as typed.
#[derive(Debug, Clone, Default)]
pub struct AccountRequest {
    pub login_id: String,
    pub display_name: String,
    pub role: String,
    pub expires_on: String,
    pub device_name: String,
    pub responsible_person: String,
    pub site_id: String,
    /// Ticked permissions; they count for staff accounts only.
    pub permissions: Vec<Permission>,
}

/// The field a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountField {
    LoginId,
    DisplayName,
    Role,
    ExpiresOn,
    Device,
    Responsible,
    Site,
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The value does not parse (too long, hidden characters…).
    Field(FieldError),
    /// Administrators issue municipal accounts only, never an operator's.
    RoleNotMunicipal,
    ExpiryPast,
    ExpiryInvalid,
    /// A tablet account names its device and the person responsible.
    TabletNeedsDevice,
    /// A tablet records for one of the municipality's open sites.
    TabletNeedsSite,
    LoginTaken,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the account form has problems")]
    Invalid(Vec<(AccountField, Problem)>),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Stopped(#[from] super::Stopped),
}

impl crate::db::DbCause for IssueError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            IssueError::Db(e) => Some(e),
            _ => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(IssueError);

/// An account's default end: the end of the fiscal year (31 March).
pub fn fiscal_year_end(today: NaiveDate) -> NaiveDate {
    let year = if today.month() >= 4 {
        today.year() + 1
    } else {
        today.year()
    };
    NaiveDate::from_ymd_opt(year, 3, 31).unwrap_or(today)
}

/// The municipality's open sites (id, name), for binding a tablet account.
pub fn open_sites(
    conn: &mut DbConn,
    code: MunicipalityCode,
) -> Result<Vec<(String, String)>, DbError> {
    Ok(SiteRow::of_municipality(conn, code.as_str())?
        .into_iter()
        .filter(|s| s.closed_at.is_none())
        .map(|s| (s.id, s.name))
        .collect())
}

fn optional(field: &'static str, s: &str) -> Result<Option<String>, FieldError> {
    parse_optional_text(field, s, 100)
}

/// Checks the form against the rules and the municipality's open sites.
fn check(
    req: &AccountRequest,
    code: MunicipalityCode,
    sites: &[(String, String)],
    today: NaiveDate,
) -> Result<NewAccount, Vec<(AccountField, Problem)>> {
    let mut problems = Vec::new();
    let mut note = |field, p| problems.push((field, p));
    let login = LoginId::parse(&req.login_id)
        .map_err(|e| note(AccountField::LoginId, Problem::Field(e)))
        .ok();
    let name = PersonName::parse(&req.display_name)
        .map_err(|e| note(AccountField::DisplayName, Problem::Field(e)))
        .ok();
    let role = match Role::parse(&req.role) {
        Some(r) if r.is_municipal() => Some(r),
        _ => {
            note(AccountField::Role, Problem::RoleNotMunicipal);
            None
        }
    };
    let expires = match NaiveDate::parse_from_str(req.expires_on.trim(), "%Y-%m-%d") {
        Ok(d) if d >= today => Some(d),
        Ok(_) => {
            note(AccountField::ExpiresOn, Problem::ExpiryPast);
            None
        }
        Err(_) => {
            note(AccountField::ExpiresOn, Problem::ExpiryInvalid);
            None
        }
    };
    let device = optional("端末名", &req.device_name)
        .map_err(|e| note(AccountField::Device, Problem::Field(e)))
        .ok();
    let responsible = optional("責任者", &req.responsible_person)
        .map_err(|e| note(AccountField::Responsible, Problem::Field(e)))
        .ok();
    let tablet = role == Some(Role::SiteTablet);
    if let (true, Some(device), Some(responsible)) = (tablet, &device, &responsible)
        && (device.is_none() || responsible.is_none())
    {
        note(AccountField::Device, Problem::TabletNeedsDevice);
    }
    let site = sites
        .iter()
        .find(|(id, _)| *id == req.site_id)
        .map(|(id, _)| id.clone());
    if tablet && site.is_none() {
        note(AccountField::Site, Problem::TabletNeedsSite);
    }
    let (Some(login), Some(name), Some(role), Some(expires)) = (login, name, role, expires) else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let permissions = if role == Role::MunicipalStaff {
        req.permissions
            .iter()
            .map(|p| p.code().to_string())
            .collect()
    } else {
        Vec::new()
    };
    Ok(NewAccount {
        login_id: login,
        role,
        municipality: Some(code),
        prefecture_code: None,
        display_name: name.as_str().to_string(),
        permissions,
        expires_on: Some(expires),
        device_name: device.flatten().filter(|_| tablet),
        responsible_person: responsible.flatten().filter(|_| tablet),
        site_id: site.filter(|_| tablet),
        must_change_password: true,
    })
}

/// Issues the account with a one-time password (changed at first login),
/// with its operation-log line; nothing is written when a field is wrong.
pub fn issue(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    req: &AccountRequest,
    today: NaiveDate,
) -> Result<(super::accounts::Account, NewPassword), IssueError> {
    let sites = open_sites(conn, code)?;
    let new = check(req, code, &sites, today).map_err(IssueError::Invalid)?;
    let tablet = new.role == Role::SiteTablet;
    match accounts::create(conn, key, actor, new, None) {
        Ok(done) => {
            if tablet {
                accounts::schedule_shared_review(conn, &done.0.id, today)?;
            }
            Ok(done)
        }
        Err(AccountError::LoginTaken) => Err(IssueError::Invalid(vec![(
            AccountField::LoginId,
            Problem::LoginTaken,
        )])),
        Err(AccountError::Db(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date")
    }

    fn code() -> MunicipalityCode {
        MunicipalityCode::parse("082040").expect("a code")
    }

    fn tablet() -> AccountRequest {
        AccountRequest {
            login_id: "tablet-1".into(),
            display_name: "会場タブレット".into(),
            role: "site_tablet".into(),
            expires_on: "2027-03-31".into(),
            device_name: "iPad 1".into(),
            responsible_person: "山田".into(),
            site_id: "s1".into(),
            permissions: vec![Permission::MyNumber],
        }
    }

    fn sites() -> Vec<(String, String)> {
        vec![("s1".into(), "中央公民館".into())]
    }

    #[test]
    fn a_tablet_gets_its_device_and_site_and_no_permission() {
        let new = check(&tablet(), code(), &sites(), day("2026-12-07")).expect("valid");
        assert_eq!(new.site_id.as_deref(), Some("s1"));
        assert_eq!(new.device_name.as_deref(), Some("iPad 1"));
        assert!(new.permissions.is_empty(), "permissions are for staff only");
        assert!(new.must_change_password);
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let cases = [
            (
                AccountRequest {
                    role: "operator".into(),
                    expires_on: "2026-12-06".into(),
                    ..tablet()
                },
                vec![
                    (AccountField::Role, Problem::RoleNotMunicipal),
                    (AccountField::ExpiresOn, Problem::ExpiryPast),
                ],
            ),
            (
                AccountRequest {
                    device_name: " ".into(),
                    site_id: "closed-or-foreign".into(),
                    ..tablet()
                },
                vec![
                    (AccountField::Device, Problem::TabletNeedsDevice),
                    (AccountField::Site, Problem::TabletNeedsSite),
                ],
            ),
        ];
        for (req, expected) in cases {
            let problems = check(&req, code(), &sites(), day("2026-12-07"))
                .err()
                .expect("refused");
            assert_eq!(problems, expected, "{req:?}");
        }
    }

    #[test]
    fn the_fiscal_year_ends_on_the_next_31_march() {
        assert_eq!(fiscal_year_end(day("2026-12-07")), day("2027-03-31"));
        assert_eq!(fiscal_year_end(day("2027-03-31")), day("2027-03-31"));
        assert_eq!(fiscal_year_end(day("2027-04-01")), day("2028-03-31"));
    }
}

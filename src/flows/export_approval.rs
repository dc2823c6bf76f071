//! Exports of personal data approved first (S38), where the municipality
//! asks for it: the ledger CSV and a resident's provision records open to
//! the staff member who asked only after an administrator approved, once,
//! within a day of the request. Every step is a line of the log.

use crate::audit::{Actor, AuditKey, Entry};
use crate::db::models::export_requests::{self as rq, ExportRequestRow};
use crate::db::{DbConn, DbError};
use crate::domain::MunicipalityCode;
use chrono::{Duration, NaiveDateTime};

/// How long a request (and its approval) stands.
pub const VALID_HOURS: i64 = 24;

/// What is to be downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    Ledger,
    /// One resident's provision records.
    Provisions(String),
}

impl Export {
    fn kind(&self) -> &'static str {
        match self {
            Export::Ledger => "ledger",
            Export::Provisions(_) => "provisions",
        }
    }

    fn subject(&self) -> Option<&str> {
        match self {
            Export::Ledger => None,
            Export::Provisions(id) => Some(id),
        }
    }
}

/// Where a staff member stands with one download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The municipality asks for no approval.
    Open,
    NotAsked,
    Pending,
    Approved,
    Refused,
}

pub fn required(conn: &mut DbConn, code: MunicipalityCode) -> Result<bool, DbError> {
    ExportRequestRow::required(conn, code.as_str())
}

pub fn set_required(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    on: bool,
) -> Result<(), DbError> {
    let line = ("tenant.export_approval", format!("on={on}"));
    super::municipalities::save_setting(conn, key, actor, code, line, |conn| {
        ExportRequestRow::set_required(conn, code.as_str(), on)?;
        Ok(())
    })
}

fn since(at: NaiveDateTime) -> NaiveDateTime {
    at - Duration::hours(VALID_HOURS)
}

/// The staff member's standing for an export, from their newest request of
/// the last day.
pub fn standing(
    conn: &mut DbConn,
    code: MunicipalityCode,
    account: &str,
    export: &Export,
) -> Result<Standing, DbError> {
    if !required(conn, code)? {
        return Ok(Standing::Open);
    }
    let mine = ExportRequestRow::mine(
        conn,
        code.as_str(),
        account,
        export.kind(),
        export.subject(),
        since(crate::clock::now()),
    )?;
    Ok(match mine.first().map(|r| r.status.as_str()) {
        Some(rq::PENDING) => Standing::Pending,
        Some(rq::APPROVED) => Standing::Approved,
        Some(rq::REFUSED) => Standing::Refused,
        _ => Standing::NotAsked,
    })
}

/// Asks for an export (unless one is pending or approved already).
pub fn request(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    export: &Export,
) -> Result<(), DbError> {
    let account = actor.account_id.clone().unwrap_or_default();
    if matches!(
        standing(conn, code, &account, export)?,
        Standing::Pending | Standing::Approved | Standing::Open
    ) {
        return Ok(());
    }
    crate::db::write_transaction(conn, |conn| {
        let id = crate::domain::new_record_id();
        ExportRequestRow {
            municipality_code: code.to_string(),
            id: id.clone(),
            kind: export.kind().into(),
            subject: export.subject().map(str::to_string),
            requested_by: account.clone(),
            requester_login: actor.login_id.clone().unwrap_or_default(),
            requested_at: crate::clock::now(),
            status: rq::PENDING.into(),
            decided_by: None,
            decided_login: None,
            decided_at: None,
        }
        .insert(conn)?;
        crate::audit::append(
            conn,
            key,
            actor,
            Entry::done(
                code.as_str(),
                "export.request",
                export.subject().map(|s| format!("resident:{s}")),
                Some(format!("request={id} kind={}", export.kind())),
            ),
        )
    })
}

/// Opens the approved download once: true if the staff member may download
/// it now (always, where no approval is asked for).
pub fn take(
    conn: &mut DbConn,
    code: MunicipalityCode,
    account: &str,
    export: &Export,
) -> Result<bool, DbError> {
    if !required(conn, code)? {
        return Ok(true);
    }
    let at = crate::clock::now();
    let mine = ExportRequestRow::mine(
        conn,
        code.as_str(),
        account,
        export.kind(),
        export.subject(),
        since(at),
    )?;
    let Some(approved) = mine.into_iter().find(|r| r.status == rq::APPROVED) else {
        return Ok(false);
    };
    ExportRequestRow::set_status(
        conn,
        code.as_str(),
        &approved.id,
        rq::APPROVED,
        rq::USED,
        None,
        at,
    )
}

/// A request as the administrators see it.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    pub kind: String,
    pub subject: Option<String>,
    pub requester: String,
    pub requested_at: NaiveDateTime,
    pub status: String,
    pub decided_by: Option<String>,
}

pub fn requests(conn: &mut DbConn, code: MunicipalityCode) -> Result<Vec<Request>, DbError> {
    Ok(ExportRequestRow::of_municipality(conn, code.as_str(), 200)?
        .into_iter()
        .map(|r| Request {
            id: r.id,
            kind: r.kind,
            subject: r.subject,
            requester: r.requester_login,
            requested_at: r.requested_at,
            status: r.status,
            decided_by: r.decided_login,
        })
        .collect())
}

/// Approves or refuses a pending request of `code`; false if there is no
/// such pending request, or if the administrator asked for it themselves.
pub fn decide(
    conn: &mut DbConn,
    key: &AuditKey,
    admin: &Actor,
    code: MunicipalityCode,
    id: &str,
    approve: bool,
) -> Result<bool, DbError> {
    let by = (
        admin.account_id.clone().unwrap_or_default(),
        admin.login_id.clone().unwrap_or_default(),
    );
    crate::db::write_transaction(conn, |conn| {
        let own = ExportRequestRow::find(conn, code.as_str(), id)?
            .is_some_and(|r| r.requested_by == by.0);
        let to = if approve { rq::APPROVED } else { rq::REFUSED };
        if own
            || !ExportRequestRow::set_status(
                conn,
                code.as_str(),
                id,
                rq::PENDING,
                to,
                Some((&by.0, &by.1)),
                crate::clock::now(),
            )?
        {
            return Ok(false);
        }
        crate::audit::append(
            conn,
            key,
            admin,
            Entry {
                chain: code.as_str(),
                action: "export.decide",
                target: None,
                outcome: if approve { "ok" } else { "refused" },
                detail: Some(format!("request={id}")),
            },
        )?;
        Ok(true)
    })
}

//! Provision records (提供記録) as their keepers see them: the records about
//! one resident for a disclosure request (開示請求), as a table and as CSV,
//! and the retention purge after seven years.

use crate::audit::{self, Actor, AuditKey, Entry};
use crate::crypto::MasterKey;
use crate::db::TenantConn;
use crate::db::models::provisions::{NoticeRow, ProvisionRow, REQUESTER};
use crate::db::models::tenants::TenantRow;
use crate::db::{DbConn, DbError};
use crate::domain::{MunicipalityCode, Registry};
use crate::tenancy::{Partition, Scope, TenancyError};
use chrono::{Months, NaiveDateTime};

/// How long provision records are kept (as 情報提供等の記録 are).
pub const RETENTION_YEARS: u32 = 7;

/// Records requested before this moment are past retention.
pub fn cutoff(at: NaiveDateTime) -> NaiveDateTime {
    at.checked_sub_months(Months::new(RETENTION_YEARS * 12))
        .unwrap_or(NaiveDateTime::MIN)
}

/// A provision record as its keeper discloses it, on the page and in the
/// file.
#[derive(Debug, Clone)]
pub struct Provision {
    pub id: String,
    pub inquiry_id: String,
    /// Whether the keeper asked (`requester`) or was asked (`provider`).
    pub side: String,
    pub requested_at: NaiveDateTime,
    pub answered_at: Option<NaiveDateTime>,
    pub requester_code: String,
    pub requester_login_id: Option<String>,
    pub provider_code: String,
    pub channel: String,
    pub procedure_code: String,
    pub purpose: String,
    /// The record items given, none when nothing was.
    pub items: Vec<String>,
    pub dose_count: i32,
    pub outcome: String,
    pub refusal: Option<String>,
    pub id_document: Option<String>,
    pub id_checked_by: Option<String>,
}

impl From<ProvisionRow> for Provision {
    fn from(r: ProvisionRow) -> Provision {
        Provision {
            items: r
                .items
                .split(',')
                .filter(|i| !i.is_empty())
                .map(str::to_string)
                .collect(),
            id: r.id,
            inquiry_id: r.inquiry_id,
            side: r.side,
            requested_at: r.requested_at,
            answered_at: r.answered_at,
            requester_code: r.requester_code,
            requester_login_id: r.requester_login_id,
            provider_code: r.provider_code,
            channel: r.channel,
            procedure_code: r.procedure_code,
            purpose: r.purpose,
            dose_count: r.dose_count,
            outcome: r.outcome,
            refusal: r.refusal,
            id_document: r.id_document,
            id_checked_by: r.id_checked_by,
        }
    }
}

/// The keeper's records about one of its residents, newest first (not
/// found for a resident it does not hold). For a
/// resident under a support measure the other municipality is withheld
/// (its code left empty): where the person asked from is where they live.
pub fn of_resident(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
) -> Result<Vec<Provision>, super::residents::ResidentError> {
    // Read from the row's flag: the record itself is not opened.
    let protected = super::residents::protection_of(scope, conn, resident_id)?
        .ok_or(super::residents::ResidentError::NotFound)?;
    Ok(ProvisionRow::of_resident(conn, resident_id)
        .map_err(TenancyError::from)?
        .into_iter()
        .map(Provision::from)
        .map(|mut p| {
            if protected {
                p.withhold_other();
            }
            p
        })
        .collect())
}

/// What stands for a municipality withheld from a disclosure.
pub const WITHHELD: &str = "（支援措置のため非表示）";

impl Provision {
    /// Leaves out the other municipality (the keeper is `scope`'s own).
    fn withhold_other(&mut self) {
        if self.side == REQUESTER {
            self.provider_code.clear();
        } else {
            // The asking account's login names its municipality too.
            self.requester_code.clear();
            self.requester_login_id = None;
        }
    }
}

/// A municipality's name in a disclosure, or that it is withheld.
fn name_or_withheld(code: &str) -> String {
    if code.is_empty() {
        WITHHELD.to_string()
    } else {
        name_of(code)
    }
}

/// A municipality's name for a code, or the code alone.
pub fn name_of(code: &str) -> String {
    MunicipalityCode::parse(code)
        .ok()
        .and_then(|c| Registry::global().get(&c).map(|m| m.full_name()))
        .unwrap_or_else(|| code.to_string())
}

pub const CSV_HEADER: [&str; 19] = [
    "記録ID",
    "照会ID",
    "区分",
    "照会日時",
    "回答日時",
    "照会元団体コード",
    "照会元団体名",
    "照会したアカウント",
    "提供元団体コード",
    "提供元団体名",
    "経路",
    "事務手続",
    "目的",
    "提供した項目",
    "接種記録の件数",
    "結果",
    "拒否の理由",
    "本人確認書類",
    "確認した職員",
];

/// One record as a CSV line (Japan time).
pub fn csv_line(r: &Provision) -> Vec<String> {
    let jst = |t: NaiveDateTime| {
        crate::clock::in_japan(t)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    vec![
        r.id.clone(),
        r.inquiry_id.clone(),
        if r.side == REQUESTER {
            "照会"
        } else {
            "提供"
        }
        .to_string(),
        jst(r.requested_at),
        r.answered_at.map(jst).unwrap_or_default(),
        r.requester_code.clone(),
        name_or_withheld(&r.requester_code),
        r.requester_login_id.clone().unwrap_or_default(),
        r.provider_code.clone(),
        name_or_withheld(&r.provider_code),
        r.channel.clone(),
        r.procedure_code.clone(),
        r.purpose.clone(),
        r.items.join(","),
        r.dose_count.to_string(),
        r.outcome.clone(),
        r.refusal.clone().unwrap_or_default(),
        r.id_document.clone().unwrap_or_default(),
        r.id_checked_by.clone().unwrap_or_default(),
    ]
}

/// Deletes every municipality's provision records past retention and logs
/// each deletion in that municipality's operation log. Returns what was
/// deleted where.
pub fn purge_expired(
    conn: &mut DbConn,
    master: &MasterKey,
    key: &AuditKey,
    actor: &Actor,
    by: &str,
    at: NaiveDateTime,
) -> Result<Vec<(MunicipalityCode, usize)>, TenancyError> {
    let before = cutoff(at);
    let mut purged = Vec::new();
    for tenant in TenantRow::active(conn)? {
        let Ok(code) = MunicipalityCode::parse(&tenant.municipality_code) else {
            continue;
        };
        let partition = Partition::open(conn, master, code)?;
        let n = partition.run(conn, |scope, conn| {
            let n = ProvisionRow::purge_before(scope, conn, before)?;
            if n > 0 {
                audit::append(
                    conn,
                    key,
                    actor,
                    Entry {
                        chain: code.as_str(),
                        action: "provisions.purge",
                        target: None,
                        outcome: "ok",
                        detail: Some(format!(
                            "deleted={n} requested_before={} by={by}",
                            before.format("%Y-%m-%dT%H:%M:%S")
                        )),
                    },
                )?;
            }
            Ok::<_, TenancyError>(n)
        })?;
        if n > 0 {
            purged.push((code, n));
        }
    }
    Ok(purged)
}

/// A notice for the municipality's administrators, as they read it.
pub struct Notice {
    pub id: String,
    pub at: NaiveDateTime,
    pub kind: String,
    pub subject: String,
}

/// The municipality's open notices, newest first.
pub fn open_notices(_scope: &Scope<'_>, conn: &mut TenantConn<'_>) -> Result<Vec<Notice>, DbError> {
    Ok(NoticeRow::open(conn)?
        .into_iter()
        .map(|n| Notice {
            subject: notice_subject(&n.subject),
            id: n.id,
            at: n.at,
            kind: n.kind,
        })
        .collect())
}

/// Closes an open notice; false when there is none by that id.
pub fn close_notice(
    _scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    by: &str,
) -> Result<bool, DbError> {
    NoticeRow::close(conn, id, by, crate::clock::now())
}

/// What a notice is about: the asking municipality with its name
/// ("municipality:131016"), or the account.
fn notice_subject(subject: &str) -> String {
    if let Some(c) = subject.strip_prefix("municipality:") {
        return format!("{c} {}", name_of(c));
    }
    // A held inquiry's notice says no more than that one waits.
    if subject.starts_with("held:") {
        return String::new();
    }
    subject.trim_start_matches("account:").to_string()
}

//! A resident's access record: everyone who looked at, printed, exported,
//! corrected, provided or received the person's record, when and why — the
//! answer to the person's disclosure request (開示請求). Read from the
//! operation log (the resident's lines and their doses' lines, the whole
//! chain) and from the provision records.

use crate::audit::{Actor, AuditKey};
use crate::db::TenantConn;
use crate::db::models::audit_log::{AuditRow, Search};
use crate::flows::log_review;
use crate::flows::provisions::{self, Provision};
use crate::flows::residents::{self, ResidentError};
use crate::tenancy::Scope;
use chrono::NaiveDateTime;

/// Why a line's access happened, as far as the log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// A purpose code (`purpose.<code>` or `inquiry_purpose.<code>`).
    Purpose(String),
    /// The reason a ticket was reissued (`ticket.why.<code>`).
    Reissue(String),
    /// The reason staff gave, kept in the resident's sealed history (a
    /// protected address shown, a correction).
    Stated(String),
    NotRecorded,
}

/// Who: a login, or (where the municipality names no staff) its office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Login(String),
    Office,
}

#[derive(Debug, Clone)]
pub struct Access {
    pub at: NaiveDateTime,
    pub who: Who,
    pub action: String,
    pub outcome: String,
    pub why: Why,
}

pub struct AccessRecord {
    pub addressee: String,
    pub accesses: Vec<Access>,
    pub provisions: Vec<Provision>,
}

/// The actions whose reason staff give and the resident's history keeps,
/// with the history's kinds of event for each.
const STATED: &[(&str, &[&str])] = &[
    ("resident.address_view", &["address_viewed"]),
    ("resident.correct", &["corrected"]),
    ("resident.flag", &["moved_out", "deceased", "flag_cleared"]),
    (
        "resident.protection",
        &["protected", "protection_changed", "unprotected"],
    ),
    ("transfer.release", &["inquiry_approved", "inquiry_refused"]),
];

/// The action a history event gives the reason of.
fn stated_for(kind: &str) -> Option<&'static str> {
    STATED
        .iter()
        .find(|(_, kinds)| kinds.contains(&kind))
        .map(|(action, _)| *action)
}

/// Lines read per query while gathering the whole record.
const BATCH: i64 = 1_000;

/// The record for one resident of `scope`'s municipality, none if it holds
/// no such resident. Producing it is itself logged.
pub fn produce(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    key: &AuditKey,
    actor: &Actor,
    resident: &str,
    names: bool,
) -> Result<Option<AccessRecord>, ResidentError> {
    let Some(addressee) = residents::addressee_of(scope, conn, resident)? else {
        return Ok(None);
    };
    let history = residents::history(scope, conn, resident)?;
    let targets = log_review::targets_of(scope, conn, resident)?;
    let search = Search {
        targets: Some(&targets),
        ..Default::default()
    };
    let mut rows = Vec::new();
    let mut before = None;
    loop {
        let page = AuditRow::search(conn.db(), scope.code().as_str(), &search, before, BATCH)?;
        let done = (page.len() as i64) < BATCH;
        before = page.last().map(|r| r.seq);
        rows.extend(page);
        if done {
            break;
        }
    }
    rows.reverse();
    // Reasons staff gave, each matched to the first line of its action
    // written within seconds of it (the two share a transaction).
    let mut stated: Vec<Option<(NaiveDateTime, &'static str, String)>> = history
        .iter()
        .filter_map(|h| Some(Some((h.at, stated_for(&h.kind)?, h.detail.reason.clone()?))))
        .collect();
    let near = chrono::Duration::seconds(5);
    let accesses = rows
        .into_iter()
        .map(|r| {
            let detail = r.detail.unwrap_or_default();
            let field = |k: &str| {
                detail
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                    .map(str::to_string)
            };
            let reason = stated
                .iter_mut()
                .find(|s| {
                    s.as_ref().is_some_and(|(at, action, _)| {
                        *action == r.action && (*at - r.at).abs() <= near
                    })
                })
                .and_then(Option::take)
                .map(|(_, _, reason)| reason);
            let why = if let Some(reason) = reason {
                Why::Stated(reason)
            } else if let Some(p) = field("purpose") {
                Why::Purpose(p)
            } else if let Some(w) = field("why") {
                Why::Reissue(w)
            } else {
                Why::NotRecorded
            };
            Access {
                at: r.at,
                who: match (names, r.login_id) {
                    (true, Some(l)) => Who::Login(l),
                    _ => Who::Office,
                },
                action: r.action,
                outcome: r.outcome,
                why,
            }
        })
        .collect();
    let provisions = provisions::of_resident(scope, conn, resident)?;
    crate::audit::append(
        conn.db(),
        key,
        actor,
        crate::audit::Entry::done(
            scope.code().as_str(),
            "resident.access_record",
            Some(format!("resident:{resident}")),
            None,
        ),
    )?;
    Ok(Some(AccessRecord {
        addressee,
        accesses,
        provisions,
    }))
}

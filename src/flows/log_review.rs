//! Reviewing a municipality's operation log: the search over the whole
//! chain, lines named as people read them (an action's label, a resident
//! by 宛名番号, an account by its login), the per-account report, and the
//! record of who reviewed which period.

use crate::audit::actions::{self, Group};
use crate::db::TenantConn;
use crate::db::models::audit_log::{AuditRow, Search};
use crate::db::models::doses::DoseRow;
use crate::db::models::log_reviews::{LogReviewRow, ReviewSettingsRow};
use crate::db::{DbConn, DbError};
use crate::domain::MunicipalityCode;
use crate::flows::residents::{self, ResidentError};
use crate::tenancy::Scope;
use chrono::{NaiveDate, NaiveDateTime};

mod report;
pub use report::*;

/// Lines shown per page of the search.
pub const PAGE: i64 = 50;

/// Which actions a search asks for: one, a group, or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionChoice {
    All,
    One(&'static str),
    Group(Group),
}

impl ActionChoice {
    /// From the page's list: an action's code or `group:<group>`; anything
    /// else is not one of the choices.
    pub fn parse(s: &str) -> Option<ActionChoice> {
        let s = s.trim();
        if s.is_empty() {
            return Some(ActionChoice::All);
        }
        if let Some(g) = s.strip_prefix("group:") {
            return Group::parse(g).map(ActionChoice::Group);
        }
        actions::ACTIONS
            .iter()
            .find(|(a, _)| *a == s)
            .map(|(a, _)| ActionChoice::One(a))
    }

    pub fn code(&self) -> String {
        match self {
            ActionChoice::All => String::new(),
            ActionChoice::One(a) => (*a).to_string(),
            ActionChoice::Group(g) => format!("group:{}", g.code()),
        }
    }

    fn actions(&self) -> Vec<&'static str> {
        match self {
            ActionChoice::All => Vec::new(),
            ActionChoice::One(a) => vec![a],
            ActionChoice::Group(g) => g.actions().collect(),
        }
    }
}

/// A search of the log, its filters parsed.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub login: Option<String>,
    pub action: ActionChoice,
    pub outcome: Option<&'static str>,
    /// Days in Japan, both included.
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
    /// A resident's internal id: their lines and their doses' lines.
    pub resident: Option<String>,
}

/// What a line is about, as a reviewer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    None,
    /// A resident, by 宛名番号 (none if no longer held).
    Resident(Option<String>),
    /// A dose, by its resident's 宛名番号.
    Dose(Option<String>),
    Account(Option<String>),
    Municipality(String),
    Import,
    Other(String),
}

/// One line of the log as the page shows it.
#[derive(Debug, Clone)]
pub struct Line {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub login: String,
    pub addr: String,
    pub action: String,
    pub outcome: String,
    pub target: Target,
    pub detail: String,
}

/// One page of a search, and the seq to continue from for older lines.
pub struct Found {
    pub lines: Vec<Line>,
    pub older: Option<i64>,
}

/// The targets that are a resident's: their record and each of their doses.
pub(crate) fn targets_of(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident: &str,
) -> Result<Vec<String>, DbError> {
    let mut t = vec![format!("resident:{resident}")];
    t.extend(
        DoseRow::of_resident(scope, conn, resident)?
            .into_iter()
            .map(|d| format!("dose:{}", d.id)),
    );
    Ok(t)
}

/// The filters of a query, over the targets of its resident.
fn filter<'a>(
    q: &'a LogQuery,
    actions: &'a [&'static str],
    targets: Option<&'a [String]>,
) -> Search<'a> {
    Search {
        login: q.login.as_deref(),
        actions,
        outcome: q.outcome,
        from: q.from.map(crate::clock::start_of_japan_day),
        until: q
            .until
            .and_then(|d| d.succ_opt())
            .map(crate::clock::start_of_japan_day),
        targets,
    }
}

fn resident_targets(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    q: &LogQuery,
) -> Result<Option<Vec<String>>, DbError> {
    q.resident
        .as_deref()
        .map(|r| targets_of(scope, conn, r))
        .transpose()
}

/// Every line that matches the query (at most `max`), newest first, read
/// in batches: for the CSV export.
pub fn every_line(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    q: &LogQuery,
    max: usize,
) -> Result<Vec<crate::audit::Recorded>, DbError> {
    const BATCH: i64 = 5_000;
    let targets = resident_targets(scope, conn, q)?;
    let actions = q.action.actions();
    let search = filter(q, &actions, targets.as_deref());
    let mut rows = Vec::new();
    let mut before = None;
    while rows.len() < max {
        let page = AuditRow::search(conn.db(), scope.code().as_str(), &search, before, BATCH)?;
        let done = (page.len() as i64) < BATCH;
        before = page.last().map(|r| r.seq);
        rows.extend(page.into_iter().map(crate::audit::Recorded::from));
        if done {
            break;
        }
    }
    rows.truncate(max);
    Ok(rows)
}

/// One page of the municipality's lines that match the query, newest
/// first, before `before` (a seq) when given.
pub fn search(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    q: &LogQuery,
    before: Option<i64>,
) -> Result<Found, ResidentError> {
    let targets = resident_targets(scope, conn, q)?;
    let actions = q.action.actions();
    let filter = filter(q, &actions, targets.as_deref());
    let mut rows = AuditRow::search(conn.db(), scope.code().as_str(), &filter, before, PAGE + 1)?;
    let older = (rows.len() as i64 > PAGE).then(|| {
        rows.truncate(PAGE as usize);
        rows.last().map(|r| r.seq).unwrap_or_default()
    });
    let mut names = Names::default();
    let lines = rows
        .into_iter()
        .map(|r| {
            Ok(Line {
                target: names.name(scope, conn, r.target.as_deref())?,
                seq: r.seq,
                at: r.at,
                login: r.login_id.unwrap_or_default(),
                addr: r.client_addr.unwrap_or_default(),
                action: r.action,
                outcome: r.outcome,
                detail: r.detail.unwrap_or_default(),
            })
        })
        .collect::<Result<_, ResidentError>>()?;
    Ok(Found { lines, older })
}

/// Names of targets already looked up on this page.
#[derive(Default)]
struct Names {
    residents: std::collections::HashMap<String, Option<String>>,
}

impl Names {
    fn resident(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        id: &str,
    ) -> Result<Option<String>, ResidentError> {
        if let Some(n) = self.residents.get(id) {
            return Ok(n.clone());
        }
        let n = residents::addressee_of(scope, conn, id)?;
        self.residents.insert(id.to_string(), n.clone());
        Ok(n)
    }

    fn name(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        target: Option<&str>,
    ) -> Result<Target, ResidentError> {
        let Some((kind, id)) = target.and_then(|t| t.split_once(':')) else {
            return Ok(target.map_or(Target::None, |t| Target::Other(t.to_string())));
        };
        Ok(match kind {
            "resident" => Target::Resident(self.resident(scope, conn, id)?),
            "dose" => {
                let resident = DoseRow::find(conn, id)?.map(|d| d.resident_id);
                match resident {
                    Some(r) => Target::Dose(self.resident(scope, conn, &r)?),
                    None => Target::Dose(None),
                }
            }
            "account" => Target::Account(
                crate::db::models::accounts::AccountRow::find(conn.db(), id)?
                    .filter(|a| a.municipality_code.as_deref() == Some(scope.code().as_str()))
                    .map(|a| a.login_id),
            ),
            "municipality" => Target::Municipality(id.to_string()),
            "import" => Target::Import,
            _ => Target::Other(format!("{kind}:{id}")),
        })
    }
}

/// How the municipality reviews its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Working hours in Japan: from this hour to before `until`.
    pub working_from: u32,
    pub working_until: u32,
    /// Views, lookups, exports and prints by one account in one day above
    /// which the administrators get a notice.
    pub volume_threshold: u32,
    pub review_every_days: u32,
    /// Whether the access record names staff (or only the office).
    pub access_record_names: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            working_from: 8,
            working_until: 19,
            volume_threshold: 300,
            review_every_days: 30,
            access_record_names: true,
        }
    }
}

pub fn settings(conn: &mut DbConn, code: MunicipalityCode) -> Result<Settings, DbError> {
    Ok(ReviewSettingsRow::find(conn, code.as_str())?
        .map(|r| Settings {
            working_from: r.working_from.clamp(0, 24) as u32,
            working_until: r.working_until.clamp(0, 24) as u32,
            volume_threshold: r.volume_threshold.max(1) as u32,
            review_every_days: r.review_every_days.max(1) as u32,
            access_record_names: r.access_record_names,
        })
        .unwrap_or_default())
}

/// Saves the municipality's review settings, with their line in the log.
pub fn save_settings(
    conn: &mut DbConn,
    key: &crate::audit::AuditKey,
    actor: &crate::audit::Actor,
    code: MunicipalityCode,
    s: &Settings,
) -> Result<(), DbError> {
    let line = (
        "log.settings",
        format!(
            "hours={}-{} threshold={} every={} names={}",
            s.working_from,
            s.working_until,
            s.volume_threshold,
            s.review_every_days,
            s.access_record_names
        ),
    );
    super::municipalities::save_setting(conn, key, actor, code, line, |conn| {
        ReviewSettingsRow {
            working_from: s.working_from as i32,
            working_until: s.working_until as i32,
            volume_threshold: s.volume_threshold as i32,
            review_every_days: s.review_every_days as i32,
            access_record_names: s.access_record_names,
        }
        .save(conn, code.as_str())?;
        Ok(())
    })
}

/// What was reviewed: the log, or the account list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewKind {
    Log,
    Accounts,
}

impl ReviewKind {
    pub fn code(self) -> &'static str {
        match self {
            ReviewKind::Log => "log",
            ReviewKind::Accounts => "accounts",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewKind> {
        [ReviewKind::Log, ReviewKind::Accounts]
            .into_iter()
            .find(|k| k.code() == s)
    }

    pub fn action(self) -> &'static str {
        match self {
            ReviewKind::Log => "log.review",
            ReviewKind::Accounts => "account.review",
        }
    }
}

/// A recorded review.
#[derive(Debug, Clone)]
pub struct Review {
    pub kind: ReviewKind,
    pub from: NaiveDate,
    pub until: NaiveDate,
    pub by: String,
    pub at: NaiveDateTime,
    pub note: String,
}

/// The municipality's reviews, newest first.
pub fn reviews(conn: &mut DbConn, code: MunicipalityCode) -> Result<Vec<Review>, DbError> {
    Ok(LogReviewRow::of_municipality(conn, code.as_str(), 100)?
        .into_iter()
        .filter_map(|r| {
            Some(Review {
                kind: ReviewKind::parse(&r.kind)?,
                from: r.period_from,
                until: r.period_until,
                by: r.reviewer_login,
                at: r.at,
                note: r.note,
            })
        })
        .collect())
}

/// When the last review of each kind was, and whether the next is overdue.
#[derive(Debug, Clone)]
pub struct ReviewState {
    pub last_log: Option<Review>,
    pub last_accounts: Option<Review>,
    pub log_overdue: bool,
    pub accounts_overdue: bool,
}

pub fn review_state(
    conn: &mut DbConn,
    code: MunicipalityCode,
    every_days: u32,
) -> Result<ReviewState, DbError> {
    let all = reviews(conn, code)?;
    let last = |k| all.iter().find(|r| r.kind == k).cloned();
    let today = crate::clock::today_in_japan();
    let overdue = |r: &Option<Review>| {
        r.as_ref().is_none_or(|r| {
            (today - crate::clock::in_japan(r.at).date()).num_days() > i64::from(every_days)
        })
    };
    let (last_log, last_accounts) = (last(ReviewKind::Log), last(ReviewKind::Accounts));
    Ok(ReviewState {
        log_overdue: overdue(&last_log),
        accounts_overdue: overdue(&last_accounts),
        last_log,
        last_accounts,
    })
}

/// Records a review, with its line in the log.
#[allow(clippy::too_many_arguments)]
pub fn record_review(
    conn: &mut DbConn,
    key: &crate::audit::AuditKey,
    actor: &crate::audit::Actor,
    code: MunicipalityCode,
    kind: ReviewKind,
    from: NaiveDate,
    until: NaiveDate,
    note: &str,
) -> Result<(), DbError> {
    crate::db::write_transaction(conn, |conn| {
        let id = crate::domain::new_record_id();
        LogReviewRow {
            municipality_code: code.to_string(),
            id: id.clone(),
            kind: kind.code().to_string(),
            period_from: from,
            period_until: until,
            reviewed_by: actor.account_id.clone().unwrap_or_default(),
            reviewer_login: actor.login_id.clone().unwrap_or_default(),
            at: crate::clock::now(),
            note: note.to_string(),
        }
        .insert(conn)?;
        crate::audit::append(
            conn,
            key,
            actor,
            crate::audit::Entry::done(
                code.as_str(),
                kind.action(),
                None,
                Some(format!("review={id} from={from} until={until}")),
            ),
        )
    })
}

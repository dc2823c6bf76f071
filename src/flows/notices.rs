//! Reminder notices (接種勧奨) as a background job: the residents due a
//! dose over a period (`due`), each given the ticket for that dose (the
//! active one when it covers the dose, a new one otherwise), and one
//! letter kept per person so that the print pages — an A4 letter each, in
//! a window-envelope layout with the ticket on the same sheet — come out
//! the same however often they are opened. The job's "file" is its query.

use super::due::{self, DueQuery};
use super::imports::{ImportError, Opener, Progress};
use super::residents::{self, ResidentError};
use super::tickets::{self, Label};
use crate::audit::Actor;
use crate::db::DbConn;
use crate::db::models::import_jobs::ImportJobRow;
use crate::db::models::notice_items::NoticeItemRow;
use crate::db::models::tickets::{self as ticket_rows, TicketRow};
use crate::domain::Registry;
use crate::tenancy::{Partition, Scope};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::sync::atomic::Ordering;

/// Letters written per transaction.
const CHUNK: usize = 500;

/// What a notice job made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub query: Option<DueQuery>,
    pub letters: u64,
    /// Of them, residents given a new ticket for the dose.
    pub tickets_issued: u64,
}

/// The job this run belongs to.
pub struct Job<'a> {
    pub id: &'a str,
    pub actor: &'a Actor,
    pub keep_alive: &'a (dyn Fn(&mut DbConn) -> Result<(), ImportError> + Sync),
}

/// Who a notice job's tickets are issued by.
pub fn issuer_of_job(job_id: &str) -> String {
    format!("notices:{job_id}")
}

/// Lists the residents due and writes their letters.
pub fn run(
    conn: &mut DbConn,
    partition: &Partition,
    job: Job<'_>,
    open: Opener<'_>,
    progress: &Progress,
) -> Result<Outcome, ImportError> {
    progress.two_phase.store(true, Ordering::Relaxed);
    let mut text = String::new();
    open()
        .and_then(|mut r| r.read_to_string(&mut text))
        .map_err(|e| ImportError::Unreadable(e.to_string()))?;
    progress
        .bytes_done
        .store(text.len() as u64, Ordering::Relaxed);
    let q: DueQuery =
        serde_json::from_str(&text).map_err(|e| ImportError::Unreadable(e.to_string()))?;
    let master = super::vaccines::Master::load(conn)?;
    let dues = partition.read(conn, |scope, c| {
        Ok::<_, ImportError>(due::due(scope, c, &q, &master)?)
    })?;
    progress
        .work_total
        .store(dues.len().max(1) as u64, Ordering::Relaxed);
    progress.lines.store(dues.len() as u64, Ordering::Relaxed);
    partition.run(conn, |_, c| {
        (job.keep_alive)(c)?;
        ImportJobRow::set_lines(c, job.id, dues.len() as i64)?;
        Ok::<_, ImportError>(())
    })?;
    let issuer = issuer_of_job(job.id);
    let mut outcome = Outcome {
        query: Some(q.clone()),
        ..Outcome::default()
    };
    let mut n = 0i64;
    for chunk in dues.chunks(CHUNK) {
        let issued = partition.run(conn, |scope, c| {
            (job.keep_alive)(c)?;
            let mut rows = Vec::with_capacity(chunk.len());
            let mut issued = 0;
            for (i, d) in chunk.iter().enumerate() {
                let (ticket, new) = ticket_for(scope, c, &d.resident_id, q.dose, &issuer)?;
                issued += u64::from(new);
                rows.push(NoticeItemRow {
                    municipality_code: scope.code().to_string(),
                    job_id: job.id.to_string(),
                    n: n + i as i64 + 1,
                    resident_id: d.resident_id.clone(),
                    ticket_number: ticket.unwrap_or_default(),
                    dose_number: i32::from(q.dose),
                    due_from: d.from,
                    overdue: d.overdue,
                });
            }
            NoticeItemRow::insert_many(c, &rows)?;
            Ok::<_, ImportError>(issued)
        })?;
        n += chunk.len() as i64;
        outcome.letters += chunk.len() as u64;
        outcome.tickets_issued += issued;
        progress
            .work_done
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        super::faults::point("notices.batch");
    }
    Ok(outcome)
}

/// The ticket a notice for `dose` carries: the active one when it is for
/// that dose (a first-dose ticket covers the second too), a new one for
/// the dose otherwise (the active one invalidated as replaced). None for
/// a person who may not be given one (moved out or deceased). Whether a
/// ticket was issued.
fn ticket_for(
    scope: &Scope<'_>,
    conn: &mut crate::db::TenantConn<'_>,
    resident_id: &str,
    dose: u8,
    issuer: &str,
) -> Result<(Option<String>, bool), ImportError> {
    let active = TicketRow::of_resident(scope, conn, resident_id)?
        .into_iter()
        .find(|t| t.status == ticket_rows::ACTIVE);
    if let Some(t) = &active
        && (t.dose_number == i32::from(dose) || (t.dose_number == 1 && dose <= 2))
    {
        return Ok((Some(t.ticket_number.clone()), false));
    }
    match tickets::issue_for_dose(scope, conn, resident_id, dose, issuer) {
        Ok(n) => Ok((Some(n.as_str().to_string()), true)),
        Err(ResidentError::Flagged) => Ok((active.map(|t| t.ticket_number), false)),
        Err(e) => Err(e.into()),
    }
}

/// One letter as printed.
#[derive(Debug, Clone)]
pub struct Letter {
    pub n: i64,
    pub name: String,
    pub kana: String,
    pub address: Option<String>,
    pub dose: i32,
    pub due_from: NaiveDate,
    pub overdue: bool,
    pub label: Option<Label>,
}

/// The sender of the letters.
pub fn sender(scope: &Scope<'_>) -> String {
    Registry::global()
        .get(&scope.code())
        .map(|m| m.full_name())
        .unwrap_or_default()
}

/// A page of a job's letters, with how many there are in all. The
/// address of a person under a support measure today is printed only for
/// a job that chose to include such people (`with_protected`): a measure
/// that began after the job hides it.
pub fn letters(
    scope: &Scope<'_>,
    conn: &mut crate::db::TenantConn<'_>,
    (job_id, with_protected): (&str, bool),
    (offset, limit): (i64, i64),
) -> Result<(Vec<Letter>, i64), ResidentError> {
    let total = NoticeItemRow::count(conn, job_id)?;
    let mut out = Vec::new();
    for item in NoticeItemRow::page(conn, job_id, offset, limit)? {
        let Some((p, row)) = residents::attributes(scope, conn, &item.resident_id)? else {
            continue;
        };
        let address = if residents::row_protected(&row) && !with_protected {
            None
        } else {
            p.address
        };
        let label = match item.ticket_number.as_str() {
            "" => None,
            t => tickets::label_of_number(scope, conn, t)?,
        };
        out.push(Letter {
            n: item.n,
            name: p.name_kanji.as_str().to_string(),
            kana: p.name_kana.as_str().to_string(),
            address,
            dose: item.dose_number,
            due_from: item.due_from,
            overdue: item.overdue,
            label,
        });
    }
    Ok((out, total))
}

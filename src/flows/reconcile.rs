//! A full resident file compared with what is stored, instead of imported
//! (the registry's 整合性確認): the people it names who are not stored, those
//! whose attributes differ, and the current residents it leaves out. The
//! lists are kept with the job for staff to act on; nothing else changes
//! until they do — an absent resident is flagged moved out or deceased
//! only by a person's decision, each with its history event and log line.

use super::imports::staged::{self, StagedWriter};
use super::imports::{
    FileEncoding, ImportError, Limits, LineError, MAX_REPORTED_ERRORS, NumberAccess, Opener,
    Prepared, Progress, ResidentLines,
};
use super::line_errors::Conflict;
use super::residents::{self, Flag, ResidentError};
use crate::audit::{self, Actor, Entry};
use crate::crypto::AadContext;
use crate::db::models::reconcile_items::{self as items, ItemRow};
use crate::db::models::residents::ResidentRow;
use crate::db::{DbConn, TenantConn};
use crate::domain::{AddresseeNumber, ChangeReason};
use crate::tenancy::{Partition, Scope};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// What a comparison found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub encoding: String,
    pub lines: u64,
    pub same: u64,
    pub new: u64,
    pub changed: u64,
    pub absent: u64,
}

/// Residents read per transaction when looking for the absent.
const PAGE: i64 = 2000;

fn addressee_ctx(job_id: &str, n: i64) -> (String, &'static str) {
    (format!("{job_id}:{n}"), "addressee")
}

struct Writer<'a> {
    job_id: &'a str,
    outcome: Outcome,
    /// The 宛名番号 indexes the file named.
    seen: HashSet<Vec<u8>>,
    n: i64,
    errors: Vec<LineError>,
    error_count: u64,
}

impl Writer<'_> {
    fn item(&mut self, scope: &Scope<'_>, kind: &str) -> ItemRow {
        self.n += 1;
        ItemRow {
            municipality_code: scope.code().to_string(),
            job_id: self.job_id.to_string(),
            n: self.n,
            kind: kind.to_string(),
            line: None,
            resident_id: None,
            addressee_sealed: None,
            settled_at: None,
            settled_by: None,
            settled_as: None,
        }
    }
}

impl StagedWriter for Writer<'_> {
    type Line = Prepared;

    fn reject(&mut self, errors: Vec<LineError>) {
        self.error_count += errors.len() as u64;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(errors.into_iter().take(room));
    }

    fn batch(
        &mut self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        lines: Vec<Result<Prepared, Vec<LineError>>>,
    ) -> Result<(), ImportError> {
        self.outcome.lines += lines.len() as u64;
        let mut good = Vec::with_capacity(lines.len());
        for l in lines {
            match l {
                Ok(p) => good.push(p),
                Err(e) => self.reject(e),
            }
        }
        let wanted: Vec<Vec<u8>> = good.iter().map(|p| p.row.addressee_index.clone()).collect();
        let stored: std::collections::HashMap<Vec<u8>, ResidentRow> =
            ResidentRow::by_addressee(scope, conn, &wanted)?
                .into_iter()
                .map(|v| (v.row.addressee_index.clone(), v.row))
                .collect();
        let mut found = Vec::new();
        for p in good {
            let line = p.parsed.line;
            if !self.seen.insert(p.row.addressee_index.clone()) {
                self.reject(vec![LineError::conflict(
                    line,
                    AddresseeNumber::FIELD,
                    Conflict::DuplicateInFile,
                )]);
                continue;
            }
            match stored.get(&p.row.addressee_index) {
                None => {
                    self.outcome.new += 1;
                    let mut item = self.item(scope, items::NEW);
                    let (row_id, column) = addressee_ctx(self.job_id, item.n);
                    item.line = Some(line as i64);
                    item.addressee_sealed = Some(scope.seal(
                        AadContext {
                            table: "reconcile_items",
                            column,
                            row_id: &row_id,
                        },
                        p.parsed.resident.addressee_number.as_str().as_bytes(),
                    ));
                    found.push(item);
                }
                Some(r)
                    if r.content_mac != p.row.content_mac
                        || p.row
                            .my_number_index
                            .as_ref()
                            .is_some_and(|n| r.my_number_index.as_ref() != Some(n)) =>
                {
                    self.outcome.changed += 1;
                    let mut item = self.item(scope, items::CHANGED);
                    item.line = Some(line as i64);
                    item.resident_id = Some(r.id.clone());
                    found.push(item);
                }
                Some(_) => self.outcome.same += 1,
            }
        }
        ItemRow::insert_many(conn, &found)?;
        Ok(())
    }
}

/// Compares a full resident file with the residents stored, as job
/// `job_id`; the items found are kept with the job.
#[allow(clippy::too_many_arguments)]
pub fn compare(
    conn: &mut DbConn,
    partition: &Partition,
    job_id: &str,
    keep_alive: &(dyn Fn(&mut DbConn) -> Result<(), ImportError> + Sync),
    open: Opener<'_>,
    (encoding, limits): (FileEncoding, Limits),
    numbers: NumberAccess,
    progress: &Progress,
) -> Result<Outcome, ImportError> {
    let encoding = super::imports::resolve_encoding(open, encoding)?;
    let stamp = super::imports::stamp_now();
    let mut w = Writer {
        job_id,
        outcome: Outcome {
            encoding: encoding.code().to_string(),
            ..Outcome::default()
        },
        seen: HashSet::new(),
        n: 0,
        errors: Vec::new(),
        error_count: 0,
    };
    let format = ResidentLines {
        scope: partition.sealing_scope(),
        today: stamp.date(),
        stamp,
        numbers,
    };
    staged::run(
        conn,
        partition,
        None,
        keep_alive,
        open,
        (encoding, limits),
        &format,
        &mut w,
        progress,
    )?;
    if w.error_count > 0 {
        partition.run(conn, |_, c| {
            keep_alive(c)?;
            ItemRow::delete_of_job(c, job_id)?;
            Ok::<_, ImportError>(())
        })?;
        let mut errors = w.errors;
        errors.sort_by_key(|e| e.line);
        return Err(ImportError::Rejected {
            lines: w.outcome.lines,
            error_count: w.error_count,
            errors,
        });
    }
    // The current residents the file left out, a page at a time.
    let mut after = String::new();
    loop {
        let page = partition.read(conn, |scope, c| {
            Ok::<_, ImportError>(ResidentRow::page_of_municipality(scope, c, &after, PAGE)?)
        })?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        let absent: Vec<&ResidentRow> = page
            .iter()
            .filter(|r| r.moved_out_on.is_none() && r.deceased_on.is_none())
            .filter(|r| !w.seen.contains(&r.addressee_index))
            .collect();
        if !absent.is_empty() {
            partition.run(conn, |scope, c| {
                keep_alive(c)?;
                let rows: Vec<ItemRow> = absent
                    .iter()
                    .map(|r| {
                        let mut item = w.item(scope, items::ABSENT);
                        item.resident_id = Some(r.id.clone());
                        item
                    })
                    .collect();
                ItemRow::insert_many(c, &rows)?;
                Ok::<_, ImportError>(())
            })?;
            w.outcome.absent += absent.len() as u64;
        }
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    Ok(w.outcome)
}

/// One item as staff see it.
#[derive(Debug, Clone)]
pub struct Item {
    pub n: i64,
    pub kind: String,
    pub line: Option<i64>,
    pub resident_id: Option<String>,
    pub addressee: String,
    pub name: Option<String>,
    pub settled_as: Option<String>,
}

/// A page of one kind of a job's items, opened for the municipality's
/// staff.
pub fn items(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    job_id: &str,
    kind: &str,
    (after, limit): (i64, i64),
) -> Result<Vec<Item>, ResidentError> {
    let rows = ItemRow::page(conn, job_id, kind, after, limit)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let (addressee, name) = match (&r.resident_id, &r.addressee_sealed) {
            (Some(id), _) => match residents::attributes(scope, conn, id)? {
                Some((p, _)) => (
                    p.addressee_number.as_str().to_string(),
                    Some(p.name_kanji.as_str().to_string()),
                ),
                None => (String::new(), None),
            },
            (None, Some(sealed)) => {
                let (row_id, column) = addressee_ctx(job_id, r.n);
                (
                    scope.open_string(
                        AadContext {
                            table: "reconcile_items",
                            column,
                            row_id: &row_id,
                        },
                        sealed,
                    )?,
                    None,
                )
            }
            (None, None) => (String::new(), None),
        };
        out.push(Item {
            n: r.n,
            kind: r.kind,
            line: r.line,
            resident_id: r.resident_id,
            addressee,
            name,
            settled_as: r.settled_as,
        });
    }
    Ok(out)
}

/// Counts of a job's items by kind: (found, settled).
pub fn counts(
    conn: &mut TenantConn<'_>,
    job_id: &str,
) -> Result<Vec<(String, i64, i64)>, ResidentError> {
    Ok(ItemRow::counts(conn, job_id)?)
}

/// What staff decide for absent residents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The registry no longer holds them: flagged with the date.
    Flag(Flag, NaiveDate),
    /// They stay as they are (the file was incomplete, for example).
    Keep,
}

/// Applies one decision to the chosen absent items of a job, each with
/// its history event (a flag) and its log line; items already settled
/// are left. Returns how many were settled.
pub fn settle_absent(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    (job_id, numbers): (&str, &[i64]),
    decision: Decision,
    reason: &ChangeReason,
    (actor, key): (&Actor, &audit::AuditKey),
) -> Result<usize, ResidentError> {
    let account = actor.account_id.clone().unwrap_or_default();
    let at = crate::clock::now();
    let mut n = 0;
    for item in ItemRow::by_numbers(conn, job_id, numbers)? {
        let (Some(resident), items::ABSENT) = (&item.resident_id, item.kind.as_str()) else {
            continue;
        };
        let as_ = match decision {
            Decision::Flag(flag, _) => flag.code(),
            Decision::Keep => "kept",
        };
        if !ItemRow::settle(conn, job_id, item.n, (&account, as_, at))? {
            continue;
        }
        if let Decision::Flag(flag, on) = decision {
            residents::set_flag(scope, conn, resident, flag, Some(on), reason, &account)?;
        }
        audit::append(
            conn.db(),
            key,
            actor,
            Entry {
                chain: scope.code().as_str(),
                action: "resident.flag",
                target: Some(format!("resident:{resident}")),
                outcome: "ok",
                detail: Some(format!("reconcile={job_id} decision={as_}")),
            },
        )?;
        n += 1;
    }
    Ok(n)
}

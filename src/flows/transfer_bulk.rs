//! Flow 4 for many movers at once (the real system's 2022 addition): a CSV
//! of 宛名番号, individual number, source municipality code and the consent
//! recorded for each, run as a background job.
//!
//! Every line first gets the checks of the window inquiry — each cell
//! parsed, consent recorded, the 宛名番号 one of ours holding exactly that
//! number, the source another municipality in use, no person twice. One bad
//! line rejects the file and nothing is sent or stored. Then the lines are
//! sent in batches, source by source, each under the same rules as one
//! window inquiry: the source matches only in its own partition and keeps a
//! provision record per line; the asking side copies the doses and keeps
//! its own, keyed by job and line, from which the result file is made.

mod read;
use super::csv_lines::Next;
use super::imports::{self, FileEncoding, ImportError, Limits, Opener, Progress};
use super::line_errors::{Conflict, LineError};
use super::residents;
use super::transfer::{self, Asked, Channel};
use crate::audit::{self, Actor, Entry};
use crate::db::DbConn;
use crate::db::models::audit_log::PendingRow;
use crate::db::models::doses::DoseRow;
use crate::db::models::import_jobs::ImportJobRow;
use crate::db::models::provisions::{self as prov, ProvisionRow, REQUESTER};
use crate::db::models::residents::ResidentRow;
use crate::domain::{
    AddresseeNumber, Consent, FieldError, IdDocument, InquiryPurpose, MunicipalityCode, MyNumber,
    Reason, Sex, consent_mark, source_municipality,
};
use crate::flows::AppState;
use crate::tenancy::Partition;
use chrono::NaiveDate;
use read::{Mover, read, rejected};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;

/// Lines sent to one source in one go.
const BATCH: usize = 2000;

pub const SOURCE_FIELD: &str = "転出元市区町村コード";
const CONSENT_FIELD: &str = "本人同意";
const CHECKED_BY_FIELD: &str = "確認した職員";

/// The job this run belongs to.
pub struct Job<'a> {
    pub id: &'a str,
    pub actor: &'a Actor,
    pub purpose: InquiryPurpose,
    /// Called first in every write transaction of the job (it shows the
    /// job alive; an error stops it).
    pub keep_alive: &'a (dyn Fn(&mut DbConn) -> Result<(), ImportError> + Sync),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub encoding: String,
    pub lines: u64,
    pub matched: u64,
    pub unmatched: u64,
    pub doses: u64,
}

/// A line that passed every check: its resident here and what the copies
/// need of them.
struct Ready {
    line: u64,
    number: MyNumber,
    source: MunicipalityCode,
    consent: Consent,
    resident_id: String,
    born: NaiveDate,
    sex: Sex,
    /// Our resident is under a support measure: the line is held for an
    /// administrator, not sent.
    protected: bool,
}

/// Runs a bulk inquiry job over the file: checks it whole, then sends.
#[allow(clippy::too_many_arguments)]
pub fn run(
    conn: &mut DbConn,
    state: &AppState,
    asking: &Partition,
    job: Job<'_>,
    open: Opener<'_>,
    encoding: FileEncoding,
    limits: Limits,
    progress: &Progress,
) -> Result<Outcome, ImportError> {
    progress.two_phase.store(true, Ordering::Relaxed);
    let encoding = imports::resolve_encoding(open, encoding)?;
    let movers = read(open, encoding, limits, asking.code(), job.actor, progress)?;
    let ready = check_against_residents(conn, asking, movers)?;
    let mut outcome = Outcome {
        encoding: encoding.code().to_string(),
        lines: ready.len() as u64,
        ..Outcome::default()
    };
    progress
        .work_total
        .store(ready.len().max(1) as u64, Ordering::Relaxed);
    // The journal names how many lines are to be sent before any is, so
    // that a job stopped halfway says how far it got.
    asking.run(conn, |_scope, conn| {
        (job.keep_alive)(conn)?;
        ImportJobRow::set_lines(conn, job.id, ready.len() as i64)?;
        Ok::<_, ImportError>(())
    })?;
    let (held, ready): (Vec<Ready>, Vec<Ready>) = ready.into_iter().partition(|r| r.protected);
    if !held.is_empty() {
        hold_lines(conn, asking, &job, &held, &mut outcome)?;
        progress
            .work_done
            .fetch_add(held.len() as u64, Ordering::Relaxed);
    }
    let mut by_source: BTreeMap<MunicipalityCode, Vec<Ready>> = BTreeMap::new();
    for r in ready {
        by_source.entry(r.source).or_default().push(r);
    }
    for (source, lines) in by_source {
        let partition = transfer::open_source(conn, &state.master, source)
            .map_err(|e| ImportError::Unreadable(e.to_string()))?;
        for batch in lines.chunks(BATCH) {
            send_batch(
                conn,
                asking,
                partition.as_ref(),
                source,
                &job,
                batch,
                &mut outcome,
            )?;
            progress
                .work_done
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            super::faults::point("transfer.batch");
        }
    }
    Ok(outcome)
}

/// The lines about our own protected residents, held for an
/// administrator (see `transfer::hold_asking`), in one transaction. Their
/// result reads "held"; they count as not matched.
fn hold_lines(
    conn: &mut DbConn,
    asking: &Partition,
    job: &Job<'_>,
    held: &[Ready],
    outcome: &mut Outcome,
) -> Result<(), ImportError> {
    crate::db::write_transaction(conn, |conn| {
        (job.keep_alive)(conn)?;
        asking.run(conn, |scope, conn| {
            for r in held {
                let inquiry_id = crate::domain::new_record_id();
                let asked = Asked {
                    inquiry_id: &inquiry_id,
                    at: crate::clock::now(),
                    asking: asking.code(),
                    actor: job.actor,
                    channel: Channel::Bulk,
                    purpose: job.purpose,
                    job: Some((job.id, r.line as i64)),
                };
                let inquiry = transfer::Inquiry {
                    asking: asking.code(),
                    source: r.source,
                    number: r.number.clone(),
                    consent: r.consent.clone(),
                    purpose: job.purpose,
                    channel: Channel::Bulk,
                };
                transfer::hold_asking(scope, conn, &asked, &inquiry, &r.resident_id)?;
            }
            Ok::<_, ImportError>(())
        })
    })?;
    outcome.unmatched += held.len() as u64;
    Ok(())
}

/// Each line's 宛名番号 must be one of our residents, holding exactly the
/// number given (F10), and no person may appear twice.
fn check_against_residents(
    conn: &mut DbConn,
    asking: &Partition,
    movers: Vec<Mover>,
) -> Result<Vec<Ready>, ImportError> {
    let mut errors = Vec::new();
    let mut ready = Vec::with_capacity(movers.len());
    let mut seen = HashSet::new();
    let lines = movers.len() as u64;
    asking.read(conn, |scope, conn| {
        for batch in movers.chunks(BATCH) {
            // Each 宛名番号 under every index key the partition holds.
            let indexes: Vec<Vec<Vec<u8>>> = batch
                .iter()
                .map(|m| scope.addressee_indexes(m.addressee.as_str()))
                .collect();
            let all: Vec<Vec<u8>> = indexes.iter().flatten().cloned().collect();
            let rows = ResidentRow::by_addressee_indexes(scope, conn, &all)?;
            let by_index: HashMap<&[u8], &ResidentRow> = rows
                .iter()
                .map(|r| (r.addressee_index.as_slice(), r))
                .collect();
            for (m, idx) in batch.iter().zip(&indexes) {
                let conflict = |ja: &str, en: &str| {
                    LineError::new(m.line, AddresseeNumber::FIELD, ja.into(), en.into())
                };
                let Some(row) = idx.iter().find_map(|i| by_index.get(i.as_slice())) else {
                    errors.push(conflict(
                        "当団体の住民として登録されていない宛名番号です（先に住民を取り込んでください）",
                        "is not a resident of this municipality (import the resident first)",
                    ));
                    continue;
                };
                if !seen.insert(row.id.clone()) {
                    errors.push(LineError::conflict(
                        m.line,
                        AddresseeNumber::FIELD,
                        Conflict::DuplicateInFile,
                    ));
                    continue;
                }
                if !row
                    .my_number_index
                    .as_ref()
                    .is_some_and(|i| scope.my_number_indexes(&m.number).contains(i))
                {
                    errors.push(LineError::new(
                        m.line,
                        MyNumber::FIELD,
                        "この宛名番号の住民記録の個人番号と一致しません".into(),
                        "does not match the individual number of this 宛名番号's resident record"
                            .into(),
                    ));
                    continue;
                }
                let facts = residents::site_facts(scope, row)?;
                ready.push(Ready {
                    line: m.line,
                    number: m.number.clone(),
                    source: m.source,
                    consent: m.consent.clone(),
                    resident_id: row.id.clone(),
                    born: facts.birth_date,
                    sex: facts.sex,
                    protected: residents::row_protected(row),
                });
            }
        }
        Ok::<_, ImportError>(())
    })?;
    if errors.is_empty() {
        Ok(ready)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(rejected(lines, errors))
    }
}

/// One batch of lines to one source, in one transaction: the source
/// answers and keeps its records, and the asking side copies and keeps its
/// own (from which the job's result and tally are made). A stop between
/// batches leaves every line either answered on both sides or on neither.
fn send_batch(
    conn: &mut DbConn,
    asking: &Partition,
    source_partition: Option<&Partition>,
    source: MunicipalityCode,
    job: &Job<'_>,
    batch: &[Ready],
    outcome: &mut Outcome,
) -> Result<(), ImportError> {
    let mut counted = outcome.clone();
    crate::db::write_transaction(conn, |conn| {
        (job.keep_alive)(conn)?;
        send_batch_within(
            conn,
            asking,
            source_partition,
            source,
            job,
            batch,
            &mut counted,
        )
    })?;
    *outcome = counted;
    Ok(())
}

fn send_batch_within(
    conn: &mut DbConn,
    asking: &Partition,
    source_partition: Option<&Partition>,
    source: MunicipalityCode,
    job: &Job<'_>,
    batch: &[Ready],
    outcome: &mut Outcome,
) -> Result<(), ImportError> {
    let ids: Vec<String> = batch
        .iter()
        .map(|_| crate::domain::new_record_id())
        .collect();
    let at = crate::clock::now();
    let asked_of = |i: usize| Asked {
        inquiry_id: &ids[i],
        at,
        asking: asking.code(),
        actor: job.actor,
        channel: Channel::Bulk,
        purpose: job.purpose,
        job: Some((job.id, batch[i].line as i64)),
    };
    let given: Vec<transfer::Given> = match source_partition {
        None => vec![None; batch.len()],
        Some(p) => p.run(conn, |scope, conn| {
            let numbers: Vec<MyNumber> = batch.iter().map(|r| r.number.clone()).collect();
            let found = transfer::find_and_give(scope, conn, &numbers)?;
            let mut records = Vec::with_capacity(batch.len());
            let mut lines = Vec::new();
            let mut given = Vec::with_capacity(batch.len());
            for (i, g) in found.into_iter().enumerate() {
                let (record, line, g) =
                    transfer::settle_answer(scope, conn, &asked_of(i), source, g)?;
                records.push(record);
                lines.extend(line);
                given.push(g);
            }
            ProvisionRow::insert_many(conn, &records)?;
            PendingRow::insert_many(conn, &lines)?;
            Ok::<_, transfer::TransferError>(given)
        })?,
    };
    asking.run(conn, |scope, conn| {
        let matched: Vec<String> = batch
            .iter()
            .zip(&given)
            .filter(|(_, g)| g.is_some())
            .map(|(r, _)| r.resident_id.clone())
            .collect();
        let mut existing: HashMap<String, Vec<DoseRow>> = HashMap::new();
        for d in DoseRow::of_residents(scope, conn, &matched)? {
            existing.entry(d.resident_id.clone()).or_default().push(d);
        }
        let mut fresh = Vec::new();
        let mut records = Vec::with_capacity(batch.len());
        let mut lines = Vec::with_capacity(batch.len());
        for (i, (r, g)) in batch.iter().zip(&given).enumerate() {
            let asked = asked_of(i);
            let mut record = asked.record(asking.code(), REQUESTER, source);
            transfer::mark_consent(&mut record, &r.consent);
            record.resident_id = Some(r.resident_id.clone());
            record.answered_at = Some(crate::clock::now());
            let (result, detail) = match g {
                Some((_, doses)) => {
                    let theirs = existing
                        .get(&r.resident_id)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    let (_, new) = transfer::copies_for(
                        asking.code(),
                        source,
                        &r.resident_id,
                        (r.born, r.sex.code()),
                        job.actor,
                        theirs,
                        doses,
                    );
                    record.outcome = prov::PROVIDED.into();
                    record.items = transfer::ITEMS.into();
                    record.dose_count = doses.len() as i32;
                    outcome.matched += 1;
                    outcome.doses += doses.len() as u64;
                    let detail = format!("doses={} copied={}", doses.len(), new.len());
                    fresh.extend(new);
                    ("ok", detail)
                }
                None => {
                    outcome.unmatched += 1;
                    ("no_match", String::new())
                }
            };
            lines.push(audit::waiting_line(
                job.actor,
                Entry {
                    chain: asking.code().as_str(),
                    action: "transfer.inquire",
                    target: Some(format!("resident:{}", r.resident_id)),
                    outcome: result,
                    detail: Some(format!(
                        "inquiry={} source={source} channel=bulk purpose={} job={} line={} {detail}",
                        ids[i],
                        job.purpose.code(),
                        job.id,
                        r.line
                    )),
                },
            ));
            records.push(record);
        }
        DoseRow::insert_many(conn, &fresh)?;
        ProvisionRow::insert_many(conn, &records)?;
        PendingRow::insert_many(conn, &lines)?;
        Ok::<_, transfer::TransferError>(())
    })?;
    Ok(())
}

impl From<transfer::TransferError> for ImportError {
    fn from(e: transfer::TransferError) -> Self {
        match e {
            transfer::TransferError::Tenancy(t) => ImportError::Tenancy(t),
            other => ImportError::Unreadable(other.to_string()),
        }
    }
}

/// What a bulk job's lines came to: matched, not matched, doses received.
pub use crate::db::models::provisions::JobTally as Tally;

/// A bulk job's tally so far (the lines answered before a stop stay
/// answered).
pub fn tally(
    _scope: &crate::tenancy::Scope<'_>,
    conn: &mut crate::db::TenantConn<'_>,
    job_id: &str,
) -> Result<Tally, crate::db::DbError> {
    ProvisionRow::tally_of_job(conn, job_id)
}

/// The result file's columns.
pub const RESULT_HEADER: [&str; 7] = [
    "行番号",
    "宛名番号",
    "転出元市区町村コード",
    "転出元市区町村名",
    "照会結果",
    "取得した接種記録の件数",
    "照会ID",
];

/// The job's result, one line per file line: keyed by line number and
/// 宛名番号 — never the individual number.
pub fn result_lines(
    scope: &crate::tenancy::Scope<'_>,
    conn: &mut crate::db::TenantConn<'_>,
    job_id: &str,
) -> Result<Vec<Vec<String>>, residents::ResidentError> {
    let mut lines = Vec::new();
    let mut after = 0;
    loop {
        let page = ProvisionRow::of_job(conn, job_id, after, 5000)
            .map_err(crate::tenancy::TenancyError::from)?;
        let Some(last) = page.last() else { break };
        after = last.line_no.unwrap_or(i64::MAX);
        for r in page {
            let addressee = match &r.resident_id {
                Some(rid) => residents::get(scope, conn, rid)?
                    .map(|p| p.addressee_number.as_str().to_string())
                    .unwrap_or_default(),
                None => String::new(),
            };
            lines.push(vec![
                r.line_no.map(|l| l.to_string()).unwrap_or_default(),
                addressee,
                r.provider_code.clone(),
                super::provisions::name_of(&r.provider_code),
                match (r.outcome.as_str(), r.refusal.as_deref()) {
                    (prov::PROVIDED, _) => "該当あり",
                    (_, Some("held")) => "保留（支援措置のため管理者の承認待ち）",
                    _ => "該当なし",
                }
                .to_string(),
                r.dose_count.to_string(),
                r.inquiry_id,
            ]);
        }
    }
    Ok(lines)
}

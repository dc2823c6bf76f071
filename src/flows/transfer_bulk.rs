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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Column {
    Addressee,
    MyNumber,
    Source,
    Consent,
    IdDocument,
    CheckedBy,
}

impl Column {
    const REQUIRED: [Column; 5] = [
        Column::Addressee,
        Column::MyNumber,
        Column::Source,
        Column::Consent,
        Column::IdDocument,
    ];

    fn of_header(h: &str) -> Option<Column> {
        Some(match h.trim().trim_start_matches('\u{FEFF}') {
            "宛名番号" => Column::Addressee,
            "個人番号" | "マイナンバー" => Column::MyNumber,
            "転出元市区町村コード" | "転出元自治体コード" | "転出元コード" => {
                Column::Source
            }
            "本人同意" | "同意" => Column::Consent,
            "本人確認書類" => Column::IdDocument,
            "確認した職員" | "確認者" => Column::CheckedBy,
            _ => return None,
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Column::Addressee => AddresseeNumber::FIELD,
            Column::MyNumber => MyNumber::FIELD,
            Column::Source => SOURCE_FIELD,
            Column::Consent => CONSENT_FIELD,
            Column::IdDocument => IdDocument::FIELD,
            Column::CheckedBy => CHECKED_BY_FIELD,
        }
    }
}

/// One line, parsed.
struct Mover {
    line: u64,
    addressee: AddresseeNumber,
    number: MyNumber,
    source: MunicipalityCode,
    consent: Consent,
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

/// Parses every line; any error rejects the file.
fn read(
    open: Opener<'_>,
    encoding: FileEncoding,
    limits: Limits,
    asking: MunicipalityCode,
    actor: &Actor,
    progress: &Progress,
) -> Result<Vec<Mover>, ImportError> {
    let source = open().map_err(|e| ImportError::Unreadable(e.to_string()))?;
    let mut lines = imports::csv_lines(source, encoding, progress);
    let mut errors = Vec::new();
    let mut movers = Vec::new();
    let mut map: Option<HashMap<usize, Column>> = None;
    let mut rec = csv::StringRecord::new();
    let default_checker = actor.login_id.clone().unwrap_or_default();
    let mut data_lines = 0u64;
    loop {
        let next = lines
            .next(&mut rec)
            .map_err(|e| ImportError::Unreadable(e.to_string()))?;
        let (line, refused) = match next {
            Next::End => break,
            Next::Header(line) => {
                map = Some(header(&rec, line).map_err(|errors| rejected(0, errors))?);
                continue;
            }
            Next::Record(line) => (line, None),
            Next::Refused(e) => (e.line, Some(e)),
        };
        let Some(columns) = &map else {
            // Refused before a header was read: nothing after it can be.
            return Err(rejected(0, refused.into_iter().collect()));
        };
        data_lines += 1;
        if data_lines > limits.max_lines {
            errors.push(LineError::conflict(
                line,
                "",
                Conflict::TooManyLines(limits.max_lines),
            ));
            break;
        }
        progress.lines.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = refused {
            errors.push(e);
            continue;
        }
        match parse_line(columns, &rec, line, asking, &default_checker) {
            Ok(m) => movers.push(m),
            Err(e) => errors.extend(e),
        }
    }
    if map.is_none() {
        errors.push(LineError::conflict(
            1,
            AddresseeNumber::FIELD,
            Conflict::MissingColumn,
        ));
    }
    if errors.is_empty() {
        Ok(movers)
    } else {
        Err(rejected(movers.len() as u64, errors))
    }
}

fn rejected(lines: u64, errors: Vec<LineError>) -> ImportError {
    let error_count = errors.len() as u64;
    let mut errors = errors;
    errors.truncate(imports::MAX_REPORTED_ERRORS);
    ImportError::Rejected {
        lines,
        error_count,
        errors,
    }
}

fn undecodable(line: u64, field: &'static str) -> LineError {
    LineError::field(
        line,
        FieldError {
            field,
            reason: Reason::Undecodable,
        },
    )
}

fn header(rec: &csv::StringRecord, line: u64) -> Result<HashMap<usize, Column>, Vec<LineError>> {
    if rec.iter().any(|h| h.contains('\u{FFFD}')) {
        return Err(vec![undecodable(line, "")]);
    }
    let mut map = HashMap::new();
    let mut errors = Vec::new();
    for (i, h) in rec.iter().enumerate() {
        if let Some(c) = Column::of_header(h) {
            if map.values().any(|&seen| seen == c) {
                errors.push(LineError::conflict(
                    line,
                    c.name(),
                    Conflict::DuplicateColumn,
                ));
            }
            map.insert(i, c);
        }
    }
    for c in Column::REQUIRED {
        if !map.values().any(|&seen| seen == c) {
            errors.push(LineError::conflict(line, c.name(), Conflict::MissingColumn));
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(errors)
    }
}

fn parse_line(
    columns: &HashMap<usize, Column>,
    rec: &csv::StringRecord,
    line: u64,
    asking: MunicipalityCode,
    default_checker: &str,
) -> Result<Mover, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut cells: HashMap<Column, &str> = HashMap::new();
    for (i, c) in columns {
        let cell = rec.get(*i).unwrap_or("");
        if cell.contains('\u{FFFD}') {
            errors.push(undecodable(line, c.name()));
        } else {
            cells.insert(*c, cell);
        }
    }
    let cell = |c: Column| cells.get(&c).copied().unwrap_or("");
    let e = &mut errors;
    let addressee = kept(e, line, AddresseeNumber::parse(cell(Column::Addressee)));
    let number = kept(e, line, MyNumber::parse(cell(Column::MyNumber)));
    let source = kept(
        e,
        line,
        source_municipality(SOURCE_FIELD, cell(Column::Source), asking),
    );
    let checker = match cell(Column::CheckedBy).trim() {
        "" => default_checker,
        typed => typed,
    };
    let consent = Consent::parse(
        consent_mark(cell(Column::Consent)),
        cell(Column::IdDocument),
        checker,
    )
    .map_err(|es| {
        for mut e in es {
            // The file's own column names.
            if e.field == Consent::FORM_FIELD {
                e.field = CONSENT_FIELD;
            }
            errors.push(LineError::field(line, e));
        }
    })
    .ok();
    match (addressee, number, source, consent) {
        (Some(addressee), Some(number), Some(source), Some(consent)) if errors.is_empty() => {
            Ok(Mover {
                line,
                addressee,
                number,
                source,
                consent,
            })
        }
        _ => Err(errors),
    }
}

fn kept<T>(errors: &mut Vec<LineError>, line: u64, r: Result<T, FieldError>) -> Option<T> {
    r.map_err(|e| errors.push(LineError::field(line, e))).ok()
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
        .map(|_| uuid::Uuid::now_v7().to_string())
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
            let given = transfer::find_and_give(scope, conn, &numbers)?;
            let mut records = Vec::with_capacity(batch.len());
            let mut lines = Vec::new();
            for (i, g) in given.iter().enumerate() {
                let asked = asked_of(i);
                records.push(transfer::provider_record(&asked, source, g.as_ref()));
                if let Some((resident_id, doses)) = g {
                    lines.push(transfer::answer_line(
                        &asked,
                        source,
                        resident_id,
                        doses.len(),
                    ));
                }
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
                match r.outcome.as_str() {
                    prov::PROVIDED => "該当あり",
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

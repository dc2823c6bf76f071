//! Imports run as background jobs: the upload is spooled (sealed), a row in
//! `import_jobs` journals it, and a thread does the work. The journal row
//! survives a page reload and a restart; live progress is kept in memory by
//! the process running the job and read by the progress page.

mod journal;
use super::imports::{self, FileEncoding, ImportError, Limits, Progress};
use super::transfer_bulk;
use super::{faults, import_settle};
use crate::audit::{self, Actor, Entry};
use crate::clock::now;
use crate::crypto::spool::Spool;
use crate::db::TenantConn;
use crate::db::models::import_jobs::ImportJobRow;
use crate::db::models::job_leases::JobLeaseRow;
use crate::db::models::tenants::TenantKeyRow;
use crate::domain::InquiryPurpose;
use crate::domain::MunicipalityCode;
use crate::flows::AppState;
use crate::tenancy::{Partition, TenancyError};
pub use journal::*;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const REJECTED: &str = "rejected";
pub const FAILED: &str = "failed";

fn live() -> &'static Mutex<HashMap<String, Arc<Progress>>> {
    static LIVE: OnceLock<Mutex<HashMap<String, Arc<Progress>>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The live progress of a job running in this process.
pub fn progress_of(job_id: &str) -> Option<Arc<Progress>> {
    live().lock().ok()?.get(job_id).cloned()
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("an import for this municipality is already running")]
    Busy,
    #[error("this municipality's keys are being rotated")]
    KeysRotating,
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
}

impl crate::db::DbCause for JobError {
    fn db_cause(&self) -> Option<&crate::db::DbError> {
        match self {
            JobError::Tenancy(e) => crate::db::DbCause::db_cause(e),
            JobError::Busy | JobError::KeysRotating => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(JobError);

impl JobError {
    /// The message key of a refusal staff can act on (try again later).
    pub fn refusal_key(&self) -> Option<&'static str> {
        match self {
            JobError::Busy => Some("imports.busy"),
            JobError::KeysRotating => Some("imports.keys_rotating"),
            JobError::Tenancy(_) => None,
        }
    }
}

impl From<crate::db::DbError> for JobError {
    fn from(e: crate::db::DbError) -> Self {
        JobError::Tenancy(e.into())
    }
}

/// What a job does with its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// The eligible-resident file (flow 1).
    Residents,
    /// A file of movers to inquire about (flow 4), for the stated purpose.
    Transfer(InquiryPurpose),
    /// The resident registry's change file (異動).
    Changes,
    /// A full resident file compared with what is stored.
    Reconcile,
    /// Doses clinics send in a batch.
    Doses,
    /// Reminder notices for the residents due a dose.
    Notices,
}

impl JobKind {
    pub const RESIDENTS: &str = "residents";
    pub const TRANSFER: &str = "transfer";
    pub const CHANGES: &str = "changes";
    pub const RECONCILE: &str = "reconcile";
    pub const DOSES: &str = "doses";
    pub const NOTICES: &str = "notices";

    pub fn code(&self) -> &'static str {
        match self {
            JobKind::Residents => Self::RESIDENTS,
            JobKind::Transfer(_) => Self::TRANSFER,
            JobKind::Changes => Self::CHANGES,
            JobKind::Reconcile => Self::RECONCILE,
            JobKind::Doses => Self::DOSES,
            JobKind::Notices => Self::NOTICES,
        }
    }

    fn action(&self) -> &'static str {
        Self::action_of(self.code())
    }

    /// The operation-log action of a job of this kind code.
    fn action_of(code: &str) -> &'static str {
        match code {
            Self::TRANSFER => "transfer.bulk",
            Self::CHANGES => "residents.changes",
            Self::RECONCILE => "residents.reconcile",
            Self::DOSES => "doses.batch",
            Self::NOTICES => "notices.run",
            _ => "residents.import",
        }
    }

    /// Whether the job writes residents staged under a sequence number.
    fn staged(&self) -> bool {
        matches!(self, JobKind::Residents | JobKind::Changes)
    }
}

pub struct Request {
    pub kind: JobKind,
    pub municipality: MunicipalityCode,
    pub actor: Actor,
    pub file_name: String,
    pub encoding: FileEncoding,
    pub limits: Limits,
    pub spool: Spool,
    /// Whether the uploader may hand individual numbers over (a resident
    /// file with a 個人番号 column is refused otherwise).
    pub numbers: imports::NumberAccess,
}

/// Journals the job and starts it; returns its id. One import at a time
/// per municipality, so two files cannot race over the same people.
pub fn start(state: &AppState, req: Request) -> Result<String, JobError> {
    let (partition, row, progress) = create(state, &req)?;
    let id = row.id.clone();
    let state = state.clone();
    std::thread::Builder::new()
        .name(format!("import-{}", &id[..8]))
        .spawn(move || {
            execute(&state, &partition, row, &req, &progress);
        })
        .map_err(|e| {
            JobError::Tenancy(TenancyError::Db(crate::db::DbError::Worker(format!(
                "the import's thread did not start: {e}"
            ))))
        })?;
    Ok(id)
}

/// Journals the job and runs it on this thread; returns the journal line
/// as it ended (for `vrs bench`).
pub fn run_now(state: &AppState, req: Request) -> Result<Job, JobError> {
    let (partition, row, progress) = create(state, &req)?;
    let id = row.id.clone();
    execute(state, &partition, row, &req, &progress);
    let mut conn = state.pool.get().map_err(crate::db::DbError::from)?;
    partition
        .read(&mut conn, |s, c| find(s, c, req.kind.code(), &id))?
        .ok_or(JobError::Tenancy(TenancyError::Db(
            crate::db::DbError::Stored("the job's journal line is gone".into()),
        )))
}

/// The journal line (queued) and the lease of a new job, in one
/// transaction.
fn create(
    state: &AppState,
    req: &Request,
) -> Result<(Partition, ImportJobRow, Arc<Progress>), JobError> {
    let mut conn = state.pool.get().map_err(crate::db::DbError::from)?;
    let partition = Partition::open(&mut conn, &state.master, req.municipality)?;
    let id = crate::domain::new_record_id();
    let name: String = req
        .file_name
        .chars()
        // Shown to staff: nothing that displays as something else (a
        // right-to-left override can make "a\u{202E}vsc.exe" read "aexe.csv").
        .filter(|c| !crate::domain::is_hidden(*c))
        .take(100)
        .collect();
    let mut row = ImportJobRow {
        municipality_code: req.municipality.to_string(),
        id: id.clone(),
        kind: req.kind.code().into(),
        status: QUEUED.into(),
        account_id: req.actor.account_id.clone().unwrap_or_default(),
        login_id: req.actor.login_id.clone().unwrap_or_default(),
        client_addr: req.actor.client_addr.clone().unwrap_or_default(),
        file_name: name,
        file_sha256: req.spool.sha256_hex(),
        file_bytes: req.spool.len() as i64,
        encoding: req.encoding.code().into(),
        bytes_done: 0,
        lines_seen: 0,
        inserted: 0,
        updated: 0,
        unchanged: 0,
        tickets_issued: 0,
        error_count: 0,
        errors: None,
        message: None,
        created_at: now(),
        started_at: None,
        finished_at: None,
        seq: None,
    };
    let created = partition.run(&mut conn, |_scope, conn| {
        if ImportJobRow::count_unfinished(conn)? > 0 {
            return Err(JobError::Busy);
        }
        // A key rotation seals rows again with a new key: an import would
        // write with the keys it opened (see `flows::keys::rotate_tenant`).
        // Read inside the transaction, so a rotation that began after the
        // partition was opened is seen.
        if TenantKeyRow::for_municipality(conn, req.municipality.as_str())?.len() > 1 {
            return Err(JobError::KeysRotating);
        }
        if req.kind.staged() {
            row.seq = Some(ImportJobRow::next_seq(conn)?);
        }
        row.insert(conn)?;
        JobLeaseRow {
            job_id: id.clone(),
            municipality_code: req.municipality.to_string(),
            runner: state.runner.to_string(),
            heartbeat_at: now(),
        }
        .insert(conn)?;
        Ok(row)
    });
    let row = match created {
        // Two uploads of one municipality at the same moment on PostgreSQL:
        // both saw no job running, one took the sequence number first.
        Err(JobError::Tenancy(TenancyError::Db(e))) if e.is_unique_violation() => {
            return Err(JobError::Busy);
        }
        other => other?,
    };
    let progress = Arc::new(Progress::default());
    progress
        .bytes_total
        .store(req.spool.len(), Ordering::Relaxed);
    if let Ok(mut map) = live().lock() {
        map.insert(id, progress.clone());
    }
    Ok((partition, row, progress))
}

/// What a job did, for its journal line and its operation-log line.
enum Done {
    Residents(imports::Outcome),
    Transfer(transfer_bulk::Outcome),
    Changes(super::changes::Outcome),
    Reconcile(super::reconcile::Outcome),
    Doses(super::dose_batch::Outcome),
    Notices(super::notices::Outcome),
}

fn execute(
    state: &AppState,
    partition: &Partition,
    mut row: ImportJobRow,
    req: &Request,
    progress: &Progress,
) {
    let runner = state.runner.clone();
    let job_id = row.id.clone();
    // Every write transaction of the job first shows the job alive; one
    // that finds the lease gone (the job was declared dead) stops it.
    let keep_alive = move |conn: &mut crate::db::DbConn| -> Result<(), ImportError> {
        if JobLeaseRow::renew(conn, &job_id, &runner, now())? {
            Ok(())
        } else {
            Err(ImportError::LeaseLost)
        }
    };
    let result = (|| -> Result<Done, ImportError> {
        let mut conn = state
            .pool
            .get()
            .map_err(|e| ImportError::Unreadable(e.to_string()))?;
        row.status = RUNNING.into();
        row.started_at = Some(now());
        partition.run(&mut conn, |_s, c| {
            keep_alive(c)?;
            row.save_progress(c)?;
            Ok::<_, ImportError>(())
        })?;
        faults::point("import.started");
        let spool = &req.spool;
        let open = || {
            spool
                .reader()
                .map(|r| Box::new(r) as Box<dyn std::io::Read + Send>)
                .map_err(std::io::Error::other)
        };
        match req.kind {
            JobKind::Residents => {
                // What earlier imports left is settled first: the rows this
                // one writes must be the only ones not yet visible.
                import_settle::settle(&mut conn, partition, &keep_alive)?;
                imports::import(
                    &mut conn,
                    partition,
                    &imports::Staging {
                        seq: row.seq.unwrap_or_default(),
                        numbers: req.numbers,
                        keep_alive: &keep_alive,
                    },
                    &open,
                    req.encoding,
                    req.limits,
                    &imports::issuer_of_job(&row.id),
                    progress,
                )
                .map(Done::Residents)
            }
            JobKind::Changes => {
                import_settle::settle(&mut conn, partition, &keep_alive)?;
                super::changes::apply(
                    &mut conn,
                    partition,
                    &imports::Staging {
                        seq: row.seq.unwrap_or_default(),
                        numbers: req.numbers,
                        keep_alive: &keep_alive,
                    },
                    &open,
                    req.encoding,
                    req.limits,
                    (
                        &imports::issuer_of_job(&row.id),
                        req.actor.account_id.clone(),
                    ),
                    progress,
                )
                .map(Done::Changes)
            }
            JobKind::Reconcile => super::reconcile::compare(
                &mut conn,
                partition,
                &row.id,
                &keep_alive,
                &open,
                (req.encoding, req.limits),
                req.numbers,
                progress,
            )
            .map(Done::Reconcile),
            JobKind::Doses => super::dose_batch::run(
                &mut conn,
                state,
                partition,
                super::dose_batch::Job {
                    id: &row.id,
                    actor: &req.actor,
                    keep_alive: &keep_alive,
                },
                &open,
                (req.encoding, req.limits),
                progress,
            )
            .map(Done::Doses),
            JobKind::Notices => super::notices::run(
                &mut conn,
                partition,
                super::notices::Job {
                    id: &row.id,
                    actor: &req.actor,
                    keep_alive: &keep_alive,
                },
                &open,
                progress,
            )
            .map(Done::Notices),
            JobKind::Transfer(purpose) => transfer_bulk::run(
                &mut conn,
                state,
                partition,
                transfer_bulk::Job {
                    id: &row.id,
                    actor: &req.actor,
                    purpose,
                    keep_alive: &keep_alive,
                },
                &open,
                req.encoding,
                req.limits,
                progress,
            )
            .map(Done::Transfer),
        }
    })();
    if let Err(ImportError::LeaseLost) = &result {
        // Declared dead while it ran: whoever did so closed the journal
        // line and the log; this thread only stops.
        tracing::warn!(job = %row.id, "job stopped: its lease was taken");
        forget(&row.id);
        return;
    }
    row.bytes_done = progress.bytes_done.load(Ordering::Relaxed) as i64;
    row.finished_at = Some(now());
    let (outcome, detail) = conclude(&mut row, &result);
    let Ok(mut conn) = state.pool.get() else {
        tracing::error!(job = %row.id, "cannot save import outcome: no database connection");
        forget(&row.id);
        return;
    };
    if let (Some(seq), Err(_)) = (row.seq, &result) {
        // A file that is not stored leaves nothing behind by the time its
        // job says so (a stop in between: the job is closed as
        // interrupted, and the rest removed then).
        if let Err(e) = import_settle::discard(&mut conn, partition, &keep_alive, seq) {
            tracing::error!(job = %row.id, error = %e, "cannot remove what the import wrote");
            forget(&row.id);
            return;
        }
    }
    faults::point("import.before_outcome");
    // The journal line, the end of the lease and the operation-log line
    // commit together — and for a resident import that succeeded, that
    // commit is what makes the whole file visible at once.
    let closed = partition.run(&mut conn, |_s, c| {
        if !JobLeaseRow::release(c, &row.id, &state.runner)? {
            return Ok::<_, ImportError>(false);
        }
        row.save_progress(c)?;
        let target = format!("import:{}", row.id);
        if !matches!(
            req.kind,
            JobKind::Transfer(_) | JobKind::Doses | JobKind::Notices
        ) && progress.numbers_column.load(Ordering::Relaxed)
        {
            // Individual numbers handed over in a file are a use of them
            // like any other: logged, refused or not.
            let (outcome, detail) = match req.numbers {
                Ok(()) => ("ok", format!("channel=import lines={}", row.lines_seen)),
                Err(r) => ("refused", format!("channel=import reason={}", r.code())),
            };
            audit::append(
                c,
                &state.audit,
                &req.actor,
                Entry {
                    chain: partition.code().as_str(),
                    action: "my_number.access",
                    target: Some(target.clone()),
                    outcome,
                    detail: Some(detail),
                },
            )?;
        }
        audit::append(
            c,
            &state.audit,
            &req.actor,
            Entry {
                chain: partition.code().as_str(),
                action: req.kind.action(),
                target: Some(target),
                outcome,
                detail: Some(format!("sha256={} {detail}", row.file_sha256)),
            },
        )?;
        Ok(true)
    });
    faults::point("import.after_outcome");
    match closed {
        Ok(true) => {}
        Ok(false) => tracing::warn!(job = %row.id, "job ended after its lease was taken"),
        Err(ref e) => tracing::error!(job = %row.id, error = %e, "cannot save import outcome"),
    }
    if req.kind.staged() {
        if matches!(closed, Ok(true))
            && result.is_ok()
            && let Err(e) = crate::db::refresh_resident_statistics(&mut conn)
        {
            tracing::warn!(job = %row.id, error = %e, "cannot refresh statistics");
        }
        // Attributes a file that succeeded gave move into place; readers
        // see the same throughout.
        let settled = import_settle::settle(&mut conn, partition, &|_: &mut crate::db::DbConn| {
            Ok::<_, ImportError>(())
        });
        if let Err(e) = settled {
            tracing::warn!(job = %row.id, error = %e, "cannot settle the import yet (the next one will)");
        }
        if let (Ok(Done::Changes(o)), Ok(true)) = (&result, &closed) {
            queue_after_end(state, partition, &req.actor, &o.ended, &row.id);
        }
    }
    forget(&row.id);
}

/// After a change file succeeded: the doses given on or after the day its
/// people moved out or died go to the queue.
fn queue_after_end(
    state: &AppState,
    partition: &Partition,
    actor: &Actor,
    ended: &[String],
    job_id: &str,
) {
    if ended.is_empty() {
        return;
    }
    // A transaction per few hundred people, so that no writer of any
    // municipality waits for the sweep.
    let queued = state
        .pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| {
            let mut n = 0;
            for chunk in ended.chunks(200) {
                n += partition
                    .run(&mut conn, |scope, c| {
                        super::doses::queue_after_end(scope, c, chunk, &state.audit, actor)
                    })
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(n)
        });
    match queued {
        Ok(n) if n > 0 => {
            tracing::info!(job = %job_id, doses = n, "doses after a move-out or death queued")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(job = %job_id, error = %e, "cannot queue the doses after a move-out or death")
        }
    }
}

fn forget(id: &str) {
    if let Ok(mut map) = live().lock() {
        map.remove(id);
    }
}

/// The journal line's outcome columns from the job's result; the log
/// line's outcome and detail.
fn conclude(row: &mut ImportJobRow, result: &Result<Done, ImportError>) -> (&'static str, String) {
    match result {
        Ok(Done::Transfer(o)) => {
            row.status = SUCCEEDED.into();
            row.encoding = o.encoding.clone();
            row.lines_seen = o.lines as i64;
            (
                "ok",
                format!(
                    "lines={} matched={} unmatched={} doses={}",
                    o.lines, o.matched, o.unmatched, o.doses
                ),
            )
        }
        Ok(Done::Residents(o)) => {
            row.status = SUCCEEDED.into();
            row.encoding = o.encoding.clone();
            row.lines_seen = o.lines as i64;
            row.inserted = o.inserted as i64;
            row.updated = o.updated as i64;
            row.unchanged = o.unchanged as i64;
            row.tickets_issued = o.tickets_issued as i64;
            row.message = (o.tickets_withheld > 0)
                .then(|| format!("tickets_withheld={}", o.tickets_withheld));
            (
                "ok",
                format!(
                    "lines={} inserted={} updated={} unchanged={} tickets={}",
                    o.lines, o.inserted, o.updated, o.unchanged, o.tickets_issued
                ),
            )
        }
        Ok(Done::Changes(o)) => {
            row.status = SUCCEEDED.into();
            row.encoding = o.encoding.clone();
            row.lines_seen = o.lines as i64;
            row.inserted = (o.added + o.returned) as i64;
            row.updated = (o.changed + o.moved_out + o.deceased) as i64;
            row.unchanged = o.unchanged as i64;
            row.tickets_issued = o.tickets_issued as i64;
            row.message = outcome_message(JobKind::CHANGES, o);
            (
                "ok",
                format!(
                    "lines={} added={} returned={} moved_out={} deceased={} changed={} tickets={} invalidated={}",
                    o.lines,
                    o.added,
                    o.returned,
                    o.moved_out,
                    o.deceased,
                    o.changed,
                    o.tickets_issued,
                    o.tickets_invalidated
                ),
            )
        }
        Ok(Done::Reconcile(o)) => {
            row.status = SUCCEEDED.into();
            row.encoding = o.encoding.clone();
            row.lines_seen = o.lines as i64;
            row.inserted = o.new as i64;
            row.updated = o.changed as i64;
            row.unchanged = o.same as i64;
            row.message = outcome_message(JobKind::RECONCILE, o);
            (
                "ok",
                format!(
                    "lines={} same={} new={} changed={} absent={}",
                    o.lines, o.same, o.new, o.changed, o.absent
                ),
            )
        }
        Ok(Done::Doses(o)) => {
            row.status = SUCCEEDED.into();
            row.encoding = o.encoding.clone();
            row.lines_seen = o.lines as i64;
            row.inserted = (o.recorded + o.queued) as i64;
            row.updated = o.replayed as i64;
            row.unchanged = o.refused as i64;
            row.message = outcome_message(JobKind::DOSES, o);
            (
                "ok",
                format!(
                    "lines={} recorded={} queued={} replayed={} refused={}",
                    o.lines, o.recorded, o.queued, o.replayed, o.refused
                ),
            )
        }
        Ok(Done::Notices(o)) => {
            row.status = SUCCEEDED.into();
            row.lines_seen = o.letters as i64;
            row.inserted = o.letters as i64;
            row.tickets_issued = o.tickets_issued as i64;
            row.message = outcome_message(JobKind::NOTICES, o);
            (
                "ok",
                format!("letters={} tickets={}", o.letters, o.tickets_issued),
            )
        }
        Err(ImportError::Rejected {
            lines,
            error_count,
            errors,
        }) => {
            row.status = REJECTED.into();
            row.lines_seen = *lines as i64;
            row.error_count = *error_count as i64;
            row.errors = serde_json::to_string(errors).ok();
            ("rejected", format!("lines={lines} errors={error_count}"))
        }
        Err(e) => {
            row.status = FAILED.into();
            // The cause goes to the server log; the journal keeps a code.
            tracing::error!(job = %row.id, error = %e, "import failed");
            row.message = Some(match e {
                ImportError::Unreadable(_) => "unreadable".into(),
                _ => "internal".into(),
            });
            ("failed", "see server log".to_string())
        }
    }
}

/// Closes the jobs whose process stopped: at start-up those this server
/// ran before it stopped (`mine`), and at any time those whose lease was
/// not renewed for `stale`. Each is marked failed (interrupted) with its
/// operation-log line, in one transaction, and what it wrote is settled.
/// Returns how many were closed.
pub fn reap(state: &AppState, mine: bool, stale: std::time::Duration) -> Result<usize, JobError> {
    let mut conn = state.pool.get().map_err(crate::db::DbError::from)?;
    let before = now() - chrono::Duration::from_std(stale).unwrap_or(chrono::Duration::MAX);
    // No runner is named "": only stale leases, then.
    let runner = if mine {
        state.runner.to_string()
    } else {
        String::new()
    };
    let mut closed = 0;
    for lease in JobLeaseRow::dead(&mut conn, &runner, before)? {
        let Ok(code) = MunicipalityCode::parse(&lease.municipality_code) else {
            continue;
        };
        let partition = Partition::open(&mut conn, &state.master, code)?;
        let ended = partition.run(&mut conn, |_s, c| {
            if !JobLeaseRow::revoke(c, &lease)? {
                return Ok::<_, JobError>(false);
            }
            let Some(job) = ImportJobRow::fail_interrupted(c, &lease.job_id, now())? else {
                return Ok(true);
            };
            let action = JobKind::action_of(&job.kind);
            let actor = Actor {
                account_id: Some(job.account_id.clone()).filter(|a| !a.is_empty()),
                login_id: Some(job.login_id.clone()).filter(|a| !a.is_empty()),
                client_addr: Some(job.client_addr.clone()).filter(|a| !a.is_empty()),
            };
            audit::append(
                c,
                &state.audit,
                &actor,
                Entry {
                    chain: code.as_str(),
                    action,
                    target: Some(format!("import:{}", job.id)),
                    outcome: "failed",
                    detail: Some(format!("sha256={} interrupted", job.file_sha256)),
                },
            )?;
            Ok(true)
        })?;
        if ended {
            closed += 1;
            tracing::warn!(job = %lease.job_id, municipality = %code, "closed a job whose process stopped");
            import_settle::settle(&mut conn, &partition, &|_: &mut crate::db::DbConn| {
                Ok::<_, JobError>(())
            })?;
        }
    }
    Ok(closed)
}

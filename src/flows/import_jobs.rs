//! Imports run as background jobs: the upload is spooled (sealed), a row in
//! `import_jobs` journals it, and a thread does the work. The journal row
//! survives a page reload and a restart; live progress is kept in memory by
//! the process running the job and read by the progress page.

use super::imports::{self, FileEncoding, ImportError, Limits, Progress};
use super::now;
use super::transfer_bulk;
use crate::audit::{self, Actor, Entry};
use crate::crypto::spool::Spool;
use crate::db::models::import_jobs::ImportJobRow;
use crate::domain::InquiryPurpose;
use crate::domain::MunicipalityCode;
use crate::startup::AppState;
use crate::tenancy::{Partition, TenancyError};
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
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
}

impl crate::db::DbCause for JobError {
    fn db_cause(&self) -> Option<&crate::db::DbError> {
        match self {
            JobError::Tenancy(e) => crate::db::DbCause::db_cause(e),
            JobError::Busy => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(JobError);

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
}

impl JobKind {
    pub const RESIDENTS: &str = "residents";
    pub const TRANSFER: &str = "transfer";

    pub fn code(&self) -> &'static str {
        match self {
            JobKind::Residents => Self::RESIDENTS,
            JobKind::Transfer(_) => Self::TRANSFER,
        }
    }

    fn action(&self) -> &'static str {
        match self {
            JobKind::Residents => "residents.import",
            JobKind::Transfer(_) => "transfer.bulk",
        }
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
}

/// Journals the job and starts it; returns its id. One import at a time
/// per municipality, so two files cannot race over the same people.
pub fn start(state: &AppState, req: Request) -> Result<String, JobError> {
    let mut conn = state.pool.get().map_err(crate::db::DbError::from)?;
    let partition = Partition::open(&mut conn, &state.master, req.municipality)?;
    let id = uuid::Uuid::new_v4().to_string();
    let name: String = req
        .file_name
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let row = ImportJobRow {
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
    };
    partition.run(&mut conn, |scope, conn| {
        if ImportJobRow::count_unfinished(scope, conn)? > 0 {
            return Err(JobError::Busy);
        }
        row.insert(scope, conn)?;
        Ok(())
    })?;
    let progress = Arc::new(Progress::default());
    progress
        .bytes_total
        .store(req.spool.len(), Ordering::Relaxed);
    if let Ok(mut map) = live().lock() {
        map.insert(id.clone(), progress.clone());
    }
    drop(conn);
    let state = state.clone();
    std::thread::Builder::new()
        .name(format!("import-{}", &id[..8]))
        .spawn(move || run(state, partition, row, req, progress))
        .map_err(|e| {
            JobError::Tenancy(TenancyError::Db(crate::db::DbError::Migration(
                e.to_string(),
            )))
        })?;
    Ok(id)
}

fn run(
    state: AppState,
    partition: Partition,
    mut row: ImportJobRow,
    req: Request,
    progress: Arc<Progress>,
) {
    enum Done {
        Residents(imports::Outcome),
        Transfer(transfer_bulk::Outcome),
    }
    let result = (|| -> Result<Done, ImportError> {
        let mut conn = state
            .pool
            .get()
            .map_err(|e| ImportError::Unreadable(e.to_string()))?;
        row.status = RUNNING.into();
        row.started_at = Some(now());
        partition.run(&mut conn, |s, c| row.save_progress(s, c))?;
        let spool = &req.spool;
        let open = || {
            spool
                .reader()
                .map(|r| Box::new(r) as Box<dyn std::io::Read + Send>)
                .map_err(std::io::Error::other)
        };
        match req.kind {
            JobKind::Residents => imports::import(
                &mut conn,
                &partition,
                &open,
                req.encoding,
                req.limits,
                &imports::issuer_of_job(&row.id),
                &progress,
            )
            .map(Done::Residents),
            JobKind::Transfer(purpose) => transfer_bulk::run(
                &mut conn,
                &state,
                &partition,
                transfer_bulk::Job {
                    id: &row.id,
                    actor: &req.actor,
                    purpose,
                },
                &open,
                req.encoding,
                req.limits,
                &progress,
            )
            .map(Done::Transfer),
        }
    })();
    row.bytes_done = progress.bytes_done.load(Ordering::Relaxed) as i64;
    row.finished_at = Some(now());
    let (outcome, detail) = match &result {
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
    };
    if let Ok(mut conn) = state.pool.get() {
        if result.is_ok()
            && let Err(e) = crate::db::refresh_statistics(&mut conn)
        {
            tracing::warn!(job = %row.id, error = %e, "cannot refresh statistics");
        }
        let saved = partition.run(&mut conn, |s, c| row.save_progress(s, c));
        if let Err(e) = saved {
            tracing::error!(job = %row.id, error = %e, "cannot save import outcome");
        }
        let logged = audit::record(
            &mut conn,
            &state.audit,
            &req.actor,
            Entry {
                chain: partition.code().as_str(),
                action: req.kind.action(),
                target: Some(format!("import:{}", row.id)),
                outcome,
                detail: Some(format!("sha256={} {detail}", row.file_sha256)),
            },
        );
        if let Err(e) = logged {
            tracing::error!(job = %row.id, error = %e, "cannot log import outcome");
        }
    }
    if let Ok(mut map) = live().lock() {
        map.remove(&row.id);
    }
}

/// The journal line of one job, for the municipality's own staff.
pub fn find(
    scope: &crate::tenancy::Scope<'_>,
    conn: &mut crate::db::DbConn,
    kind: &str,
    id: &str,
) -> Result<Option<ImportJobRow>, crate::db::DbError> {
    ImportJobRow::find(scope, conn, kind, id)
}

/// The municipality's latest imports, newest first.
pub fn recent(
    scope: &crate::tenancy::Scope<'_>,
    conn: &mut crate::db::DbConn,
    kind: &str,
) -> Result<Vec<ImportJobRow>, crate::db::DbError> {
    ImportJobRow::recent(scope, conn, kind, 50)
}

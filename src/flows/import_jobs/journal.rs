//! The journal of jobs as the municipality's staff read it: a job's line,
//! its progress, its errors.

use super::*;

/// A job as its journal and its progress page show it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub status: String,
    pub login_id: String,
    pub client_addr: String,
    pub file_name: String,
    pub file_sha256: String,
    pub created_at: chrono::NaiveDateTime,
    pub lines_seen: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub error_count: i64,
    /// The first errors by line and column (the rest are counted).
    pub errors: Vec<imports::LineError>,
    /// Why a job failed or what it withheld (a message key's code).
    pub message: Option<String>,
}

impl From<ImportJobRow> for Job {
    fn from(j: ImportJobRow) -> Job {
        Job {
            errors: j
                .errors
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok())
                .unwrap_or_default(),
            id: j.id,
            status: j.status,
            login_id: j.login_id,
            client_addr: j.client_addr,
            file_name: j.file_name,
            file_sha256: j.file_sha256,
            created_at: j.created_at,
            lines_seen: j.lines_seen,
            inserted: j.inserted,
            updated: j.updated,
            unchanged: j.unchanged,
            error_count: j.error_count,
            message: j.message,
        }
    }
}

impl Job {
    pub fn is_running(&self) -> bool {
        self.status == QUEUED || self.status == RUNNING
    }

    /// Where the job stands: its percentage and the lines read, live while
    /// it runs, whole once it ended.
    pub fn progress(&self) -> (u8, u64) {
        match (progress_of(&self.id), self.is_running()) {
            (Some(p), true) => (p.percent(), p.lines.load(Ordering::Relaxed)),
            // Running on another server: the lines it counted so far.
            (None, true) => (0, self.lines_seen as u64),
            (_, false) => (100, self.lines_seen as u64),
        }
    }

    /// What a finished job of kind `kind` reported (see `outcome_message`).
    pub fn outcome<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Option<T> {
        let json = self
            .message
            .as_deref()?
            .strip_prefix(kind)?
            .strip_prefix('=')?;
        serde_json::from_str(json).ok()
    }

    /// Errors counted beyond those kept.
    pub fn more_errors(&self) -> i64 {
        self.error_count - self.errors.len() as i64
    }
}

/// A finished job's outcome as its journal line keeps it (`kind=` and the
/// outcome in JSON), read back by `Job::outcome`.
pub fn outcome_message(kind: &str, outcome: &impl serde::Serialize) -> Option<String> {
    serde_json::to_string(outcome)
        .ok()
        .map(|j| format!("{kind}={j}"))
}

/// The journal line of one job, for the municipality's own staff.
pub fn find(
    _scope: &crate::tenancy::Scope<'_>,
    conn: &mut TenantConn<'_>,
    kind: &str,
    id: &str,
) -> Result<Option<Job>, crate::db::DbError> {
    Ok(ImportJobRow::find(conn, kind, id)?.map(Job::from))
}

/// The municipality's latest imports, newest first.
pub fn recent(
    _scope: &crate::tenancy::Scope<'_>,
    conn: &mut TenantConn<'_>,
    kind: &str,
) -> Result<Vec<Job>, crate::db::DbError> {
    Ok(ImportJobRow::recent(conn, kind, 50)?
        .into_iter()
        .map(Job::from)
        .collect())
}

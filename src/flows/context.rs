//! The context every flow that outlives a request runs in (import jobs,
//! bulk inquiries) and every handler shares.

use crate::crypto::MasterKey;
use crate::db::{self, Pool};
use std::sync::Arc;

/// What requests and background jobs share: the pool, the keys and the
/// settings a flow needs. Built by `startup`.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub master: Arc<MasterKey>,
    pub audit: crate::audit::AuditKey,
    /// Where uploads wait, sealed, for their import job.
    pub spool_dir: std::path::PathBuf,
    pub import_limits: super::imports::Limits,
    pub transfer: super::transfer::Settings,
    /// `iss` of the certificates this deployment signs.
    pub issuer_url: String,
    /// The smallest count statistics show or publish.
    pub stats_min_cell: i64,
    /// This server's name on the leases of the jobs it runs: kept in its
    /// data folder, so that after a restart it knows which jobs were its
    /// own (and are certainly dead).
    pub runner: Arc<str>,
    /// The operation log's witness file (see `audit::witness`).
    pub witness: Arc<crate::audit::witness::Witness>,
    /// On SQLite, where dose recordings are committed in groups (see
    /// `db::commit_group`); none on PostgreSQL.
    pub commits: Option<Arc<db::commit_group::CommitGroup>>,
}

/// How long a job's lease lasts without being renewed (every write
/// transaction of a job renews it) before any server may declare it dead.
pub const JOB_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Work handed to the blocking pool stopped before it answered (it
/// panicked, or the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("work on the blocking pool stopped: {0}")]
pub struct Stopped(#[source] pub tokio::task::JoinError);

impl AppState {
    /// Runs database work on the blocking pool with a pooled connection, so
    /// that a request's or a job's queries never hold up the async workers.
    pub async fn blocking<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<db::DbError> + From<Stopped> + Send + 'static,
        F: FnOnce(&mut db::DbConn) -> Result<T, E> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            // A checkout that timed out found every connection in use.
            let mut conn = pool.get().map_err(|e| E::from(db::DbError::from(e)))?;
            work(&mut conn)
        })
        .await
        .map_err(|e| E::from(Stopped(e)))?
    }

    /// Writing work as `blocking` runs it, but on SQLite in the next commit
    /// group (see `db::commit_group`): answered once its group is on disk.
    /// Work the group could not take or run changed nothing, and is
    /// answered as a busy database.
    pub async fn grouped<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<db::DbError> + From<Stopped> + Send + 'static,
        F: FnOnce(&mut db::DbConn) -> Result<T, E> + Send + 'static,
    {
        match &self.commits {
            Some(group) => group.run(work).await.unwrap_or_else(|_| {
                Err(E::from(db::DbError::Busy(
                    "the commit group took no more work".into(),
                )))
            }),
            None => self.blocking(work).await,
        }
    }

    /// For `serve` only: the spools and running jobs of this server's
    /// previous life are gone, so their journal lines are closed as failed
    /// (with their log lines) and what they wrote is settled.
    pub fn recover_interrupted_jobs(&self) -> anyhow::Result<usize> {
        crate::crypto::spool::clear_dir(&self.spool_dir);
        Ok(super::import_jobs::reap(self, true, JOB_LEASE)?)
    }
}

//! Which server process runs each unfinished job, and when it last showed
//! it was alive. A platform table: no personal data, read across
//! municipalities by whoever looks for jobs whose process stopped.

use crate::db::schema::job_leases;
use crate::db::{DbConn, DbError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = job_leases)]
pub struct JobLeaseRow {
    pub job_id: String,
    pub municipality_code: String,
    pub runner: String,
    pub heartbeat_at: NaiveDateTime,
}

impl JobLeaseRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(job_leases::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    /// Shows the job alive; false when the lease is gone (the job was
    /// declared dead and closed by someone else), so its work must stop.
    pub fn renew(
        conn: &mut DbConn,
        job_id: &str,
        runner: &str,
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let n = diesel::update(
            job_leases::table
                .filter(job_leases::job_id.eq(job_id))
                .filter(job_leases::runner.eq(runner)),
        )
        .set(job_leases::heartbeat_at.eq(at))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Ends the lease; false when it was no longer this runner's.
    pub fn release(conn: &mut DbConn, job_id: &str, runner: &str) -> Result<bool, DbError> {
        let n = diesel::delete(
            job_leases::table
                .filter(job_leases::job_id.eq(job_id))
                .filter(job_leases::runner.eq(runner)),
        )
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Takes the lease away from a runner that stopped: false when another
    /// reaper or the job itself ended it first.
    pub fn revoke(conn: &mut DbConn, lease: &JobLeaseRow) -> Result<bool, DbError> {
        let n = diesel::delete(
            job_leases::table
                .filter(job_leases::job_id.eq(&lease.job_id))
                .filter(job_leases::runner.eq(&lease.runner))
                .filter(job_leases::heartbeat_at.eq(lease.heartbeat_at)),
        )
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Leases of jobs whose process stopped: held by `runner` (this
    /// process's previous life), or not renewed since `before`.
    pub fn dead(
        conn: &mut DbConn,
        runner: &str,
        before: NaiveDateTime,
    ) -> Result<Vec<JobLeaseRow>, DbError> {
        Ok(job_leases::table
            .filter(
                job_leases::runner
                    .eq(runner)
                    .or(job_leases::heartbeat_at.lt(before)),
            )
            .select(JobLeaseRow::as_select())
            .load(conn)?)
    }

    pub fn delete_of_municipality(conn: &mut DbConn, code: &str) -> Result<usize, DbError> {
        Ok(
            diesel::delete(job_leases::table.filter(job_leases::municipality_code.eq(code)))
                .execute(conn)?,
        )
    }
}

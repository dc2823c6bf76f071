use crate::db::schema::import_jobs;
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// One file import: its journal line while it runs and after.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = import_jobs)]
pub struct ImportJobRow {
    pub municipality_code: String,
    pub id: String,
    pub kind: String,
    pub status: String,
    pub account_id: String,
    pub login_id: String,
    pub client_addr: String,
    pub file_name: String,
    pub file_sha256: String,
    pub file_bytes: i64,
    pub encoding: String,
    pub bytes_done: i64,
    pub lines_seen: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub tickets_issued: i64,
    pub error_count: i64,
    pub errors: Option<String>,
    pub message: Option<String>,
    pub created_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
}

impl ImportJobRow {
    pub fn insert(&self, scope: &Scope<'_>, conn: &mut DbConn) -> Result<(), DbError> {
        debug_assert_eq!(self.municipality_code, scope.code().as_str());
        diesel::insert_into(import_jobs::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    /// The job of this kind with this id.
    pub fn find(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        kind: &str,
        id: &str,
    ) -> Result<Option<ImportJobRow>, DbError> {
        Ok(import_jobs::table
            .filter(import_jobs::municipality_code.eq(scope.code().as_str()))
            .filter(import_jobs::id.eq(id))
            .filter(import_jobs::kind.eq(kind))
            .select(ImportJobRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn recent(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        kind: &str,
        limit: i64,
    ) -> Result<Vec<ImportJobRow>, DbError> {
        Ok(import_jobs::table
            .filter(import_jobs::municipality_code.eq(scope.code().as_str()))
            .filter(import_jobs::kind.eq(kind))
            .order(import_jobs::created_at.desc())
            .limit(limit)
            .select(ImportJobRow::as_select())
            .load(conn)?)
    }

    pub fn count_unfinished(scope: &Scope<'_>, conn: &mut DbConn) -> Result<i64, DbError> {
        Ok(import_jobs::table
            .filter(import_jobs::municipality_code.eq(scope.code().as_str()))
            .filter(import_jobs::status.eq_any(["queued", "running"]))
            .count()
            .get_result(conn)?)
    }

    /// Writes back the progress and outcome columns.
    pub fn save_progress(&self, scope: &Scope<'_>, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::update(
            import_jobs::table
                .filter(import_jobs::municipality_code.eq(scope.code().as_str()))
                .filter(import_jobs::id.eq(&self.id)),
        )
        .set((
            import_jobs::status.eq(&self.status),
            import_jobs::encoding.eq(&self.encoding),
            import_jobs::bytes_done.eq(self.bytes_done),
            import_jobs::lines_seen.eq(self.lines_seen),
            import_jobs::inserted.eq(self.inserted),
            import_jobs::updated.eq(self.updated),
            import_jobs::unchanged.eq(self.unchanged),
            import_jobs::tickets_issued.eq(self.tickets_issued),
            import_jobs::error_count.eq(self.error_count),
            import_jobs::errors.eq(&self.errors),
            import_jobs::message.eq(&self.message),
            import_jobs::started_at.eq(self.started_at),
            import_jobs::finished_at.eq(self.finished_at),
        ))
        .execute(conn)?;
        Ok(())
    }

    /// Jobs left running by a process that stopped: at start-up they are
    /// marked failed (their upload spool died with the process's key).
    pub fn fail_interrupted(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        at: NaiveDateTime,
    ) -> Result<usize, DbError> {
        Ok(diesel::update(
            import_jobs::table
                .filter(import_jobs::municipality_code.eq(scope.code().as_str()))
                .filter(import_jobs::status.eq_any(["queued", "running"])),
        )
        .set((
            import_jobs::status.eq("failed"),
            import_jobs::message.eq("interrupted"),
            import_jobs::finished_at.eq(at),
        ))
        .execute(conn)?)
    }
}

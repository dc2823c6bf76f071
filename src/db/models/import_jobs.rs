use crate::db::DbError;
use crate::db::TenantConn;
use crate::db::schema::import_jobs;
use crate::tenancy::{Scope, Seen};
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
    /// A resident import's place in its municipality's order of imports:
    /// what it writes carries this number (see `seen_seq`).
    pub seq: Option<i64>,
}

/// The newest resident import a reader of this scope sees, as an SQL
/// expression inside the statement being built, so that the rows and the
/// import's state are read from one snapshot. `Seen::Published`: the
/// newest import that succeeded (0 before any); an import's own reads see
/// its own rows too.
pub fn seen_seq<ST>(scope: &Scope<'_>) -> SeenSeq<ST> {
    SeenSeq {
        seen: match scope.seen() {
            Seen::Published => SeenBy::Published(scope.code().to_string()),
            Seen::Through(seq) => SeenBy::Through(seq),
        },
        _type: std::marker::PhantomData,
    }
}

/// `seen_seq`'s expression. The code and the number are bound, never
/// spliced into the text, so that a statement using it stays one prepared
/// statement per shape: a literal (`diesel::dsl::sql`) would make every
/// ticket lookup re-parsed and re-planned, which on PostgreSQL cost more
/// than the rest of a recorded dose.
#[derive(Debug, Clone)]
pub struct SeenSeq<ST> {
    seen: SeenBy,
    _type: std::marker::PhantomData<ST>,
}

#[derive(Debug, Clone)]
enum SeenBy {
    Published(String),
    Through(i64),
}

impl<ST> diesel::Expression for SeenSeq<ST>
where
    ST: diesel::expression::TypedExpressionType,
{
    type SqlType = ST;
}

impl<ST, DB> diesel::query_builder::QueryFragment<DB> for SeenSeq<ST>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
        + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        match &self.seen {
            SeenBy::Published(code) => {
                out.push_sql(
                    "CAST((SELECT coalesce(max(j.seq), 0) FROM import_jobs j \
                     WHERE j.municipality_code = ",
                );
                out.push_bind_param::<diesel::sql_types::Text, _>(code)?;
                out.push_sql(" AND j.status = 'succeeded') AS BIGINT)");
            }
            SeenBy::Through(seq) => {
                out.push_sql("CAST(");
                out.push_bind_param::<diesel::sql_types::BigInt, _>(seq)?;
                out.push_sql(" AS BIGINT)");
            }
        }
        Ok(())
    }
}

/// The text differs by variant, so the statement cache is keyed by the
/// text (`HAS_STATIC_QUERY_ID = false`), not by the Rust type.
impl<ST> diesel::query_builder::QueryId for SeenSeq<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST, QS> diesel::SelectableExpression<QS> for SeenSeq<ST> where Self: diesel::Expression {}

impl<ST, QS> diesel::AppearsOnTable<QS> for SeenSeq<ST> where Self: diesel::Expression {}

impl<ST, GB> diesel::expression::ValidGrouping<GB> for SeenSeq<ST> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl ImportJobRow {
    pub fn insert(&self, conn: &mut TenantConn<'_>) -> Result<(), DbError> {
        crate::db::insert_owned!(conn, import_jobs::table, self)
    }

    /// The job of this kind with this id.
    pub fn find(
        conn: &mut TenantConn<'_>,
        kind: &str,
        id: &str,
    ) -> Result<Option<ImportJobRow>, DbError> {
        Ok(conn
            .rows(import_jobs::table)
            .filter(import_jobs::id.eq(id))
            .filter(import_jobs::kind.eq(kind))
            .select(ImportJobRow::as_select())
            .first(conn.db())
            .optional()?)
    }

    pub fn recent(
        conn: &mut TenantConn<'_>,
        kind: &str,
        limit: i64,
    ) -> Result<Vec<ImportJobRow>, DbError> {
        Ok(conn
            .rows(import_jobs::table)
            .filter(import_jobs::kind.eq(kind))
            .order(import_jobs::created_at.desc())
            .limit(limit)
            .select(ImportJobRow::as_select())
            .load(conn.db())?)
    }

    /// The sequence number the municipality's next resident import takes.
    pub fn next_seq(conn: &mut TenantConn<'_>) -> Result<i64, DbError> {
        let max: Option<i64> = conn
            .rows(import_jobs::table)
            .select(diesel::dsl::max(import_jobs::seq))
            .first(conn.db())?;
        Ok(max.unwrap_or(0) + 1)
    }

    /// The newest resident import that succeeded (0 before any).
    pub fn published_seq(conn: &mut TenantConn<'_>) -> Result<i64, DbError> {
        let max: Option<i64> = conn
            .rows(import_jobs::table)
            .filter(import_jobs::status.eq("succeeded"))
            .select(diesel::dsl::max(import_jobs::seq))
            .first(conn.db())?;
        Ok(max.unwrap_or(0))
    }

    /// Sequence numbers of finished imports that did not succeed, newer
    /// than `after`: what they wrote is invisible and must go.
    pub fn unsucceeded_after(conn: &mut TenantConn<'_>, after: i64) -> Result<Vec<i64>, DbError> {
        let seqs: Vec<Option<i64>> = conn
            .rows(import_jobs::table)
            .filter(import_jobs::seq.gt(after))
            .filter(import_jobs::status.eq_any(["rejected", "failed"]))
            .select(import_jobs::seq)
            .load(conn.db())?;
        Ok(seqs.into_iter().flatten().collect())
    }

    pub fn count_unfinished(conn: &mut TenantConn<'_>) -> Result<i64, DbError> {
        Ok(conn
            .rows(import_jobs::table)
            .filter(import_jobs::status.eq_any(["queued", "running"]))
            .count()
            .get_result(conn.db())?)
    }

    /// Records how many lines a job is to work through.
    pub fn set_lines(conn: &mut TenantConn<'_>, id: &str, lines: i64) -> Result<(), DbError> {
        diesel::update(conn.rows(import_jobs::table).filter(import_jobs::id.eq(id)))
            .set(import_jobs::lines_seen.eq(lines))
            .execute(conn.db())?;
        Ok(())
    }

    /// Writes back the progress and outcome columns.
    pub fn save_progress(&self, conn: &mut TenantConn<'_>) -> Result<(), DbError> {
        diesel::update(
            conn.rows(import_jobs::table)
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
        .execute(conn.db())?;
        Ok(())
    }

    /// Closes a job whose process stopped (its upload spool died with the
    /// process's key): failed, interrupted. Returns the job as it now
    /// stands, or None when it had finished after all.
    pub fn fail_interrupted(
        conn: &mut TenantConn<'_>,
        id: &str,
        at: NaiveDateTime,
    ) -> Result<Option<ImportJobRow>, DbError> {
        let n = diesel::update(
            conn.rows(import_jobs::table)
                .filter(import_jobs::id.eq(id))
                .filter(import_jobs::status.eq_any(["queued", "running"])),
        )
        .set((
            import_jobs::status.eq("failed"),
            import_jobs::message.eq("interrupted"),
            import_jobs::finished_at.eq(at),
        ))
        .execute(conn.db())?;
        if n == 0 {
            return Ok(None);
        }
        Ok(conn
            .rows(import_jobs::table)
            .filter(import_jobs::id.eq(id))
            .select(ImportJobRow::as_select())
            .first(conn.db())
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema::tickets;
    use diesel::pg::Pg;
    use diesel::query_builder::QueryFragment;
    use diesel::sql_types::{BigInt, Nullable};
    use diesel::sqlite::Sqlite;

    fn seen(by: SeenBy) -> SeenSeq<Nullable<BigInt>> {
        SeenSeq {
            seen: by,
            _type: std::marker::PhantomData,
        }
    }

    /// A statement that reads what a scope sees stays one prepared
    /// statement, whatever the municipality: the code is a bind parameter.
    #[test]
    fn a_statement_reading_what_is_seen_is_prepared_once() {
        for by in [SeenBy::Published("082040".into()), SeenBy::Through(7)] {
            let query = tickets::table
                .filter(tickets::staged_seq.le(seen(by)))
                .select(tickets::ticket_number);
            assert!(QueryFragment::<Pg>::is_safe_to_cache_prepared(&query, &Pg).unwrap());
            assert!(QueryFragment::<Sqlite>::is_safe_to_cache_prepared(&query, &Sqlite).unwrap());
            let text = diesel::debug_query::<Pg, _>(&query).to_string();
            let sql = text.split("-- binds").next().unwrap_or_default();
            assert!(!sql.contains("082040") && !sql.contains('7'), "{sql}");
        }
    }
}

use crate::db::schema::{audit_log, audit_pending};
use crate::db::{DbConn, DbError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// The filters of a log search; none given finds every line.
#[derive(Debug, Default)]
pub struct Search<'a> {
    pub login: Option<&'a str>,
    pub actions: &'a [&'a str],
    pub outcome: Option<&'a str>,
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    /// Lines naming one of these targets (a resident and their doses).
    pub targets: Option<&'a [String]>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
pub struct AuditRow {
    pub chain: String,
    pub seq: i64,
    pub at: NaiveDateTime,
    pub account_id: Option<String>,
    pub login_id: Option<String>,
    pub client_addr: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub prev_mac: String,
    pub mac: String,
}

impl AuditRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(audit_log::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn last_of_chain(conn: &mut DbConn, chain: &str) -> Result<Option<AuditRow>, DbError> {
        Ok(audit_log::table
            .filter(audit_log::chain.eq(chain))
            .order(audit_log::seq.desc())
            .select(AuditRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// The MAC of one line of a chain, if the chain holds it.
    pub fn mac_at(conn: &mut DbConn, chain: &str, seq: i64) -> Result<Option<String>, DbError> {
        Ok(audit_log::table
            .filter(audit_log::chain.eq(chain))
            .filter(audit_log::seq.eq(seq))
            .select(audit_log::mac)
            .first(conn)
            .optional()?)
    }

    pub fn chains(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
        Ok(audit_log::table
            .select(audit_log::chain)
            .distinct()
            .order(audit_log::chain)
            .load(conn)?)
    }

    /// A page of one chain in order, for verification in constant memory.
    pub fn page_of_chain(
        conn: &mut DbConn,
        chain: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, DbError> {
        Ok(audit_log::table
            .filter(audit_log::chain.eq(chain))
            .filter(audit_log::seq.gt(after_seq))
            .order(audit_log::seq)
            .limit(limit)
            .select(AuditRow::as_select())
            .load(conn)?)
    }

    /// How many lines of one chain record this action.
    pub fn count_of_action(conn: &mut DbConn, chain: &str, action: &str) -> Result<i64, DbError> {
        Ok(audit_log::table
            .filter(audit_log::chain.eq(chain))
            .filter(audit_log::action.eq(action))
            .count()
            .get_result(conn)?)
    }

    /// Lines of one chain that match every filter given, newest first,
    /// older than `before` (a seq) when given: one page of the search.
    pub fn search(
        conn: &mut DbConn,
        chain: &str,
        f: &Search<'_>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, DbError> {
        let mut q = audit_log::table
            .filter(audit_log::chain.eq(chain))
            .into_boxed();
        if let Some(login) = f.login {
            q = q.filter(audit_log::login_id.eq(login));
        }
        if !f.actions.is_empty() {
            q = q.filter(audit_log::action.eq_any(f.actions));
        }
        if let Some(outcome) = f.outcome {
            q = q.filter(audit_log::outcome.eq(outcome));
        }
        if let Some(from) = f.from {
            q = q.filter(audit_log::at.ge(from));
        }
        if let Some(until) = f.until {
            q = q.filter(audit_log::at.lt(until));
        }
        if let Some(targets) = f.targets {
            q = q.filter(audit_log::target.eq_any(targets));
        }
        if let Some(before) = before {
            q = q.filter(audit_log::seq.lt(before));
        }
        Ok(q.order(audit_log::seq.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(conn)?)
    }

    /// Who did what when in one chain's period, oldest first, for the
    /// per-account report (three columns, not the lines).
    pub fn activity(
        conn: &mut DbConn,
        chain: &str,
        from: NaiveDateTime,
        until: NaiveDateTime,
    ) -> Result<Vec<(Option<String>, String, NaiveDateTime)>, DbError> {
        Ok(audit_log::table
            .filter(audit_log::chain.eq(chain))
            .filter(audit_log::at.ge(from))
            .filter(audit_log::at.lt(until))
            .order(audit_log::seq)
            .select((audit_log::login_id, audit_log::action, audit_log::at))
            .load(conn)?)
    }

    /// Newest lines of one chain first, for the administrator's screen.
    pub fn recent_of_chain(
        conn: &mut DbConn,
        chain: &str,
        limit: i64,
    ) -> Result<Vec<AuditRow>, DbError> {
        Ok(audit_log::table
            .filter(audit_log::chain.eq(chain))
            .order(audit_log::seq.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(conn)?)
    }
}

/// An operation-log line not yet chained (see the `audit_pending`
/// migration).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = audit_pending, treat_none_as_default_value = false)]
pub struct PendingRow {
    pub chain: String,
    pub id: String,
    pub at: NaiveDateTime,
    pub account_id: Option<String>,
    pub login_id: Option<String>,
    pub client_addr: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

impl PendingRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(audit_pending::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn insert_many(conn: &mut DbConn, rows: &[PendingRow]) -> Result<(), DbError> {
        match conn {
            DbConn::Postgresql(c) => {
                use diesel::sql_types::{Nullable, Text, Timestamp};
                crate::db::unnest_insert!(c, "audit_pending", rows, |r| {
                    chain: Text as "text" = r.chain.as_str(),
                    id: Text as "text" = r.id.as_str(),
                    at: Timestamp as "timestamp" = r.at,
                    account_id: Nullable<Text> as "text" = r.account_id.as_deref(),
                    login_id: Nullable<Text> as "text" = r.login_id.as_deref(),
                    client_addr: Nullable<Text> as "text" = r.client_addr.as_deref(),
                    action: Text as "text" = r.action.as_str(),
                    target: Nullable<Text> as "text" = r.target.as_deref(),
                    outcome: Text as "text" = r.outcome.as_str(),
                    detail: Nullable<Text> as "text" = r.detail.as_deref(),
                })?;
            }
            DbConn::Sqlite(_) => crate::db::bulk_insert!(conn, audit_pending::table, rows, 1000)?,
        }
        Ok(())
    }

    /// The chains with lines waiting.
    pub fn chains(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
        Ok(audit_pending::table
            .select(audit_pending::chain)
            .distinct()
            .order(audit_pending::chain)
            .load(conn)?)
    }

    /// The oldest lines waiting in one chain, in chaining order.
    pub fn oldest_of_chain(
        conn: &mut DbConn,
        chain: &str,
        limit: i64,
    ) -> Result<Vec<PendingRow>, DbError> {
        Ok(audit_pending::table
            .filter(audit_pending::chain.eq(chain))
            .order((audit_pending::at, audit_pending::id))
            .limit(limit)
            .select(PendingRow::as_select())
            .load(conn)?)
    }

    pub fn delete(conn: &mut DbConn, chain: &str, ids: &[String]) -> Result<usize, DbError> {
        Ok(diesel::delete(
            audit_pending::table
                .filter(audit_pending::chain.eq(chain))
                .filter(audit_pending::id.eq_any(ids)),
        )
        .execute(conn)?)
    }
}

impl AuditRow {
    /// Inserts lines: in one statement on PostgreSQL (a round trip each
    /// would cost more than the lines), one by one on SQLite (no round
    /// trips; diesel's multi-row insert does not serve both backends).
    pub fn insert_all(conn: &mut DbConn, rows: &[AuditRow]) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        if let DbConn::Postgresql(c) = conn {
            diesel::insert_into(audit_log::table)
                .values(rows)
                .execute(c)?;
        } else {
            for row in rows {
                row.insert(conn)?;
            }
        }
        Ok(())
    }
}

use crate::db::TenantConn;
use crate::db::schema::{notices, provision_records};
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub const REQUESTER: &str = "requester";
pub const PROVIDER: &str = "provider";

pub const PROVIDED: &str = "provided";
pub const NO_MATCH: &str = "no_match";
pub const REFUSED: &str = "refused";

/// One 提供記録: one side's record of one transfer inquiry. Never updated
/// (the database refuses it); deleted only by the retention purge.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = provision_records, treat_none_as_default_value = false)]
pub struct ProvisionRow {
    /// The municipality that keeps this record.
    pub municipality_code: String,
    pub id: String,
    /// Shared by the two sides' records of one inquiry.
    pub inquiry_id: String,
    pub side: String,
    pub requested_at: NaiveDateTime,
    pub answered_at: Option<NaiveDateTime>,
    pub requester_code: String,
    pub requester_account_id: Option<String>,
    pub requester_login_id: Option<String>,
    pub requester_addr: Option<String>,
    pub provider_code: String,
    /// The keeper's own resident, when there is one: never on the record of
    /// an unmatched inquiry kept by the municipality asked.
    pub resident_id: Option<String>,
    pub channel: String,
    pub procedure_code: String,
    pub purpose: String,
    /// The record items given (comma list), empty when nothing was.
    pub items: String,
    pub dose_count: i32,
    pub outcome: String,
    pub refusal: Option<String>,
    pub consent_form: bool,
    pub id_document: Option<String>,
    pub id_checked_by: Option<String>,
    pub job_id: Option<String>,
    pub line_no: Option<i64>,
}

/// What a bulk job's lines came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobTally {
    pub provided: i64,
    pub no_match: i64,
    pub doses: i64,
}

impl ProvisionRow {
    pub fn insert_many(conn: &mut TenantConn<'_>, rows: &[ProvisionRow]) -> Result<(), DbError> {
        conn.check(rows)?;
        match conn.db() {
            DbConn::Postgresql(c) => {
                use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamp};
                crate::db::unnest_insert!(c, "provision_records", rows, |r| {
                    municipality_code: Text as "text" = r.municipality_code.as_str(),
                    id: Text as "text" = r.id.as_str(),
                    inquiry_id: Text as "text" = r.inquiry_id.as_str(),
                    side: Text as "text" = r.side.as_str(),
                    requested_at: Timestamp as "timestamp" = r.requested_at,
                    answered_at: Nullable<Timestamp> as "timestamp" = r.answered_at,
                    requester_code: Text as "text" = r.requester_code.as_str(),
                    requester_account_id: Nullable<Text> as "text" =
                        r.requester_account_id.as_deref(),
                    requester_login_id: Nullable<Text> as "text" = r.requester_login_id.as_deref(),
                    requester_addr: Nullable<Text> as "text" = r.requester_addr.as_deref(),
                    provider_code: Text as "text" = r.provider_code.as_str(),
                    resident_id: Nullable<Text> as "text" = r.resident_id.as_deref(),
                    channel: Text as "text" = r.channel.as_str(),
                    procedure_code: Text as "text" = r.procedure_code.as_str(),
                    purpose: Text as "text" = r.purpose.as_str(),
                    items: Text as "text" = r.items.as_str(),
                    dose_count: Integer as "int" = r.dose_count,
                    outcome: Text as "text" = r.outcome.as_str(),
                    refusal: Nullable<Text> as "text" = r.refusal.as_deref(),
                    consent_form: Bool as "bool" = r.consent_form,
                    id_document: Nullable<Text> as "text" = r.id_document.as_deref(),
                    id_checked_by: Nullable<Text> as "text" = r.id_checked_by.as_deref(),
                    job_id: Nullable<Text> as "text" = r.job_id.as_deref(),
                    line_no: Nullable<BigInt> as "bigint" = r.line_no,
                })?;
            }
            DbConn::Sqlite(_) => {
                crate::db::bulk_insert!(conn.db(), provision_records::table, rows, 1000)?
            }
        }
        Ok(())
    }

    /// The records about one of the keeper's residents, newest first (for a
    /// disclosure request).
    pub fn of_resident(
        conn: &mut TenantConn<'_>,
        resident_id: &str,
    ) -> Result<Vec<ProvisionRow>, DbError> {
        Ok(conn
            .rows(provision_records::table)
            .filter(provision_records::resident_id.eq(resident_id))
            .order((
                provision_records::requested_at.desc(),
                provision_records::id.desc(),
            ))
            .select(ProvisionRow::as_select())
            .load(conn.db())?)
    }

    /// The keeper's latest records, newest first.
    pub fn recent(conn: &mut TenantConn<'_>, limit: i64) -> Result<Vec<ProvisionRow>, DbError> {
        Ok(conn
            .rows(provision_records::table)
            .order((
                provision_records::requested_at.desc(),
                provision_records::id.desc(),
            ))
            .limit(limit)
            .select(ProvisionRow::as_select())
            .load(conn.db())?)
    }

    /// A page of one bulk job's records, in line order, after `after_line`.
    pub fn of_job(
        conn: &mut TenantConn<'_>,
        job_id: &str,
        after_line: i64,
        limit: i64,
    ) -> Result<Vec<ProvisionRow>, DbError> {
        Ok(conn
            .rows(provision_records::table)
            .filter(provision_records::job_id.eq(job_id))
            .filter(provision_records::line_no.gt(after_line))
            .order(provision_records::line_no)
            .limit(limit)
            .select(ProvisionRow::as_select())
            .load(conn.db())?)
    }

    pub fn tally_of_job(conn: &mut TenantConn<'_>, job_id: &str) -> Result<JobTally, DbError> {
        let rows: Vec<(String, i64, Option<i64>)> = conn
            .rows(provision_records::table)
            .filter(provision_records::job_id.eq(job_id))
            .group_by(provision_records::outcome)
            .select((
                provision_records::outcome,
                diesel::dsl::count_star(),
                diesel::dsl::sum(provision_records::dose_count),
            ))
            .load(conn.db())?;
        let mut t = JobTally::default();
        for (outcome, n, doses) in rows {
            match outcome.as_str() {
                PROVIDED => t.provided += n,
                NO_MATCH => t.no_match += n,
                _ => {}
            }
            t.doses += doses.unwrap_or(0);
        }
        Ok(t)
    }

    /// Inquiries the keeper sent since `since` through the window or the
    /// API: all of them, and those of one account.
    pub fn sent_since(
        conn: &mut TenantConn<'_>,
        account_id: &str,
        since: NaiveDateTime,
    ) -> Result<(i64, i64), DbError> {
        let sent = conn
            .rows(provision_records::table)
            .filter(provision_records::side.eq(REQUESTER))
            .filter(provision_records::requested_at.ge(since))
            .filter(provision_records::channel.ne("bulk"));
        let all: i64 = sent.clone().count().get_result(conn.db())?;
        let mine: i64 = sent
            .filter(provision_records::requester_account_id.eq(account_id))
            .count()
            .get_result(conn.db())?;
        Ok((all, mine))
    }

    /// Deletes the keeper's records requested before `before`; says how
    /// many.
    pub fn purge_before(
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        before: NaiveDateTime,
    ) -> Result<usize, DbError> {
        match conn.db() {
            // The server may only insert provision records: the owner's
            // function deletes, and never what is not yet past retention.
            DbConn::Postgresql(c) => {
                #[derive(QueryableByName)]
                struct Gone {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                let gone: Gone = diesel::sql_query("SELECT purge_provision_records($1, $2) AS n")
                    .bind::<diesel::sql_types::Text, _>(scope.code().as_str())
                    .bind::<diesel::sql_types::Timestamp, _>(before)
                    .get_result(c)?;
                Ok(usize::try_from(gone.n).unwrap_or(0))
            }
            DbConn::Sqlite(_) => Ok(diesel::delete(
                conn.rows(provision_records::table)
                    .filter(provision_records::requested_at.lt(before)),
            )
            .execute(conn.db())?),
        }
    }
}

/// Something for a municipality's administrators to look at.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = notices, treat_none_as_default_value = false)]
pub struct NoticeRow {
    pub municipality_code: String,
    pub id: String,
    pub at: NaiveDateTime,
    pub kind: String,
    /// What the notice is about (an account's login, or a municipality's
    /// code), so repeats of one cause can be told apart.
    pub subject: String,
    pub detail: Option<String>,
    pub closed_at: Option<NaiveDateTime>,
    pub closed_by: Option<String>,
}

impl ProvisionRow {
    /// The asking side's resident of an inquiry, from its own record.
    pub fn requester_resident(
        conn: &mut TenantConn<'_>,
        inquiry_id: &str,
    ) -> Result<Option<String>, DbError> {
        Ok(conn
            .rows(provision_records::table)
            .filter(provision_records::inquiry_id.eq(inquiry_id))
            .filter(provision_records::side.eq(REQUESTER))
            .filter(provision_records::resident_id.is_not_null())
            .select(provision_records::resident_id)
            .first::<Option<String>>(conn.db())
            .optional()?
            .flatten())
    }
}

impl NoticeRow {
    pub fn insert(&self, conn: &mut TenantConn<'_>) -> Result<(), DbError> {
        crate::db::insert_owned!(conn, notices::table, self)
    }

    /// Whether a notice of this kind and subject is open.
    pub fn is_open(conn: &mut TenantConn<'_>, kind: &str, subject: &str) -> Result<bool, DbError> {
        let n: i64 = conn
            .rows(notices::table)
            .filter(notices::closed_at.is_null())
            .filter(notices::kind.eq(kind))
            .filter(notices::subject.eq(subject))
            .count()
            .get_result(conn.db())?;
        Ok(n > 0)
    }

    pub fn open(conn: &mut TenantConn<'_>) -> Result<Vec<NoticeRow>, DbError> {
        Ok(conn
            .rows(notices::table)
            .filter(notices::closed_at.is_null())
            .order(notices::at.desc())
            .limit(100)
            .select(NoticeRow::as_select())
            .load(conn.db())?)
    }

    /// Closes an open notice; false if there was none with this id.
    pub fn close(
        conn: &mut TenantConn<'_>,
        id: &str,
        by: &str,
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let n = diesel::update(
            conn.rows(notices::table)
                .filter(notices::id.eq(id))
                .filter(notices::closed_at.is_null()),
        )
        .set((notices::closed_at.eq(at), notices::closed_by.eq(by)))
        .execute(conn.db())?;
        Ok(n == 1)
    }
}

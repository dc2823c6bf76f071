use crate::db::schema::{export_requests, tenants};
use crate::db::{DbConn, DbError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const REFUSED: &str = "refused";
pub const USED: &str = "used";

/// A staff member's request to download personal data.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = export_requests, treat_none_as_default_value = false)]
pub struct ExportRequestRow {
    pub municipality_code: String,
    pub id: String,
    /// `ledger` or `provisions`.
    pub kind: String,
    /// The resident, for a resident's provision records.
    pub subject: Option<String>,
    pub requested_by: String,
    pub requester_login: String,
    pub requested_at: NaiveDateTime,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_login: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
}

impl ExportRequestRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(export_requests::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn find(
        conn: &mut DbConn,
        code: &str,
        id: &str,
    ) -> Result<Option<ExportRequestRow>, DbError> {
        Ok(export_requests::table
            .filter(export_requests::municipality_code.eq(code))
            .filter(export_requests::id.eq(id))
            .select(ExportRequestRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// The municipality's requests, pending first, then the newest.
    pub fn of_municipality(
        conn: &mut DbConn,
        code: &str,
        limit: i64,
    ) -> Result<Vec<ExportRequestRow>, DbError> {
        Ok(export_requests::table
            .filter(export_requests::municipality_code.eq(code))
            .order((
                export_requests::decided_at.is_not_null(),
                export_requests::requested_at.desc(),
            ))
            .limit(limit)
            .select(ExportRequestRow::as_select())
            .load(conn)?)
    }

    /// One account's requests of a kind (and subject) since `since`.
    pub fn mine(
        conn: &mut DbConn,
        code: &str,
        account: &str,
        kind: &str,
        subject: Option<&str>,
        since: NaiveDateTime,
    ) -> Result<Vec<ExportRequestRow>, DbError> {
        let mut q = export_requests::table
            .filter(export_requests::municipality_code.eq(code))
            .filter(export_requests::requested_by.eq(account))
            .filter(export_requests::kind.eq(kind))
            .filter(export_requests::requested_at.ge(since))
            .into_boxed();
        q = match subject {
            Some(s) => q.filter(export_requests::subject.eq(s)),
            None => q.filter(export_requests::subject.is_null()),
        };
        Ok(q.order(export_requests::requested_at.desc())
            .select(ExportRequestRow::as_select())
            .load(conn)?)
    }

    /// Moves a request from `from` to `to`; false when it was not in `from`.
    #[allow(clippy::too_many_arguments)]
    pub fn set_status(
        conn: &mut DbConn,
        code: &str,
        id: &str,
        from: &str,
        to: &str,
        by: Option<(&str, &str)>,
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let target = export_requests::table
            .filter(export_requests::municipality_code.eq(code))
            .filter(export_requests::id.eq(id))
            .filter(export_requests::status.eq(from));
        let n = match by {
            Some((account, login)) => diesel::update(target)
                .set((
                    export_requests::status.eq(to),
                    export_requests::decided_by.eq(account),
                    export_requests::decided_login.eq(login),
                    export_requests::decided_at.eq(at),
                ))
                .execute(conn)?,
            None => diesel::update(target)
                .set(export_requests::status.eq(to))
                .execute(conn)?,
        };
        Ok(n == 1)
    }

    pub fn required(conn: &mut DbConn, code: &str) -> Result<bool, DbError> {
        Ok(tenants::table
            .find(code)
            .select(tenants::export_approval)
            .first::<bool>(conn)
            .optional()?
            .unwrap_or(false))
    }

    pub fn set_required(conn: &mut DbConn, code: &str, on: bool) -> Result<usize, DbError> {
        Ok(diesel::update(tenants::table.find(code))
            .set(tenants::export_approval.eq(on))
            .execute(conn)?)
    }
}

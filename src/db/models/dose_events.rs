use crate::db::schema::dose_events;
use crate::db::{DbConn, DbError};
use crate::tenancy::Scope;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Something that happened to a dose after it was recorded. Never updated.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = dose_events, treat_none_as_default_value = false)]
pub struct DoseEventRow {
    pub municipality_code: String,
    pub id: String,
    pub dose_id: String,
    pub resident_id: String,
    pub at: NaiveDateTime,
    pub kind: String,
    pub account_id: Option<String>,
    pub detail: Option<String>,
    pub reason_sealed: Option<Vec<u8>>,
}

impl DoseEventRow {
    pub fn insert(&self, scope: &Scope<'_>, conn: &mut DbConn) -> Result<(), DbError> {
        debug_assert_eq!(self.municipality_code, scope.code().as_str());
        diesel::insert_into(dose_events::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn of_resident(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        resident_id: &str,
    ) -> Result<Vec<DoseEventRow>, DbError> {
        Ok(dose_events::table
            .filter(dose_events::municipality_code.eq(scope.code().as_str()))
            .filter(dose_events::resident_id.eq(resident_id))
            .order(dose_events::at)
            .select(DoseEventRow::as_select())
            .load(conn)?)
    }

    /// The doses with an event of these kinds since `since`: those whose
    /// place in the queue changed in a window that begins then.
    pub fn doses_with_events_since(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        kinds: &[&str],
        since: NaiveDateTime,
    ) -> Result<Vec<String>, DbError> {
        Ok(dose_events::table
            .filter(dose_events::municipality_code.eq(scope.code().as_str()))
            .filter(dose_events::at.ge(since))
            .filter(dose_events::kind.eq_any(kinds))
            .select(dose_events::dose_id)
            .distinct()
            .load(conn)?)
    }

    /// Every event of these kinds of these doses, by time: (dose, kind,
    /// when), for the queue's history.
    pub fn timeline_of(
        scope: &Scope<'_>,
        conn: &mut DbConn,
        kinds: &[&str],
        dose_ids: &[String],
    ) -> Result<Vec<(String, String, NaiveDateTime)>, DbError> {
        let mut out = Vec::new();
        for chunk in dose_ids.chunks(crate::db::IDS_PER_QUERY) {
            out.extend(
                dose_events::table
                    .filter(dose_events::municipality_code.eq(scope.code().as_str()))
                    .filter(dose_events::dose_id.eq_any(chunk))
                    .filter(dose_events::kind.eq_any(kinds))
                    .select((dose_events::dose_id, dose_events::kind, dose_events::at))
                    .load::<(String, String, NaiveDateTime)>(conn)?,
            );
        }
        out.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
        Ok(out)
    }
}

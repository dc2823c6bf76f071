//! A resident's doses as their record, their certificate and the staff who
//! change them see them: where each stands and the rules that queued it,
//! without the stored row's codes.

use super::dose_checks::Rule;
use crate::db::models::doses::{self as rows, DoseRow};
use crate::db::{DbError, TenantConn};
use crate::tenancy::Scope;
use chrono::NaiveDate;

/// Where a dose stands on the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It counts.
    Valid,
    /// It waits in the 要確認 queue.
    Pending,
    /// Replaced by a correction.
    Corrected,
    Deleted,
    /// Rejected from the queue.
    Rejected,
}

impl Standing {
    fn of(status: &str) -> Standing {
        match status {
            rows::VALID => Standing::Valid,
            rows::PENDING => Standing::Pending,
            rows::CORRECTED => Standing::Corrected,
            rows::DELETED => Standing::Deleted,
            _ => Standing::Rejected,
        }
    }

    pub fn label_key(self) -> &'static str {
        match self {
            Standing::Valid => "dose.status.valid",
            Standing::Pending => "dose.status.pending",
            Standing::Corrected => "dose.status.corrected",
            Standing::Deleted => "dose.status.deleted",
            Standing::Rejected => "dose.status.rejected",
        }
    }

    /// Staff may still correct or delete it (it counts, or waits).
    pub fn open(self) -> bool {
        matches!(self, Standing::Valid | Standing::Pending)
    }
}

/// One dose of the resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dose {
    pub id: String,
    pub dose_number: i32,
    pub administered_on: NaiveDate,
    pub product_code: String,
    pub lot_number: Option<String>,
    pub site_name: Option<String>,
    pub site_municipality_code: Option<String>,
    /// Copied from the municipality the person moved from.
    pub transferred: bool,
    /// The stored status word, for the page's data attribute.
    pub status: String,
    pub standing: Standing,
    /// The data-quality rules that sent it to the queue.
    pub rules: Vec<Rule>,
}

impl From<DoseRow> for Dose {
    fn from(d: DoseRow) -> Dose {
        Dose {
            standing: Standing::of(&d.status),
            rules: Rule::split(d.quality_flags.as_deref()),
            transferred: d.origin == rows::TRANSFERRED,
            id: d.id,
            dose_number: d.dose_number,
            administered_on: d.administered_on,
            product_code: d.product_code,
            lot_number: d.lot_number,
            site_name: d.site_name,
            site_municipality_code: d.site_municipality_code,
            status: d.status,
        }
    }
}

/// The resident's doses, in the record's order.
pub fn of_resident(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
) -> Result<Vec<Dose>, DbError> {
    Ok(DoseRow::of_resident(scope, conn, resident_id)?
        .into_iter()
        .map(Dose::from)
        .collect())
}

/// Whether dose `id` is the resident's: another's id is simply not found.
pub fn belongs_to(conn: &mut TenantConn<'_>, resident_id: &str, id: &str) -> Result<bool, DbError> {
    Ok(DoseRow::find(conn, id)?.is_some_and(|d| d.resident_id == resident_id))
}

//! Doses in the partition of the municipality that issued the ticket. This
//! module holds what the residents' records and the ledger export need;
//! recording at a site (with its checks and idempotency) builds on it.

use super::now;
use super::residents::ResidentError;
use crate::db::DbConn;
use crate::db::models::doses::{self as rows, DoseRow};
use crate::domain::{DoseNumber, MunicipalityCode};
use crate::tenancy::Scope;
use chrono::NaiveDate;

/// A dose as it arrives from a site (or the demo).
#[derive(Debug, Clone)]
pub struct NewDose {
    pub resident_id: String,
    pub dose_number: DoseNumber,
    pub administered_on: NaiveDate,
    pub ticket_number: Option<String>,
    pub site_municipality: Option<MunicipalityCode>,
    pub site_name: Option<String>,
    pub product_code: String,
    pub lot_number: Option<String>,
    pub recorded_by: Option<String>,
}

/// Appends doses recorded in this municipality's name.
pub fn append(
    scope: &Scope<'_>,
    conn: &mut DbConn,
    doses: &[NewDose],
) -> Result<(), ResidentError> {
    let at = now();
    let rows: Vec<DoseRow> = doses
        .iter()
        .map(|d| DoseRow {
            municipality_code: scope.code().to_string(),
            id: uuid::Uuid::now_v7().to_string(),
            resident_id: d.resident_id.clone(),
            dose_number: d.dose_number.get().into(),
            administered_on: d.administered_on,
            recorded_at: at,
            ticket_number: d.ticket_number.clone(),
            site_municipality_code: d.site_municipality.map(|c| c.to_string()),
            site_name: d.site_name.clone(),
            product_code: d.product_code.clone(),
            lot_number: d.lot_number.clone(),
            origin: rows::RECORDED.into(),
            origin_municipality_code: None,
            recorded_by: d.recorded_by.clone(),
            status: rows::VALID.into(),
        })
        .collect();
    DoseRow::insert_many(scope, conn, &rows)?;
    Ok(())
}

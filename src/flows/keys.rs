//! Key rotation: the master key (re-wraps every wrapped key) and a
//! municipality's data and index keys (re-seals every row).

use super::municipalities::insert_keys;
use crate::crypto::{MasterKey, TenantKeyMaterial};
use crate::db::models::issuer_keys::IssuerKeyRow;
use crate::db::models::tenants::{TenantKeyRow, TenantRow};
use crate::db::{DbConn, DbError};
use crate::domain::MunicipalityCode;
use crate::flows::residents;
use crate::tenancy::{Partition, TenancyError, unwrap_all};

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error(transparent)]
    Resident(#[from] residents::ResidentError),
    #[error("issuer key {0} cannot be unwrapped with the current master key")]
    IssuerKey(String),
    #[error(
        "an import or bulk inquiry of municipality {0} is running; rotate its keys once it has ended"
    )]
    ImportRunning(MunicipalityCode),
}

impl crate::db::DbCause for RotationError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            RotationError::Tenancy(e) => crate::db::DbCause::db_cause(e),
            RotationError::Resident(e) => crate::db::DbCause::db_cause(e),
            RotationError::IssuerKey(_) | RotationError::ImportRunning(_) => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(RotationError);

impl From<DbError> for RotationError {
    fn from(e: DbError) -> Self {
        RotationError::Tenancy(e.into())
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MasterRotation {
    pub tenant_keys: usize,
    pub issuer_keys: usize,
}

/// Re-wraps every municipality key and issuer key under `new`, in one
/// transaction: either everything moves to the new master key or nothing does.
pub fn rotate_master(
    conn: &mut DbConn,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<MasterRotation, RotationError> {
    crate::db::write_transaction(conn, |conn| {
        let mut done = MasterRotation::default();
        for row in TenantKeyRow::all(conn)? {
            let code = MunicipalityCode::parse(&row.municipality_code).map_err(|_| {
                TenancyError::Db(DbError::Migration("bad code in tenant_keys".into()))
            })?;
            let keys = unwrap_all(old, code, std::slice::from_ref(&row))?;
            let w = keys[0].wrap(new, code);
            TenantKeyRow {
                wrapped_data_key: w.wrapped_data_key,
                wrapped_index_key: w.wrapped_index_key,
                master_key_id: w.master_key_id,
                ..row
            }
            .rewrap(conn)?;
            done.tenant_keys += 1;
        }
        for row in IssuerKeyRow::all(conn)? {
            let label = crate::flows::issuer::wrap_label(&row.kid);
            let private = old
                .unwrap_bytes(&label, &row.wrapped_private_key)
                .ok_or_else(|| RotationError::IssuerKey(row.kid.clone()))?;
            IssuerKeyRow::rewrap(conn, &row.kid, &new.wrap(&label, &private), &new.key_id())?;
            done.issuer_keys += 1;
        }
        crate::audit::AuditKey::rewrap_all(conn, old, new)?;
        Ok(done)
    })
}

/// Gives a municipality a new data key and index key, re-seals all of its
/// rows with them, and destroys the old versions — in one transaction, so a
/// failure leaves every row readable with the old key.
pub fn rotate_tenant(
    conn: &mut DbConn,
    master: &MasterKey,
    code: MunicipalityCode,
) -> Result<(u32, usize), RotationError> {
    // What finished imports left is settled first: rows not yet visible
    // are removed, attributes waiting beside residents move into their
    // rows, so that every row the rotation re-seals is a row readers see.
    let current = Partition::open(conn, master, code)?;
    crate::flows::import_settle::settle(conn, &current, &|_| Ok::<_, RotationError>(()))?;
    crate::db::write_transaction(conn, |conn| {
        // A running import writes with the keys it opened: not now.
        let busy = current.read(conn, |scope, conn| {
            crate::db::models::import_jobs::ImportJobRow::count_unfinished(scope, conn)
        })?;
        if busy > 0 {
            return Err(RotationError::ImportRunning(code));
        }
        drop(current);
        let tenant = TenantRow::find(conn, code.as_str())?.ok_or(TenancyError::NotATenant(code))?;
        let new_version = tenant.active_key_version as u32 + 1;
        let fresh = TenantKeyMaterial::generate(new_version);
        insert_keys(conn, master, code, &fresh)?;
        let mut all = unwrap_all(
            master,
            code,
            &TenantKeyRow::for_municipality(conn, code.as_str())?,
        )?;
        all.retain(|k| k.version <= new_version);
        let rotating = Partition::from_keys(code, &all, new_version)?;
        let resealed = rotating.run(conn, |scope, conn| {
            let n = residents::reseal_all(scope, conn)?;
            reseal_events(scope, conn)?;
            Ok::<_, RotationError>(n)
        })?;
        TenantRow::set_active_version(conn, code.as_str(), new_version as i32)?;
        TenantKeyRow::destroy(conn, code.as_str(), Some(new_version as i32))?;
        Ok((new_version, resealed))
    })
}

/// Re-seals the sealed columns of the two event tables (a resident's
/// history, the reasons given for dose changes) under the active key, so
/// that destroying the old key loses nothing.
fn reseal_events(
    scope: &crate::tenancy::Scope<'_>,
    conn: &mut DbConn,
) -> Result<(), RotationError> {
    use crate::crypto::AadContext;
    use crate::db::models::dose_events::DoseEventRow;
    use crate::db::models::resident_events::ResidentEventRow;
    type Page = fn(
        &crate::tenancy::Scope<'_>,
        &mut DbConn,
        &str,
        i64,
    ) -> Result<Vec<(String, Vec<u8>)>, crate::db::DbError>;
    type Save =
        fn(&crate::tenancy::Scope<'_>, &mut DbConn, &str, &[u8]) -> Result<(), crate::db::DbError>;
    let tables: [(&'static str, &'static str, Page, Save); 2] = [
        (
            "resident_events",
            "detail",
            ResidentEventRow::page_sealed,
            ResidentEventRow::set_sealed,
        ),
        (
            "dose_events",
            "reason",
            DoseEventRow::page_sealed,
            DoseEventRow::set_sealed,
        ),
    ];
    for (table, column, page, save) in tables {
        let mut after = String::new();
        loop {
            let rows = page(scope, conn, &after, 500)?;
            let Some((last, _)) = rows.last() else { break };
            after = last.clone();
            for (id, sealed) in rows {
                let ctx = AadContext {
                    table,
                    column,
                    row_id: &id,
                };
                let clear = scope.open(ctx, &sealed)?;
                save(scope, conn, &id, &scope.seal(ctx, &clear))?;
            }
        }
    }
    Ok(())
}

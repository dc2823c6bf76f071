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
                TenancyError::Db(DbError::Stored(format!(
                    "tenant_keys holds a municipality code that is not one: {}",
                    row.municipality_code
                )))
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

/// What a municipality's key rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantRotation {
    /// The version now sealing and indexing (the only one left).
    pub version: u32,
    /// Residents sealed and indexed again.
    pub residents: usize,
    /// Other sealed cells (history, reasons, certificates) sealed again.
    pub cells: usize,
}

/// Rows read and re-sealed per transaction: each holds SQLite's write lock
/// for a few milliseconds only.
const RESEAL_PAGE: i64 = 500;

/// Gives a municipality a new data key and index key, seals its rows again
/// with them, and destroys the old versions, while the municipality and
/// every other go on working:
///
/// 1. one short transaction adds the new version and makes it the active
///    one: from then on every write seals and indexes with it, and every
///    lookup tries the index of each version held ([`Scope::my_number_indexes`]);
/// 2. the rows are read in pages without a lock, sealed again, and written
///    back in one short transaction per page, each row only if it has not
///    changed since it was read;
/// 3. once no request can still hold the keys as they were before step 1
///    (`grace` after it: a request opens the keys when it begins), a second
///    pass seals again what such requests wrote meanwhile;
/// 4. one short transaction destroys the old versions.
///
/// A rotation stopped at any point leaves every row readable: the old
/// versions are destroyed last. Running it again finishes it.
///
/// [`Scope::my_number_indexes`]: crate::tenancy::Scope::my_number_indexes
pub fn rotate_tenant(
    conn: &mut DbConn,
    master: &MasterKey,
    code: MunicipalityCode,
    grace: std::time::Duration,
) -> Result<TenantRotation, RotationError> {
    let version = begin_rotation(conn, master, code)?;
    let began = std::time::Instant::now();
    let (mut residents, mut cells) = reseal_pass(conn, master, code)?;
    if let Some(rest) = grace.checked_sub(began.elapsed()) {
        std::thread::sleep(rest);
    }
    let (r, c) = reseal_pass(conn, master, code)?;
    residents += r;
    cells += c;
    finish_rotation(conn, code, version)?;
    Ok(TenantRotation {
        version,
        residents,
        cells,
    })
}

/// Step 1 of [`rotate_tenant`]: the new key version, active. A rotation
/// already begun (more than one version held) goes on with its version.
pub fn begin_rotation(
    conn: &mut DbConn,
    master: &MasterKey,
    code: MunicipalityCode,
) -> Result<u32, RotationError> {
    // What finished imports left is settled first: rows not yet visible
    // are removed, attributes waiting beside residents move into their
    // rows, so that every row the rotation re-seals is a row readers see.
    let current = Partition::open(conn, master, code)?;
    crate::flows::import_settle::settle(conn, &current, &|_| Ok::<_, RotationError>(()))?;
    current.run(conn, |_scope, conn| {
        // A running import writes with the keys it opened, and looks
        // residents up by the active index only: not now. (An import
        // asked for while the rotation runs is refused the same way.)
        if crate::db::models::import_jobs::ImportJobRow::count_unfinished(conn)? > 0 {
            return Err(RotationError::ImportRunning(code));
        }
        let tenant = TenantRow::find(conn, code.as_str())?.ok_or(TenancyError::NotATenant(code))?;
        let active = tenant.active_key_version as u32;
        if TenantKeyRow::for_municipality(conn, code.as_str())?.len() > 1 {
            return Ok(active);
        }
        let fresh = TenantKeyMaterial::generate(active + 1);
        insert_keys(conn, master, code, &fresh)?;
        TenantRow::set_active_version(conn, code.as_str(), (active + 1) as i32)?;
        Ok(active + 1)
    })
}

/// Steps 2 and 3 of [`rotate_tenant`]: every row still sealed with an
/// older version, sealed again. Returns residents and other cells done.
pub fn reseal_pass(
    conn: &mut DbConn,
    master: &MasterKey,
    code: MunicipalityCode,
) -> Result<(usize, usize), RotationError> {
    use crate::crypto::AadContext;
    use crate::db::models::residents::ResidentRow;
    use crate::db::models::sealed_cells::SEALED_COLUMNS;
    let partition = Partition::open(conn, master, code)?;
    let residents = reseal_pages(
        conn,
        &partition,
        |scope, conn, after| {
            let page = ResidentRow::page_of_municipality(scope, conn, after, RESEAL_PAGE)?;
            let mut fresh = Vec::new();
            for row in &page {
                if let Some(new) = residents::resealed(scope, row)? {
                    fresh.push((new, row.addressee_number_sealed.clone()));
                }
            }
            Ok((page.last().map(|r| r.id.clone()), fresh))
        },
        |scope, conn, (row, was)| Ok(row.replace_sealed(scope, conn, was)?),
    )?;
    let mut cells = 0;
    for column in &SEALED_COLUMNS {
        cells += reseal_pages(
            conn,
            &partition,
            |scope, conn, after| {
                let page = column.page(scope, conn, after, RESEAL_PAGE)?;
                let last = page.last().map(|(id, _)| id.clone());
                let mut fresh = Vec::new();
                for (id, sealed) in page {
                    if scope.needs_reseal(&sealed) {
                        let ctx = AadContext {
                            table: column.table,
                            column: column.sealed_as,
                            row_id: &id,
                        };
                        let new = scope.seal(ctx, &scope.open(ctx, &sealed)?);
                        fresh.push((id, sealed, new));
                    }
                }
                Ok((last, fresh))
            },
            |scope, conn, (id, was, new)| Ok(column.replace(scope, conn, id, was, new)?),
        )?;
    }
    Ok((residents, cells))
}

/// Pages of one table: each read (and sealed again, by `read`, which
/// returns the page's last id and what changed) in a reading transaction,
/// then written back (by `write`, which says whether the row was still as
/// read) in one short writing transaction. Returns the rows written.
fn reseal_pages<T>(
    conn: &mut DbConn,
    partition: &Partition,
    mut read: impl FnMut(
        &crate::tenancy::Scope<'_>,
        &mut crate::db::TenantConn<'_>,
        &str,
    ) -> Result<(Option<String>, Vec<T>), RotationError>,
    write: impl Fn(
        &crate::tenancy::Scope<'_>,
        &mut crate::db::TenantConn<'_>,
        &T,
    ) -> Result<bool, RotationError>,
) -> Result<usize, RotationError> {
    let mut done = 0;
    let mut after = String::new();
    loop {
        let (last, fresh) = partition.read(conn, |scope, conn| read(scope, conn, &after))?;
        let Some(last) = last else { break };
        after = last;
        if !fresh.is_empty() {
            done += partition.run(conn, |scope, conn| {
                let mut n = 0;
                for item in &fresh {
                    n += usize::from(write(scope, conn, item)?);
                }
                Ok::<_, RotationError>(n)
            })?;
        }
    }
    Ok(done)
}

/// Step 4 of [`rotate_tenant`]: the versions older than `version`
/// destroyed.
pub fn finish_rotation(
    conn: &mut DbConn,
    code: MunicipalityCode,
    version: u32,
) -> Result<(), RotationError> {
    crate::db::write_transaction(conn, |conn| {
        TenantKeyRow::destroy(conn, code.as_str(), Some(version as i32))?;
        Ok::<_, RotationError>(())
    })
}

//! Tenants: enabling a municipality creates its keys; erasing destroys them.

use crate::clock::now;
use crate::crypto::{MasterKey, TenantKeyMaterial};
use crate::db::models::accounts::{AccountRow, SessionRow};
use crate::db::models::tenants::{ACTIVE, TenantKeyRow, TenantRow};
use crate::db::{self, DbConn, DbError, schema};
use crate::domain::{Municipality, MunicipalityCode, Registry};

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("{0} is a prefecture; only municipalities and wards hold residents")]
    NotAMunicipality(MunicipalityCode),
    #[error("{0} is not a municipality code in use")]
    Unknown(MunicipalityCode),
    #[error("municipality {0} is already enabled")]
    AlreadyEnabled(MunicipalityCode),
    #[error("municipality {0} is not enabled")]
    NotEnabled(MunicipalityCode),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl db::DbCause for TenantError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            TenantError::Db(e) => Some(e),
            _ => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(TenantError);

fn registered(code: MunicipalityCode) -> Result<&'static Municipality, TenantError> {
    let m = Registry::global()
        .get(&code)
        .ok_or(TenantError::Unknown(code))?;
    if !m.can_be_tenant() {
        return Err(TenantError::NotAMunicipality(code));
    }
    Ok(m)
}

/// Makes a municipality a tenant with a fresh data key and index key. An
/// erased municipality can be enabled again; it starts empty.
pub fn enable(
    conn: &mut DbConn,
    master: &MasterKey,
    code: MunicipalityCode,
) -> Result<&'static Municipality, TenantError> {
    let m = registered(code)?;
    db::write_transaction(conn, |conn| {
        let existing = TenantRow::find(conn, code.as_str())?;
        let version = match &existing {
            Some(t) if t.status == ACTIVE => return Err(TenantError::AlreadyEnabled(code)),
            Some(t) => t.active_key_version + 1,
            None => 1,
        };
        let at = now();
        match existing {
            Some(_) => TenantRow::reactivate(conn, code.as_str(), version, at)?,
            None => TenantRow {
                municipality_code: code.to_string(),
                status: ACTIVE.into(),
                active_key_version: version,
                enabled_at: at,
                erased_at: None,
                require_totp: false,
                certificate_channels: String::new(),
            }
            .insert(conn)?,
        }
        insert_keys(
            conn,
            master,
            code,
            &TenantKeyMaterial::generate(version as u32),
        )?;
        // The municipality's own chain begins here: an active municipality
        // without one had it deleted (`audit::verify` says so).
        crate::audit::append_later(
            conn,
            &crate::audit::Actor::default(),
            crate::audit::Entry::done(
                code.as_str(),
                "municipality.enable",
                None,
                Some(format!("key_version={version}")),
            ),
        )?;
        Ok(m)
    })
}

pub(crate) fn insert_keys(
    conn: &mut DbConn,
    master: &MasterKey,
    code: MunicipalityCode,
    keys: &TenantKeyMaterial,
) -> Result<(), DbError> {
    let w = keys.wrap(master, code);
    TenantKeyRow {
        municipality_code: code.to_string(),
        version: w.version as i32,
        wrapped_data_key: w.wrapped_data_key,
        wrapped_index_key: w.wrapped_index_key,
        master_key_id: w.master_key_id,
        created_at: now(),
    }
    .insert(conn)
}

/// Erases a municipality: its keys are destroyed first (so even a copy of
/// the rows taken before this moment no longer opens with this database's
/// keys), then its rows are deleted. The tenant row stays, marked erased, as
/// the record that it happened.
pub fn erase(conn: &mut DbConn, code: MunicipalityCode) -> Result<usize, TenantError> {
    db::write_transaction(conn, |conn| {
        match TenantRow::find(conn, code.as_str())? {
            Some(t) if t.status == ACTIVE => {}
            _ => return Err(TenantError::NotEnabled(code)),
        }
        TenantKeyRow::destroy(conn, code.as_str(), None)?;
        db::set_transaction_municipality(conn, code.as_str())?;
        let mut deleted = 0;
        for table in schema::TENANT_TABLES {
            deleted += db::delete_tenant_rows(conn, table, code.as_str())?;
        }
        crate::db::models::job_leases::JobLeaseRow::delete_of_municipality(conn, code.as_str())?;
        crate::db::models::dose_events::QueueMoves::delete_of_municipality(conn, code.as_str())?;
        // Its people can no longer sign in, and anyone signed in is out.
        for account in AccountRow::of_municipality(conn, code.as_str())? {
            AccountRow::disable(conn, &account.id, now())?;
            SessionRow::delete_for_account(conn, &account.id)?;
        }
        TenantRow::mark_erased(conn, code.as_str(), now())?;
        Ok(deleted)
    })
}

/// Saves one of a municipality's settings (`work`) with its line in the
/// municipality's log, in one transaction.
pub fn save_setting(
    conn: &mut DbConn,
    key: &crate::audit::AuditKey,
    actor: &crate::audit::Actor,
    code: MunicipalityCode,
    (action, detail): (&str, String),
    work: impl FnOnce(&mut DbConn) -> Result<(), DbError>,
) -> Result<(), DbError> {
    db::write_transaction(conn, |conn| {
        work(conn)?;
        crate::audit::append(
            conn,
            key,
            actor,
            crate::audit::Entry::done(code.as_str(), action, None, Some(detail)),
        )
    })
}

/// Turns the second-factor requirement of a municipality's staff on or off;
/// logged in its chain.
pub fn set_require_totp(
    conn: &mut DbConn,
    key: &crate::audit::AuditKey,
    actor: &crate::audit::Actor,
    code: MunicipalityCode,
    on: bool,
) -> Result<(), DbError> {
    let line = ("tenant.require_totp", format!("on={on}"));
    save_setting(conn, key, actor, code, line, |conn| {
        TenantRow::set_require_totp(conn, code.as_str(), on)?;
        Ok(())
    })
}

/// What a municipality served here has chosen: its staff's second factor
/// and the certificate channels it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub require_totp: bool,
    pub channels: Vec<crate::flows::certificates::Channel>,
}

/// The settings of a municipality served here; `None` when it is not (never
/// enabled, or erased).
pub fn served(conn: &mut DbConn, code: MunicipalityCode) -> Result<Option<Settings>, DbError> {
    Ok(TenantRow::find(conn, code.as_str())?
        .filter(|t| t.status == ACTIVE)
        .map(|t| Settings {
            require_totp: t.require_totp,
            channels: crate::flows::certificates::channels_enabled(&t.certificate_channels),
        }))
}

/// The municipalities served here, in code order, with their registry
/// entries.
pub fn served_all(conn: &mut DbConn) -> Result<Vec<&'static Municipality>, DbError> {
    let reg = Registry::global();
    Ok(TenantRow::active(conn)?
        .into_iter()
        .filter_map(|t| reg.get(&MunicipalityCode::parse(&t.municipality_code).ok()?))
        .collect())
}

/// Enabled tenants with their registry entries (for `vrs municipality list`).
pub fn list(
    conn: &mut DbConn,
) -> Result<Vec<(TenantRow, Option<&'static Municipality>)>, TenantError> {
    Ok(TenantRow::all(conn)?
        .into_iter()
        .map(|t| {
            let m = MunicipalityCode::parse(&t.municipality_code)
                .ok()
                .and_then(|c| Registry::global().get(&c));
            (t, m)
        })
        .collect())
}

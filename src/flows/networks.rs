//! LG-WAN networks: each municipality declares the networks its terminals
//! use; individual numbers are shown to and accepted from those only.

use crate::audit::{self, Actor, AuditKey, Entry};
use crate::clock::now;
use crate::db::models::networks::NetworkRow;
use crate::db::{DbConn, DbError};
use crate::domain::{MunicipalityCode, Network};
use std::net::IpAddr;

pub fn list(conn: &mut DbConn, code: MunicipalityCode) -> Result<Vec<Declared>, DbError> {
    Ok(NetworkRow::of_municipality(conn, code.as_str())?
        .into_iter()
        .map(|n| Declared {
            cidr: n.cidr,
            label: n.label,
        })
        .collect())
}

/// A network the municipality declared as its LG-WAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub cidr: String,
    pub label: String,
}

/// Why an account may not handle individual numbers where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberRefusal {
    /// Not staff of the municipality holding the individual-number
    /// permission (and what else the page needs).
    Role,
    /// Not on a terminal inside one of the municipality's LG-WAN networks.
    Network,
    /// The municipality requires a second factor the account has not set up.
    SecondFactor,
}

impl NumberRefusal {
    /// As the operation log records it.
    pub fn code(self) -> &'static str {
        match self {
            NumberRefusal::Role => "role",
            NumberRefusal::Network => "network",
            NumberRefusal::SecondFactor => "totp",
        }
    }
}

/// Whether a terminal at `addr` may handle the municipality's individual
/// numbers: inside one of its declared LG-WAN networks, and with a second
/// factor set up (`has_second_factor`) where the municipality requires one.
/// The account's role and permissions are the caller's to check first.
pub fn terminal_check(
    conn: &mut DbConn,
    code: MunicipalityCode,
    addr: Option<IpAddr>,
    has_second_factor: bool,
) -> Result<Result<(), NumberRefusal>, DbError> {
    let inside = match addr {
        Some(addr) => allows(conn, code, addr)?,
        None => false,
    };
    if !inside {
        return Ok(Err(NumberRefusal::Network));
    }
    let required = crate::db::models::tenants::TenantRow::find(conn, code.as_str())?
        .is_some_and(|t| t.require_totp);
    if required && !has_second_factor {
        return Ok(Err(NumberRefusal::SecondFactor));
    }
    Ok(Ok(()))
}

/// Whether `addr` is inside one of the municipality's declared networks.
/// With none declared, nothing is inside.
pub fn allows(conn: &mut DbConn, code: MunicipalityCode, addr: IpAddr) -> Result<bool, DbError> {
    Ok(list(conn, code)?
        .iter()
        .filter_map(|n| Network::parse(&n.cidr).ok())
        .any(|n| n.contains(&addr)))
}

pub fn add(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    network: Network,
    label: &str,
) -> Result<bool, DbError> {
    crate::db::write_transaction(conn, |conn| {
        let cidr = network.to_string();
        if list(conn, code)?.iter().any(|n| n.cidr == cidr) {
            return Ok(false);
        }
        NetworkRow {
            municipality_code: code.to_string(),
            cidr: cidr.clone(),
            label: label.trim().chars().take(100).collect(),
            created_by: actor.account_id.clone(),
            created_at: now(),
        }
        .insert(conn)?;
        audit::append(
            conn,
            key,
            actor,
            Entry::done(
                code.as_str(),
                "network.add",
                Some(format!("network:{cidr}")),
                None,
            ),
        )?;
        Ok(true)
    })
}

pub fn remove(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    network: Network,
) -> Result<bool, DbError> {
    crate::db::write_transaction(conn, |conn| {
        let cidr = network.to_string();
        let n = NetworkRow::delete(conn, code.as_str(), &cidr)?;
        if n > 0 {
            audit::append(
                conn,
                key,
                actor,
                Entry::done(
                    code.as_str(),
                    "network.remove",
                    Some(format!("network:{cidr}")),
                    None,
                ),
            )?;
        }
        Ok(n > 0)
    })
}

//! LG-WAN networks: each municipality declares the networks its terminals
//! use; individual numbers are shown to and accepted from those only.

use super::now;
use crate::audit::{self, Actor, AuditKey, Entry};
use crate::db::models::networks::NetworkRow;
use crate::db::{DbConn, DbError};
use crate::domain::{MunicipalityCode, Network};
use std::net::IpAddr;

pub fn list(conn: &mut DbConn, code: MunicipalityCode) -> Result<Vec<NetworkRow>, DbError> {
    NetworkRow::of_municipality(conn, code.as_str())
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
            Entry {
                chain: code.as_str(),
                action: "network.add",
                target: Some(format!("network:{cidr}")),
                outcome: "ok",
                detail: None,
            },
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
                Entry {
                    chain: code.as_str(),
                    action: "network.remove",
                    target: Some(format!("network:{cidr}")),
                    outcome: "ok",
                    detail: None,
                },
            )?;
        }
        Ok(n > 0)
    })
}

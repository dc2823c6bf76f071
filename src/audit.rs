//! The operation log: who, when, from where, what, on which records (by
//! internal id), and the outcome — never the personal data itself.
//!
//! Each municipality has its own chain (the platform has one too). A line's
//! MAC is HMAC-SHA-256, under a key wrapped by the master key, over the
//! line's fields and the previous line's MAC: changing, deleting or
//! reordering a line breaks every MAC after it, and someone with write access
//! to the database alone cannot forge a new chain.

use crate::crypto::MasterKey;
use crate::db::models::accounts::PlatformSecretRow;
use crate::db::models::audit_log::AuditRow;
use crate::db::{DbConn, DbError};
use crate::flows::now;
use diesel::Connection;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const PLATFORM_CHAIN: &str = "platform";
const SECRET_NAME: &str = "audit-mac-key";
const GENESIS: &str = "genesis";

fn secret_label() -> String {
    format!("vrs/platform-secret/v1:{SECRET_NAME}")
}

/// The unwrapped MAC key, held by the application state.
#[derive(Clone)]
pub struct AuditKey(zeroize::Zeroizing<Vec<u8>>);

impl AuditKey {
    /// Loads the key, creating it on first start.
    pub fn load_or_create(conn: &mut DbConn, master: &MasterKey) -> Result<AuditKey, DbError> {
        if let Some(row) = PlatformSecretRow::find(conn, SECRET_NAME)? {
            let key = master
                .unwrap_bytes(&secret_label(), &row.wrapped_value)
                .ok_or_else(|| {
                    DbError::Migration(
                        "the operation log key does not open with this master key".into(),
                    )
                })?;
            return Ok(AuditKey(key));
        }
        let key = crate::crypto::random_key();
        PlatformSecretRow {
            name: SECRET_NAME.into(),
            wrapped_value: master.wrap(&secret_label(), key.as_ref()),
            master_key_id: master.key_id(),
            created_at: now(),
        }
        .insert(conn)?;
        Ok(AuditKey(zeroize::Zeroizing::new(key.to_vec())))
    }

    /// Re-wraps under a new master key (master-key rotation).
    pub fn rewrap_all(
        conn: &mut DbConn,
        old: &MasterKey,
        new: &MasterKey,
    ) -> Result<usize, DbError> {
        let mut n = 0;
        for row in PlatformSecretRow::all(conn)? {
            let label = format!("vrs/platform-secret/v1:{}", row.name);
            let value = old
                .unwrap_bytes(&label, &row.wrapped_value)
                .ok_or_else(|| {
                    DbError::Migration(format!("platform secret {} does not open", row.name))
                })?;
            PlatformSecretRow::rewrap(conn, &row.name, &new.wrap(&label, &value), &new.key_id())?;
            n += 1;
        }
        Ok(n)
    }

    fn mac(&self, row: &AuditRow) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        for part in [
            row.chain.clone(),
            row.seq.to_string(),
            row.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            opt(&row.account_id),
            opt(&row.login_id),
            opt(&row.client_addr),
            row.action.clone(),
            opt(&row.target),
            row.outcome.clone(),
            opt(&row.detail),
            row.prev_mac.clone(),
        ] {
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part.as_bytes());
        }
        hex::encode(m.finalize().into_bytes())
    }
}

/// Who did it and from where.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub account_id: Option<String>,
    pub login_id: Option<String>,
    pub client_addr: Option<String>,
}

impl Actor {
    /// A logged-in account acting from an address.
    pub fn account(id: &str, login_id: &str, addr: &str) -> Actor {
        Actor {
            account_id: Some(id.to_string()),
            login_id: Some(login_id.to_string()),
            client_addr: Some(addr.to_string()),
        }
    }
}

/// One operation to record. `target` names records by internal id only.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub chain: &'a str,
    pub action: &'a str,
    pub target: Option<String>,
    pub outcome: &'a str,
    pub detail: Option<String>,
}

/// Appends a line to its chain. Call inside the transaction of the operation
/// it records, so the two commit together; on SQLite the write lock, on
/// PostgreSQL a lock on the chain held to the end of the transaction, keeps
/// two appends from taking the same seq (the primary key would refuse the
/// second anyway).
pub fn append(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    e: Entry<'_>,
) -> Result<(), DbError> {
    let (seq, prev_mac) = match crate::db::chain_head(conn, e.chain)? {
        Some((seq, mac)) => (seq + 1, mac),
        None => (1, GENESIS.to_string()),
    };
    let mut row = AuditRow {
        chain: e.chain.to_string(),
        seq,
        at: now(),
        account_id: actor.account_id.clone(),
        // A login name is typed by whoever tries to log in: one shaped like
        // an individual number is masked like any other free text.
        login_id: actor
            .login_id
            .as_deref()
            .map(crate::domain::mask_number_like),
        client_addr: actor.client_addr.clone(),
        action: e.action.to_string(),
        target: e.target.map(|t| crate::domain::mask_number_like(&t)),
        outcome: e.outcome.to_string(),
        detail: e.detail.map(|d| crate::domain::mask_number_like(&d)),
        prev_mac,
        mac: String::new(),
    };
    row.mac = key.mac(&row);
    row.insert(conn)
}

/// Appends in a transaction of its own, retrying once if another writer took
/// the same sequence number first.
pub fn record(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    e: Entry<'_>,
) -> Result<(), DbError> {
    let attempt = |conn: &mut DbConn| {
        conn.transaction(|c| {
            append(c, key, actor, e.clone()).map_err(|_| diesel::result::Error::RollbackTransaction)
        })
    };
    attempt(conn)
        .or_else(|_| attempt(conn))
        .map_err(DbError::Query)
}

/// What verification found in one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub chain: String,
    pub lines: i64,
    /// The first line whose MAC or link does not hold, if any.
    pub broken_at: Option<i64>,
}

/// Walks every chain (or one) and checks every link.
pub fn verify(
    conn: &mut DbConn,
    key: &AuditKey,
    only: Option<&str>,
) -> Result<Vec<ChainReport>, DbError> {
    let chains = match only {
        Some(c) => vec![c.to_string()],
        None => AuditRow::chains(conn)?,
    };
    let mut out = Vec::new();
    for chain in chains {
        let mut report = ChainReport {
            chain: chain.clone(),
            lines: 0,
            broken_at: None,
        };
        let mut prev_mac = GENESIS.to_string();
        let mut expected_seq = 1;
        'pages: loop {
            let page = AuditRow::page_of_chain(conn, &chain, expected_seq - 1, 1000)?;
            if page.is_empty() {
                break;
            }
            for row in page {
                report.lines += 1;
                if row.seq != expected_seq || row.prev_mac != prev_mac || key.mac(&row) != row.mac {
                    report.broken_at = Some(expected_seq.min(row.seq));
                    break 'pages;
                }
                prev_mac = row.mac;
                expected_seq += 1;
            }
        }
        out.push(report);
    }
    Ok(out)
}

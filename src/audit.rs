//! The operation log: who, when, from where, what, on which records (by
//! internal id), and the outcome — never the personal data itself.
//!
//! Each municipality has its own chain (the platform has one too). A line's
//! MAC is HMAC-SHA-256, under a key wrapped by the master key, over the
//! line's fields and the previous line's MAC: changing, deleting or
//! reordering a line breaks every MAC after it, and someone with write access
//! to the database alone cannot forge a new chain.

use crate::clock::now;
use crate::crypto::MasterKey;
use crate::db::models::accounts::PlatformSecretRow;
use crate::db::models::audit_log::{AuditRow, PendingRow};
use crate::db::{DbConn, DbError};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub mod actions;
pub mod witness;

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
                    DbError::Key("the operation log key does not open with this master key".into())
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
                    DbError::Key(format!("platform secret {} does not open", row.name))
                })?;
            PlatformSecretRow::rewrap(conn, &row.name, &new.wrap(&label, &value), &new.key_id())?;
            n += 1;
        }
        Ok(n)
    }

    /// The line as the next in its chain after `head`.
    fn chained(&self, chain: &str, head: Option<&(i64, String)>, l: Line) -> AuditRow {
        let (seq, prev_mac) = match head {
            Some((seq, mac)) => (seq + 1, mac.clone()),
            None => (1, GENESIS.to_string()),
        };
        let mut row = AuditRow {
            chain: chain.to_string(),
            seq,
            at: l.at,
            account_id: l.account_id,
            login_id: l.login_id,
            client_addr: l.client_addr,
            action: l.action,
            target: l.target,
            outcome: l.outcome,
            detail: l.detail,
            prev_mac,
            mac: String::new(),
        };
        row.mac = self.mac(&row);
        row
    }

    fn mac(&self, row: &AuditRow) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        self.mac_of(&[
            &row.chain,
            &row.seq.to_string(),
            &row.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            &opt(&row.account_id),
            &opt(&row.login_id),
            &opt(&row.client_addr),
            &row.action,
            &opt(&row.target),
            &row.outcome,
            &opt(&row.detail),
            &row.prev_mac,
        ])
    }

    /// HMAC-SHA-256 over the parts, each preceded by its length.
    fn mac_of(&self, parts: &[&str]) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        for part in parts {
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

impl<'a> Entry<'a> {
    /// A change that was made (outcome `ok`).
    pub fn done(
        chain: &'a str,
        action: &'a str,
        target: Option<String>,
        detail: Option<String>,
    ) -> Entry<'a> {
        Entry {
            chain,
            action,
            target,
            outcome: "ok",
            detail,
        }
    }
}

/// A line of the log as it reads: who, when, what, with its MAC (which
/// an export carries so that the file can be checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub seq: i64,
    pub at: chrono::NaiveDateTime,
    pub login_id: Option<String>,
    pub client_addr: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub mac: String,
}

impl From<AuditRow> for Recorded {
    fn from(r: AuditRow) -> Recorded {
        Recorded {
            seq: r.seq,
            at: r.at,
            login_id: r.login_id,
            client_addr: r.client_addr,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            detail: r.detail,
            mac: r.mac,
        }
    }
}

/// The newest `limit` lines of a chain, newest first.
pub fn recent(conn: &mut DbConn, chain: &str, limit: i64) -> Result<Vec<Recorded>, DbError> {
    Ok(AuditRow::recent_of_chain(conn, chain, limit)?
        .into_iter()
        .map(Recorded::from)
        .collect())
}

/// Appends a line to its chain. Call inside the transaction of the operation
/// it records, so the two commit together; on SQLite the write lock, on
/// PostgreSQL a lock on the chain held to the end of the transaction, keeps
/// two appends from taking the same seq (the primary key would refuse the
/// second anyway). Lines waiting to be chained (`append_later`) are chained
/// first, so the chain keeps the order things happened in.
pub fn append(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    e: Entry<'_>,
) -> Result<(), DbError> {
    let head = crate::db::chain_head(conn, e.chain)?;
    let head = chain_waiting(conn, key, e.chain, head)?;
    key.chained(e.chain, head.as_ref(), line(actor, e))
        .insert(conn)
}

/// Writes a line in the current transaction, to be chained moments later
/// (by the server's log writer, or by the next `append` or reader of the
/// chain): for the busiest path, recording doses, which then neither waits
/// for its municipality's chain nor reads its head. The line commits or
/// rolls back with the operation, like one from `append`.
pub fn append_later(conn: &mut DbConn, actor: &Actor, e: Entry<'_>) -> Result<(), DbError> {
    waiting_line(actor, e).insert(conn)
}

/// The line `append_later` writes, for an insert that carries it along
/// (`DoseRow::insert_logged`).
pub fn waiting_line(actor: &Actor, e: Entry<'_>) -> PendingRow {
    let chain = e.chain.to_string();
    let l = line(actor, e);
    PendingRow {
        chain,
        id: crate::domain::new_record_id(),
        at: l.at,
        account_id: l.account_id,
        login_id: l.login_id,
        client_addr: l.client_addr,
        action: l.action,
        target: l.target,
        outcome: l.outcome,
        detail: l.detail,
    }
}

/// Chains the lines waiting in every chain, each chain in a transaction of
/// its own; says how many. The server runs it every moment; readers of the
/// log run it first, so they see every line.
pub fn flush(conn: &mut DbConn, key: &AuditKey) -> Result<usize, DbError> {
    let mut chained = 0;
    for chain in PendingRow::chains(conn)? {
        chained += flush_chain(conn, key, &chain)?;
    }
    Ok(chained)
}

/// Chains the lines waiting in one chain.
pub fn flush_chain(conn: &mut DbConn, key: &AuditKey, chain: &str) -> Result<usize, DbError> {
    crate::db::write_transaction(conn, |conn| {
        let head = crate::db::chain_head(conn, chain)?;
        let before = head.as_ref().map_or(0, |h| h.0);
        let after = chain_waiting(conn, key, chain, head)?;
        Ok(usize::try_from(after.map_or(0, |h| h.0) - before).unwrap_or(0))
    })
}

/// Lines chained in one statement at most.
const CHAIN_BATCH: i64 = 500;

/// Chains every line waiting in `chain` after `head`; the caller holds the
/// chain (`db::chain_head`). Returns the new head.
fn chain_waiting(
    conn: &mut DbConn,
    key: &AuditKey,
    chain: &str,
    mut head: Option<(i64, String)>,
) -> Result<Option<(i64, String)>, DbError> {
    loop {
        let waiting = PendingRow::oldest_of_chain(conn, chain, CHAIN_BATCH)?;
        if waiting.is_empty() {
            return Ok(head);
        }
        let mut rows = Vec::with_capacity(waiting.len());
        let mut ids = Vec::with_capacity(waiting.len());
        for p in waiting {
            ids.push(p.id);
            let row = key.chained(
                chain,
                head.as_ref(),
                Line {
                    at: p.at,
                    account_id: p.account_id,
                    login_id: p.login_id,
                    client_addr: p.client_addr,
                    action: p.action,
                    target: p.target,
                    outcome: p.outcome,
                    detail: p.detail,
                },
            );
            head = Some((row.seq, row.mac.clone()));
            rows.push(row);
        }
        AuditRow::insert_all(conn, &rows)?;
        PendingRow::delete(conn, chain, &ids)?;
        if (ids.len() as i64) < CHAIN_BATCH {
            return Ok(head);
        }
    }
}

/// What a line says, as stored: free text masked.
struct Line {
    at: chrono::NaiveDateTime,
    account_id: Option<String>,
    login_id: Option<String>,
    client_addr: Option<String>,
    action: String,
    target: Option<String>,
    outcome: String,
    detail: Option<String>,
}

fn line(actor: &Actor, e: Entry<'_>) -> Line {
    // The log page shows and filters actions from the list; one missing
    // from it would be a line no reviewer can find.
    debug_assert!(
        actions::is_known(e.action),
        "action {} is not in audit::actions",
        e.action
    );
    debug_assert!(
        actions::OUTCOMES.contains(&e.outcome),
        "outcome {} is not in audit::actions",
        e.outcome
    );
    Line {
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
    }
}

/// Appends in a transaction of its own. It is a writing transaction from
/// its first statement (SQLite: `BEGIN IMMEDIATE` in the process's write
/// turn), so no other writer can come between reading the chain's head and
/// appending after it, and a wait for another writer is a wait, not an
/// error.
pub fn record(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    e: Entry<'_>,
) -> Result<(), DbError> {
    crate::db::write_transaction(conn, |c| append(c, key, actor, e))
}

/// What verification found in one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub chain: String,
    pub lines: i64,
    /// The first line whose MAC or link does not hold, if any.
    pub broken_at: Option<i64>,
    /// The furthest line of the chain the witness saw, if it saw any.
    pub witnessed: Option<i64>,
    /// The furthest line the witness saw that the chain still holds as it
    /// was seen.
    pub confirmed: Option<i64>,
    /// The chain does not reach, as it was, the line the witness saw: its
    /// newest lines were cut (or the chain replaced).
    pub truncated: bool,
    /// An active municipality whose chain holds no line at all (enabling
    /// one writes its first).
    pub missing: bool,
}

impl ChainReport {
    pub fn intact(&self) -> bool {
        self.broken_at.is_none() && !self.truncated && !self.missing
    }

    /// The last line the chain vouches for: up to the first broken link,
    /// or all it holds.
    pub fn vouched(&self) -> i64 {
        self.broken_at.map_or(self.lines, |b| b - 1)
    }
}

/// Walks every chain (or one) and checks every link; with the heads a
/// witness saw (`witness::Witness`), also that no chain was cut short or
/// deleted, and that every active municipality has its chain.
pub fn verify(
    conn: &mut DbConn,
    key: &AuditKey,
    only: Option<&str>,
    witnessed: Option<&witness::Heads>,
) -> Result<Vec<ChainReport>, DbError> {
    // Lines still waiting to be chained are chained first: they are part
    // of the log as much as the rest.
    match only {
        Some(c) => flush_chain(conn, key, c)?,
        None => flush(conn, key)?,
    };
    let active: std::collections::HashSet<String> =
        crate::db::models::tenants::TenantRow::active(conn)?
            .into_iter()
            .map(|t| t.municipality_code)
            .collect();
    let chains: Vec<String> = match only {
        Some(c) => vec![c.to_string()],
        None => {
            let mut all: std::collections::BTreeSet<String> =
                AuditRow::chains(conn)?.into_iter().collect();
            all.extend(active.iter().cloned());
            all.extend(witnessed.into_iter().flat_map(|w| w.keys().cloned()));
            all.into_iter().collect()
        }
    };
    let mut out = Vec::new();
    for chain in chains {
        let seen: &[witness::Head] = witnessed
            .and_then(|w| w.get(&chain))
            .map_or(&[], Vec::as_slice);
        // The MACs witnessed at each line number, looked up as the walk
        // reaches it (a year of witness lines holds hundreds of thousands).
        let mut seen_at: std::collections::HashMap<i64, Vec<&str>> = Default::default();
        for h in seen {
            seen_at.entry(h.seq).or_default().push(&h.mac);
        }
        let mut report = ChainReport {
            chain: chain.clone(),
            lines: 0,
            broken_at: None,
            witnessed: seen.iter().map(|h| h.seq).max(),
            confirmed: None,
            truncated: false,
            missing: false,
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
                for mac in seen_at.get(&row.seq).into_iter().flatten() {
                    if *mac == row.mac {
                        report.confirmed = report.confirmed.max(Some(row.seq));
                    } else {
                        report.truncated = true;
                    }
                }
                prev_mac = row.mac;
                expected_seq += 1;
            }
        }
        // A broken link is reported as such; otherwise a head the witness
        // saw beyond what the chain holds, or different from it, means the
        // chain was cut (and perhaps grew again).
        report.truncated = report.broken_at.is_none()
            && (report.truncated || seen.iter().any(|h| h.seq > report.lines));
        report.missing = report.lines == 0 && active.contains(&chain);
        out.push(report);
    }
    Ok(out)
}

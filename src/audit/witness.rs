//! The operation log's witness: a file outside the database to which the
//! server appends, every minute, the head (length and last MAC) of each
//! chain that grew. The MACs inside the database prove that no line of a
//! chain was changed, removed or reordered — but someone who can write to
//! the database can still cut a chain's newest lines, or delete a chain,
//! and what is left verifies. The witness remembers how far each chain
//! reached; `audit verify` compares. Each witness line carries a MAC under
//! the log's key, so a line cannot be forged without the key either.
//! Operators keep the file where the database's users cannot write (see the
//! README): shipped to another host, or on append-only storage.

use super::{AuditKey, PLATFORM_CHAIN};
use crate::db::models::audit_log::AuditRow;
use crate::db::models::tenants::TenantRow;
use crate::db::{DbConn, DbError};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The first field of every witness line: its format.
const FORMAT: &str = "vrs-witness-1";

/// A chain's head: its last line's number and MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub mac: String,
}

/// The heads witnessed of each chain. Every one of them must still hold:
/// a chain cut and grown again past its old length is caught by the old
/// head, not by the newest.
pub type Heads = HashMap<String, Vec<Head>>;

/// What a witness file says: every head of each chain it recorded, and the
/// lines of the file that do not verify (numbered from 1).
#[derive(Debug, Default, Clone)]
pub struct Witnessed {
    pub heads: Heads,
    pub bad_lines: Vec<u64>,
}

impl Witnessed {
    /// A head the file records (the same one twice is harmless: each is
    /// checked against the chain by its line number).
    fn saw(&mut self, chain: &str, head: Head) {
        self.heads.entry(chain.to_string()).or_default().push(head);
    }

    /// The furthest head of each chain.
    fn last(&self, chain: &str) -> Option<&Head> {
        self.heads.get(chain)?.iter().max_by_key(|h| h.seq)
    }

    /// Every head of every file, together.
    pub fn merge(&mut self, other: Witnessed) {
        for (chain, heads) in other.heads {
            for h in heads {
                self.saw(&chain, h);
            }
        }
        self.bad_lines.extend(other.bad_lines);
    }
}

/// The witness file of a server, with the heads it has written (read from
/// the file when the server starts, so a restart forgets nothing).
pub struct Witness {
    path: PathBuf,
    seen: Mutex<Witnessed>,
}

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("the operation-log witness {path} cannot be written or read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Witness {
    /// The witness at `path`, with the last head it holds of each chain.
    pub fn open(path: &Path, key: &AuditKey) -> Result<Witness, WitnessError> {
        let all = read(path, key)?;
        let mut seen = Witnessed::default();
        for chain in all.heads.keys() {
            if let Some(h) = all.last(chain) {
                seen.saw(chain, h.clone());
            }
        }
        Ok(Witness {
            path: path.to_path_buf(),
            seen: Mutex::new(seen),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last head this server witnessed of each chain.
    pub fn heads(&self) -> Heads {
        self.seen
            .lock()
            .map(|s| s.heads.clone())
            .unwrap_or_default()
    }

    /// Appends the head of every chain that grew since it was last
    /// witnessed — of every chain, when the file is new or was moved away
    /// (rotated) — and makes it durable. Returns how many lines it wrote.
    pub fn record(&self, conn: &mut DbConn, key: &AuditKey) -> Result<usize, WitnessError> {
        let io = |source| WitnessError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| io(std::io::Error::other("witness lock poisoned")))?;
        let fresh = std::fs::metadata(&self.path).map_or(true, |m| m.len() == 0);
        let mut chains: Vec<String> = TenantRow::all(conn)?
            .into_iter()
            .map(|t| t.municipality_code)
            .collect();
        chains.push(PLATFORM_CHAIN.to_string());
        let at = crate::clock::now()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string();
        let mut out = String::new();
        let mut written = Vec::new();
        for chain in chains {
            let Some(last) = AuditRow::last_of_chain(conn, &chain)? else {
                continue;
            };
            let head = Head {
                seq: last.seq,
                mac: last.mac,
            };
            let last = seen.last(&chain).cloned();
            if !fresh && last.as_ref() == Some(&head) {
                continue;
            }
            // The head witnessed before must still be there as it was; if
            // not, it is kept (and reported by every verification) rather
            // than replaced by a head of what grew after the cut.
            if let Some(last) = &last
                && AuditRow::mac_at(conn, &chain, last.seq)?.as_deref() != Some(last.mac.as_str())
            {
                tracing::error!(
                    chain = %chain,
                    line = last.seq,
                    "the operation log no longer holds, as it was, a line its witness saw"
                );
                continue;
            }
            out.push_str(&line(key, &at, &chain, &head));
            written.push((chain, head));
        }
        if out.is_empty() {
            return Ok(0);
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(out.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        let n = written.len();
        for (chain, head) in written {
            seen.heads.insert(chain, vec![head]);
        }
        Ok(n)
    }
}

/// One witness line: format, time, chain, line number, MAC of that line,
/// and the witness line's own MAC over the rest.
fn line(key: &AuditKey, at: &str, chain: &str, head: &Head) -> String {
    let seq = head.seq.to_string();
    let mac = key.mac_of(&[FORMAT, at, chain, &seq, &head.mac]);
    format!("{FORMAT}\t{at}\t{chain}\t{seq}\t{}\t{mac}\n", head.mac)
}

/// Reads a witness file (none yet: nothing witnessed). A line that does
/// not parse or whose MAC does not hold is listed, never believed.
pub fn read(path: &Path, key: &AuditKey) -> Result<Witnessed, WitnessError> {
    let io = |source| WitnessError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Witnessed::default()),
        Err(e) => return Err(io(e)),
    };
    let mut w = Witnessed::default();
    for (i, text) in std::io::BufReader::new(file).lines().enumerate() {
        let text = text.map_err(io)?;
        if text.is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split('\t').collect();
        let head = match fields.as_slice() {
            [FORMAT, at, chain, seq, mac, line_mac]
                if key.mac_of(&[FORMAT, at, chain, seq, mac]) == *line_mac =>
            {
                seq.parse::<i64>().ok().map(|seq| {
                    (
                        chain.to_string(),
                        Head {
                            seq,
                            mac: mac.to_string(),
                        },
                    )
                })
            }
            _ => None,
        };
        match head {
            Some((chain, head)) => w.saw(&chain, head),
            None => w.bad_lines.push(i as u64 + 1),
        }
    }
    Ok(w)
}

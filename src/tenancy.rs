//! The partition: the only door to one municipality's rows and keys.
//!
//! `Partition::open` unwraps the municipality's keys with the master key;
//! `Partition::run` opens a transaction that names the municipality to the
//! database (row-level security on PostgreSQL) and hands the work a `Scope`.
//! Every finder of tenant rows takes a `Scope`, so a query without a
//! municipality cannot be written.

use crate::crypto::{AadContext, BlindIndexer, MasterKey, SealError, Sealer, TenantKeyMaterial};
use crate::db::models::tenants::{ACTIVE, TenantKeyRow, TenantRow};
use crate::db::{self, DbConn, DbError, TenantConn};
use crate::domain::{MunicipalityCode, MyNumber};

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("municipality {0} is not enabled (vrs municipality enable {0})")]
    NotATenant(MunicipalityCode),
    #[error("municipality {0} has been erased")]
    Erased(MunicipalityCode),
    #[error(
        "the master key ({given}) is not the one that wrapped municipality {code}'s keys \
         (expected key id {expected}); start with the right master key file or VRS_MASTER_KEY"
    )]
    WrongMasterKey {
        code: MunicipalityCode,
        expected: String,
        given: String,
    },
    #[error("municipality {0}'s keys are damaged and cannot be unwrapped")]
    DamagedKeys(MunicipalityCode),
    #[error("sealed data of municipality {0} does not open: {1}")]
    Seal(MunicipalityCode, SealError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl crate::db::DbCause for TenancyError {
    fn db_cause(&self) -> Option<&DbError> {
        match self {
            TenancyError::Db(e) => Some(e),
            _ => None,
        }
    }
}

crate::db::from_diesel_via_db_error!(TenancyError);

/// One municipality's open partition: its code and unwrapped keys.
pub struct Partition {
    code: MunicipalityCode,
    sealer: Sealer,
    /// The active version's index key first, then any older version still
    /// held: while a key rotation re-seals the rows, some carry indexes of
    /// the old key, and a lookup tries each.
    indexers: Vec<BlindIndexer>,
}

impl Partition {
    /// Loads and unwraps the municipality's keys. Every key version it still
    /// holds can open; the active one seals and indexes.
    pub fn open(
        conn: &mut DbConn,
        master: &MasterKey,
        code: MunicipalityCode,
    ) -> Result<Partition, TenancyError> {
        let (tenant, rows) =
            TenantRow::with_keys(conn, code.as_str())?.ok_or(TenancyError::NotATenant(code))?;
        Self::from_rows(master, code, &tenant, &rows)
    }

    /// Opens the partition from its rows read by the caller (with whatever
    /// else the same query read).
    pub fn from_rows(
        master: &MasterKey,
        code: MunicipalityCode,
        tenant: &TenantRow,
        rows: &[TenantKeyRow],
    ) -> Result<Partition, TenancyError> {
        if tenant.status != ACTIVE {
            return Err(TenancyError::Erased(code));
        }
        let keys = unwrap_all(master, code, rows)?;
        Self::from_keys(code, &keys, tenant.active_key_version as u32)
    }

    pub(crate) fn from_keys(
        code: MunicipalityCode,
        keys: &[TenantKeyMaterial],
        active: u32,
    ) -> Result<Partition, TenancyError> {
        let active_keys = keys
            .iter()
            .find(|k| k.version == active)
            .ok_or(TenancyError::DamagedKeys(code))?;
        let refs: Vec<(u32, &[u8; 32])> = keys.iter().map(|k| (k.version, &*k.data_key)).collect();
        let mut indexers = vec![BlindIndexer::new(&active_keys.index_key)];
        let mut older: Vec<&TenantKeyMaterial> =
            keys.iter().filter(|k| k.version != active).collect();
        older.sort_by_key(|k| std::cmp::Reverse(k.version));
        indexers.extend(older.into_iter().map(|k| BlindIndexer::new(&k.index_key)));
        Ok(Partition {
            code,
            sealer: Sealer::new(code, &refs, active),
            indexers,
        })
    }

    pub fn code(&self) -> MunicipalityCode {
        self.code
    }

    /// Whether the partition holds more than one key version: a key
    /// rotation has begun and not yet finished.
    pub fn rotating(&self) -> bool {
        self.indexers.len() > 1
    }

    /// A scope for sealing and indexing only, on a thread that holds no
    /// transaction (the import pipeline seals while another thread writes).
    /// It reaches no table: the row functions take the scoped connection
    /// that only `run` and `read` hand out.
    pub fn sealing_scope(&self) -> Scope<'_> {
        Scope {
            partition: self,
            seen: Seen::Published,
        }
    }

    /// Runs `work` in one writing transaction scoped to this municipality
    /// (see `db::scoped_transaction`), with the scoped connection
    /// (`db::TenantConn`) that is the only way to its tables.
    pub fn run<T, E>(
        &self,
        conn: &mut DbConn,
        work: impl FnOnce(&Scope<'_>, &mut TenantConn<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<diesel::result::Error> + From<DbError>,
    {
        db::scoped_transaction(conn, self.code, true, |conn| {
            work(
                &Scope {
                    partition: self,
                    seen: Seen::Published,
                },
                conn,
            )
        })
    }

    /// Like `run`, for work that only reads (a long export): on SQLite it
    /// reads from one snapshot without holding the write lock.
    pub fn read<T, E>(
        &self,
        conn: &mut DbConn,
        work: impl FnOnce(&Scope<'_>, &mut TenantConn<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<diesel::result::Error> + From<DbError>,
    {
        db::scoped_transaction(conn, self.code, false, |conn| {
            work(
                &Scope {
                    partition: self,
                    seen: Seen::Published,
                },
                conn,
            )
        })
    }
}

pub(crate) fn unwrap_all(
    master: &MasterKey,
    code: MunicipalityCode,
    rows: &[TenantKeyRow],
) -> Result<Vec<TenantKeyMaterial>, TenancyError> {
    rows.iter()
        .map(|row| {
            if row.master_key_id != master.key_id() {
                return Err(TenancyError::WrongMasterKey {
                    code,
                    expected: row.master_key_id.clone(),
                    given: master.source.to_string(),
                });
            }
            to_wrapped(row)
                .unwrap(master, code)
                .ok_or(TenancyError::DamagedKeys(code))
        })
        .collect()
}

pub(crate) fn to_wrapped(row: &TenantKeyRow) -> crate::crypto::WrappedTenantKeys {
    crate::crypto::WrappedTenantKeys {
        version: row.version as u32,
        wrapped_data_key: row.wrapped_data_key.clone(),
        wrapped_index_key: row.wrapped_index_key.clone(),
        master_key_id: row.master_key_id.clone(),
    }
}

/// The means to seal, open and index one municipality's fields, and which
/// of its resident imports a reader sees. (The proof that a transaction is
/// scoped to the municipality is the connection `run` hands out with it.)
pub struct Scope<'a> {
    partition: &'a Partition,
    seen: Seen,
}

/// Which resident imports a reader sees. A resident import writes in many
/// short transactions and becomes visible when its job row says it
/// succeeded; until then only the import itself reads what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Every import that succeeded: what everyone reads.
    Published,
    /// Also the running import with this sequence number (its own reads).
    Through(i64),
}

/// Domain labels of the blind indexes.
const INDEX_MY_NUMBER: &str = "my_number";
const INDEX_ADDRESSEE: &str = "addressee_number";
const INDEX_BIRTH_BUCKET: &str = "birth_bucket";
const INDEX_CONTENT: &str = "content";

impl Scope<'_> {
    pub fn code(&self) -> MunicipalityCode {
        self.partition.code
    }

    pub fn seen(&self) -> Seen {
        self.seen
    }

    /// The same scope, seeing also what the running import `seq` wrote.
    pub fn through_import(&self, seq: i64) -> Scope<'_> {
        Scope {
            partition: self.partition,
            seen: Seen::Through(seq),
        }
    }

    pub fn seal(&self, ctx: AadContext<'_>, plaintext: &[u8]) -> Vec<u8> {
        self.partition.sealer.seal(ctx, plaintext)
    }

    pub fn open(&self, ctx: AadContext<'_>, sealed: &[u8]) -> Result<Vec<u8>, TenancyError> {
        self.partition
            .sealer
            .open(ctx, sealed)
            .map_err(|e| TenancyError::Seal(self.partition.code, e))
    }

    pub fn open_string(&self, ctx: AadContext<'_>, sealed: &[u8]) -> Result<String, TenancyError> {
        String::from_utf8(self.open(ctx, sealed)?)
            .map_err(|_| TenancyError::Seal(self.partition.code, SealError::Malformed))
    }

    /// Whether a sealed value was made with an older key version.
    pub fn needs_reseal(&self, sealed: &[u8]) -> bool {
        Sealer::version_of(sealed) != Some(self.partition.sealer.active_version())
    }

    /// The index of an individual number under the active key: what a
    /// row written now holds.
    pub fn my_number_index(&self, n: &MyNumber) -> Vec<u8> {
        self.active().index(INDEX_MY_NUMBER, &n.expose_digits())
    }

    /// Every index an individual number may be stored under (more than one
    /// while a key rotation runs): what a lookup searches for.
    pub fn my_number_indexes(&self, n: &MyNumber) -> Vec<Vec<u8>> {
        let digits = n.expose_digits();
        self.each(|i| i.index(INDEX_MY_NUMBER, &digits))
    }

    /// A coarse keyed bucket of a birth date: 12 bits of its HMAC, so that
    /// about nine dates share each bucket and equal buckets say little about
    /// equal birthdays. A search opens only the residents of one bucket.
    pub fn birth_bucket(&self, birth: chrono::NaiveDate) -> Vec<u8> {
        bucket(self.active(), birth)
    }

    /// Every bucket a birth date may be stored under (see
    /// [`Scope::my_number_indexes`]).
    pub fn birth_buckets(&self, birth: chrono::NaiveDate) -> Vec<Vec<u8>> {
        self.each(|i| bucket(i, birth))
    }

    /// Keyed fingerprint of a record's clear content, so an unchanged
    /// re-import can be recognised without opening the stored row.
    pub fn content_mac(&self, canonical: &[u8]) -> Vec<u8> {
        self.active().index(INDEX_CONTENT, canonical)
    }

    pub fn addressee_index(&self, addressee: &str) -> Vec<u8> {
        self.active().index(INDEX_ADDRESSEE, addressee.as_bytes())
    }

    /// Every index a 宛名番号 may be stored under (see
    /// [`Scope::my_number_indexes`]).
    pub fn addressee_indexes(&self, addressee: &str) -> Vec<Vec<u8>> {
        self.each(|i| i.index(INDEX_ADDRESSEE, addressee.as_bytes()))
    }

    fn active(&self) -> &BlindIndexer {
        &self.partition.indexers[0]
    }

    fn each(&self, f: impl Fn(&BlindIndexer) -> Vec<u8>) -> Vec<Vec<u8>> {
        self.partition.indexers.iter().map(f).collect()
    }
}

fn bucket(indexer: &BlindIndexer, birth: chrono::NaiveDate) -> Vec<u8> {
    let mac = indexer.index(INDEX_BIRTH_BUCKET, birth.to_string().as_bytes());
    vec![mac[0], mac[1] & 0x0F]
}

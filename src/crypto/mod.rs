//! Keys and field protection. The master key never enters the database; it
//! wraps each municipality's data key and blind-index key, and the issuer's
//! signing keys. See `seal` for the field format.

pub mod master;
pub mod password;
mod seal;
pub mod spool;
mod tenant_keys;
pub mod totp;

pub use master::{MasterKey, MasterKeySource};
pub use seal::{AadContext, SealError, Sealer};
pub use tenant_keys::{BlindIndexer, TenantKeyMaterial, WrappedTenantKeys};

/// 32 bytes of key material that is wiped on drop.
pub type KeyBytes = zeroize::Zeroizing<[u8; 32]>;

/// Whether two tokens (or their hashes) are equal, in time that does not
/// depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn random_key() -> KeyBytes {
    use rand::RngCore;
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    k
}

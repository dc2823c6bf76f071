use super::{KeyBytes, MasterKey, random_key};
use crate::domain::MunicipalityCode;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A municipality's keys of one version, in the clear (memory only).
pub struct TenantKeyMaterial {
    pub version: u32,
    pub data_key: KeyBytes,
    pub index_key: KeyBytes,
}

/// The same keys as stored: wrapped by the master key.
#[derive(Debug, Clone)]
pub struct WrappedTenantKeys {
    pub version: u32,
    pub wrapped_data_key: Vec<u8>,
    pub wrapped_index_key: Vec<u8>,
    pub master_key_id: String,
}

fn label(code: MunicipalityCode, version: u32, which: &str) -> String {
    format!("vrs/tenant-key/v1:{code}:{version}:{which}")
}

impl TenantKeyMaterial {
    pub fn generate(version: u32) -> Self {
        TenantKeyMaterial {
            version,
            data_key: random_key(),
            index_key: random_key(),
        }
    }

    pub fn wrap(&self, master: &MasterKey, code: MunicipalityCode) -> WrappedTenantKeys {
        WrappedTenantKeys {
            version: self.version,
            wrapped_data_key: master
                .wrap(&label(code, self.version, "data"), self.data_key.as_ref()),
            wrapped_index_key: master
                .wrap(&label(code, self.version, "index"), self.index_key.as_ref()),
            master_key_id: master.key_id(),
        }
    }
}

impl WrappedTenantKeys {
    pub fn unwrap(&self, master: &MasterKey, code: MunicipalityCode) -> Option<TenantKeyMaterial> {
        Some(TenantKeyMaterial {
            version: self.version,
            data_key: master
                .unwrap_key(&label(code, self.version, "data"), &self.wrapped_data_key)?,
            index_key: master
                .unwrap_key(&label(code, self.version, "index"), &self.wrapped_index_key)?,
        })
    }
}

/// Keyed blind index: HMAC-SHA256 under the municipality's index key, with a
/// domain label per kind of value. The same individual number gives unrelated
/// indexes in two municipalities, so the index table links nobody across
/// partitions.
#[derive(Clone)]
pub struct BlindIndexer {
    mac: Hmac<Sha256>,
}

impl BlindIndexer {
    pub fn new(index_key: &[u8; 32]) -> Self {
        BlindIndexer {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(index_key).expect("any key length"),
        }
    }

    pub fn index(&self, domain: &str, value: &[u8]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKeySource;

    #[test]
    fn wrapped_keys_are_bound_to_their_municipality() {
        let master = MasterKey::generate(MasterKeySource::Env("T"));
        let a = MunicipalityCode::parse("082040").unwrap();
        let b = MunicipalityCode::parse("131016").unwrap();
        let keys = TenantKeyMaterial::generate(1);
        let wrapped = keys.wrap(&master, a);
        assert!(wrapped.unwrap(&master, a).is_some());
        assert!(wrapped.unwrap(&master, b).is_none());
    }

    #[test]
    fn blind_index_differs_by_key_and_domain() {
        let i1 = BlindIndexer::new(&[1; 32]);
        let i2 = BlindIndexer::new(&[2; 32]);
        assert_eq!(i1.index("my_number", b"123"), i1.index("my_number", b"123"));
        assert_ne!(i1.index("my_number", b"123"), i2.index("my_number", b"123"));
        assert_ne!(i1.index("my_number", b"123"), i1.index("addressee", b"123"));
    }
}

use super::{KeyBytes, random_key};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// Where the master key came from, so errors can name it.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    File(PathBuf),
    Env(&'static str),
}

impl std::fmt::Display for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::File(p) => write!(f, "master key file {}", p.display()),
            MasterKeySource::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

/// The deployment's key-encryption key. Only wraps other keys.
pub struct MasterKey {
    key: KeyBytes,
    pub source: MasterKeySource,
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("{0}: cannot read: {1}")]
    Read(MasterKeySource, std::io::Error),
    #[error("{0}: not a master key (expected 32 bytes as base64 or 64 hex digits on one line)")]
    Format(MasterKeySource),
    #[error("{0}: readable by other users (mode {1:o}); run chmod 600 on it")]
    Permissions(MasterKeySource, u32),
    #[error("{0}: cannot write: {1}")]
    Write(MasterKeySource, std::io::Error),
}

const WRAP_NONCE_LEN: usize = 12;

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id {}, from {})", self.key_id(), self.source)
    }
}

impl MasterKey {
    pub fn generate(source: MasterKeySource) -> Self {
        MasterKey {
            key: random_key(),
            source,
        }
    }

    pub fn parse(text: &str, source: MasterKeySource) -> Result<Self, MasterKeyError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).ok()
        } else {
            B64.decode(t).ok()
        };
        match bytes {
            Some(b) if b.len() == 32 => {
                let mut key = zeroize::Zeroizing::new([0u8; 32]);
                key.copy_from_slice(&b);
                Ok(MasterKey { key, source })
            }
            _ => Err(MasterKeyError::Format(source)),
        }
    }

    pub fn load_file(path: &Path) -> Result<Self, MasterKeyError> {
        let source = MasterKeySource::File(path.to_path_buf());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta =
                std::fs::metadata(path).map_err(|e| MasterKeyError::Read(source.clone(), e))?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(MasterKeyError::Permissions(source, mode));
            }
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| MasterKeyError::Read(source.clone(), e))?;
        Self::parse(&text, source)
    }

    /// Writes the key to a new file readable only by its owner. Refuses to
    /// overwrite: losing a master key loses every municipality's data.
    pub fn write_new_file(&self, path: &Path) -> Result<(), MasterKeyError> {
        use std::io::Write;
        let source = MasterKeySource::File(path.to_path_buf());
        if let Some(dir) = path.parent() {
            crate::private_dir::create(dir)
                .map_err(|e| MasterKeyError::Write(source.clone(), e))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .map_err(|e| MasterKeyError::Write(source.clone(), e))?;
        writeln!(f, "{}", B64.encode(self.key.as_ref()))
            .and_then(|_| f.sync_all())
            .map_err(|e| MasterKeyError::Write(source, e))
    }

    /// A public fingerprint stored beside every wrapped key, so a wrong master
    /// key is reported as such instead of as "corrupt data".
    pub fn key_id(&self) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref())
            .expect("HMAC takes any key length");
        mac.update(b"vrs/master-key-id/v1");
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    /// Wraps key material; `label` (e.g. "tenant:082040:v1:dek") is bound as
    /// associated data so a wrapped key cannot be swapped for another.
    pub fn wrap(&self, label: &str, plaintext: &[u8]) -> Vec<u8> {
        use rand::RngCore;
        let cipher = Aes256Gcm::new_from_slice(self.key.as_ref()).expect("32-byte key");
        let mut nonce = [0u8; WRAP_NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: label.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short key cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    pub fn unwrap_key(&self, label: &str, wrapped: &[u8]) -> Option<KeyBytes> {
        let pt = self.unwrap_bytes(label, wrapped)?;
        let bytes: [u8; 32] = pt.as_slice().try_into().ok()?;
        Some(zeroize::Zeroizing::new(bytes))
    }

    pub fn unwrap_bytes(&self, label: &str, wrapped: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        if wrapped.len() < WRAP_NONCE_LEN {
            return None;
        }
        let cipher = Aes256Gcm::new_from_slice(self.key.as_ref()).ok()?;
        let (nonce, ct) = wrapped.split_at(WRAP_NONCE_LEN);
        let nonce: [u8; WRAP_NONCE_LEN] = nonce.try_into().ok()?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: label.as_bytes(),
                },
            )
            .ok()
            .map(zeroize::Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk() -> MasterKey {
        MasterKey::generate(MasterKeySource::Env("TEST"))
    }

    #[test]
    fn wrap_round_trips_only_with_same_key_and_label() {
        let m = mk();
        let k = random_key();
        let w = m.wrap("tenant:082040:v1:dek", k.as_ref());
        assert_eq!(
            m.unwrap_key("tenant:082040:v1:dek", &w).unwrap().as_ref(),
            k.as_ref()
        );
        assert!(m.unwrap_key("tenant:131016:v1:dek", &w).is_none());
        assert!(mk().unwrap_key("tenant:082040:v1:dek", &w).is_none());
        let mut tampered = w.clone();
        tampered[20] ^= 1;
        assert!(m.unwrap_key("tenant:082040:v1:dek", &tampered).is_none());
    }

    #[test]
    fn parses_base64_and_hex_and_names_a_bad_source() {
        let hexkey = "00".repeat(32);
        assert!(MasterKey::parse(&hexkey, MasterKeySource::Env("X")).is_ok());
        let b64 = B64.encode([7u8; 32]);
        assert!(MasterKey::parse(&b64, MasterKeySource::Env("X")).is_ok());
        let e = MasterKey::parse("short", MasterKeySource::Env("VRS_MASTER_KEY")).unwrap_err();
        assert!(e.to_string().contains("VRS_MASTER_KEY"));
    }

    #[test]
    fn file_is_created_owner_only_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k/master.key");
        let m = mk();
        m.write_new_file(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(m.write_new_file(&p).is_err());
        let loaded = MasterKey::load_file(&p).unwrap();
        assert_eq!(loaded.key_id(), m.key_id());
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        mk().write_new_file(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = MasterKey::load_file(&p).err().unwrap();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}

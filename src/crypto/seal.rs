//! Field sealing: AES-256-GCM with the municipality, table, column and row id
//! bound in as associated data.
//!
//! Sealed value layout: `0x01 ‖ key_version (u32 BE) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
//! The key version lets a municipality's data key rotate while older rows are
//! still being re-sealed. Nonces are random (96 bits); with per-municipality
//! keys and rotation, no key comes near the 2^32 messages that random nonces allow.

use crate::domain::MunicipalityCode;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use rand::RngCore;

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 + 12;
const TAG: usize = 16;

/// Where a sealed value lives; any difference makes it fail to open.
#[derive(Debug, Clone, Copy)]
pub struct AadContext<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with key version {0}, which this municipality no longer has")]
    UnknownKeyVersion(u32),
    #[error(
        "sealed value does not open here (wrong municipality, row, column or key, or tampered)"
    )]
    Unauthentic,
}

/// One municipality's sealing keys: the active version seals, every version
/// it still holds opens.
pub struct Sealer {
    municipality: MunicipalityCode,
    active: u32,
    ciphers: Vec<(u32, Aes256Gcm)>,
}

impl Sealer {
    pub fn new(municipality: MunicipalityCode, keys: &[(u32, &[u8; 32])], active: u32) -> Self {
        let ciphers = keys
            .iter()
            .map(|(v, k)| (*v, Aes256Gcm::new_from_slice(&k[..]).expect("32-byte key")))
            .collect();
        Sealer {
            municipality,
            active,
            ciphers,
        }
    }

    pub fn municipality(&self) -> MunicipalityCode {
        self.municipality
    }

    pub fn active_version(&self) -> u32 {
        self.active
    }

    fn aad(&self, ctx: &AadContext<'_>, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(b"vrs/field/v1\0");
        out.extend_from_slice(self.municipality.as_str().as_bytes());
        for part in [ctx.table, ctx.column, ctx.row_id] {
            out.push(0);
            out.extend_from_slice(part.as_bytes());
        }
    }

    fn cipher(&self, version: u32) -> Option<&Aes256Gcm> {
        self.ciphers
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, c)| c)
    }

    pub fn seal(&self, ctx: AadContext<'_>, plaintext: &[u8]) -> Vec<u8> {
        let cipher = self.cipher(self.active).expect("active key is held");
        let mut out = Vec::with_capacity(HEADER + plaintext.len() + TAG);
        out.push(FORMAT);
        out.extend_from_slice(&self.active.to_be_bytes());
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut aad = Vec::with_capacity(64);
        self.aad(&ctx, &mut aad);
        let tag = cipher
            .encrypt_in_place_detached(&Nonce::from(nonce), &aad, &mut out[HEADER..])
            .expect("field is far below the AES-GCM length limit");
        out.extend_from_slice(&tag);
        out
    }

    pub fn open(&self, ctx: AadContext<'_>, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < HEADER + TAG || sealed[0] != FORMAT {
            return Err(SealError::Malformed);
        }
        let version = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
        let cipher = self
            .cipher(version)
            .ok_or(SealError::UnknownKeyVersion(version))?;
        let nonce: [u8; 12] = sealed[5..HEADER]
            .try_into()
            .map_err(|_| SealError::Malformed)?;
        let (body, tag) = sealed[HEADER..].split_at(sealed.len() - HEADER - TAG);
        let tag: [u8; TAG] = tag.try_into().map_err(|_| SealError::Malformed)?;
        let mut buf = body.to_vec();
        let mut aad = Vec::with_capacity(64);
        self.aad(&ctx, &mut aad);
        cipher
            .decrypt_in_place_detached(&Nonce::from(nonce), &aad, &mut buf, &Tag::from(tag))
            .map_err(|_| SealError::Unauthentic)?;
        Ok(buf)
    }

    pub fn seal_str(&self, ctx: AadContext<'_>, s: &str) -> Vec<u8> {
        self.seal(ctx, s.as_bytes())
    }

    pub fn open_string(&self, ctx: AadContext<'_>, sealed: &[u8]) -> Result<String, SealError> {
        String::from_utf8(self.open(ctx, sealed)?).map_err(|_| SealError::Malformed)
    }

    /// The key version a sealed value was made with (for re-sealing after rotation).
    pub fn version_of(sealed: &[u8]) -> Option<u32> {
        (sealed.len() >= HEADER && sealed[0] == FORMAT)
            .then(|| u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> MunicipalityCode {
        MunicipalityCode::parse(s).unwrap()
    }

    const CTX: AadContext<'static> = AadContext {
        table: "residents",
        column: "name_kanji",
        row_id: "r1",
    };

    #[test]
    fn round_trip() {
        let k = [1u8; 32];
        let s = Sealer::new(code("082040"), &[(1, &k)], 1);
        let sealed = s.seal_str(CTX, "山田太郎");
        assert!(!sealed.windows(3).any(|w| w == "山".as_bytes()));
        assert_eq!(s.open_string(CTX, &sealed).unwrap(), "山田太郎");
    }

    #[test]
    fn moved_ciphertext_does_not_open() {
        let k = [1u8; 32];
        let s = Sealer::new(code("082040"), &[(1, &k)], 1);
        let sealed = s.seal_str(CTX, "山田太郎");
        for other in [
            AadContext {
                row_id: "r2",
                ..CTX
            },
            AadContext {
                column: "name_kana",
                ..CTX
            },
            AadContext {
                table: "other",
                ..CTX
            },
        ] {
            assert_eq!(s.open(other, &sealed), Err(SealError::Unauthentic));
        }
        // Same key bytes, other municipality: still refused (AAD differs).
        let elsewhere = Sealer::new(code("131016"), &[(1, &k)], 1);
        assert_eq!(elsewhere.open(CTX, &sealed), Err(SealError::Unauthentic));
    }

    #[test]
    fn tampering_and_wrong_key_are_detected() {
        let s = Sealer::new(code("082040"), &[(1, &[1u8; 32])], 1);
        let mut sealed = s.seal_str(CTX, "x");
        let other = Sealer::new(code("082040"), &[(1, &[2u8; 32])], 1);
        assert_eq!(other.open(CTX, &sealed), Err(SealError::Unauthentic));
        let last = sealed.len() - 1;
        sealed[last] ^= 0x80;
        assert_eq!(s.open(CTX, &sealed), Err(SealError::Unauthentic));
        assert_eq!(s.open(CTX, &[1, 2, 3]), Err(SealError::Malformed));
    }

    #[test]
    fn old_versions_open_while_new_one_seals() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let old = Sealer::new(code("082040"), &[(1, &k1)], 1);
        let sealed_old = old.seal_str(CTX, "a");
        let both = Sealer::new(code("082040"), &[(1, &k1), (2, &k2)], 2);
        assert_eq!(both.open_string(CTX, &sealed_old).unwrap(), "a");
        let sealed_new = both.seal_str(CTX, "b");
        assert_eq!(Sealer::version_of(&sealed_new), Some(2));
        let only_new = Sealer::new(code("082040"), &[(2, &k2)], 2);
        assert_eq!(
            only_new.open(CTX, &sealed_old),
            Err(SealError::UnknownKeyVersion(1))
        );
    }
}

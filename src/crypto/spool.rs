//! Uploaded files wait on disk for their background job sealed under a key
//! that lives only in this process's memory: the file holds individual
//! numbers, and a crash or a copied disk must not leave them readable.
//! Chunks use the STREAM construction (`aead::stream`), which detects
//! reordered, dropped or truncated chunks.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use aes_gcm::aead::stream::{DecryptorBE32, EncryptorBE32};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
/// Aes256Gcm's 12-byte nonce less STREAM's 5-byte counter and flag.
const NONCE_PREFIX: usize = 7;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the file is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("spool: {0}")]
    Io(#[from] io::Error),
    #[error("spool: a chunk does not authenticate")]
    Corrupt,
}

/// Writes an upload as it arrives, counting and hashing the clear bytes.
pub struct SpoolWriter {
    file: io::BufWriter<File>,
    spool: Spool,
    enc: Option<EncryptorBE32<Aes256Gcm>>,
    buf: Vec<u8>,
    sha: Sha256,
    limit: u64,
}

/// A finished upload. Dropping it deletes the file.
pub struct Spool {
    path: PathBuf,
    key: crate::crypto::KeyBytes,
    nonce: [u8; NONCE_PREFIX],
    len: u64,
    sha256: [u8; 32],
}

impl SpoolWriter {
    pub fn create(dir: &Path, limit: u64) -> Result<SpoolWriter, SpoolError> {
        crate::private_dir::create(dir)?;
        let path = dir.join(format!("{}.spool", uuid::Uuid::new_v4()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts.open(&path)?;
        let key = crate::crypto::random_key();
        let mut nonce = [0u8; NONCE_PREFIX];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new_from_slice(&key[..]).map_err(|_| SpoolError::Corrupt)?;
        let enc = EncryptorBE32::from_aead(cipher, (&nonce).into());
        Ok(SpoolWriter {
            file: io::BufWriter::new(file),
            spool: Spool {
                path,
                key,
                nonce,
                len: 0,
                sha256: [0; 32],
            },
            enc: Some(enc),
            buf: Vec::with_capacity(2 * CHUNK),
            sha: Sha256::new(),
            limit,
        })
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        self.spool.len += data.len() as u64;
        if self.spool.len > self.limit {
            return Err(SpoolError::TooLarge(self.limit));
        }
        self.sha.update(data);
        self.buf.extend_from_slice(data);
        // Keep at least one byte back: the last chunk is sealed differently.
        while self.buf.len() > CHUNK {
            let enc = self.enc.as_mut().ok_or(SpoolError::Corrupt)?;
            let ct = enc
                .encrypt_next(&self.buf[..CHUNK])
                .map_err(|_| SpoolError::Corrupt)?;
            self.file.write_all(&ct)?;
            self.buf.drain(..CHUNK);
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Spool, SpoolError> {
        let enc = self.enc.take().ok_or(SpoolError::Corrupt)?;
        let ct = enc
            .encrypt_last(&self.buf[..])
            .map_err(|_| SpoolError::Corrupt)?;
        self.file.write_all(&ct)?;
        self.file.flush()?;
        self.spool.sha256 = self.sha.clone().finalize().into();
        let path = std::mem::take(&mut self.spool.path);
        Ok(Spool {
            path,
            key: self.spool.key.clone(),
            nonce: self.spool.nonce,
            len: self.spool.len,
            sha256: self.spool.sha256,
        })
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        // An abandoned upload (too large, bad form) leaves nothing behind.
        if !self.spool.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.spool.path);
            self.spool.path = PathBuf::new();
        }
    }
}

impl Spool {
    /// Clear length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// Reads the clear bytes back; fails if any chunk was altered.
    pub fn reader(&self) -> Result<SpoolReader, SpoolError> {
        let cipher = Aes256Gcm::new_from_slice(&self.key[..]).map_err(|_| SpoolError::Corrupt)?;
        Ok(SpoolReader {
            file: io::BufReader::with_capacity(CHUNK + TAG, File::open(&self.path)?),
            dec: Some(DecryptorBE32::from_aead(cipher, (&self.nonce).into())),
            next: Vec::new(),
            out: Vec::new(),
            pos: 0,
            started: false,
        })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes spool files a stopped process left (their keys died with it).
pub fn clear_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "spool") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

pub struct SpoolReader {
    file: io::BufReader<File>,
    dec: Option<DecryptorBE32<Aes256Gcm>>,
    next: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    started: bool,
}

impl SpoolReader {
    fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        let mut chunk = Vec::with_capacity(CHUNK + TAG);
        (&mut self.file)
            .take((CHUNK + TAG) as u64)
            .read_to_end(&mut chunk)?;
        Ok(chunk)
    }

    /// Decrypts the next chunk into `out`; false at the end.
    fn fill(&mut self) -> io::Result<bool> {
        let corrupt = || io::Error::new(io::ErrorKind::InvalidData, SpoolError::Corrupt);
        if !self.started {
            self.next = self.read_chunk()?;
            self.started = true;
        }
        if self.dec.is_none() {
            return Ok(false);
        }
        let current = std::mem::take(&mut self.next);
        self.next = self.read_chunk()?;
        self.out = if self.next.is_empty() {
            let dec = self.dec.take().ok_or_else(corrupt)?;
            dec.decrypt_last(&current[..]).map_err(|_| corrupt())?
        } else {
            let dec = self.dec.as_mut().ok_or_else(corrupt)?;
            dec.decrypt_next(&current[..]).map_err(|_| corrupt())?
        };
        self.pos = 0;
        Ok(true)
    }
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.out.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool_of(dir: &Path, data: &[u8], piece: usize) -> Spool {
        let mut w = SpoolWriter::create(dir, u64::MAX).unwrap();
        for p in data.chunks(piece.max(1)) {
            w.write(p).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trips_at_every_chunk_boundary() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let s = spool_of(dir.path(), &data, 10_000);
            let mut back = Vec::new();
            s.reader().unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "length {len}");
            assert_eq!(s.len(), len as u64);
            assert_eq!(s.sha256_hex(), hex::encode(Sha256::digest(&data)));
        }
    }

    #[test]
    fn the_file_holds_no_clear_text_and_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let secret = b"123456789018,yamada".repeat(5000);
        let s = spool_of(dir.path(), &secret, 4096);
        let path = s.path.clone();
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(12).any(|w| w == b"123456789018"));
        drop(s);
        assert!(!path.exists());
    }

    #[test]
    fn truncation_and_tampering_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![7u8; 3 * CHUNK];
        let s = spool_of(dir.path(), &data, CHUNK);
        let raw = std::fs::read(&s.path).unwrap();
        // Drop the last chunk: the one before it was not sealed as last.
        std::fs::write(&s.path, &raw[..2 * (CHUNK + TAG)]).unwrap();
        assert!(s.reader().unwrap().read_to_end(&mut Vec::new()).is_err());
        let mut flipped = raw.clone();
        flipped[10] ^= 1;
        std::fs::write(&s.path, &flipped).unwrap();
        assert!(s.reader().unwrap().read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn the_limit_stops_an_upload() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::create(dir.path(), 10).unwrap();
        w.write(b"12345").unwrap();
        assert!(matches!(w.write(b"123456"), Err(SpoolError::TooLarge(10))));
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

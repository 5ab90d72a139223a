//! The manifest: a small checksummed file naming the log directory's id and the range of
//! segments that make up the log. It is replaced atomically (written to a temporary file,
//! synced, renamed over the old one, directory synced) whenever that range changes: when a
//! segment is added and when compaction removes old ones. Nothing else ever rewrites it, so
//! it costs nothing on the write path.
//!
//! ```text
//! magic "RSMMAN" | version u16 | log id u64 | oldest segment u64 | newest segment u64
//!                | crc32c u32 of the first 32 bytes
//! ```
//!
//! `newest == oldest - 1` records a log with no segment yet (the moment between creating
//! the manifest of a fresh directory and its first segment).

use std::collections::hash_map::RandomState;
use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::WalError;
use crate::record::FORMAT_VERSION;
use crate::segment;

/// The manifest's file name inside the log directory.
pub(crate) const MANIFEST_FILE: &str = "MANIFEST";
const MANIFEST_TEMP_FILE: &str = "MANIFEST.tmp";
const MANIFEST_MAGIC: [u8; 6] = *b"RSMMAN";
const MANIFEST_BYTES: usize = 36;

/// The segments the log consists of, and whose they are.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Random id of the log directory, drawn when it was created; every segment header and
    /// record checksum carries it.
    pub(crate) log: u64,
    /// The oldest segment still part of the log.
    pub(crate) oldest: u64,
    /// The newest segment: the one being written.
    pub(crate) newest: u64,
}

impl Manifest {
    /// The manifest of a new log directory, with a fresh random id and no segment yet.
    pub(crate) fn fresh() -> Self {
        // The standard library's hasher keys are random per process; mixing in the time
        // and the process id makes two directories created by one process differ too.
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        Self {
            log: h.finish(),
            oldest: 1,
            newest: 0,
        }
    }

    fn encode(&self) -> [u8; MANIFEST_BYTES] {
        let mut b = [0u8; MANIFEST_BYTES];
        b[..6].copy_from_slice(&MANIFEST_MAGIC);
        b[6..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.log.to_le_bytes());
        b[16..24].copy_from_slice(&self.oldest.to_le_bytes());
        b[24..32].copy_from_slice(&self.newest.to_le_bytes());
        let crc = crc32c::crc32c(&b[..32]);
        b[32..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() != MANIFEST_BYTES {
            return Err(format!("{} bytes, expected {MANIFEST_BYTES}", b.len()));
        }
        if b[..6] != MANIFEST_MAGIC {
            return Err("not a manifest (bad magic)".into());
        }
        let version = u16::from_le_bytes([b[6], b[7]]);
        if version != FORMAT_VERSION {
            return Err(format!("unsupported format version {version}"));
        }
        if u32::from_le_bytes([b[32], b[33], b[34], b[35]]) != crc32c::crc32c(&b[..32]) {
            return Err("checksum mismatch".into());
        }
        let u = |at: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(v)
        };
        let m = Self {
            log: u(8),
            oldest: u(16),
            newest: u(24),
        };
        if m.oldest == 0 || m.newest.saturating_add(1) < m.oldest {
            return Err(format!(
                "segment range {}..={} is impossible",
                m.oldest, m.newest
            ));
        }
        Ok(m)
    }

    /// Read the manifest of `dir`; `None` if there is none.
    pub(crate) fn read(dir: &Path) -> Result<Option<Self>, WalError> {
        let path = manifest_path(dir);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(WalError::io(&path)(e)),
        };
        Self::decode(&bytes)
            .map(Some)
            .map_err(|reason| WalError::BadManifest { path, reason })
    }

    /// Replace the manifest of `dir` with this one, atomically and durably.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), WalError> {
        let temp = dir.join(MANIFEST_TEMP_FILE);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .and_then(|mut f| {
                f.write_all(&self.encode())?;
                f.sync_all()
            })
            .map_err(WalError::io(&temp))?;
        let path = manifest_path(dir);
        fs::rename(&temp, &path).map_err(WalError::io(&path))?;
        segment::sync_dir(dir)
    }
}

pub(crate) fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let m = Manifest {
            log: 42,
            oldest: 3,
            newest: 9,
        };
        assert_eq!(Manifest::decode(&m.encode()), Ok(m));
        for at in 0..MANIFEST_BYTES {
            let mut b = m.encode();
            b[at] ^= 0x10;
            assert!(Manifest::decode(&b).is_err(), "flip at {at}");
        }
        assert!(Manifest::decode(&m.encode()[..20]).is_err());
        assert_ne!(Manifest::fresh().log, Manifest::fresh().log);
    }
}

//! Helpers shared by the integration tests: scratch directories, entries, and saving and
//! restoring a log directory's files to replay a crash many ways.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use rsm_core::{Bytes, Durable, Entry, Epoch, HardState, LogIndex, NodeId, Persist};
use rsm_wal::{Wal, WalConfig};

/// A scratch directory on tmpfs when the machine has one: fsync there costs nothing, and
/// recovery is tested by editing files, not by losing power.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("temporary directory")
}

/// The default configuration with 64 KiB segments: segment files are created at their
/// full length, and tests that save and restore a directory many times copy them whole.
pub fn test_config() -> WalConfig {
    WalConfig {
        segment_bytes_max: 64 << 10,
        ..WalConfig::default()
    }
}

/// A configuration with tiny segments, so that a few records rotate and compact.
pub fn small_config() -> WalConfig {
    WalConfig {
        segment_bytes_max: 256,
        record_bytes_max: 256,
        write_buffer_bytes_max: 64,
        snapshot_bytes_max: 1 << 20,
    }
}

pub fn entry(index: u64, epoch: u64, len: usize) -> Entry {
    let payload: Vec<u8> = (0..len).map(|i| (index as usize * 31 + i) as u8).collect();
    Entry::command(LogIndex(index), Epoch(epoch), Bytes::from(payload))
}

pub fn append(first: u64, count: u64, epoch: u64) -> Persist {
    Persist::Append {
        entries: (first..first + count)
            .map(|i| entry(i, epoch, 24))
            .collect(),
    }
}

pub fn hard_state(epoch: u64, vote: u64) -> Persist {
    Persist::HardState(HardState {
        epoch: Epoch(epoch),
        vote: Some(NodeId(vote)),
        commit: LogIndex(0),
        extra: Bytes::new(),
    })
}

/// Write and sync `ops` through `wal`, applying them to `model` as the reference.
pub fn write_synced(wal: &mut Wal, model: &mut Durable, ops: &[Persist]) {
    for op in ops {
        wal.write(op).expect("write");
        model.apply(op).expect("the reference accepts the op");
    }
    wal.sync().expect("sync");
}

/// Segment files, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

pub fn files_with_extension(dir: &Path, ext: &str) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == ext)
        })
        .count()
}

pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// Every file in the directory (the lock file aside), to restore later.
pub fn save(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "LOCK"))
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Put the directory back exactly as saved.
pub fn restore(dir: &Path, saved: &[(PathBuf, Vec<u8>)]) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().is_some_and(|n| n != "LOCK") {
            fs::remove_file(p).unwrap();
        }
    }
    for (p, bytes) in saved {
        fs::write(p, bytes).unwrap();
    }
}

pub fn flip_bit(path: &Path, offset: u64, bit: u32) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 1 << bit;
    fs::write(path, bytes).unwrap();
}

/// Overwrite bytes `from..to` of a file with zeros, keeping its length: what a write that
/// never reached the disk leaves in a segment created at its full length.
pub fn zero(path: &Path, from: u64, to: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[from as usize..to as usize].fill(0);
    fs::write(path, bytes).unwrap();
}

/// Offset after the header and base record of a segment file.
pub fn base_end(path: &Path) -> u64 {
    let bytes = fs::read(path).unwrap();
    let len = u32::from_le_bytes(bytes[36..40].try_into().unwrap());
    36 + 9 + u64::from(len)
}

pub fn cut(path: &Path, len: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

//! Recovery: check the manifest's segments are all there, whole and this directory's,
//! replay them into an image, cut a torn tail, check the hard state against the log, load
//! the snapshot, and clear away files that no durable record refers to.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use bytes::Bytes;
use rsm_core::LogIndex;

use crate::config::WalConfig;
use crate::error::{CorruptKind, WalError};
use crate::manifest::Manifest;
use crate::record::{Record, SegmentId, SnapshotRef, parse_segment_header};
use crate::replay::Image;
use crate::segment::{self, SegmentEnd, SegmentInfo};

/// What recovery found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) manifest: Manifest,
    pub(crate) image: Image,
    pub(crate) snapshot_data: Option<Bytes>,
    /// The segments that remain, oldest first; empty only for a log that never got its
    /// first segment.
    pub(crate) segments: VecDeque<SegmentInfo>,
    /// Offset after the base record of the last remaining segment.
    pub(crate) base_end: u64,
    /// An id no snapshot file (complete or not) has used.
    pub(crate) next_snapshot_id: u64,
}

/// Recover the log in `dir`; `None` for a directory that holds no log yet.
pub(crate) fn recover(dir: &Path, config: &WalConfig) -> Result<Option<Recovered>, WalError> {
    let listing = segment::list(dir)?;
    let Some(manifest) = Manifest::read(dir)? else {
        if listing.segments.is_empty() {
            return Ok(None);
        }
        return Err(WalError::MissingManifest {
            dir: dir.to_owned(),
        });
    };
    // Leftovers of an interrupted compaction (older than the oldest listed segment) or
    // rotation (the one after the newest, created but never listed, so never synced to)
    // are removed; any other file outside the listed range is not ours to judge.
    let mut removed = false;
    for &seq in &listing.segments {
        let path = segment::segment_path(dir, seq);
        if seq < manifest.oldest || seq == manifest.newest + 1 {
            fs::remove_file(&path).map_err(WalError::io(&path))?;
            tracing::info!(
                file = %path.display(),
                "write-ahead log recovery: removed a segment left by an interrupted compaction or rotation"
            );
            removed = true;
        } else if seq > manifest.newest {
            return Err(WalError::StraySegment {
                path,
                oldest: manifest.oldest,
                newest: manifest.newest,
            });
        }
    }
    let listed: Vec<u64> = (manifest.oldest..=manifest.newest).collect();
    if let Some(&missing) = listed
        .iter()
        .find(|s| listing.segments.binary_search(s).is_err())
    {
        return Err(WalError::MissingSegment {
            path: segment::segment_path(dir, missing),
            segment: missing,
            oldest: manifest.oldest,
            newest: manifest.newest,
        });
    }
    let mut image: Option<Image> = None;
    let mut segments: VecDeque<SegmentInfo> = VecDeque::new();
    let mut base_end = 0;
    for &seq in &listed {
        let is_last = seq == manifest.newest;
        let path = segment::segment_path(dir, seq);
        let bytes =
            segment::read_bounded(&path, config.segment_read_bytes_max(), "segment_bytes_max")?;
        let id = SegmentId {
            log: manifest.log,
            seq,
        };
        let corrupt_at = |offset, kind| WalError::Corrupt {
            segment: seq,
            offset,
            kind,
        };
        let header = parse_segment_header(&bytes).map_err(|kind| corrupt_at(0, kind))?;
        if header.log != manifest.log {
            return Err(WalError::ForeignSegment {
                path,
                expected: manifest.log,
                found: header.log,
            });
        }
        if header.seq != seq {
            return Err(corrupt_at(0, CorruptKind::BadHeader));
        }
        if header.file_bytes != bytes.len() as u64 {
            return Err(WalError::SegmentLength {
                path,
                expected: header.file_bytes,
                found: bytes.len() as u64,
            });
        }
        let mut max_index = LogIndex(0);
        let prev_bytes = segments.back().map(|s| s.bytes);
        let end = segment::scan(&bytes, id, is_last, |offset, raw| {
            let corrupt = |kind| corrupt_at(offset, kind);
            let record = Record::decode(raw.ty, raw.body)
                .map_err(|e| corrupt(CorruptKind::Undecodable(e.to_string())))?;
            match &record {
                Record::Base(base) => {
                    if let Some(found) = prev_bytes
                        && found != base.prev_segment_bytes
                    {
                        return Err(corrupt(CorruptKind::PreviousLength {
                            expected: base.prev_segment_bytes,
                            found,
                        }));
                    }
                }
                Record::Append(entries) | Record::Accept(entries) => {
                    if let Some(last) = entries.last() {
                        max_index = max_index.max(last.index);
                    }
                }
                _ => {}
            }
            // The scan guarantees a base record comes first, which starts the image.
            image
                .get_or_insert_with(Image::default)
                .apply(record)
                .map_err(|m| corrupt(CorruptKind::Inconsistent(m)))
        })?;
        let used_bytes = match end {
            SegmentEnd::Clean {
                used_bytes,
                base_end: b,
            } => {
                base_end = b;
                used_bytes
            }
            SegmentEnd::Torn {
                valid_bytes,
                garbage_end,
                base_end: b,
            } => {
                // Zero what is left of the torn write (the file keeps its length), so
                // that new records written after the durable ones end cleanly.
                erase(&path, valid_bytes, garbage_end)?;
                tracing::warn!(
                    file = %path.display(),
                    offset = valid_bytes,
                    bytes = garbage_end - valid_bytes,
                    "write-ahead log recovery: cut a torn write at the end of the newest segment"
                );
                base_end = b;
                valid_bytes
            }
        };
        segments.push_back(SegmentInfo {
            seq,
            max_index,
            bytes: used_bytes,
            file_bytes: header.file_bytes,
        });
    }
    let image = image.unwrap_or_default();
    let last = segments.back();
    image.check_complete().map_err(|m| WalError::Corrupt {
        segment: last.map_or(0, |s| s.seq),
        offset: last.map_or(0, |s| s.bytes),
        kind: CorruptKind::Inconsistent(m),
    })?;
    let last_index = image.last_index();
    if image.hard_state().commit > last_index {
        return Err(WalError::HardStateAhead {
            dir: dir.to_owned(),
            commit: image.hard_state().commit.0,
            last_index: last_index.0,
        });
    }
    let snapshot_data = match &image.snapshot {
        Some(s) => Some(load_snapshot(dir, s, config)?),
        None => None,
    };
    let keep = image.snapshot.as_ref().map(|s| s.file_id);
    for &id in &listing.snapshots {
        if Some(id) != keep {
            let path = segment::snapshot_path(dir, id);
            fs::remove_file(&path).map_err(WalError::io(&path))?;
            removed = true;
        }
    }
    for &id in &listing.temps {
        let path = segment::snapshot_temp_path(dir, id);
        fs::remove_file(&path).map_err(WalError::io(&path))?;
        tracing::info!(
            file = %path.display(),
            "write-ahead log recovery: removed an unfinished snapshot file"
        );
        removed = true;
    }
    if removed {
        segment::sync_dir(dir)?;
    }
    let next_snapshot_id = listing
        .snapshots
        .iter()
        .chain(&listing.temps)
        .max()
        .map_or(1, |m| m + 1);
    Ok(Some(Recovered {
        manifest,
        image,
        snapshot_data,
        segments,
        base_end,
        next_snapshot_id,
    }))
}

/// Overwrite bytes `from..to` of `path` with zeros and sync.
fn erase(path: &Path, from: u64, to: u64) -> Result<(), WalError> {
    let zeros = vec![0u8; (to - from) as usize];
    let mut file: File = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(WalError::io(path))?;
    file.seek(SeekFrom::Start(from))
        .and_then(|_| file.write_all(&zeros))
        .and_then(|()| file.sync_data())
        .map_err(WalError::io(path))
}

fn load_snapshot(dir: &Path, s: &SnapshotRef, config: &WalConfig) -> Result<Bytes, WalError> {
    let path = segment::snapshot_path(dir, s.file_id);
    let bad = |reason: String| WalError::BadSnapshot {
        path: path.clone(),
        reason,
    };
    if !path.exists() {
        return Err(bad("the file is missing".into()));
    }
    let data = segment::read_bounded(&path, config.snapshot_bytes_max, "snapshot_bytes_max")?;
    if data.len() as u64 != s.data_bytes {
        return Err(bad(format!(
            "{} bytes on disk, {} recorded",
            data.len(),
            s.data_bytes
        )));
    }
    if crc32c::crc32c(&data) != s.data_crc {
        return Err(bad("checksum mismatch".into()));
    }
    Ok(Bytes::from(data))
}

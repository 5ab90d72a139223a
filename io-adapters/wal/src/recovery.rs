//! Recovery: replay every segment into an image, cut a torn tail, load the snapshot, and
//! clear away files that no durable record refers to.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::path::Path;

use bytes::Bytes;
use rsm_core::LogIndex;

use crate::config::WalConfig;
use crate::error::{CorruptKind, WalError};
use crate::record::{Record, SnapshotRef};
use crate::replay::Image;
use crate::segment::{self, SegmentEnd, SegmentInfo};

/// What recovery found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) image: Image,
    pub(crate) snapshot_data: Option<Bytes>,
    /// The segments that remain, oldest first; empty if the directory held no durable
    /// segment.
    pub(crate) segments: VecDeque<SegmentInfo>,
    /// Offset after the base record of the last remaining segment.
    pub(crate) base_end: u64,
    /// An id no snapshot file (complete or not) has used.
    pub(crate) next_snapshot_id: u64,
}

pub(crate) fn recover(dir: &Path, config: &WalConfig) -> Result<Recovered, WalError> {
    let listing = segment::list(dir)?;
    if let Some(w) = listing.segments.windows(2).find(|w| w[1] != w[0] + 1) {
        return Err(WalError::MissingSegment { segment: w[0] + 1 });
    }
    let mut image: Option<Image> = None;
    let mut segments: VecDeque<SegmentInfo> = VecDeque::new();
    let mut base_end = 0;
    for (i, &seq) in listing.segments.iter().enumerate() {
        let is_last = i + 1 == listing.segments.len();
        let path = segment::segment_path(dir, seq);
        let bytes =
            segment::read_bounded(&path, config.segment_read_bytes_max(), "segment_bytes_max")?;
        let mut max_index = LogIndex(0);
        let prev_bytes = segments.back().map(|s| s.bytes);
        let end = segment::scan(&bytes, seq, is_last, |offset, raw| {
            let corrupt = |kind| WalError::Corrupt {
                segment: seq,
                offset,
                kind,
            };
            let record = Record::decode(raw.ty, raw.body)
                .map_err(|e| corrupt(CorruptKind::Undecodable(e.to_string())))?;
            match (&record, &mut image) {
                (Record::Base(base), _) => {
                    if let Some(found) = prev_bytes
                        && found != base.prev_segment_bytes
                    {
                        return Err(corrupt(CorruptKind::PreviousLength {
                            expected: base.prev_segment_bytes,
                            found,
                        }));
                    }
                }
                (Record::Append(entries), _) => {
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
        match end {
            SegmentEnd::Clean { base_end: b } => {
                base_end = b;
                segments.push_back(SegmentInfo {
                    seq,
                    max_index,
                    bytes: bytes.len() as u64,
                });
            }
            SegmentEnd::Torn {
                valid_bytes,
                base_end: b,
            } => {
                // Cut the torn write away now, so that once later segments follow this one
                // its end is clean.
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(WalError::io(&path))?;
                file.set_len(valid_bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(WalError::io(&path))?;
                base_end = b;
                segments.push_back(SegmentInfo {
                    seq,
                    max_index,
                    bytes: valid_bytes,
                });
            }
            SegmentEnd::Unborn => {
                fs::remove_file(&path).map_err(WalError::io(&path))?;
                segment::sync_dir(dir)?;
                // The segment before it, if any, stays the last one; it was synced
                // before this one was created, and `base_end` still describes it.
            }
        }
    }
    let image = image.unwrap_or_default();
    image.check_complete().map_err(|m| {
        let last = segments.back();
        WalError::Corrupt {
            segment: last.map_or(0, |s| s.seq),
            offset: last.map_or(0, |s| s.bytes),
            kind: CorruptKind::Inconsistent(m),
        }
    })?;
    let snapshot_data = match &image.snapshot {
        Some(s) => Some(load_snapshot(dir, s, config)?),
        None => None,
    };
    let keep = image.snapshot.as_ref().map(|s| s.file_id);
    let mut removed = false;
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
    Ok(Recovered {
        image,
        snapshot_data,
        segments,
        base_end,
        next_snapshot_id,
    })
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

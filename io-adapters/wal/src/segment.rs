//! Files of a log directory: names, bounded reads, directory syncs, and the scan of one
//! segment that tells a torn tail from corruption.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use rsm_core::LogIndex;

use crate::error::{CorruptKind, WalError};
use crate::record::{
    RawRecord, RecordType, SEGMENT_HEADER_BYTES, SegmentId, next_valid_record, read_record,
};

const SEGMENT_SUFFIX: &str = ".wal";
const SNAPSHOT_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".snap.tmp";
/// Digits in a file's sequence number or id, zero-padded so names sort in order.
const NAME_DIGITS: usize = 20;
/// The lock file held while a `Wal` has the directory open.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// What the log knows about one segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    pub(crate) seq: u64,
    /// The highest entry index any append in this segment wrote (0 if none): the segment
    /// may be deleted once a later snapshot covers it.
    pub(crate) max_index: LogIndex,
    /// Bytes in use (header and records); for the segment being written, as of its last
    /// sync or recovery (kept current by the writer).
    pub(crate) bytes: u64,
    /// The file's length, fixed at creation: records never go past it.
    pub(crate) file_bytes: u64,
}

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:0NAME_DIGITS$}{SEGMENT_SUFFIX}"))
}

pub(crate) fn snapshot_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:0NAME_DIGITS$}{SNAPSHOT_SUFFIX}"))
}

pub(crate) fn snapshot_temp_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:0NAME_DIGITS$}{TEMP_SUFFIX}"))
}

/// The log's files found in a directory; other files are left alone.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Segment sequence numbers, ascending.
    pub(crate) segments: Vec<u64>,
    /// Snapshot file ids.
    pub(crate) snapshots: Vec<u64>,
    /// Ids of snapshot files whose write never completed.
    pub(crate) temps: Vec<u64>,
}

fn parse_number(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn list(dir: &Path) -> Result<Listing, WalError> {
    let mut listing = Listing::default();
    for item in fs::read_dir(dir).map_err(WalError::io(dir))? {
        let item = item.map_err(WalError::io(dir))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = parse_number(name, TEMP_SUFFIX) {
            listing.temps.push(n);
        } else if let Some(n) = parse_number(name, SNAPSHOT_SUFFIX) {
            listing.snapshots.push(n);
        } else if let Some(n) = parse_number(name, SEGMENT_SUFFIX) {
            listing.segments.push(n);
        }
    }
    listing.segments.sort_unstable();
    Ok(listing)
}

/// Make the directory's entries (files created, renamed or removed) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WalError::io(dir))
}

/// Read a whole file, refusing one longer than `limit` bytes.
pub(crate) fn read_bounded(
    path: &Path,
    limit: u64,
    field: &'static str,
) -> Result<Vec<u8>, WalError> {
    let file = File::open(path).map_err(WalError::io(path))?;
    let len = file.metadata().map_err(WalError::io(path))?.len();
    if len > limit {
        return Err(WalError::FileTooLarge {
            path: path.to_owned(),
            len,
            limit,
            field,
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(WalError::io(path))?;
    Ok(bytes)
}

/// How a scanned segment ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum SegmentEnd {
    /// Valid records up to `used_bytes`, zeros after. `base_end` is the offset after the
    /// base record.
    Clean { used_bytes: u64, base_end: u64 },
    /// The last segment ends in a partial or damaged record with nothing valid after it:
    /// the write that was in flight at a crash. Only `valid_bytes` are durable; the bytes
    /// up to `garbage_end` are what is left of the torn write.
    Torn {
        valid_bytes: u64,
        garbage_end: u64,
        base_end: u64,
    },
}

/// Scan the records of segment `id` (whose header the caller checked), calling `visit`
/// with each valid record and its offset, in order.
///
/// Records end where the zeros the file was created with begin. A bad record at the very
/// end of the last segment is a torn write and ends the scan; a bad record anywhere else
/// (in an earlier segment, or with a valid record somewhere after it) is corruption,
/// reported before anything past it is visited.
pub(crate) fn scan(
    bytes: &[u8],
    id: SegmentId,
    is_last: bool,
    mut visit: impl FnMut(u64, &RawRecord<'_>) -> Result<(), WalError>,
) -> Result<SegmentEnd, WalError> {
    let corrupt = |offset: usize, kind| WalError::Corrupt {
        segment: id.seq,
        offset: offset as u64,
        kind,
    };
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut base_end = None;
    loop {
        let record = match read_record(bytes, id, offset) {
            Ok(record) => record,
            Err(kind) => {
                let rest = bytes.get(offset..).unwrap_or_default();
                let zeros = rest.iter().all(|&b| b == 0);
                let Some(base_end) = base_end else {
                    let kind = if zeros {
                        CorruptKind::MisplacedBase
                    } else {
                        kind
                    };
                    return Err(corrupt(offset, kind));
                };
                if zeros {
                    break;
                }
                // Only the unsynced tail of the last segment may be damaged by a crash,
                // and only if nothing valid was written after the damage.
                if is_last
                    && !matches!(kind, CorruptKind::UnknownType(_))
                    && next_valid_record(bytes, id, offset + 1).is_none()
                {
                    let garbage = rest.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                    return Ok(SegmentEnd::Torn {
                        valid_bytes: offset as u64,
                        garbage_end: (offset + garbage) as u64,
                        base_end,
                    });
                }
                return Err(corrupt(offset, kind));
            }
        };
        let is_base = record.ty == RecordType::Base;
        if is_base != (offset == SEGMENT_HEADER_BYTES) {
            return Err(corrupt(offset, CorruptKind::MisplacedBase));
        }
        visit(offset as u64, &record)?;
        offset = record.end;
        if is_base {
            base_end = Some(offset as u64);
        }
    }
    Ok(SegmentEnd::Clean {
        used_bytes: offset as u64,
        base_end: base_end.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BaseRecord, begin_record, seal_record, segment_header};

    const ID: SegmentId = SegmentId { log: 9, seq: 1 };

    fn segment_with(records: &[(u8, &[u8])]) -> Vec<u8> {
        let mut bytes = segment_header(ID, 0).to_vec();
        let base = BaseRecord {
            prev_segment_bytes: 0,
            hard_state: Default::default(),
            snapshot: None,
        };
        let start = begin_record(&mut bytes, RecordType::Base, &base).unwrap();
        seal_record(&mut bytes[start..], ID, start as u64);
        for (ty, body) in records {
            let start = bytes.len();
            bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, *ty]);
            bytes.extend_from_slice(body);
            seal_record(&mut bytes[start..], ID, start as u64);
        }
        bytes.resize(bytes.len() + 64, 0);
        bytes
    }

    fn count(bytes: &[u8], is_last: bool) -> (Result<SegmentEnd, WalError>, usize) {
        let mut n = 0;
        let end = scan(bytes, ID, is_last, |_, _| {
            n += 1;
            Ok(())
        });
        (end, n)
    }

    #[test]
    fn a_whole_record_of_unknown_type_is_corruption_even_at_the_tail() {
        let bytes = segment_with(&[(9, b"from a newer version")]);
        let (end, visited) = count(&bytes, true);
        assert!(matches!(
            end,
            Err(WalError::Corrupt {
                kind: CorruptKind::UnknownType(9),
                ..
            })
        ));
        assert_eq!(visited, 1, "only the base record before it was visited");
    }

    #[test]
    fn a_missing_base_record_is_corruption_even_in_the_last_segment() {
        let mut bytes = segment_header(ID, 0).to_vec();
        bytes.resize(200, 0);
        for is_last in [true, false] {
            assert!(matches!(
                count(&bytes, is_last).0,
                Err(WalError::Corrupt {
                    kind: CorruptKind::MisplacedBase,
                    ..
                })
            ));
        }
    }

    #[test]
    fn zeros_end_the_records_and_garbage_after_them_is_a_torn_tail() {
        let mut bytes = segment_with(&[(4, b"x")]);
        let (end, visited) = count(&bytes, false);
        let Ok(SegmentEnd::Clean { used_bytes, .. }) = end else {
            panic!("{end:?}")
        };
        assert_eq!(visited, 2);
        bytes[used_bytes as usize + 3] = 7;
        assert!(matches!(
            count(&bytes, true).0,
            Ok(SegmentEnd::Torn { valid_bytes, garbage_end, .. })
                if valid_bytes == used_bytes && garbage_end == used_bytes + 4
        ));
        assert!(
            count(&bytes, false).0.is_err(),
            "only the last segment tears"
        );
    }

    #[test]
    fn a_second_base_record_is_corruption() {
        let mut bytes = segment_with(&[]);
        bytes.truncate(bytes.len() - 64);
        let base_len = bytes.len() - SEGMENT_HEADER_BYTES;
        let again = bytes[SEGMENT_HEADER_BYTES..].to_vec();
        let start = bytes.len();
        bytes.extend_from_slice(&again);
        seal_record(&mut bytes[start..start + base_len], ID, start as u64);
        assert!(matches!(
            count(&bytes, true).0,
            Err(WalError::Corrupt {
                kind: CorruptKind::MisplacedBase,
                ..
            })
        ));
    }
}

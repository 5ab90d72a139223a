//! On-disk framing of segments and records.
//!
//! A segment file is a 36-byte header followed by records, then zeros up to the length the
//! header declares (the file is created at that length, see the crate docs):
//!
//! ```text
//! header: magic "RSMWAL" | version u16 | segment sequence u64 | log id u64
//!         | file bytes u64 | crc32c u32 of the first 32 bytes
//! record: body length u32 | crc32c u32 | type u8 | body
//! ```
//!
//! Integers are little-endian. The record checksum covers the log id, the segment sequence
//! number and the record's byte offset as well as its type and body, so a record is valid
//! only where it was written: a stale record left in a reused file, a record-shaped run of
//! bytes inside an entry's payload, or a record copied from another log directory never
//! passes for a live one. Bodies are encoded with `rsm_core::encode_body`. No valid record
//! starts with a zero type byte, so the zeros after the last record end the log.

use rsm_core::{CodecError, Entry, HardState, LogIndex, SnapshotMeta, encode_body};
use serde::{Deserialize, Serialize};

use crate::error::CorruptKind;

/// Bytes in a segment header.
pub(crate) const SEGMENT_HEADER_BYTES: usize = 36;
/// Bytes in a record header (length, checksum, type).
pub(crate) const RECORD_HEADER_BYTES: usize = 9;
/// The on-disk format version this build writes and reads. Version 1 had no manifest and
/// no declared segment length.
pub(crate) const FORMAT_VERSION: u16 = 2;
const SEGMENT_MAGIC: [u8; 6] = *b"RSMWAL";

/// Upper bound on the encoded size of one entry besides its payload: index, epoch and
/// payload length as varints of at most 10 bytes each, plus the kind.
pub(crate) const ENTRY_OVERHEAD_BYTES_MAX: u64 = 32;
/// Upper bound on the encoded length prefix of a sequence.
pub(crate) const SEQ_PREFIX_BYTES_MAX: u64 = 10;

/// What a record holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordType {
    /// The first record of every segment: the state a replay may start from.
    Base = 1,
    /// Consecutive entries, discarding any at their first index or above.
    Append = 2,
    /// Discard entries from an index on.
    Truncate = 3,
    /// A new hard state.
    HardState = 4,
    /// A snapshot, whose data lives in its own file.
    Snapshot = 5,
    /// Slots in ascending order, each replacing what its index held, discarding nothing
    /// else (`Persist::Accept`).
    Accept = 6,
}

impl RecordType {
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Base,
            2 => Self::Append,
            3 => Self::Truncate,
            4 => Self::HardState,
            5 => Self::Snapshot,
            6 => Self::Accept,
            _ => return None,
        })
    }
}

/// Where a snapshot's data lives and how to check it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotRef {
    pub(crate) meta: SnapshotMeta,
    /// Names the data file.
    pub(crate) file_id: u64,
    pub(crate) data_bytes: u64,
    pub(crate) data_crc: u32,
}

/// Body of a [`RecordType::Snapshot`] record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotRecord {
    pub(crate) snapshot: SnapshotRef,
    /// Whether the entries above the snapshot survive it. Always written `true`: a
    /// snapshot discards only what it covers (see `Persist::Snapshot`). Logs written
    /// before that rule recorded `false` when the log did not hold the snapshot's index
    /// with its epoch, and replay still clears their log there, as it was then.
    pub(crate) keep_suffix: bool,
}

/// Body of a [`RecordType::Base`] record. Replaying it over the full history changes
/// nothing; replaying from it alone gives the hard state and snapshot in force when the
/// segment was opened, which is what lets older segments be deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BaseRecord {
    /// Length of the previous segment when it was closed; 0 for the first segment.
    pub(crate) prev_segment_bytes: u64,
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<SnapshotRef>,
}

/// A decoded record body.
#[derive(Clone, Debug)]
pub(crate) enum Record {
    Base(BaseRecord),
    Append(Vec<Entry>),
    Truncate(LogIndex),
    HardState(HardState),
    Snapshot(SnapshotRecord),
    Accept(Vec<Entry>),
}

impl Record {
    pub(crate) fn decode(ty: RecordType, body: &[u8]) -> Result<Self, CodecError> {
        use rsm_core::decode_body;
        Ok(match ty {
            RecordType::Base => Self::Base(decode_body(body)?),
            RecordType::Append => Self::Append(decode_body(body)?),
            RecordType::Truncate => Self::Truncate(decode_body(body)?),
            RecordType::HardState => Self::HardState(decode_body(body)?),
            RecordType::Snapshot => Self::Snapshot(decode_body(body)?),
            RecordType::Accept => Self::Accept(decode_body(body)?),
        })
    }
}

/// Which log and which segment a file belongs to: every header and record checksum covers
/// both, so bytes from another directory or another position never pass for this log's.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentId {
    /// The random id the log directory was given at creation (kept in its manifest).
    pub(crate) log: u64,
    /// The segment's sequence number (its file name).
    pub(crate) seq: u64,
}

/// What a valid segment header declares.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) log: u64,
    pub(crate) seq: u64,
    /// The file's length, fixed when it was created.
    pub(crate) file_bytes: u64,
}

/// The header of a segment `id` whose file is `file_bytes` long.
pub(crate) fn segment_header(id: SegmentId, file_bytes: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    h[..6].copy_from_slice(&SEGMENT_MAGIC);
    h[6..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[8..16].copy_from_slice(&id.seq.to_le_bytes());
    h[16..24].copy_from_slice(&id.log.to_le_bytes());
    h[24..32].copy_from_slice(&file_bytes.to_le_bytes());
    let crc = crc32c::crc32c(&h[..32]);
    h[32..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Parse the header at the front of a segment file's bytes. The caller compares the log
/// id, sequence number and length with what it expects, to name what is wrong.
pub(crate) fn parse_segment_header(bytes: &[u8]) -> Result<SegmentHeader, CorruptKind> {
    let Some(h) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return Err(CorruptKind::Truncated);
    };
    if h[..6] != SEGMENT_MAGIC {
        return Err(CorruptKind::BadHeader);
    }
    let version = u16::from_le_bytes([h[6], h[7]]);
    if version != FORMAT_VERSION {
        return Err(CorruptKind::UnsupportedVersion(version));
    }
    let crc = u32::from_le_bytes([h[32], h[33], h[34], h[35]]);
    if crc != crc32c::crc32c(&h[..32]) {
        return Err(CorruptKind::BadHeader);
    }
    Ok(SegmentHeader {
        seq: u64_at(h, 8),
        log: u64_at(h, 16),
        file_bytes: u64_at(h, 24),
    })
}

/// Append an unsealed record (header placeholder and body) to `buf`; returns where it
/// starts. [`seal_record`] fills in the header once the record's position is final.
pub(crate) fn begin_record<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    ty: RecordType,
    body: &T,
) -> Result<usize, CodecError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    buf[start + 8] = ty as u8;
    if let Err(e) = encode_body(body, buf) {
        buf.truncate(start);
        return Err(e);
    }
    Ok(start)
}

/// Fill in the length and checksum of `record` (header and body), which will sit at byte
/// `offset` of segment `id`.
pub(crate) fn seal_record(record: &mut [u8], id: SegmentId, offset: u64) {
    let len = (record.len() - RECORD_HEADER_BYTES) as u32;
    let crc = record_crc(id, offset, record[8], &record[RECORD_HEADER_BYTES..]);
    record[..4].copy_from_slice(&len.to_le_bytes());
    record[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn record_crc(id: SegmentId, offset: u64, ty: u8, body: &[u8]) -> u32 {
    let mut position = [0u8; 25];
    position[..8].copy_from_slice(&id.log.to_le_bytes());
    position[8..16].copy_from_slice(&id.seq.to_le_bytes());
    position[16..24].copy_from_slice(&offset.to_le_bytes());
    position[24] = ty;
    crc32c::crc32c_append(crc32c::crc32c(&position), body)
}

/// A record found valid at some offset.
#[derive(Debug)]
pub(crate) struct RawRecord<'a> {
    pub(crate) ty: RecordType,
    pub(crate) body: &'a [u8],
    /// Offset just past the record.
    pub(crate) end: usize,
}

/// Read the record at `offset` of segment `id`.
///
/// No length limit from the configuration applies here: the segment is already in memory,
/// and a limit that shrank since the record was written must not turn a durable record at
/// the tail into what looks like a torn one.
pub(crate) fn read_record(
    bytes: &[u8],
    id: SegmentId,
    offset: usize,
) -> Result<RawRecord<'_>, CorruptKind> {
    let Some(h) = bytes.get(offset..offset + RECORD_HEADER_BYTES) else {
        return Err(CorruptKind::Truncated);
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let ty = h[8];
    let start = offset + RECORD_HEADER_BYTES;
    let Some(body) = bytes.get(start..start + len as usize) else {
        return Err(CorruptKind::Truncated);
    };
    if crc != record_crc(id, offset as u64, ty, body) {
        return Err(CorruptKind::BadChecksum);
    }
    let Some(ty) = RecordType::from_u8(ty) else {
        return Err(CorruptKind::UnknownType(ty));
    };
    Ok(RawRecord {
        ty,
        body,
        end: start + len as usize,
    })
}

/// The first offset at or after `from` holding a valid record, if any. Recovery uses it to
/// tell a torn tail (nothing valid follows) from damage in the middle of the log.
pub(crate) fn next_valid_record(bytes: &[u8], id: SegmentId, from: usize) -> Option<usize> {
    let last_start = bytes.len().checked_sub(RECORD_HEADER_BYTES)?;
    (from..=last_start).find(|&offset| {
        // Cheap filter first: most offsets fail on the type byte.
        RecordType::from_u8(bytes[offset + 8]).is_some() && read_record(bytes, id, offset).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: u64 = 0x5eed;

    fn id(seq: u64) -> SegmentId {
        SegmentId { log: LOG, seq }
    }

    fn sealed(seq: u64, offset: u64, ty: RecordType, body: &impl Serialize) -> Vec<u8> {
        let mut buf = Vec::new();
        begin_record(&mut buf, ty, body).unwrap();
        seal_record(&mut buf, id(seq), offset);
        buf
    }

    #[test]
    fn a_record_reads_back_only_where_it_was_written() {
        let mut file = segment_header(id(7), 4096).to_vec();
        let at = file.len() as u64;
        file.extend(sealed(7, at, RecordType::Truncate, &LogIndex(4)));
        let rec = read_record(&file, id(7), at as usize).unwrap();
        assert_eq!(rec.ty, RecordType::Truncate);
        assert_eq!(rec.end, file.len());
        assert!(matches!(
            Record::decode(rec.ty, rec.body),
            Ok(Record::Truncate(LogIndex(4)))
        ));
        assert_eq!(
            read_record(&file, id(8), at as usize).unwrap_err(),
            CorruptKind::BadChecksum,
            "the same bytes in another segment are not a record"
        );
        let other_log = SegmentId { log: 1, seq: 7 };
        assert_eq!(
            read_record(&file, other_log, at as usize).unwrap_err(),
            CorruptKind::BadChecksum,
            "the same bytes in another log directory are not a record"
        );
        let mut moved = file.clone();
        moved.insert(at as usize, 0);
        assert_eq!(
            read_record(&moved, id(7), at as usize + 1).unwrap_err(),
            CorruptKind::BadChecksum,
            "the same bytes at another offset are not a record"
        );
    }

    #[test]
    fn header_carries_magic_version_sequence_log_and_length() {
        let h = segment_header(id(3), 4096);
        assert_eq!(
            parse_segment_header(&h),
            Ok(SegmentHeader {
                log: LOG,
                seq: 3,
                file_bytes: 4096
            })
        );
        assert_eq!(parse_segment_header(&h[..35]), Err(CorruptKind::Truncated));
        let mut flipped = h;
        flipped[20] ^= 1;
        assert_eq!(parse_segment_header(&flipped), Err(CorruptKind::BadHeader));
        let mut v3 = h;
        v3[6] = 3;
        assert_eq!(
            parse_segment_header(&v3),
            Err(CorruptKind::UnsupportedVersion(3))
        );
    }

    #[test]
    fn short_records_are_refused() {
        let rec = sealed(1, 0, RecordType::HardState, &HardState::default());
        assert_eq!(
            read_record(&rec[..rec.len() - 1], id(1), 0).unwrap_err(),
            CorruptKind::Truncated
        );
        assert_eq!(next_valid_record(&rec, id(1), 0), Some(0));
        assert_eq!(next_valid_record(&rec, id(1), 1), None);
    }
}

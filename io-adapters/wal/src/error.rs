//! Typed errors: what went wrong, where, and what the operator can do about it.

use std::io;
use std::path::PathBuf;

use rsm_core::{CodecError, PersistError};

/// Why a stored record or segment was judged corrupt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CorruptKind {
    /// The segment header (magic, version, sequence number or its checksum) is wrong.
    #[error("bad segment header")]
    BadHeader,
    /// The segment was written by a format version this build does not read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u16),
    /// A record's length field points past the end of the file.
    #[error("record runs past the end of the segment")]
    Truncated,
    /// A record's checksum does not match its contents.
    #[error("record checksum mismatch")]
    BadChecksum,
    /// A record has a valid checksum but a type this build does not know.
    #[error("unknown record type {0}")]
    UnknownType(u8),
    /// A record has a valid checksum but its body does not decode.
    #[error("record body does not decode: {0}")]
    Undecodable(String),
    /// A segment's base record is missing, or a base record appears after the start.
    #[error("base record out of place")]
    MisplacedBase,
    /// The previous segment is not as long as this segment says it was when it was closed.
    #[error("previous segment has {found} bytes but was closed at {expected} bytes")]
    PreviousLength {
        /// The length recorded when the previous segment was closed.
        expected: u64,
        /// The length found on disk.
        found: u64,
    },
    /// Records are individually valid but contradict each other.
    #[error("inconsistent log: {0}")]
    Inconsistent(String),
}

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system call failed. After an I/O error while writing or syncing, the
    /// log refuses further work ([`WalError::Poisoned`]); reopen it to recover.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The persist operation is invalid for the current durable state; nothing was
    /// written. This is the same error `Durable::apply` returns for the operation.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// Stored data is damaged somewhere other than the unsynced tail of the log. Nothing
    /// at or after this point was applied. Restore the directory from a replica or a
    /// backup; the log cannot be opened as it is.
    #[error(
        "corrupt log segment {segment} at byte offset {offset}: {kind}; \
         restore this replica's directory from a peer or a backup"
    )]
    Corrupt {
        /// Sequence number of the segment (its file name).
        segment: u64,
        /// Byte offset of the bad record within the segment file.
        offset: u64,
        /// What is wrong.
        kind: CorruptKind,
    },
    /// A segment the manifest lists is missing from the directory. When it is the newest
    /// one, every write made durable since it was started is gone, hard state included.
    #[error(
        "log segment {path} is missing: the manifest lists segments {oldest} to {newest}, so \
         the entries and hard state written there are lost; do not restart this node on this \
         directory (see the README: replace a node whose disk lost data)"
    )]
    MissingSegment {
        /// The missing file.
        path: PathBuf,
        /// Sequence number of the missing segment.
        segment: u64,
        /// The oldest segment the manifest lists.
        oldest: u64,
        /// The newest segment the manifest lists.
        newest: u64,
    },
    /// Segment files exist but the manifest that says which segments make up the log does
    /// not, so a lost newest segment could not be told from a complete log.
    #[error(
        "log directory {dir} holds segment files but no MANIFEST; it was damaged or written \
         by an older version, and whether newer segments were lost cannot be told"
    )]
    MissingManifest {
        /// The log directory.
        dir: PathBuf,
    },
    /// The manifest is unreadable.
    #[error("log manifest {path} is damaged: {reason}")]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A segment file belongs to another log directory (it was copied or moved here).
    #[error(
        "log segment {path} belongs to another log directory (log id {found:#018x}, this \
         directory is {expected:#018x})"
    )]
    ForeignSegment {
        /// The segment file.
        path: PathBuf,
        /// This directory's log id.
        expected: u64,
        /// The log id in the segment's header.
        found: u64,
    },
    /// A segment file is not the length it was created with: its end was cut off (records
    /// that were durable may be gone) or something was appended to it.
    #[error(
        "log segment {path} is {found} bytes long but was created with {expected} bytes: \
         {cut}; do not restart this node on this directory (see the README: replace a node \
         whose disk lost data)",
        cut = if found < expected { "its end was cut off, with any records written there" }
              else { "bytes were added after its end" }
    )]
    SegmentLength {
        /// The segment file.
        path: PathBuf,
        /// The length its header declares.
        expected: u64,
        /// Its length on disk.
        found: u64,
    },
    /// A segment file outside the range the manifest lists, other than the leftovers of an
    /// interrupted rotation or compaction.
    #[error(
        "log segment {path} is not part of the log: the manifest lists segments {oldest} to \
         {newest}; move the file away if it does not belong here"
    )]
    StraySegment {
        /// The segment file.
        path: PathBuf,
        /// The oldest segment the manifest lists.
        oldest: u64,
        /// The newest segment the manifest lists.
        newest: u64,
    },
    /// The recovered hard state says entries through `commit` are committed, but the log
    /// (with its snapshot) ends before that: records this replica made durable are gone.
    #[error(
        "log directory {dir}: the hard state records commit index {commit} but the log ends \
         at {last_index}; entries {first_missing} to {commit} were lost; do not restart this \
         node on this directory (see the README: replace a node whose disk lost data)",
        first_missing = last_index + 1
    )]
    HardStateAhead {
        /// The log directory.
        dir: PathBuf,
        /// The commit index in the hard state.
        commit: u64,
        /// The last index the log holds.
        last_index: u64,
    },
    /// A write would leave a commit index beyond the end of the log (a hard state ahead of
    /// the entries, a truncation or snapshot below it); nothing was written. A host that
    /// follows the contract never asks for this, and recovery refuses such a state.
    #[error(
        "refused: the write would leave commit index {commit} beyond the log's end {last_index}"
    )]
    CommitBeyondLog {
        /// The commit index.
        commit: u64,
        /// The last index the log would hold.
        last_index: u64,
    },
    /// The snapshot file the log refers to is missing, has the wrong length or fails
    /// its checksum.
    #[error("snapshot file {path} is unusable: {reason}; restore it from a peer or a backup")]
    BadSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file is larger than the configuration allows reading into memory.
    #[error(
        "{path} holds {len} bytes, more than this configuration reads ({limit}); raise {field}"
    )]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The configured bound it exceeds.
        limit: u64,
        /// The configuration field to raise.
        field: &'static str,
    },
    /// One entry is too large to fit in a record; nothing was written.
    #[error(
        "entry {index} needs up to {len} bytes, more than record_bytes_max ({limit}); \
         raise record_bytes_max or lower the proposal size limit"
    )]
    EntryTooLarge {
        /// The entry's index.
        index: u64,
        /// Its worst-case encoded size.
        len: u64,
        /// The configured record limit.
        limit: u64,
    },
    /// A record (hard state or snapshot metadata) is too large; nothing was written.
    #[error("record of {len} bytes exceeds record_bytes_max ({limit}); raise record_bytes_max")]
    RecordTooLarge {
        /// The encoded body length.
        len: u64,
        /// The configured record limit.
        limit: u64,
    },
    /// Snapshot data exceeds the configured limit; nothing was written.
    #[error(
        "snapshot of {len} bytes exceeds snapshot_bytes_max ({limit}); raise snapshot_bytes_max"
    )]
    SnapshotTooLarge {
        /// The snapshot's length.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A value could not be encoded.
    #[error("encoding failed: {0}")]
    Encode(#[from] CodecError),
    /// Another `Wal` (in this or another process) has the directory open.
    #[error("log directory {path} is locked by another open Wal; close it first")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The configuration is unusable.
    #[error("invalid WalConfig: {0}")]
    Config(String),
    /// An earlier I/O error left the unsynced state unknown; drop this `Wal` and reopen the
    /// directory, which recovers the durable prefix.
    #[error("the log hit an I/O error earlier and refuses further work; reopen it to recover")]
    Poisoned,
}

impl WalError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> WalError {
        let path = path.into();
        move |source| WalError::Io { path, source }
    }

    /// True if the error left the log unchanged, so the caller may carry on with other
    /// writes (an invalid operation or an oversized one).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            WalError::Persist(_)
                | WalError::CommitBeyondLog { .. }
                | WalError::EntryTooLarge { .. }
                | WalError::RecordTooLarge { .. }
                | WalError::SnapshotTooLarge { .. }
        )
    }
}

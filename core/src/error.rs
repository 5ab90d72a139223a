//! Typed errors of the contract.

use crate::ids::NodeId;
use crate::membership::Phase;

/// Errors from decoding bytes that came from outside the process.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// More bytes are needed before a whole frame is available.
    #[error("incomplete frame: need {needed} more bytes")]
    Incomplete {
        /// How many more bytes are needed at least.
        needed: usize,
    },
    /// The frame's version byte is not one this build understands.
    #[error("unsupported frame version {found} (expected {expected})")]
    BadVersion {
        /// The version byte found.
        found: u8,
        /// The version this build speaks.
        expected: u8,
    },
    /// The frame's declared length exceeds the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max_bytes} bytes")]
    TooLarge {
        /// The declared (or encoded) length.
        len: usize,
        /// The configured maximum.
        max_bytes: usize,
    },
    /// The body does not decode as the expected type.
    #[error("malformed frame body: {0}")]
    Malformed(String),
    /// The body decoded but left unread bytes behind.
    #[error("frame body has {0} trailing bytes")]
    TrailingBytes(usize),
}

/// Errors from rebuilding a replica from durable state or from an unusable configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// A durable entry does not directly follow its predecessor (or the snapshot), in a
    /// protocol whose log has no holes.
    #[error("durable entry {index} follows index {previous}: the log must be consecutive")]
    LogGap {
        /// The entry's index.
        index: u64,
        /// The index before it (the previous entry's, or the snapshot's).
        previous: u64,
    },
    /// A durable entry's epoch is below its predecessor's.
    #[error("durable entry {index} has epoch {epoch}, below its predecessor's epoch {previous}")]
    EpochRegression {
        /// The entry's index.
        index: u64,
        /// The entry's epoch.
        epoch: u64,
        /// The predecessor's epoch.
        previous: u64,
    },
    /// The durable hard state's epoch is below the epoch of the last durable entry.
    #[error("durable hard state has epoch {epoch}, below the last entry's epoch {entry_epoch}")]
    HardStateBehindLog {
        /// The hard state's epoch.
        epoch: u64,
        /// The last entry's epoch.
        entry_epoch: u64,
    },
    /// The durable state holds a snapshot, which this protocol never writes.
    #[error(
        "durable state holds a snapshot through index {index}, which this protocol never writes"
    )]
    UnexpectedSnapshot {
        /// The snapshot's last index.
        index: u64,
    },
    /// The hard state's protocol-specific bytes (`HardState::extra`) do not decode.
    #[error("durable hard state holds {len} protocol-specific bytes that do not decode")]
    MalformedHardState {
        /// How many bytes it holds.
        len: usize,
    },
    /// The configuration has no voters at all.
    #[error("the configuration has no voters")]
    NoVoters,
    /// The replica's own id is in no role of its configuration.
    #[error("node {id} is not a member of its configuration")]
    NotMember {
        /// The replica's id.
        id: NodeId,
    },
    /// The configuration's quorum sizes do not make a valid quorum system.
    #[error("invalid quorum system: {0}")]
    Quorum(#[from] QuorumError),
    /// A configuration field breaks a rule of the protocol.
    #[error("invalid configuration field `{field}`: {rule}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
}

/// Quorum sizes that do not make a valid quorum system.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// A quorum size is zero or larger than the number of voters.
    #[error("phase {phase:?} quorum of {size} is not between 1 and the {voters} voters")]
    SizeOutOfRange {
        /// The phase whose size is wrong.
        phase: Phase,
        /// The size given.
        size: u32,
        /// The number of voters in that half.
        voters: usize,
    },
    /// Some phase-1 quorum could miss some phase-2 quorum.
    #[error(
        "phase-1 quorum of {phase1} and phase-2 quorum of {phase2} need not intersect among \
         {voters} voters: phase1 + phase2 must exceed the number of voters"
    )]
    NoIntersection {
        /// The phase-1 size.
        phase1: u32,
        /// The phase-2 size.
        phase2: u32,
        /// The number of voters.
        voters: usize,
    },
}

/// Errors from applying a persist operation to a durable image.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// An append would leave a hole in the log.
    #[error("append at {first} leaves a gap after last index {last}")]
    Gap {
        /// First index of the append.
        first: u64,
        /// Last durable index before it.
        last: u64,
    },
    /// Appended entries are not consecutive.
    #[error("appended entries are not consecutive at index {0}")]
    NotConsecutive(u64),
    /// This storage does not implement the operation (a storage built for log-shaped
    /// protocols only); it refuses it before writing anything.
    #[error("this storage does not implement `{op}` writes")]
    Unsupported {
        /// The operation refused.
        op: &'static str,
    },
    /// Accepted slots are not in strictly ascending index order.
    #[error("accepted slots are not in ascending order at index {0}")]
    NotAscending(u64),
    /// An append, slot write or truncation reaches below the snapshot.
    #[error("index {index} is at or below the snapshot index {snapshot}")]
    BelowSnapshot {
        /// The offending index.
        index: u64,
        /// The snapshot's last index.
        snapshot: u64,
    },
    /// A snapshot would replace a newer one: the state it holds never moves backwards.
    #[error("a snapshot through {index} would replace the newer one through {snapshot}")]
    SnapshotBehind {
        /// The new snapshot's last index.
        index: u64,
        /// The stored snapshot's last index.
        snapshot: u64,
    },
}

//! Typed errors of the contract.

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

/// Errors from rebuilding a replica from durable state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The durable log is not contiguous or does not follow the snapshot.
    #[error("durable log is inconsistent: {0}")]
    InconsistentLog(String),
    /// The durable hard state does not decode or contradicts the log.
    #[error("durable hard state is invalid: {0}")]
    BadHardState(String),
    /// The configuration is unusable (for example, the node is in no membership).
    #[error("invalid configuration: {0}")]
    BadConfig(String),
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
    /// An append or truncation reaches below the snapshot.
    #[error("index {index} is at or below the snapshot index {snapshot}")]
    BelowSnapshot {
        /// The offending index.
        index: u64,
        /// The snapshot's last index.
        snapshot: u64,
    },
}

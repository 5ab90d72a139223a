//! Log entries and snapshot metadata.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::{Epoch, LogIndex};
use crate::membership::Membership;

/// What a log entry carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// A client command for the state machine; `payload` is opaque to the protocol.
    Command,
    /// An empty entry a new leader appends to commit entries of earlier epochs.
    Noop,
    /// A membership change; `payload` is the encoded [`Membership`] (see
    /// [`Entry::membership`]).
    Config,
}

/// One log entry. Payloads are reference-counted: cloning an entry never copies its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log (1-based).
    pub index: LogIndex,
    /// The epoch in which a leader created this entry.
    pub epoch: Epoch,
    /// What the payload means.
    pub kind: EntryKind,
    /// The command bytes, the encoded membership, or empty for a no-op.
    pub payload: Bytes,
}

impl Entry {
    /// A command entry.
    pub fn command(index: LogIndex, epoch: Epoch, payload: Bytes) -> Self {
        Self {
            index,
            epoch,
            kind: EntryKind::Command,
            payload,
        }
    }

    /// A no-op entry.
    pub fn noop(index: LogIndex, epoch: Epoch) -> Self {
        Self {
            index,
            epoch,
            kind: EntryKind::Noop,
            payload: Bytes::new(),
        }
    }

    /// A configuration entry carrying `membership`.
    pub fn config(index: LogIndex, epoch: Epoch, membership: &Membership) -> Self {
        let payload =
            Bytes::from(postcard::to_allocvec(membership).expect("membership always serializes"));
        Self {
            index,
            epoch,
            kind: EntryKind::Config,
            payload,
        }
    }

    /// The membership carried by a `Config` entry; `None` for other kinds or a payload that
    /// does not decode (which a correct peer never produces).
    pub fn membership(&self) -> Option<Membership> {
        match self.kind {
            EntryKind::Config => postcard::from_bytes(&self.payload).ok(),
            _ => None,
        }
    }

    /// Bytes this entry accounts for in size limits: its payload plus a fixed header estimate.
    #[inline]
    pub fn size_bytes(&self) -> usize {
        self.payload.len() + ENTRY_HEADER_BYTES
    }
}

/// The per-entry overhead counted by [`Entry::size_bytes`], so that empty entries still
/// consume part of a byte budget.
pub const ENTRY_HEADER_BYTES: usize = 24;

/// Describes the log prefix a snapshot replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last log index the snapshot includes.
    pub index: LogIndex,
    /// The epoch of the entry at `index`.
    pub epoch: Epoch,
    /// The membership in force at `index`.
    pub membership: Membership,
}

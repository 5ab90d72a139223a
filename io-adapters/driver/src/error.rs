//! What a client and the node owner can be told went wrong.

use rsm_core::{CodecError, LogIndex, NodeId, RejectReason, RestoreError};

/// Why a client request did not complete with a result.
///
/// Each error is either *definite* (the request did not and will not take effect) or
/// *indefinite* (it may have taken effect, or may still); see [`ClientError::is_definite`].
/// A definite error is never reported for something that might have happened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The replica refused the request, or the driver did because too many requests are
    /// pending (`Rejected(RejectReason::Busy)`). Definite unless the reason is
    /// `LeadershipLost`.
    #[error("request refused: {0}")]
    Rejected(RejectReason),
    /// A different entry was committed where the proposal had been appended, so the
    /// proposal was discarded. Definite.
    #[error("another entry committed at index {index}; the proposal was discarded")]
    Superseded {
        /// Where the proposal had been appended.
        index: LogIndex,
    },
    /// The node was not running when the request arrived. Definite.
    #[error("the node is not running")]
    NotRunning,
    /// No answer within `request_timeout_ticks`. Indefinite.
    #[error("no answer in time; the request may still take effect")]
    Timeout,
    /// The node stopped with the request in flight. Indefinite.
    #[error("the node stopped with the request in flight; outcome unknown")]
    Shutdown,
    /// A snapshot installed from a peer covered the proposal's index, so whether it was
    /// the entry committed there is not known. Indefinite.
    #[error("a snapshot covered index {index}; outcome unknown")]
    OutcomeUnknown {
        /// Where the proposal had been appended.
        index: LogIndex,
    },
}

impl ClientError {
    /// True when the request certainly did not and will not take effect.
    pub fn is_definite(&self) -> bool {
        match self {
            ClientError::Rejected(reason) => reason.is_definite(),
            ClientError::Superseded { .. } | ClientError::NotRunning => true,
            ClientError::Timeout | ClientError::Shutdown | ClientError::OutcomeUnknown { .. } => {
                false
            }
        }
    }

    /// The leader the answering replica believes in, if the error names one.
    pub fn leader_hint(&self) -> Option<NodeId> {
        match self {
            ClientError::Rejected(reason) => reason.leader_hint(),
            _ => None,
        }
    }
}

/// Why a node stopped. Every variant is fatal: the node acts on nothing after it, so that
/// nothing that may not be durable is ever acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum NodeError<E: std::error::Error + 'static> {
    /// Storage refused a write.
    #[error("storage write failed: {0}")]
    Write(#[source] E),
    /// Storage failed to make writes durable.
    #[error("storage sync failed: {0}")]
    Sync(#[source] E),
    /// The state machine could not load a snapshot the replica installed or restarted from.
    #[error("state machine could not restore a snapshot: {0}")]
    SnapshotRestore(#[source] CodecError),
    /// The replica could not be rebuilt from durable state.
    #[error("replica could not restore: {0}")]
    Restore(#[source] RestoreError),
    /// The node had already stopped after an earlier fatal error.
    #[error("the node has stopped after an earlier fatal error")]
    Stopped,
}

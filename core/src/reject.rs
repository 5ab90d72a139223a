//! Why a request was refused, and whether the refusal is definite.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

/// Why an automaton refused a proposal, read or reconfiguration.
///
/// Each reason is either *definite* (the request did not and will not take effect, so a
/// client may report failure) or *indefinite* (it may have taken effect, so a client must
/// report an unknown outcome or retry under its session). The linearizability checker
/// relies on definite reasons being true.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum RejectReason {
    /// This replica is not the leader; `hint` names the leader it believes in, if any.
    #[error("not the leader ({})", leader_known(*hint))]
    NotLeader {
        /// The leader this replica last heard from.
        hint: Option<NodeId>,
    },
    /// A leadership transfer is in progress; retry at the new leader.
    #[error("leadership transfer in progress (to {target})")]
    TransferInProgress {
        /// The transfer's target.
        target: NodeId,
    },
    /// The command exceeds the configured maximum size.
    #[error("command of {bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    TooLarge {
        /// Size of the refused command.
        bytes: usize,
        /// The configured limit.
        limit_bytes: usize,
    },
    /// Too much is proposed but not yet committed; back off and retry.
    #[error("too much uncommitted data in flight; retry later")]
    Busy,
    /// This replica has been removed from the cluster.
    #[error("this replica was removed from the cluster")]
    Removed,
    /// Another configuration change has not committed yet, or the leader has not yet
    /// committed an entry of its own epoch.
    #[error("a configuration change is already in progress")]
    ConfigChangeInProgress,
    /// The requested configuration is invalid (for example, no voters).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The node named by the request (for example a leadership transfer's target) is not
    /// a voter of the current configuration.
    #[error("{id} is not a voter of the current configuration")]
    NotVoter {
        /// The node named.
        id: NodeId,
    },
    /// The automaton does not offer this operation.
    #[error("operation not supported by this protocol")]
    Unsupported,
    /// Leadership was lost after the request was accepted; it may still commit.
    #[error("leadership lost with the request in flight; outcome unknown")]
    LeadershipLost {
        /// The new leader, if known.
        hint: Option<NodeId>,
    },
}

/// How a refusal names the leader it believes in, for people to read.
fn leader_known(hint: Option<NodeId>) -> String {
    match hint {
        Some(leader) => format!("the leader is {leader}"),
        None => "no leader is known".to_string(),
    }
}

impl RejectReason {
    /// True when the request certainly did not and will not take effect.
    pub fn is_definite(&self) -> bool {
        !matches!(self, RejectReason::LeadershipLost { .. })
    }

    /// The leader the rejecting replica believes in, if the reason carries one.
    pub fn leader_hint(&self) -> Option<NodeId> {
        match self {
            RejectReason::NotLeader { hint } | RejectReason::LeadershipLost { hint } => *hint,
            RejectReason::TransferInProgress { target } => Some(*target),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_leadership_lost_is_indefinite() {
        assert!(RejectReason::NotLeader { hint: None }.is_definite());
        assert!(RejectReason::Busy.is_definite());
        assert!(
            !RejectReason::LeadershipLost {
                hint: Some(NodeId(2))
            }
            .is_definite()
        );
        assert_eq!(
            RejectReason::LeadershipLost {
                hint: Some(NodeId(2))
            }
            .leader_hint(),
            Some(NodeId(2))
        );
    }
}

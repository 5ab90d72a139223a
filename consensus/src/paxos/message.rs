//! What Paxos replicas say to each other, named after the protocol's phases. Every message
//! carries the ballot it belongs to.

use bytes::Bytes;
use rsm_core::{Ballot, Entry, LogIndex, NodeId, SnapshotMeta};
use serde::{Deserialize, Serialize};

/// A Multi-Paxos peer-to-peer message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaxosMessage {
    /// Phase 1a: a proposer asks for promises for every slot above `commit` at once.
    Prepare {
        /// The proposer's new ballot.
        ballot: Ballot,
        /// The proposer's decided prefix: promises carry only what lies above it.
        commit: LogIndex,
        /// The prepare follows a leadership transfer: acceptors ignore their leader lease.
        transfer: bool,
    },
    /// Phase 1b: an acceptor promises `ballot` and reports what it accepted above the
    /// proposer's decided prefix.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// The last ballot whose leader synchronised this acceptor (see the module docs).
        accepted: Ballot,
        /// The acceptor's decided prefix.
        commit: LogIndex,
        /// The acceptor's slots from the proposer's `commit + 1` to its last, consecutive.
        entries: Vec<Entry>,
    },
    /// A refusal: the acceptor promised `promised`, which is higher than `ballot`, or
    /// cannot report what `ballot`'s proposer lacks (its log is trimmed past the
    /// proposer's decided prefix).
    Nack {
        /// The ballot refused.
        ballot: Ballot,
        /// The acceptor's promise.
        promised: Ballot,
        /// The leader the acceptor heard from within the minimal timeout, if any: a
        /// refused leader follows it rather than running phase 1 again.
        leader: Option<NodeId>,
    },
    /// Phase 2a: the leader of `ballot` asks acceptors to accept consecutive slots after
    /// `prev`. Until an acceptor holds the leader's log through `sync_end`, these
    /// messages synchronise it (they overwrite slots in place); after, they extend it.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The slot before `entries`.
        prev: LogIndex,
        /// Consecutive slots from `prev + 1`; empty for a probe.
        entries: Vec<Entry>,
        /// The leader's decided prefix.
        commit: LogIndex,
        /// The last slot the leader recovered in phase 1.
        sync_end: LogIndex,
    },
    /// Phase 2b: the answer to `Accept`.
    Accepted {
        /// The ballot answered.
        ballot: Ballot,
        /// Taken: the acceptor holds the leader's slots through `index`. Refused: the
        /// leader should continue after `index`.
        index: LogIndex,
        /// The acceptor is synchronised with the ballot: `index` counts toward decisions.
        synced: bool,
        /// Whether the slots were taken.
        ok: bool,
    },
    /// A leader's heartbeat: asserts leadership, carries a safe decided prefix and the read
    /// round being confirmed.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader's decided prefix, capped at what this acceptor is known to hold.
        commit: LogIndex,
        /// The latest read-confirmation round.
        read_round: u64,
        /// The leader's tick when it sent this, echoed back for its lease.
        sent_tick: u64,
    },
    /// The answer to `Heartbeat`.
    HeartbeatReply {
        /// The ballot answered.
        ballot: Ballot,
        /// Echo of `read_round`.
        read_round: u64,
        /// Echo of `sent_tick`.
        sent_tick: u64,
    },
    /// One chunk of a snapshot, for an acceptor behind the leader's trim point.
    Snapshot {
        /// The leader's ballot.
        ballot: Ballot,
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// Byte offset of `data`.
        offset: u64,
        /// The chunk.
        data: Bytes,
        /// Whether this is the last chunk.
        done: bool,
    },
    /// The answer to `Snapshot`.
    SnapshotReply {
        /// The ballot answered.
        ballot: Ballot,
        /// Index of the snapshot being received.
        index: LogIndex,
        /// The next byte offset expected.
        next_offset: u64,
        /// The snapshot is installed (or its slots were already decided here).
        done: bool,
    },
    /// The leader tells the target of a leadership transfer to run phase 1 now.
    TimeoutNow {
        /// The leader's ballot.
        ballot: Ballot,
    },
}

impl PaxosMessage {
    /// The ballot the message belongs to.
    pub fn ballot(&self) -> Ballot {
        match self {
            PaxosMessage::Prepare { ballot, .. }
            | PaxosMessage::Promise { ballot, .. }
            | PaxosMessage::Nack { ballot, .. }
            | PaxosMessage::Accept { ballot, .. }
            | PaxosMessage::Accepted { ballot, .. }
            | PaxosMessage::Heartbeat { ballot, .. }
            | PaxosMessage::HeartbeatReply { ballot, .. }
            | PaxosMessage::Snapshot { ballot, .. }
            | PaxosMessage::SnapshotReply { ballot, .. }
            | PaxosMessage::TimeoutNow { ballot } => *ballot,
        }
    }

    /// Whether only the leader of the message's ballot sends it.
    pub fn is_from_leader(&self) -> bool {
        matches!(
            self,
            PaxosMessage::Accept { .. }
                | PaxosMessage::Heartbeat { .. }
                | PaxosMessage::Snapshot { .. }
                | PaxosMessage::TimeoutNow { .. }
        )
    }
}

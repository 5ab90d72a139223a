//! What Raft replicas say to each other. Every message carries the sender's term.

use bytes::Bytes;
use rsm_core::{Entry, LogIndex, SnapshotMeta, Term};
use serde::{Deserialize, Serialize};

/// A Raft peer-to-peer message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftMessage {
    /// A candidate (or pre-candidate) asks for a vote (§5.2, thesis §9.6).
    RequestVote {
        /// The term the candidate runs in; for a pre-vote, the term it would run in.
        term: Term,
        /// A pre-vote probe: granting it changes nothing at the voter.
        pre_vote: bool,
        /// Index of the candidate's last entry.
        last_index: LogIndex,
        /// Term of the candidate's last entry.
        last_term: Term,
        /// The election follows a leadership transfer: voters ignore their stickiness.
        transfer: bool,
        /// The candidate's election priority.
        priority: u64,
    },
    /// The answer to `RequestVote`.
    RequestVoteResponse {
        /// The voter's term, or for a granted pre-vote the term asked about.
        term: Term,
        /// Whether this answers a pre-vote.
        pre_vote: bool,
        /// Whether the vote is granted.
        granted: bool,
    },
    /// A leader replicates entries following `prev_index` (§5.3).
    AppendEntries {
        /// The leader's term.
        term: Term,
        /// Index of the entry before `entries`.
        prev_index: LogIndex,
        /// Term of the entry at `prev_index`.
        prev_term: Term,
        /// Consecutive entries from `prev_index + 1`; empty for a probe.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: LogIndex,
    },
    /// The answer to `AppendEntries`.
    AppendEntriesResponse {
        /// The follower's term.
        term: Term,
        /// Whether the follower's log now matches the leader's through `index`.
        success: bool,
        /// On success the last index known to match; on refusal the `prev_index` refused.
        index: LogIndex,
        /// On refusal, where the leader should try next (fast backtracking).
        hint_index: LogIndex,
        /// On refusal, the term of the follower's conflicting entry, if it has one.
        hint_term: Option<Term>,
    },
    /// A leader's heartbeat: asserts leadership, carries a safe commit index and the read
    /// round being confirmed.
    Heartbeat {
        /// The leader's term.
        term: Term,
        /// The leader's commit index, capped at what this follower is known to hold.
        commit: LogIndex,
        /// The latest read-confirmation round.
        read_round: u64,
        /// The leader's tick count when it sent this, echoed back for its lease.
        sent_tick: u64,
    },
    /// The answer to `Heartbeat`.
    HeartbeatResponse {
        /// The follower's term.
        term: Term,
        /// Echo of the heartbeat's `read_round`.
        read_round: u64,
        /// Echo of the heartbeat's `sent_tick`.
        sent_tick: u64,
        /// The follower does not hold the heartbeat's commit index, which the leader caps
        /// at what the follower acknowledged: its log went backwards (a wiped disk, an
        /// older copy restored), and the leader must search for the match again. Without
        /// it an idle leader, sending no entries to be refused, would never notice.
        log_behind: bool,
    },
    /// One chunk of a snapshot, sent to a follower behind the leader's compaction point.
    InstallSnapshot {
        /// The leader's term.
        term: Term,
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// Byte offset of `data` within the snapshot.
        offset: u64,
        /// The chunk.
        data: Bytes,
        /// Whether this is the last chunk.
        done: bool,
    },
    /// The answer to `InstallSnapshot`.
    InstallSnapshotResponse {
        /// The follower's term.
        term: Term,
        /// Index of the snapshot being received.
        index: LogIndex,
        /// The next byte offset the follower expects.
        next_offset: u64,
        /// The snapshot is installed (or the follower already had its entries).
        done: bool,
    },
    /// A leader tells the target of a leadership transfer to campaign now.
    TimeoutNow {
        /// The leader's term.
        term: Term,
    },
    /// A follower forwards a read to the leader for a read index.
    ReadIndex {
        /// The follower's term.
        term: Term,
        /// The follower's request id, echoed back.
        id: u64,
    },
    /// The leader's answer to `ReadIndex`.
    ReadIndexResponse {
        /// The leader's term.
        term: Term,
        /// Echo of the request's `id`.
        id: u64,
        /// The confirmed read index, or `None` if the leader cannot serve it.
        index: Option<LogIndex>,
    },
}

impl RaftMessage {
    /// The sender's term.
    pub fn term(&self) -> Term {
        match self {
            RaftMessage::RequestVote { term, .. }
            | RaftMessage::RequestVoteResponse { term, .. }
            | RaftMessage::AppendEntries { term, .. }
            | RaftMessage::AppendEntriesResponse { term, .. }
            | RaftMessage::Heartbeat { term, .. }
            | RaftMessage::HeartbeatResponse { term, .. }
            | RaftMessage::InstallSnapshot { term, .. }
            | RaftMessage::InstallSnapshotResponse { term, .. }
            | RaftMessage::TimeoutNow { term }
            | RaftMessage::ReadIndex { term, .. }
            | RaftMessage::ReadIndexResponse { term, .. } => *term,
        }
    }

    /// Whether only a leader sends this message.
    pub fn is_from_leader(&self) -> bool {
        matches!(
            self,
            RaftMessage::AppendEntries { .. }
                | RaftMessage::Heartbeat { .. }
                | RaftMessage::InstallSnapshot { .. }
                | RaftMessage::TimeoutNow { .. }
        )
    }
}

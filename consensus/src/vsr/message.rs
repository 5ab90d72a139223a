//! What VSR replicas say to each other, named after the messages of "Viewstamped
//! Replication Revisited" (Liskov & Cowling, 2012). Every message carries its view.

use bytes::Bytes;
use rsm_core::{Entry, Epoch, LogIndex, NodeId, SnapshotMeta, View};
use serde::{Deserialize, Serialize};

/// A VSR peer-to-peer message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VsrMessage {
    /// The primary sends consecutive log entries after `prev` (§4.1). Until a backup's log
    /// matches the primary's through `start_op`, the log the primary started the view
    /// with, these messages bring it into the view (the paper's StartView, sent as a
    /// bounded suffix instead of the whole log); after, they extend it.
    Prepare {
        /// The primary's view.
        view: View,
        /// The op number before `entries`.
        prev: LogIndex,
        /// The view that created the entry at `prev`.
        prev_view: Epoch,
        /// Consecutive entries from `prev + 1`; empty for a probe.
        entries: Vec<Entry>,
        /// The primary's commit number.
        commit: LogIndex,
        /// The last op of the log the primary started the view with.
        start_op: LogIndex,
    },
    /// The answer to `Prepare`.
    PrepareOk {
        /// The view answered.
        view: View,
        /// Taken: the backup's log matches the primary's through `op`. Refused: the
        /// primary should continue after `op`.
        op: LogIndex,
        /// The backup is in the view's normal status: `op` counts toward commits.
        synced: bool,
        /// Whether the entries were taken.
        ok: bool,
    },
    /// The primary's heartbeat: asserts the view, carries a safe commit number and the
    /// read round being confirmed.
    Commit {
        /// The primary's view.
        view: View,
        /// The primary's commit number, capped at what this backup is known to hold.
        commit: LogIndex,
        /// The latest read-confirmation round.
        read_round: u64,
        /// The primary's tick when it sent this, echoed back for its lease.
        sent_tick: u64,
    },
    /// The answer to `Commit` (not in the paper: it confirms the view for reads and tells
    /// the primary a quorum still follows it).
    CommitOk {
        /// The view answered.
        view: View,
        /// Echo of `read_round`.
        read_round: u64,
        /// Echo of `sent_tick`.
        sent_tick: u64,
    },
    /// A replica suspects the primary and asks for view `view` (§4.2 step 1).
    StartViewChange {
        /// The view asked for.
        view: View,
        /// Sent by the current primary handing over (leadership transfer, removal):
        /// backups join at once instead of waiting for their own timeout.
        handover: bool,
        /// The primary of `view` under the sender's configuration: where a replica that
        /// does not know it is a voter (promoted while it lagged) sends its promise.
        primary: Option<NodeId>,
    },
    /// A replica that saw a quorum ask for `view` promises it to the new primary and
    /// reports its log (§4.2 step 2).
    DoViewChange {
        /// The view promised.
        view: View,
        /// The last view in which the sender's log was in normal status.
        last_normal: View,
        /// The sender's op number (last index).
        op: LogIndex,
        /// The sender's commit number.
        commit: LogIndex,
        /// The primary the promise is made to: only it counts the report (a copy sent to
        /// an old primary only tells it the view was promised).
        primary: NodeId,
    },
    /// The new primary asks the replica whose log it chose for the entries after `after`
    /// (the paper's state transfer, used here during a view change).
    GetState {
        /// The view being started.
        view: View,
        /// The asker's commit number: it holds everything through it.
        after: LogIndex,
    },
    /// The answer to `GetState`: the log after `after`, if the sender still holds it and
    /// is still in the view change it reported.
    NewState {
        /// The view being started.
        view: View,
        /// The op before `entries`.
        after: LogIndex,
        /// The sender's log after `after`; `None` when it cannot answer.
        entries: Option<Vec<Entry>>,
    },
    /// One chunk of a snapshot, for a backup behind the primary's trim point.
    Snapshot {
        /// The primary's view.
        view: View,
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
        /// The view answered.
        view: View,
        /// Index of the snapshot being received.
        index: LogIndex,
        /// The next byte offset expected.
        next_offset: u64,
        /// The snapshot is installed (or its ops were already committed here).
        done: bool,
    },
}

impl VsrMessage {
    /// The view the message belongs to.
    pub fn view(&self) -> View {
        match self {
            VsrMessage::Prepare { view, .. }
            | VsrMessage::PrepareOk { view, .. }
            | VsrMessage::Commit { view, .. }
            | VsrMessage::CommitOk { view, .. }
            | VsrMessage::StartViewChange { view, .. }
            | VsrMessage::DoViewChange { view, .. }
            | VsrMessage::GetState { view, .. }
            | VsrMessage::NewState { view, .. }
            | VsrMessage::Snapshot { view, .. }
            | VsrMessage::SnapshotReply { view, .. } => *view,
        }
    }

    /// Whether only the primary of the message's view sends it.
    pub fn is_from_primary(&self) -> bool {
        matches!(
            self,
            VsrMessage::Prepare { .. } | VsrMessage::Commit { .. } | VsrMessage::Snapshot { .. }
        )
    }
}

//! What a leader knows about each follower's log: how far it matches, the window of
//! appends in flight (bounded by count and by bytes), the snapshot being sent, and when the
//! follower was last heard from. Any leader-based protocol (Raft, Multi-Paxos, VSR)
//! replicates this way; [`quorum_value`] asks the one quorum question over it.

use std::collections::VecDeque;

use bytes::Bytes;
use rsm_core::{LogIndex, Membership, NodeId, Phase, SnapshotMeta};

use crate::snapshot_transfer::SnapshotSend;

/// How a leader currently replicates to one follower.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Looking for the last matching index: one append at a time.
    Probe,
    /// The logs match through `match_index`: appends are pipelined up to the window.
    Replicate,
    /// The follower is behind the leader's compaction point and receives a snapshot.
    Snapshot,
}

/// A read-only view of one follower's replication progress, for hosts deciding when a
/// learner has caught up.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReplicationProgress {
    /// How the leader replicates to the follower.
    pub state: ProgressState,
    /// The highest index known to match the leader's log.
    pub match_index: LogIndex,
    /// The next index the leader will send.
    pub next_index: LogIndex,
}

/// The one quorum question a leader asks of its followers: the greatest value that a
/// `phase` quorum has reached, counting `own` for the leader itself and `of(progress)` for
/// each follower (a voter the leader tracks no progress for counts as `T::default()`).
pub(crate) fn quorum_value<T: Ord + Copy + Default>(
    membership: &Membership,
    phase: Phase,
    me: NodeId,
    own: T,
    peers: &[Progress],
    of: impl Fn(&Progress) -> T,
) -> T {
    membership.quorum_value(phase, |id| {
        if id == me {
            own
        } else {
            peers.iter().find(|p| p.id == id).map_or(T::default(), &of)
        }
    })
}

#[derive(Debug)]
pub(crate) struct Progress {
    pub id: NodeId,
    pub state: ProgressState,
    pub match_index: LogIndex,
    pub next_index: LogIndex,
    /// In `Probe`, an append is out and no answer or heartbeat has come since.
    pub probe_sent: bool,
    /// Last index and byte size of each append in flight, oldest first.
    inflight: VecDeque<(LogIndex, usize)>,
    inflight_bytes: usize,
    /// The leader's tick when it last heard from the follower (or started tracking it).
    pub heard_tick: u64,
    /// Acknowledged an append since the last heartbeat: a pipeline that stays silent for a
    /// whole heartbeat interval lost a message and falls back to probing.
    pub acked_since_heartbeat: bool,
    /// Highest read-confirmation round the follower echoed.
    pub read_round_acked: u64,
    /// Highest leader tick the follower echoed (for the lease).
    pub lease_tick_acked: u64,
    pub snapshot: Option<SnapshotSend>,
}

impl Progress {
    /// A follower first tracked at tick `now`, to be probed from `next_index`; tracking
    /// counts as contact, so a new follower gets a whole check-quorum period.
    pub fn new(id: NodeId, next_index: LogIndex, now: u64) -> Self {
        Self {
            id,
            state: ProgressState::Probe,
            match_index: LogIndex(0),
            next_index,
            probe_sent: false,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            heard_tick: now,
            acked_since_heartbeat: false,
            read_round_acked: 0,
            lease_tick_acked: 0,
            snapshot: None,
        }
    }

    pub fn view(&self) -> ReplicationProgress {
        ReplicationProgress {
            state: self.state,
            match_index: self.match_index,
            next_index: self.next_index,
        }
    }

    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.snapshot = None;
        self.clear_inflight();
    }

    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.snapshot = None;
        self.clear_inflight();
    }

    pub fn become_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) {
        self.state = ProgressState::Snapshot;
        self.probe_sent = false;
        self.clear_inflight();
        self.snapshot = Some(SnapshotSend::new(meta, data));
    }

    /// The follower's log regressed below `match_index`: nothing is known to match.
    /// Lowering it never lowers the commit index, which only moves forward.
    pub fn forget_match(&mut self) {
        self.match_index = LogIndex(0);
    }

    fn clear_inflight(&mut self) {
        self.inflight.clear();
        self.inflight_bytes = 0;
    }

    /// Whether another append may leave now.
    pub fn can_send(&self, msgs_max: usize, bytes_max: usize) -> bool {
        match self.state {
            ProgressState::Probe => !self.probe_sent,
            ProgressState::Replicate => {
                self.inflight.len() < msgs_max && self.inflight_bytes < bytes_max
            }
            ProgressState::Snapshot => false,
        }
    }

    /// Record an append of entries through `last` (`bytes` of payload) leaving now.
    pub fn sent(&mut self, last: LogIndex, bytes: usize) {
        match self.state {
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Replicate => {
                if last >= self.next_index {
                    self.next_index = last.next();
                    self.inflight.push_back((last, bytes));
                    self.inflight_bytes += bytes;
                }
            }
            ProgressState::Snapshot => {}
        }
    }

    /// The follower matches through `index`. Returns whether `match_index` advanced.
    pub fn acknowledge(&mut self, index: LogIndex) -> bool {
        self.acked_since_heartbeat = true;
        while let Some(&(last, bytes)) = self.inflight.front() {
            if last > index {
                break;
            }
            self.inflight.pop_front();
            self.inflight_bytes -= bytes;
        }
        if index <= self.match_index {
            return false;
        }
        self.match_index = index;
        if self.next_index <= index {
            self.next_index = index.next();
        }
        self.probe_sent = false;
        true
    }

    pub fn has_inflight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// A heartbeat interval ended: a follower that acknowledged nothing during the whole
    /// interval while appends were in flight lost one, so its pipeline restarts from its
    /// match index; probes and snapshot chunks are retried likewise.
    pub fn heartbeat_interval_passed(&mut self) {
        if !self.acked_since_heartbeat {
            match self.state {
                ProgressState::Replicate if self.has_inflight() => self.become_probe(),
                ProgressState::Probe => self.probe_sent = false,
                ProgressState::Snapshot => {
                    if let Some(s) = &mut self.snapshot {
                        s.retry();
                    }
                }
                ProgressState::Replicate => {}
            }
        }
        self.acked_since_heartbeat = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_messages_and_bytes() {
        let mut p = Progress::new(NodeId(2), LogIndex(1), 0);
        p.become_replicate();
        assert!(p.can_send(2, 100));
        p.sent(LogIndex(3), 60);
        p.sent(LogIndex(5), 60);
        assert!(!p.can_send(2, 1000), "two messages fill a window of two");
        assert!(!p.can_send(8, 100), "120 bytes exceed a window of 100");
        assert_eq!(p.next_index, LogIndex(6));
        assert!(p.acknowledge(LogIndex(3)));
        assert!(p.can_send(2, 100));
        assert_eq!(p.match_index, LogIndex(3));
        assert!(!p.acknowledge(LogIndex(2)), "a stale ack changes nothing");
    }

    #[test]
    fn probe_sends_one_at_a_time() {
        let mut p = Progress::new(NodeId(2), LogIndex(7), 0);
        assert!(p.can_send(4, 100));
        p.sent(LogIndex(9), 10);
        assert!(!p.can_send(4, 100));
        assert_eq!(
            p.next_index,
            LogIndex(7),
            "a probe does not move next_index"
        );
    }
}

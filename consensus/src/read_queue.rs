//! Linearizable reads at a leader without writing to the log: each read waits for a
//! heartbeat round that a phase-2 quorum echoes after the read arrived (which proves no
//! other leader took over in between), and is then answered at the commit index recorded
//! when its round started. A leader's lease, when it holds, answers at once.

use std::collections::VecDeque;

use rsm_core::{LogIndex, Membership, NodeId, Phase};

use crate::progress::{Progress, quorum_value};

/// A read waiting at the leader for a quorum to confirm its leadership.
#[derive(Copy, Clone, Debug)]
struct PendingRead<O> {
    origin: O,
    /// The commit index when the read's round started.
    index: LogIndex,
    /// The heartbeat round that confirms it; 0 while the leader may not yet start one (its
    /// commit index may lag the cluster's until it committed an entry of its own epoch).
    round: u64,
}

/// The reads a leader is confirming, oldest first, and the latest heartbeat round.
#[derive(Debug)]
pub(crate) struct ReadQueue<O> {
    round: u64,
    reads: VecDeque<PendingRead<O>>,
}

impl<O: Copy> ReadQueue<O> {
    pub fn new() -> Self {
        Self {
            round: 0,
            reads: VecDeque::new(),
        }
    }

    /// The latest heartbeat round, carried by heartbeats and echoed back.
    pub fn round(&self) -> u64 {
        self.round
    }

    pub fn len(&self) -> usize {
        self.reads.len()
    }

    /// A new leadership: rounds start again from 1.
    pub fn restart_rounds(&mut self) {
        self.round = 0;
    }

    /// Queue a read that arrived at commit index `index`, without a round yet.
    pub fn push(&mut self, origin: O, index: LogIndex) {
        self.reads.push_back(PendingRead {
            origin,
            index,
            round: 0,
        });
    }

    /// Give every read without a round a new one at `commit`. Returns whether a round
    /// started: the caller then sends the heartbeats that confirm it.
    pub fn start_round(&mut self, commit: LogIndex) -> bool {
        if self.reads.back().is_none_or(|r| r.round != 0) {
            return false;
        }
        self.round += 1;
        for r in self.reads.iter_mut().filter(|r| r.round == 0) {
            r.round = self.round;
            r.index = commit;
        }
        true
    }

    /// The oldest read, with the index to answer it at, if a phase-2 quorum of
    /// `membership` (the leader `me` and its followers' `progress`) echoed its round.
    pub fn pop_confirmed(
        &mut self,
        membership: &Membership,
        me: NodeId,
        progress: &[Progress],
    ) -> Option<(O, LogIndex)> {
        let front = self.reads.front()?;
        let round = front.round;
        let confirmed = round != 0
            && quorum_value(membership, Phase::Two, me, true, progress, |p| {
                p.read_round_acked >= round
            });
        if !confirmed {
            return None;
        }
        let r = self.reads.pop_front()?;
        Some((r.origin, r.index))
    }

    /// Take the oldest read whatever its state (to refuse it).
    pub fn pop(&mut self) -> Option<O> {
        self.reads.pop_front().map(|r| r.origin)
    }

    /// A follower echoed heartbeat round `round` sent at leader tick `sent_tick`: record
    /// it, believing nothing from the future.
    pub fn record_echo(&self, pr: &mut Progress, round: u64, sent_tick: u64, now: u64) {
        pr.read_round_acked = pr.read_round_acked.max(round.min(self.round));
        pr.lease_tick_acked = pr.lease_tick_acked.max(sent_tick.min(now));
    }
}

/// Whether a lease measured from `since` (the newest leader tick a quorum echoed) still
/// holds at `now`: voters refuse to help elect another leader for `election_ticks_min` of
/// their own ticks after receiving a heartbeat, less `drift_ticks` for clock-rate
/// differences.
pub(crate) fn lease_holds(since: u64, now: u64, election_ticks_min: u64, drift_ticks: u64) -> bool {
    since > 0 && now < since + election_ticks_min - drift_ticks
}

//! Linearizable reads without writing to the log (thesis §6.4): ReadIndex confirmed by a
//! heartbeat round, the leader lease (§6.4.1), and reads forwarded by followers.

use rsm_core::{Effect, LogIndex, NodeId, Phase, RejectReason, RequestId};

use super::{Out, Raft, RaftMessage, State};
use crate::read_queue::lease_holds;

/// Who asked for a read the leader is confirming.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum ReadOrigin {
    Local(RequestId),
    Forwarded { from: NodeId, id: u64 },
}

/// A read this follower forwarded to the leader.
#[derive(Copy, Clone, Debug)]
pub(super) struct ForwardedRead {
    req: RequestId,
    age_ticks: u64,
}

impl Raft {
    pub(super) fn read(&mut self, req: RequestId, out: &mut Out) {
        if self.state == State::Leader {
            self.leader_read(ReadOrigin::Local(req), out);
            return;
        }
        let reason = match self.leader {
            _ if self.forwarded.len() >= self.cfg.reads_pending_max => RejectReason::Busy,
            Some(leader) if self.log.membership().0.contains(self.id) => {
                self.forwarded
                    .push_back(ForwardedRead { req, age_ticks: 0 });
                let msg = RaftMessage::ReadIndex {
                    term: self.term,
                    id: req.0,
                };
                self.send(leader, msg, out);
                return;
            }
            _ => self.not_leader_reason(),
        };
        self.refuse(req, reason, out);
    }

    /// §6.4: record the commit index, confirm leadership with a heartbeat round, then
    /// answer. With a valid lease the round is skipped (§6.4.1).
    fn leader_read(&mut self, origin: ReadOrigin, out: &mut Out) {
        if let Some(reason) = self.leadership_refusal() {
            self.reject_read(origin, reason, out);
            return;
        }
        if self.reads.len() >= self.cfg.reads_pending_max {
            self.reject_read(origin, RejectReason::Busy, out);
            return;
        }
        let committed_own = self.log.term_at(self.commit) == Some(self.term);
        if committed_own && self.lease_valid() {
            self.answer_read(origin, self.commit, out);
            return;
        }
        self.reads.push(origin, self.commit);
        if committed_own {
            self.start_read_round(out);
        }
    }

    /// Give every read without a round a new one at the current commit index, and send
    /// the heartbeats that confirm it.
    pub(super) fn start_read_round(&mut self, out: &mut Out) {
        if self.reads.start_round(self.commit) {
            self.send_heartbeats(out);
            self.advance_reads(out);
        }
    }

    /// Answer, in order, every read whose round a quorum has echoed.
    pub(super) fn advance_reads(&mut self, out: &mut Out) {
        loop {
            let membership = self.log.membership().0;
            let Some((origin, index)) =
                self.reads
                    .pop_confirmed(membership, self.id, &self.progress)
            else {
                return;
            };
            self.answer_read(origin, index, out);
        }
    }

    /// The lease holds while a quorum echoed a heartbeat sent less than
    /// `election_ticks_min - lease_drift_ticks` ago: each of those voters refuses to help
    /// elect another leader for `election_ticks_min` of its own ticks after receiving it.
    fn lease_valid(&self) -> bool {
        if !(self.cfg.lease_reads && self.cfg.check_quorum) || self.lease_revoked {
            return false;
        }
        let now = self.now;
        // A quorum echoed a heartbeat sent at `since` or later.
        let since = self.leader_quorum(Phase::Two, now, |p| p.lease_tick_acked);
        lease_holds(
            since,
            now,
            self.cfg.election_ticks_min,
            self.cfg.lease_drift_ticks,
        )
    }

    fn answer_read(&mut self, origin: ReadOrigin, index: LogIndex, out: &mut Out) {
        match origin {
            ReadOrigin::Local(req) => out.push(Effect::ReadReady { req, index }),
            ReadOrigin::Forwarded { from, id } => {
                let msg = RaftMessage::ReadIndexResponse {
                    term: self.term,
                    id,
                    index: Some(index),
                };
                self.send(from, msg, out);
            }
        }
    }

    fn reject_read(&mut self, origin: ReadOrigin, reason: RejectReason, out: &mut Out) {
        match origin {
            ReadOrigin::Local(req) => self.refuse(req, reason, out),
            ReadOrigin::Forwarded { from, id } => {
                let msg = RaftMessage::ReadIndexResponse {
                    term: self.term,
                    id,
                    index: None,
                };
                self.send(from, msg, out);
            }
        }
    }

    /// A leader stepping down refuses the reads it could not confirm; reads change
    /// nothing, so the refusal is definite.
    pub(super) fn reject_pending_reads(&mut self, out: &mut Out) {
        while let Some(origin) = self.reads.pop() {
            self.reject_read(origin, RejectReason::NotLeader { hint: None }, out);
        }
    }

    pub(super) fn handle_read_index(&mut self, from: NodeId, id: u64, out: &mut Out) {
        let origin = ReadOrigin::Forwarded { from, id };
        if self.state == State::Leader && self.log.membership().0.contains(from) {
            self.leader_read(origin, out);
        } else {
            self.reject_read(origin, RejectReason::NotLeader { hint: self.leader }, out);
        }
    }

    pub(super) fn handle_read_index_response(
        &mut self,
        id: u64,
        index: Option<LogIndex>,
        out: &mut Out,
    ) {
        let Some(k) = self.forwarded.iter().position(|f| f.req.0 == id) else {
            return;
        };
        let Some(f) = self.forwarded.remove(k) else {
            return;
        };
        match index {
            Some(index) => out.push(Effect::ReadReady { req: f.req, index }),
            None => self.refuse(f.req, RejectReason::NotLeader { hint: self.leader }, out),
        }
    }

    /// Forwarded reads unanswered for a maximal election timeout are refused, so a lost
    /// message never leaves a client waiting forever.
    pub(super) fn age_forwarded_reads(&mut self, out: &mut Out) {
        for f in &mut self.forwarded {
            f.age_ticks += 1;
        }
        while let Some(f) = self.forwarded.front() {
            if f.age_ticks < self.cfg.election_ticks_max {
                break;
            }
            let req = f.req;
            self.forwarded.pop_front();
            self.refuse(req, RejectReason::NotLeader { hint: self.leader }, out);
        }
    }
}

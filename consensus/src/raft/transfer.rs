//! Leadership transfer (thesis §3.10): the leader brings the target's log up to date,
//! refuses new requests meanwhile, then tells the target to campaign at once; voters let a
//! transfer's election through their stickiness. Also the hand-over of a leader that a
//! configuration change removed.

use rsm_core::{NodeId, RejectReason, RequestId};

use super::{Out, Raft, RaftMessage, State};

/// A leadership transfer in progress at the leader.
#[derive(Copy, Clone, Debug)]
pub(super) struct Transfer {
    pub target: NodeId,
    elapsed_ticks: u64,
    timeout_now_sent: bool,
}

impl Raft {
    /// Thesis §3.10: bring `to` up to date, then tell it to campaign. Proposals are refused
    /// meanwhile; the transfer is abandoned after an election timeout. A transfer to the
    /// leader itself, or to the target of the transfer under way, changes nothing.
    pub(super) fn transfer_leadership(&mut self, req: RequestId, to: NodeId, out: &mut Out) {
        let reason = if self.state != State::Leader {
            Some(self.not_leader_reason())
        } else if !self.log.membership().0.is_voter(to) {
            Some(RejectReason::NotVoter { id: to })
        } else {
            None
        };
        if let Some(reason) = reason {
            self.refuse(req, reason, out);
            return;
        }
        // A transfer to another target replaces the one under way.
        if to == self.id || self.transfer.is_some_and(|t| t.target == to) {
            return;
        }
        let Some(i) = self.progress_index(to) else {
            return;
        };
        self.transfer = Some(Transfer {
            target: to,
            elapsed_ticks: 0,
            timeout_now_sent: false,
        });
        self.flush(out);
        self.maybe_send_timeout_now(i, out);
        if let Some(i) = self.progress_index(to) {
            self.send_append(i, out);
        }
    }

    /// Send `TimeoutNow` once the transfer target's log matches the leader's.
    pub(super) fn maybe_send_timeout_now(&mut self, i: usize, out: &mut Out) {
        let Some(t) = self.transfer else {
            return;
        };
        let pr = &self.progress[i];
        if t.target != pr.id || t.timeout_now_sent || pr.match_index != self.log.last_index() {
            return;
        }
        self.lease_revoked = true;
        self.transfer = Some(Transfer {
            timeout_now_sent: true,
            ..t
        });
        self.send(t.target, RaftMessage::TimeoutNow { term: self.term }, out);
    }

    /// Thesis §3.10: the leader asks this replica to campaign at once.
    pub(super) fn handle_timeout_now(&mut self, from: NodeId, out: &mut Out) {
        if self.state == State::Leader || self.leader != Some(from) || !self.can_campaign() {
            return;
        }
        self.campaign(true, out);
    }

    /// A transfer not completed within an election timeout is abandoned, and the leader
    /// takes requests again.
    pub(super) fn tick_transfer(&mut self) {
        if let Some(t) = &mut self.transfer {
            t.elapsed_ticks += 1;
            if t.elapsed_ticks >= self.cfg.election_ticks_min {
                self.transfer = None;
            }
        }
    }

    /// A leader the latest committed configuration removed hands over to its most
    /// caught-up voter, if one matches its whole log, and steps down.
    pub(super) fn hand_over_and_step_down(&mut self, out: &mut Out) {
        let last = self.log.last_index();
        let m = self.log.membership().0;
        let successor = self
            .progress
            .iter()
            .find(|p| m.is_voter(p.id) && p.match_index == last)
            .map(|p| p.id);
        if let Some(to) = successor {
            // Entries may still be unflushed: send them first so the successor's log is
            // complete when it campaigns.
            self.flush(out);
            self.send(to, RaftMessage::TimeoutNow { term: self.term }, out);
        }
        self.become_follower(self.term, None, out);
    }
}

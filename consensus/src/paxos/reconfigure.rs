//! Reconfiguration (configuration entries that take effect when they enter the log, one
//! at a time, joint for more than one voter) and leadership transfer.

use rsm_core::{Effect, Entry, Membership, NodeId, RejectReason, RequestId};

use super::{Out, Paxos, PaxosMessage, State, ballot_epoch};
use crate::membership_change::{change_refusal, next_configuration};

impl Paxos {
    /// Move to `target`: a change of at most one voter is proposed as is, a larger one
    /// through a joint configuration that the leader leaves once it is decided. At most
    /// one configuration entry is undecided, and none is proposed before the leader
    /// decided its opening no-op (module docs, "Reconfiguration").
    pub(super) fn reconfigure(&mut self, req: RequestId, target: Membership, out: &mut Out) {
        let (current, at) = self.log.membership();
        let opened = self.commit >= self.ballot_start;
        let reason = self.leadership_refusal().or_else(|| {
            if target.members().any(|id| id.0 > super::BALLOT_NODE_MAX) {
                Some(RejectReason::InvalidConfig(
                    "node ids must be at most 999".into(),
                ))
            } else {
                change_refusal(current, at, self.commit, opened, &target)
            }
        });
        if let Some(reason) = reason {
            self.refuse(req, reason, out);
            return;
        }
        let Some(next) = next_configuration(current, target) else {
            self.refuse(req, RejectReason::ConfigChangeInProgress, out);
            return;
        };
        let entry = self.propose_config(&next);
        out.push(Effect::Proposed {
            req,
            index: entry.index,
            epoch: entry.epoch,
        });
    }

    fn propose_config(&mut self, membership: &Membership) -> Entry {
        let index = self.log.last_index().next();
        let entry = Entry::config(index, ballot_epoch(self.promised), membership);
        self.uncommitted_bytes += entry.size_bytes();
        self.unflushed_bytes += entry.size_bytes();
        self.log.push(entry.clone());
        self.track_members();
        entry
    }

    /// A configuration entry was decided: a joint one is left at once; a leader that is no
    /// longer a voter hands over to its most caught-up voter and steps down.
    pub(super) fn on_commit_membership(
        &mut self,
        previous_commit: rsm_core::LogIndex,
        out: &mut Out,
    ) {
        let (m, at) = self.log.membership();
        let m = m.clone();
        if self.state != State::Leader || at > self.commit {
            return;
        }
        if m.is_joint() {
            let next = m.leave_joint();
            self.propose_config(&next);
            return;
        }
        let leads_on = m.is_voter(self.id);
        if at > previous_commit {
            self.track_members();
        }
        if leads_on {
            return;
        }
        let successor = self
            .progress
            .iter()
            .filter(|p| m.is_voter(p.id))
            .max_by_key(|p| p.match_index)
            .map(|p| p.id);
        if let Some(to) = successor {
            let msg = PaxosMessage::TimeoutNow {
                ballot: self.promised,
            };
            self.send(to, msg, out);
        }
        self.become_follower(None, out);
    }

    /// Hand leadership to `to`: it runs phase 1 at once, and acceptors let it through
    /// their leader lease. The lease is void from here on, and proposals are refused until
    /// the transfer ends or a minimal timeout passes.
    pub(super) fn transfer_leadership(&mut self, req: RequestId, to: NodeId, out: &mut Out) {
        if let Some(reason) = self.leadership_refusal() {
            self.refuse(req, reason, out);
            return;
        }
        if !self.log.membership().0.is_voter(to) {
            self.refuse(req, RejectReason::NotVoter { id: to }, out);
            return;
        }
        if to == self.id {
            return;
        }
        self.transfer = Some((to, self.now + self.cfg.election_ticks_min));
        self.lease_revoked = true;
        let msg = PaxosMessage::TimeoutNow {
            ballot: self.promised,
        };
        self.send(to, msg, out);
    }
}

//! Membership changes (§6, thesis §4): learners, single-server changes, joint consensus,
//! and leadership transfer (thesis §3.10).

use rsm_core::{Effect, Entry, Epoch, LogIndex, Membership, NodeId, RejectReason, RequestId};

use super::{Out, Raft, RaftMessage, State, Transfer};

impl Raft {
    /// Move to `target`. A change of at most one voter (learners may change freely) is
    /// appended as is; anything larger goes through a joint configuration, which the leader
    /// leaves on its own once it commits. At most one configuration entry is uncommitted,
    /// and none is appended before the leader has committed an entry of its own term
    /// (which closes the single-server-change hazard, thesis §4.1).
    pub(super) fn reconfigure(&mut self, req: RequestId, target: Membership, out: &mut Out) {
        let (current, at) = self.log.membership();
        let reason = if self.state != State::Leader {
            Some(self.not_leader_reason())
        } else if let Some(t) = self.transfer {
            Some(RejectReason::TransferInProgress { target: t.target })
        } else if target.voters.is_empty() || target.is_joint() {
            Some(RejectReason::InvalidConfig(
                "the target needs voters and no outgoing half".into(),
            ))
        } else if let Err(e) = target.check() {
            Some(RejectReason::InvalidConfig(e.to_string()))
        } else if at > self.commit
            || current.is_joint()
            || self.log.term_at(self.commit) != Some(self.term)
        {
            Some(RejectReason::ConfigChangeInProgress)
        } else {
            None
        };
        if let Some(reason) = reason {
            out.push(Effect::Reject { req, reason });
            return;
        }
        let mut target = target;
        let voters = target.voters.clone();
        target.learners.retain(|id| !voters.contains(id));
        let changed_voters = current.voters.symmetric_difference(&target.voters).count();
        let next = if changed_voters <= 1 {
            target
        } else {
            match current.enter_joint(&target) {
                Some(joint) => joint,
                None => {
                    out.push(Effect::Reject {
                        req,
                        reason: RejectReason::ConfigChangeInProgress,
                    });
                    return;
                }
            }
        };
        let (index, epoch) = self.append_config(&next);
        out.push(Effect::Proposed { req, index, epoch });
    }

    /// Append a configuration entry; it takes effect at once (§6), committed or not.
    fn append_config(&mut self, membership: &Membership) -> (LogIndex, Epoch) {
        let index = self.log.last_index().next();
        let epoch = Epoch(self.term.0);
        let entry = Entry::config(index, epoch, membership);
        self.uncommitted_bytes += entry.size_bytes();
        self.unflushed_bytes += entry.size_bytes();
        self.log.push(entry);
        self.sync_progress();
        (index, epoch)
    }

    /// The latest configuration committed: a joint one is left at once; a leader that is
    /// no longer a voter hands over to its most caught-up voter and steps down.
    pub(super) fn on_commit_membership(&mut self, previous_commit: LogIndex, out: &mut Out) {
        let (m, at) = self.log.membership();
        if self.state != State::Leader || at > self.commit {
            return;
        }
        if m.is_joint() {
            let next = m.leave_joint();
            self.append_config(&next);
            return;
        }
        let leads_on = m.is_voter(self.id);
        if at > previous_commit {
            // Servers only the replaced configuration held need no more replication.
            self.sync_progress();
        }
        if leads_on {
            return;
        }
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
            out.push(Effect::Reject { req, reason });
            return;
        }
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
}

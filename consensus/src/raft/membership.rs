//! Membership changes (§6, thesis §4): learners, single-server changes and joint
//! consensus.

use rsm_core::{Effect, Entry, Epoch, LogIndex, Membership, RejectReason, RequestId};

use super::{Out, Raft, State};
use crate::membership_change::{change_refusal, next_configuration};

impl Raft {
    /// Move to `target`. A change of at most one voter (learners may change freely) is
    /// appended as is; anything larger goes through a joint configuration, which the leader
    /// leaves on its own once it commits. At most one configuration entry is uncommitted,
    /// and none is appended before the leader has committed an entry of its own term
    /// (which closes the single-server-change hazard, thesis §4.1).
    pub(super) fn reconfigure(&mut self, req: RequestId, target: Membership, out: &mut Out) {
        let (current, at) = self.log.membership();
        let opened = self.log.term_at(self.commit) == Some(self.term);
        let reason = self
            .leadership_refusal()
            .or_else(|| change_refusal(current, at, self.commit, opened, &target));
        if let Some(reason) = reason {
            self.refuse(req, reason, out);
            return;
        }
        let Some(next) = next_configuration(current, target) else {
            self.refuse(req, RejectReason::ConfigChangeInProgress, out);
            return;
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
        self.hand_over_and_step_down(out);
    }
}

//! Reconfiguration (configuration entries that take effect when they enter the log, one
//! at a time, joint for more than one voter) and handing the primary role over.

use rsm_core::{Effect, Entry, Epoch, LogIndex, Membership, NodeId, RejectReason, RequestId, View};

use super::{Out, State, Vsr};
use crate::membership_change::{change_refusal, next_configuration};

impl Vsr {
    /// Move to `target`: a change of at most one voter is prepared as is, a larger one
    /// through a joint configuration that the primary leaves once it is committed. At
    /// most one configuration entry is uncommitted, and none is prepared before the log
    /// the view started with is committed (module docs, "Reconfiguration").
    pub(super) fn reconfigure(&mut self, req: RequestId, target: Membership, out: &mut Out) {
        let (current, at) = self.log.membership();
        let opened = self.commit >= self.start_op;
        let reason = self
            .primary_refusal()
            .or_else(|| change_refusal(current, at, self.commit, opened, &target));
        if let Some(reason) = reason {
            self.refuse(req, reason, out);
            return;
        }
        let Some(next) = next_configuration(current, target) else {
            self.refuse(req, RejectReason::ConfigChangeInProgress, out);
            return;
        };
        let entry = self.prepare_config(&next);
        out.push(Effect::Proposed {
            req,
            index: entry.index,
            epoch: entry.epoch,
        });
    }

    fn prepare_config(&mut self, membership: &Membership) -> Entry {
        let index = self.log.last_index().next();
        let entry = Entry::config(index, Epoch(self.view.0), membership);
        self.uncommitted_bytes += entry.size_bytes();
        self.unflushed_bytes += entry.size_bytes();
        self.log.push(entry.clone());
        self.track_members();
        entry
    }

    /// A configuration entry was committed: a joint one is left at once; a primary that
    /// is no longer a voter hands over to its most caught-up voter.
    pub(super) fn on_commit_membership(&mut self, previous_commit: LogIndex, out: &mut Out) {
        let (m, at) = self.log.membership();
        let m = m.clone();
        if self.state != State::Primary || at > self.commit {
            return;
        }
        if m.is_joint() {
            let next = m.leave_joint();
            self.prepare_config(&next);
            return;
        }
        if at > previous_commit {
            self.track_members();
        }
        if m.is_voter(self.id) {
            return;
        }
        let successor = self
            .progress
            .iter()
            .filter(|p| m.is_voter(p.id))
            .max_by_key(|p| p.match_index)
            .map(|p| p.id);
        match successor.and_then(|to| self.view_led_by(to, self.view)) {
            Some(view) => self.hand_over(view, out),
            None => self.step_down(out),
        }
    }

    /// The first view after `after` whose primary is `to`.
    pub(super) fn view_led_by(&self, to: NodeId, after: View) -> Option<View> {
        let n = self.log.membership().0.all_voters().count() as u64;
        (1..=n)
            .map(|k| View(after.0 + k))
            .find(|&v| self.primary_of(v) == Some(to))
    }

    /// Hand the primary role to `to`: ask, as the primary, for the next view it leads;
    /// backups join at once. The lease is void from here on.
    pub(super) fn transfer_leadership(&mut self, req: RequestId, to: NodeId, out: &mut Out) {
        if let Some(reason) = self.primary_refusal() {
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
        if let Some(view) = self.view_led_by(to, self.view) {
            self.hand_over(view, out);
        }
    }

    pub(super) fn hand_over(&mut self, view: View, out: &mut Out) {
        self.lease_revoked = true;
        let primary = self.primary;
        self.ask_for_view(view, true, out);
        // Backups recognise the handover by its sender, their primary.
        self.primary = primary;
    }
}

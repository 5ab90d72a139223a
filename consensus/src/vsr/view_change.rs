//! View change (§4.2): `StartViewChange`, `DoViewChange`, the new primary's choice of
//! log (fetched with `GetState`/`NewState` when it is another replica's) and the start of
//! the view, in which the first `Prepare`s play the role of the paper's `StartView`.

use rsm_core::{Entry, LogIndex, NodeId, Persist, PersistSeq, Phase, View};

use super::{Out, State, Vsr, VsrMessage};
use crate::progress::Progress;

/// A view this replica asks for, and who else asked for exactly that view.
#[derive(Debug)]
pub(super) struct ViewChangeVotes {
    pub view: View,
    handover: bool,
}

/// What one replica reported in its `DoViewChange`.
#[derive(Copy, Clone, Debug)]
struct Report {
    last_normal: View,
    op: LogIndex,
    commit: LogIndex,
}

/// At the primary of a view being started: the `DoViewChange`s gathered.
#[derive(Debug)]
pub(super) struct Starting {
    view: View,
    /// The write that made the view durable here: the primary's own report counts once
    /// it is durable.
    own: PersistSeq,
    reports: Vec<(NodeId, Report)>,
}

/// At the primary of a view being started: the chosen log, being fetched.
#[derive(Debug)]
pub(super) struct Fetch {
    from: NodeId,
    after: LogIndex,
    report: Report,
    /// The highest commit number reported.
    commit: LogIndex,
}

impl Vsr {
    /// Whether this replica has given up on its primary: it then joins other replicas'
    /// view changes. A backup that heard its primary within the minimal timeout has not.
    fn suspects_primary(&self) -> bool {
        self.state != State::Primary && self.primary_silence_ticks >= self.cfg.election_ticks_min
    }

    pub(super) fn campaign_now(&mut self, out: &mut Out) {
        if self.state != State::Primary && self.is_voter() {
            self.ask_for_next_view(false, out);
        }
    }

    /// The view-change timer fired (or the primary gave up): ask for the view after both
    /// the current one and any asked for before.
    pub(super) fn ask_for_next_view(&mut self, handover: bool, out: &mut Out) {
        let asked = self.asking.as_ref().map_or(self.view, |a| a.view);
        self.ask_for_view(asked.max(self.view).next(), handover, out);
    }

    /// Send `StartViewChange` for `view` to every voter and count who asked for it.
    pub(super) fn ask_for_view(&mut self, view: View, handover: bool, out: &mut Out) {
        debug_assert!(view > self.view);
        self.step_down(out);
        self.reset_timer();
        self.asking = Some(ViewChangeVotes { view, handover });
        self.send_start_view_change(out);
        self.check_start_view_change(out);
    }

    fn send_start_view_change(&self, out: &mut Out) {
        let Some(a) = &self.asking else {
            return;
        };
        let msg = VsrMessage::StartViewChange {
            view: a.view,
            handover: a.handover,
            primary: self.primary_of(a.view),
        };
        for id in self.log.membership().0.all_voters() {
            if id != self.id {
                self.send(id, msg.clone(), out);
            }
        }
    }

    /// Once per heartbeat interval away from normal status: repeat what a lost message
    /// would leave unfinished.
    pub(super) fn retransmit_view_change(&mut self, out: &mut Out) {
        if self.asking.is_some() {
            self.send_start_view_change(out);
            return;
        }
        if self.state != State::ViewChange {
            return;
        }
        if let Some(f) = &self.fetch {
            let msg = VsrMessage::GetState {
                view: self.view,
                after: f.after,
            };
            self.send(f.from, msg, out);
        } else if self.starting.is_none()
            && let Some(p) = self
                .promised_to
                .or_else(|| self.primary_of(self.view))
                .filter(|&p| p != self.id)
        {
            let msg = self.do_view_change();
            self.send(p, msg, out);
        }
    }

    pub(super) fn do_view_change(&self) -> VsrMessage {
        VsrMessage::DoViewChange {
            view: self.view,
            last_normal: self.last_normal,
            op: self.log.last_index(),
            commit: self.commit,
            primary: self
                .promised_to
                .or_else(|| self.primary_of(self.view))
                .unwrap_or(self.id),
        }
    }

    /// Step 1: a replica asks for `view`. It is joined only by a replica that suspects its
    /// primary too, or when the primary itself hands over: a replica cut off from its
    /// primary alone cannot move the others (the one-way-partition trap).
    pub(super) fn handle_start_view_change(
        &mut self,
        from: NodeId,
        view: View,
        handover: bool,
        primary: Option<NodeId>,
        out: &mut Out,
    ) {
        if !self.log.membership().0.is_voter(from) {
            return;
        }
        let now = self.now;
        match self.asks_heard.iter_mut().find(|(id, _, _)| *id == from) {
            Some(ask) if ask.1 <= view => *ask = (from, view, now),
            Some(_) => {}
            None => self.asks_heard.push((from, view, now)),
        }
        if view <= self.view {
            // Tell a replica behind a view change in progress which view it is in.
            if self.state == State::ViewChange && self.asking.is_none() {
                let msg = VsrMessage::StartViewChange {
                    view: self.view,
                    handover: false,
                    primary: self.promised_to.or_else(|| self.primary_of(self.view)),
                };
                self.send(from, msg, out);
            }
            return;
        }
        if self.state == State::Primary {
            // Some voter stopped hearing this primary: its lease no longer says anything
            // about that voter's promises (this primary may have been paused, say). Reads
            // go through confirmation rounds for the rest of the view.
            self.lease_revoked = true;
            return;
        }
        let handed_over = handover && self.primary == Some(from);
        if !(self.suspects_primary() || handed_over) {
            return;
        }
        if !self.is_voter() {
            // A voter counts this replica: it may have been promoted while it lagged and
            // not know it. Its promise goes where the asker's configuration says (one
            // promise per view all the same); the primary counts it by its own.
            if let Some(p) = primary {
                self.enter_view_change(view, p, out);
            }
            return;
        }
        match &self.asking {
            Some(a) if a.view >= view => self.check_start_view_change(out),
            _ => self.ask_for_view(view, false, out),
        }
    }

    /// With a phase-1 quorum asking for the view this replica asks for, promise it.
    fn check_start_view_change(&mut self, out: &mut Out) {
        let Some(a) = &self.asking else {
            return;
        };
        let view = a.view;
        let me = self.id;
        // Asks are repeated every heartbeat interval while they stand: an older one may
        // have been given up for a primary heard since.
        let fresh_since = self.now.saturating_sub(self.cfg.election_ticks_min);
        let heard = &self.asks_heard;
        let quorum = self.log.membership().0.is_quorum(Phase::One, |id| {
            id == me
                || heard
                    .iter()
                    .any(|&(p, v, at)| p == id && v == view && at >= fresh_since)
        });
        if let (true, Some(p)) = (quorum, self.primary_of(view)) {
            self.enter_view_change(view, p, out);
        }
    }

    /// Step 2: make `view` durable, then report the log to its primary (the host holds
    /// the `DoViewChange` until the write is durable), or gather reports if it is ours.
    fn enter_view_change(&mut self, view: View, primary: NodeId, out: &mut Out) {
        debug_assert!(view > self.view);
        self.step_down(out);
        self.view = view;
        self.state = State::ViewChange;
        self.asking = None;
        self.primary = None;
        self.fetch = None;
        self.starting = None;
        self.reset_timer();
        let own = self.persist_hard_state(out);
        self.promised_to = Some(primary);
        if primary != self.id {
            let msg = self.do_view_change();
            self.send(primary, msg, out);
        } else if view > self.lead_after {
            // A restarted replica never leads the view it restarted in (module docs).
            self.starting = Some(Starting {
                view,
                own,
                reports: Vec::new(),
            });
            self.check_do_view_change(out);
        }
    }

    /// Step 3: the new primary gathers reports. A report for a higher view whose primary
    /// is this replica moves it into that view change, if it suspects its own primary
    /// (else the report is ignored, and repeated later).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_do_view_change(
        &mut self,
        from: NodeId,
        view: View,
        last_normal: View,
        op: LogIndex,
        commit: LogIndex,
        primary: NodeId,
        out: &mut Out,
    ) {
        if last_normal >= view || commit > op || view < self.view {
            return;
        }
        let membership = self.log.membership().0;
        if view > self.view && self.state == State::Primary {
            // A member (a learner too: it may not know yet that it is one) promised a
            // view this primary's backups never joined.
            if membership.contains(from) {
                self.overtaken(view, out);
            }
            return;
        }
        // A report counts only at the primary it was promised to.
        if !membership.is_voter(from) || primary != self.id {
            return;
        }
        if view > self.view {
            if self.primary_of(view) != Some(self.id) || !self.suspects_primary() {
                return;
            }
            if !self.is_voter() {
                return;
            }
            self.enter_view_change(view, self.id, out);
        }
        let Some(s) = self.starting.as_mut().filter(|s| s.view == view) else {
            return;
        };
        if s.reports.iter().any(|(id, _)| *id == from) {
            return;
        }
        let report = Report {
            last_normal,
            op,
            commit,
        };
        s.reports.push((from, report));
        self.check_do_view_change(out);
    }

    /// A voter promised `view`, above this primary's, without the rest following (it
    /// counted asks that were later abandoned, or its view change failed): it can never
    /// answer this view again. The primary moves everyone past it, as a handover to
    /// itself in the first view from `view` on that it leads.
    fn overtaken(&mut self, view: View, out: &mut Out) {
        if let Some(next) = self.view_led_by(self.id, view.prev()) {
            self.hand_over(next, out);
        }
    }

    /// With reports from a phase-1 quorum (this replica's own counting once durable),
    /// choose the log with the largest (last normal view, op number), preferring this
    /// replica's own on a tie, and start the view with it.
    pub(super) fn check_do_view_change(&mut self, out: &mut Out) {
        if self.state != State::ViewChange || self.fetch.is_some() {
            return;
        }
        let Some(s) = self.starting.as_ref().filter(|s| s.view == self.view) else {
            return;
        };
        if !self.report_quorum(s, self.log.membership().0) {
            return;
        }
        let own = Report {
            last_normal: self.last_normal,
            op: self.log.last_index(),
            commit: self.commit,
        };
        let commit = s
            .reports
            .iter()
            .map(|(_, r)| r.commit)
            .fold(self.commit, LogIndex::max);
        let best = s
            .reports
            .iter()
            .max_by_key(|(_, r)| (r.last_normal, r.op))
            .filter(|(_, r)| (r.last_normal, r.op) > (own.last_normal, own.op))
            .copied();
        match best {
            None => self.start_view(commit, out),
            Some((from, report)) => {
                let after = self.commit;
                self.fetch = Some(Fetch {
                    from,
                    after,
                    report,
                    commit,
                });
                let msg = VsrMessage::GetState {
                    view: self.view,
                    after,
                };
                self.send(from, msg, out);
            }
        }
    }

    fn report_quorum(&self, s: &Starting, membership: &rsm_core::Membership) -> bool {
        let own = self.persist.is_durable(s.own);
        membership.is_quorum(Phase::One, |id| {
            if id == self.id {
                own
            } else {
                s.reports.iter().any(|(r, _)| *r == id)
            }
        })
    }

    /// The chosen replica is asked for its log after `after`. It answers only while it is
    /// still in the view change it reported for (its log is then the one reported).
    pub(super) fn handle_get_state(
        &mut self,
        from: NodeId,
        view: View,
        after: LogIndex,
        out: &mut Out,
    ) {
        if view != self.view
            || self.state != State::ViewChange
            || self.primary_of(view) != Some(from)
        {
            return;
        }
        let entries = (after >= self.log.snapshot.index).then(|| {
            self.log
                .range(after.next(), self.log.last_index())
                .cloned()
                .collect::<Vec<Entry>>()
        });
        let msg = VsrMessage::NewState {
            view,
            after,
            entries,
        };
        self.send(from, msg, out);
    }

    /// The chosen log arrived: adopt it (keeping the agreeing prefix) and start the view.
    /// A chosen replica that trimmed what this one lacks cannot help: the view is given
    /// up for the next one.
    pub(super) fn handle_new_state(
        &mut self,
        from: NodeId,
        view: View,
        after: LogIndex,
        entries: Option<Vec<Entry>>,
        out: &mut Out,
    ) {
        let Some(f) = self.fetch.as_ref() else {
            return;
        };
        if view != self.view
            || self.state != State::ViewChange
            || f.from != from
            || f.after != after
        {
            return;
        }
        let (report, commit) = (f.report, f.commit);
        let Some(entries) = entries else {
            self.fetch = None;
            self.starting = None;
            self.ask_for_next_view(false, out);
            return;
        };
        let consecutive = entries
            .iter()
            .enumerate()
            .all(|(k, e)| e.index.0 == after.0 + 1 + k as u64);
        let ascending = entries.windows(2).all(|w| w[0].epoch <= w[1].epoch)
            && entries.last().is_none_or(|e| e.epoch.0 < view.0);
        let end = LogIndex(after.0 + entries.len() as u64);
        if !consecutive || !ascending || end != report.op || after > self.log.last_index() {
            return;
        }
        let gathered_in = self.log.membership().0.clone();
        self.adopt_entries(entries, out);
        self.truncate_log(end.next(), out);
        // The chosen log may name another configuration: its quorum must have reported
        // too, and this replica must be its primary for the view.
        let membership = self.log.membership().0.clone();
        let confirmed = membership == gathered_in
            || (self.primary_of(view) == Some(self.id)
                && self
                    .starting
                    .as_ref()
                    .is_some_and(|s| self.report_quorum(s, &membership)));
        self.fetch = None;
        if confirmed {
            self.start_view(commit, out);
        } else {
            self.starting = None;
            self.ask_for_next_view(false, out);
        }
    }

    /// Write `entries` (consecutive, above the commit number) over the log, keeping the
    /// prefix that agrees and replacing everything from the first disagreement.
    pub(super) fn adopt_entries(&mut self, mut entries: Vec<Entry>, out: &mut Out) {
        let conflict = entries
            .iter()
            .position(|e| self.log.entry(e.index).is_none_or(|h| h.epoch != e.epoch));
        let Some(k) = conflict else {
            return;
        };
        let fresh = entries.split_off(k);
        let at = fresh[0].index;
        debug_assert!(at > self.commit, "committed ops never change");
        if at <= self.log.last_index() {
            self.log.truncate_from(at);
            self.persist.forget_after(at.prev());
        }
        for e in &fresh {
            self.log.push(e.clone());
        }
        self.persist_log(Persist::Append { entries: fresh }, out);
    }

    /// Step 4: the view starts with this replica's log. Its normal status is written
    /// after the log, and its own log counts toward commits once that write is durable.
    fn start_view(&mut self, commit: LogIndex, out: &mut Out) {
        let reports = self.starting.take().map(|s| s.reports).unwrap_or_default();
        let commit = commit.min(self.log.last_index());
        if commit > self.commit {
            self.commit = commit;
        }
        self.last_normal = self.view;
        self.own_sync = Some(self.persist_hard_state(out));
        self.state = State::Primary;
        self.primary = Some(self.id);
        self.start_op = self.log.last_index();
        self.lease_revoked = false;
        self.heartbeat_elapsed = 0;
        self.idle_ticks = 0;
        self.reads.restart_rounds();
        self.synced.clear();
        self.uncommitted_bytes = self.log.bytes_after(self.commit);
        self.unflushed = self.log.last_index().next();
        self.unflushed_bytes = 0;
        self.progress.clear();
        self.track_members();
        for pr in &mut self.progress {
            let from = reports
                .iter()
                .find(|(id, _)| *id == pr.id)
                .map_or(self.commit, |(_, r)| r.commit.min(self.commit));
            pr.next_index = from.next();
        }
        self.report_role(out);
        for i in 0..self.progress.len() {
            self.send_prepare(i, out);
        }
    }

    /// Track every member but this replica, keeping what is known of those already tracked.
    pub(super) fn track_members(&mut self) {
        let members: Vec<NodeId> = self.log.membership().0.members().collect();
        self.progress.retain(|p| members.contains(&p.id));
        for id in members {
            if id != self.id && !self.progress.iter().any(|p| p.id == id) {
                let next = self.commit.next();
                self.progress.push(Progress::new(id, next, self.now));
            }
        }
    }

    /// Leave the primary's normal status (or a view start in progress): flush what was
    /// batched, refuse the reads it could not confirm and forget its backups.
    pub(super) fn step_down(&mut self, out: &mut Out) {
        self.starting = None;
        self.fetch = None;
        if self.state != State::Primary {
            return;
        }
        self.persist_unflushed(out);
        self.reject_pending_reads(out);
        self.progress.clear();
        self.synced.clear();
        self.own_sync = None;
        self.state = State::Backup;
        self.primary = None;
    }
}

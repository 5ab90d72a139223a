//! Normal operation (§4.1): requests batched into the primary's log, `Prepare` pipelined
//! to backups bounded by count and bytes, `PrepareOk`, commits by a phase-2 quorum, and
//! `Commit` as the heartbeat that carries the commit number.

use bytes::Bytes;
use rsm_core::{
    ENTRY_HEADER_BYTES, Effect, Entry, Epoch, LogIndex, NodeId, Persist, Phase, RejectReason,
    RequestId, View,
};

use super::{Out, State, Vsr, VsrMessage};
use crate::progress::ProgressState;

impl Vsr {
    /// A client request. Returns whether the batch should be written and sent now: it is
    /// when the primary has no write in flight or the batch is full; otherwise it joins
    /// the batch that leaves when the write in flight completes.
    pub(super) fn request(&mut self, req: RequestId, command: Bytes, out: &mut Out) -> bool {
        let reason = self.primary_refusal().or_else(|| {
            if command.len() > self.cfg.proposal_bytes_max {
                Some(RejectReason::TooLarge {
                    bytes: command.len(),
                    limit_bytes: self.cfg.proposal_bytes_max,
                })
            } else {
                let size = command.len() + ENTRY_HEADER_BYTES;
                let over = self.uncommitted_bytes + size > self.cfg.uncommitted_bytes_max;
                (self.uncommitted_bytes > 0 && over).then_some(RejectReason::Busy)
            }
        });
        if let Some(reason) = reason {
            self.refuse(req, reason, out);
            return false;
        }
        let index = self.log.last_index().next();
        let epoch = Epoch(self.view.0);
        let entry = Entry::command(index, epoch, command);
        self.uncommitted_bytes += entry.size_bytes();
        self.unflushed_bytes += entry.size_bytes();
        self.log.push(entry);
        out.push(Effect::Proposed { req, index, epoch });
        let idle = self.persist.stable_index().next() >= self.unflushed;
        let batched = (index.0 + 1 - self.unflushed.0) as usize;
        idle || batched >= self.cfg.batch_entries_max
            || self.unflushed_bytes >= self.cfg.batch_bytes_max
    }

    /// Send the batch to every backup, then write it at the primary (which counts itself
    /// only once the write is durable).
    pub(super) fn flush(&mut self, out: &mut Out) {
        if self.unflushed > self.log.last_index() {
            return;
        }
        for i in 0..self.progress.len() {
            self.send_prepare(i, out);
        }
        self.persist_unflushed(out);
    }

    pub(super) fn persist_unflushed(&mut self, out: &mut Out) {
        let last = self.log.last_index();
        if self.unflushed > last {
            return;
        }
        let entries: Vec<Entry> = self.log.range(self.unflushed, last).cloned().collect();
        self.unflushed = last.next();
        self.unflushed_bytes = 0;
        self.persist_log(Persist::Append { entries }, out);
    }

    /// Send backup `i` what its progress allows: one probe, a window of pipelined
    /// `Prepare`s, or a snapshot chunk when its next op was trimmed.
    pub(super) fn send_prepare(&mut self, i: usize, out: &mut Out) {
        loop {
            let pr = &self.progress[i];
            if pr.state == ProgressState::Snapshot {
                self.send_snapshot_chunk(i, out);
                return;
            }
            let last = self.log.last_index();
            let window_open = pr.can_send(self.cfg.inflight_msgs_max, self.cfg.inflight_bytes_max);
            if !window_open || (pr.state == ProgressState::Replicate && pr.next_index > last) {
                return;
            }
            let prev = pr.next_index.prev();
            let Some(prev_view) = self.log.term_at(prev) else {
                let (meta, data) = (self.log.snapshot.clone(), self.log.snapshot_data.clone());
                self.progress[i].become_snapshot(meta, data);
                continue;
            };
            let (entries, bytes) = self.prepare_batch(pr.next_index, last);
            let through = LogIndex(prev.0 + entries.len() as u64);
            let to = pr.id;
            let msg = VsrMessage::Prepare {
                view: self.view,
                prev,
                prev_view: Epoch(prev_view.0),
                entries,
                commit: self.commit,
                start_op: self.start_op,
            };
            let pr = &mut self.progress[i];
            pr.sent(through, bytes);
            let pipelined = pr.state == ProgressState::Replicate;
            out.push(Effect::Send { to, msg });
            if !pipelined {
                return;
            }
        }
    }

    /// The entries of one `Prepare` from `from`: at least one if any, then up to the
    /// message limits. Returns them with their size.
    fn prepare_batch(&self, from: LogIndex, last: LogIndex) -> (Vec<Entry>, usize) {
        let mut entries = Vec::new();
        let mut bytes = 0;
        for e in self.log.range(from, last) {
            let size = e.size_bytes();
            let full =
                bytes + size > self.cfg.msg_bytes_max || entries.len() >= self.cfg.msg_entries_max;
            if !entries.is_empty() && full {
                break;
            }
            bytes += size;
            entries.push(e.clone());
        }
        (entries, bytes)
    }

    /// `Prepare` at a backup (`receive` made `view` its view and the sender its primary).
    /// The entries after a matching `prev` replace whatever disagrees with them. A backup
    /// not yet in the view's normal status takes entries only through `start_op`; once
    /// its log matches through it, it drops anything above, and enters normal status
    /// (durably, after the entries).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_prepare(
        &mut self,
        from: NodeId,
        view: View,
        prev: LogIndex,
        prev_view: Epoch,
        mut entries: Vec<Entry>,
        primary_commit: LogIndex,
        start_op: LogIndex,
        out: &mut Out,
    ) {
        let epoch = Epoch(view.0);
        let consecutive = entries
            .iter()
            .enumerate()
            .all(|(k, e)| e.index.0 == prev.0 + 1 + k as u64);
        let views_ascend = entries
            .iter()
            .try_fold(prev_view, |v, e| (e.epoch >= v).then_some(e.epoch))
            .is_some_and(|last| last <= epoch);
        let well_formed = consecutive && views_ascend;
        if !well_formed {
            return;
        }
        let joined = self.last_normal == view;
        if !joined {
            let keep = start_op.0.saturating_sub(prev.0) as usize;
            entries.truncate(keep);
        }
        // Ops at or below the commit number are held here and agree with every log.
        let (mut prev, mut prev_view) = (prev, prev_view);
        if prev < self.commit {
            let skip = ((self.commit.0 - prev.0) as usize).min(entries.len());
            if skip > 0 {
                prev_view = entries[skip - 1].epoch;
            }
            entries.drain(..skip);
            prev = LogIndex(prev.0 + skip as u64);
            if prev < self.commit {
                self.reply_prepare_ok(from, self.commit, joined, true, out);
                return;
            }
        }
        let matches =
            prev == self.commit || self.log.term_at(prev).is_some_and(|t| t.0 == prev_view.0);
        if !matches {
            let hint = self.mismatch_hint(prev);
            self.reply_prepare_ok(from, hint, joined, false, out);
            return;
        }
        let end = LogIndex(prev.0 + entries.len() as u64);
        let conflict = entries
            .iter()
            .position(|e| self.log.entry(e.index).is_none_or(|h| h.epoch != e.epoch));
        if let Some(k) = conflict {
            let fresh: Vec<Entry> = entries.split_off(k);
            let at = fresh[0].index;
            if at <= self.log.last_index() {
                self.log.truncate_from(at);
                self.persist.forget_after(at.prev());
            }
            for e in &fresh {
                self.log.push(e.clone());
            }
            self.persist_log(Persist::Append { entries: fresh }, out);
        }
        if !joined && end >= start_op {
            self.truncate_log(end.next(), out);
            self.last_normal = view;
            self.persist_hard_state(out);
        }
        let joined = self.last_normal == view;
        if joined {
            let commit = primary_commit.min(end);
            if commit > self.commit {
                self.commit = commit;
            }
        }
        self.reply_prepare_ok(from, end, joined, true, out);
    }

    /// Where the primary should continue after a `Prepare` whose `prev` does not match:
    /// before the run of entries of the view found at `prev`, never below the commit
    /// number.
    fn mismatch_hint(&self, prev: LogIndex) -> LogIndex {
        let last = self.log.last_index();
        if prev > last {
            return last;
        }
        let run_start = match self.log.term_at(prev) {
            Some(t) => self.log.first_index_of_term(t, prev),
            None => prev,
        };
        run_start.prev().max(self.commit)
    }

    fn reply_prepare_ok(&self, to: NodeId, op: LogIndex, synced: bool, ok: bool, out: &mut Out) {
        let msg = VsrMessage::PrepareOk {
            view: self.view,
            op,
            synced,
            ok,
        };
        self.send(to, msg, out);
    }

    pub(super) fn progress_index(&self, id: NodeId) -> Option<usize> {
        if self.state != State::Primary {
            return None;
        }
        self.progress.iter().position(|p| p.id == id)
    }

    /// The progress slot of a backup answering `view` about `op`, marked as heard from;
    /// `None` for another view, a non-member or an op beyond the log (bogus).
    pub(super) fn answering(&mut self, from: NodeId, view: View, op: LogIndex) -> Option<usize> {
        if view != self.view || op > self.log.last_index() {
            return None;
        }
        let i = self.progress_index(from)?;
        self.progress[i].heard_tick = self.now;
        Some(i)
    }

    pub(super) fn handle_prepare_ok(
        &mut self,
        from: NodeId,
        view: View,
        op: LogIndex,
        synced: bool,
        ok: bool,
        out: &mut Out,
    ) {
        let Some(i) = self.answering(from, view, op) else {
            return;
        };
        let pr = &mut self.progress[i];
        if ok && synced {
            if !self.synced.contains(&from) {
                self.synced.push(from);
            }
            let advanced = pr.acknowledge(op);
            if pr.state != ProgressState::Replicate {
                pr.become_replicate();
            }
            if advanced {
                self.maybe_commit(out);
            }
            // Committing may change the membership, and with it the progress table.
            let Some(i) = self.progress_index(from) else {
                return;
            };
            self.send_prepare(i, out);
        } else if ok {
            // Joining the view: continue after what matched.
            if pr.state == ProgressState::Probe {
                pr.acked_since_heartbeat = true;
                pr.next_index = pr.next_index.max(op.next());
                pr.probe_sent = false;
            }
            self.send_prepare(i, out);
        } else {
            if pr.state == ProgressState::Snapshot {
                return;
            }
            if op < pr.match_index {
                // The backup lost ops it acknowledged in this view (an older copy of its
                // disk): nothing is known to match any more.
                pr.forget_match();
            }
            pr.become_probe();
            pr.next_index = op.next().max(pr.match_index.next());
            self.send_prepare(i, out);
        }
    }

    /// Once per heartbeat interval: restart silent pipelines, retry probes and snapshot
    /// chunks, and send `Commit`.
    pub(super) fn heartbeat_round(&mut self, out: &mut Out) {
        for p in &mut self.progress {
            p.heartbeat_interval_passed();
        }
        self.send_commits(out);
        for i in 0..self.progress.len() {
            if self.progress[i].state != ProgressState::Replicate {
                self.send_prepare(i, out);
            }
        }
    }

    pub(super) fn send_commits(&mut self, out: &mut Out) {
        for p in &self.progress {
            let msg = VsrMessage::Commit {
                view: self.view,
                // Never tell a backup to commit beyond what it is known to hold.
                commit: self.commit.min(p.match_index),
                read_round: self.reads.round(),
                sent_tick: self.now,
            };
            out.push(Effect::Send { to: p.id, msg });
        }
    }

    pub(super) fn handle_commit(
        &mut self,
        from: NodeId,
        view: View,
        commit: LogIndex,
        read_round: u64,
        sent_tick: u64,
        out: &mut Out,
    ) {
        if self.last_normal == view {
            let commit = commit.min(self.log.last_index());
            if commit > self.commit {
                self.commit = commit;
            }
        }
        let msg = VsrMessage::CommitOk {
            view,
            read_round,
            sent_tick,
        };
        self.send(from, msg, out);
    }

    pub(super) fn handle_commit_ok(
        &mut self,
        from: NodeId,
        view: View,
        read_round: u64,
        sent_tick: u64,
        out: &mut Out,
    ) {
        let Some(i) = self.answering(from, view, LogIndex(0)) else {
            return;
        };
        self.reads
            .record_echo(&mut self.progress[i], read_round, sent_tick, self.now);
        self.advance_reads(out);
        self.send_prepare(i, out);
    }

    /// Commit the highest op a phase-2 quorum of backups in normal status holds. Their
    /// logs are prefixes of the primary's, so counting them commits older views' ops too
    /// (module docs). The primary counts itself only once its normal status and the ops
    /// are durable.
    pub(super) fn maybe_commit(&mut self, out: &mut Out) {
        if self.state != State::Primary {
            return;
        }
        let own = match self.own_sync {
            Some(seq) if self.persist.is_durable(seq) => self.persist.stable_index(),
            _ => LogIndex(0),
        };
        let q = self.primary_quorum(Phase::Two, own, |p| p.match_index);
        debug_assert!(
            q <= self.log.last_index(),
            "no backup is ahead of its primary"
        );
        if q <= self.commit {
            return;
        }
        let freed: usize = self
            .log
            .range(self.commit.next(), q)
            .map(Entry::size_bytes)
            .sum();
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(freed);
        let previous = self.commit;
        self.commit = q;
        if previous < self.start_op && q >= self.start_op {
            self.start_read_round(out);
        }
        self.on_commit_membership(previous, out);
    }

    /// Whether no phase-2 quorum has been heard from within the minimal timeout: the
    /// backups may then be starting another view, so the primary stops serving.
    pub(super) fn quorum_silent(&self) -> bool {
        let since = self.primary_quorum(Phase::Two, self.now, |p| p.heard_tick);
        self.now >= since + self.cfg.election_ticks_min
    }
}

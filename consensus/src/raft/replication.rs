//! Log replication (§5.3) and commitment (§5.4.2): proposals, batching, pipelined
//! AppendEntries with per-follower flow control, heartbeats and fast backtracking.

use bytes::Bytes;
use rsm_core::{
    ENTRY_HEADER_BYTES, Effect, Entry, Epoch, LogIndex, NodeId, Persist, Phase, RejectReason,
    RequestId, Term,
};

use super::{Out, Raft, RaftMessage, State};
use crate::progress::ProgressState;

impl Raft {
    /// A client proposal. Returns whether the batch should be written and sent now: it is
    /// when the leader has no write in flight (nothing to wait for, so waiting would only
    /// add latency) or the batch is full; otherwise it joins the batch that leaves when
    /// the write in flight completes.
    pub(super) fn propose(&mut self, req: RequestId, command: Bytes, out: &mut Out) -> bool {
        let reason = if let Some(reason) = self.leadership_refusal() {
            Some(reason)
        } else if command.len() > self.cfg.proposal_bytes_max {
            Some(RejectReason::TooLarge {
                bytes: command.len(),
                limit_bytes: self.cfg.proposal_bytes_max,
            })
        } else if self.uncommitted_bytes > 0
            && self.uncommitted_bytes + command.len() + ENTRY_HEADER_BYTES
                > self.cfg.uncommitted_bytes_max
        {
            Some(RejectReason::Busy)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.refuse(req, reason, out);
            return false;
        }
        let index = self.log.last_index().next();
        let epoch = Epoch(self.term.0);
        let entry = Entry::command(index, epoch, command);
        let size = entry.size_bytes();
        self.log.push(entry);
        self.uncommitted_bytes += size;
        self.unflushed_bytes += size;
        out.push(Effect::Proposed { req, index, epoch });
        let idle = self.persist.stable_index().next() >= self.unflushed;
        let batched = (index.0 + 1 - self.unflushed.0) as usize;
        idle || batched >= self.cfg.batch_entries_max
            || self.unflushed_bytes >= self.cfg.batch_bytes_max
    }

    /// Send the unflushed batch to every follower, then write it. The sends come first:
    /// a leader may replicate before its own write, since it counts itself only once
    /// `Persisted` says the write is durable.
    pub(super) fn flush(&mut self, out: &mut Out) {
        if self.unflushed > self.log.last_index() {
            return;
        }
        for i in 0..self.progress.len() {
            self.send_append(i, out);
        }
        self.persist_unflushed(out);
    }

    pub(super) fn persist_unflushed(&mut self, out: &mut Out) {
        let last = self.log.last_index();
        if self.unflushed > last {
            return;
        }
        let mut entries = Vec::with_capacity((last.0 + 1 - self.unflushed.0) as usize);
        entries.extend(self.log.range(self.unflushed, last).cloned());
        self.unflushed = last.next();
        self.unflushed_bytes = 0;
        self.persist_log(Persist::Append { entries }, out);
    }

    /// Send follower `i` whatever its progress state allows: one probe, a window of
    /// pipelined appends, or a snapshot chunk when its next entry was compacted away.
    pub(super) fn send_append(&mut self, i: usize, out: &mut Out) {
        loop {
            let pr = &self.progress[i];
            if pr.state == ProgressState::Snapshot {
                self.send_snapshot_chunk(i, out);
                return;
            }
            if !pr.can_send(self.cfg.inflight_msgs_max, self.cfg.inflight_bytes_max) {
                return;
            }
            let last = self.log.last_index();
            if pr.state == ProgressState::Replicate && pr.next_index > last {
                return;
            }
            let prev_index = pr.next_index.prev();
            let Some(prev_term) = self.log.term_at(prev_index) else {
                let (meta, data) = (self.log.snapshot.clone(), self.log.snapshot_data.clone());
                self.progress[i].become_snapshot(meta, data);
                continue;
            };
            let want = (last.0 + 1).saturating_sub(pr.next_index.0) as usize;
            let mut entries = Vec::with_capacity(want.min(self.cfg.msg_entries_max));
            let mut bytes = 0;
            for e in self.log.range(pr.next_index, last) {
                let size = e.size_bytes();
                if !entries.is_empty()
                    && (bytes + size > self.cfg.msg_bytes_max
                        || entries.len() >= self.cfg.msg_entries_max)
                {
                    break;
                }
                bytes += size;
                entries.push(e.clone());
            }
            let sent_through = LogIndex(prev_index.0 + entries.len() as u64);
            let to = pr.id;
            let msg = RaftMessage::AppendEntries {
                term: self.term,
                prev_index,
                prev_term,
                entries,
                commit: self.commit,
            };
            let pr = &mut self.progress[i];
            pr.sent(sent_through, bytes);
            let pipelined = pr.state == ProgressState::Replicate;
            out.push(Effect::Send { to, msg });
            if !pipelined {
                return;
            }
        }
    }

    /// §5.3: accept entries that follow a matching `prev_index`, truncating a conflicting
    /// suffix first; refuse otherwise, with a hint for fast backtracking.
    pub(super) fn handle_append_entries(
        &mut self,
        from: NodeId,
        mut prev_index: LogIndex,
        mut prev_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: LogIndex,
        out: &mut Out,
    ) {
        let well_formed = entries
            .iter()
            .enumerate()
            .all(|(k, e)| e.index.0 == prev_index.0 + 1 + k as u64 && e.epoch.0 <= self.term.0)
            && entries.windows(2).all(|w| w[0].epoch <= w[1].epoch)
            && entries.first().is_none_or(|e| e.epoch.0 >= prev_term.0);
        if !well_formed {
            return;
        }
        // `receive` made the sender this term's leader, and this replica its follower.
        debug_assert_eq!(self.state, State::Follower);
        debug_assert_eq!(self.leader, Some(from));
        let last_new = LogIndex(prev_index.0 + entries.len() as u64);
        let last_new_term = entries.last().map_or(prev_term, |e| Term(e.epoch.0));
        // Entries at or below the commit index are already here and match (§5.4.1's
        // leader completeness): skip them, so that nothing below a snapshot is looked up.
        if prev_index < self.commit {
            let skip = (self.commit.0 - prev_index.0) as usize;
            if skip >= entries.len() {
                self.reply_append(from, true, self.commit, LogIndex(0), None, out);
                return;
            }
            entries.drain(..skip);
            prev_index = self.commit;
            prev_term = self.log.term_at(self.commit).unwrap_or_default();
        }
        match self.log.term_at(prev_index) {
            Some(t) if t == prev_term => {}
            Some(t) => {
                let hint = self
                    .log
                    .first_index_of_term(t, prev_index)
                    .max(self.commit.next());
                self.reply_append(from, false, prev_index, hint, Some(t), out);
                return;
            }
            None => {
                let hint = self.log.last_index().next();
                self.reply_append(from, false, prev_index, hint, None, out);
                return;
            }
        }
        let conflict = entries
            .iter()
            .position(|e| self.log.term_at(e.index).is_none_or(|t| t.0 != e.epoch.0));
        if let Some(k) = conflict {
            let first = entries[k].index;
            if first <= self.commit {
                // A committed entry never changes: a message asking for that is bogus.
                return;
            }
            if first <= self.log.last_index() {
                self.log.truncate_from(first);
                self.persist.forget_after(first.prev());
            }
            let fresh = if k == 0 {
                entries
            } else {
                entries.drain(..k);
                entries
            };
            for e in &fresh {
                self.log.push(e.clone());
            }
            self.persist_log(Persist::Append { entries: fresh }, out);
        }
        let commit = leader_commit.min(last_new);
        if commit > self.commit {
            self.commit = commit;
        }
        // Log matching (§5.3): the log now holds the leader's entry at `last_new`, so it
        // matches the leader's through there, and the acknowledgement may say so.
        debug_assert_eq!(self.log.term_at(last_new), Some(last_new_term));
        debug_assert!(self.commit <= self.log.last_index());
        self.reply_append(from, true, last_new, LogIndex(0), None, out);
    }

    fn reply_append(
        &self,
        to: NodeId,
        success: bool,
        index: LogIndex,
        hint_index: LogIndex,
        hint_term: Option<Term>,
        out: &mut Out,
    ) {
        let msg = RaftMessage::AppendEntriesResponse {
            term: self.term,
            success,
            index,
            hint_index,
            hint_term,
        };
        self.send(to, msg, out);
    }

    pub(super) fn progress_index(&self, id: NodeId) -> Option<usize> {
        if self.state != State::Leader {
            return None;
        }
        self.progress.iter().position(|p| p.id == id)
    }

    /// The progress slot of a follower answering about `index`, marked as heard from;
    /// `None` for a non-member or an index beyond the log (bogus).
    pub(super) fn answering_follower(&mut self, from: NodeId, index: LogIndex) -> Option<usize> {
        let i = self.progress_index(from)?;
        if index > self.log.last_index() {
            return None;
        }
        self.progress[i].heard_tick = self.now;
        Some(i)
    }

    pub(super) fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        index: LogIndex,
        hint_index: LogIndex,
        hint_term: Option<Term>,
        out: &mut Out,
    ) {
        let Some(i) = self.answering_follower(from, index) else {
            return;
        };
        let pr = &mut self.progress[i];
        if success {
            let advanced = pr.acknowledge(index);
            let caught_up = match pr.state {
                ProgressState::Probe => true,
                ProgressState::Snapshot => pr
                    .snapshot
                    .as_ref()
                    .is_some_and(|s| pr.match_index >= s.meta.index),
                ProgressState::Replicate => false,
            };
            if caught_up {
                pr.become_replicate();
            }
            if advanced {
                self.maybe_commit(out);
            }
            // Committing may change the membership, and with it the progress table.
            let Some(i) = self.progress_index(from) else {
                return;
            };
            self.maybe_send_timeout_now(i, out);
            self.send_append(i, out);
        } else {
            // In the pipelined state a refusal at or below the match index answers an
            // older message; in Probe, a refusal of an index other than the one probed
            // does. A refused probe at or below the match index is news: see below.
            let stale = match pr.state {
                ProgressState::Replicate => index <= pr.match_index,
                ProgressState::Probe => index != pr.next_index.prev(),
                ProgressState::Snapshot => true,
            };
            if stale {
                return;
            }
            let next = match hint_term.and_then(|t| self.log.last_index_of_term(t)) {
                Some(j) => j.next(),
                None => hint_index,
            };
            let pr = &mut self.progress[i];
            if index <= pr.match_index {
                // The follower refuses an index it acknowledged in this term: its log went
                // backwards (a wiped disk, an older copy restored). What it matched is no
                // longer known, so the search starts again below, down to a snapshot.
                pr.forget_match();
            }
            pr.become_probe();
            pr.next_index = next.min(index).max(pr.match_index.next());
            self.send_append(i, out);
        }
    }

    /// Once per heartbeat interval: restart silent pipelines, retry probes and snapshot
    /// chunks ([`Progress::heartbeat_interval_passed`]), and send heartbeats.
    ///
    /// [`Progress::heartbeat_interval_passed`]: crate::progress::Progress::heartbeat_interval_passed
    pub(super) fn heartbeat_round(&mut self, out: &mut Out) {
        for p in &mut self.progress {
            p.heartbeat_interval_passed();
        }
        self.send_heartbeats(out);
    }

    pub(super) fn send_heartbeats(&mut self, out: &mut Out) {
        for p in &self.progress {
            let msg = RaftMessage::Heartbeat {
                term: self.term,
                // Never tell a follower to commit beyond what it is known to hold.
                commit: self.commit.min(p.match_index),
                read_round: self.reads.round(),
                sent_tick: self.now,
            };
            out.push(Effect::Send { to: p.id, msg });
        }
    }

    pub(super) fn handle_heartbeat(
        &mut self,
        from: NodeId,
        commit: LogIndex,
        read_round: u64,
        sent_tick: u64,
        out: &mut Out,
    ) {
        let log_behind = commit > self.log.last_index();
        let commit = commit.min(self.log.last_index());
        if commit > self.commit {
            self.commit = commit;
        }
        let msg = RaftMessage::HeartbeatResponse {
            term: self.term,
            read_round,
            sent_tick,
            log_behind,
        };
        self.send(from, msg, out);
    }

    pub(super) fn handle_heartbeat_response(
        &mut self,
        from: NodeId,
        read_round: u64,
        sent_tick: u64,
        log_behind: bool,
        out: &mut Out,
    ) {
        let Some(i) = self.progress_index(from) else {
            return;
        };
        let pr = &mut self.progress[i];
        pr.heard_tick = self.now;
        if log_behind && pr.match_index > LogIndex(0) {
            // The follower lost entries it acknowledged: what it matched is no longer
            // known. Probe where replication stood; its refusal's hint leads down to
            // what it still holds, or to a snapshot.
            let next = pr.next_index;
            pr.forget_match();
            pr.become_probe();
            pr.next_index = next;
        }
        self.reads.record_echo(pr, read_round, sent_tick, self.now);
        self.advance_reads(out);
        self.send_append(i, out);
    }

    /// §5.3 and §5.4.2: commit the highest index a quorum holds, but only by counting
    /// replicas of an entry of the current term. The leader counts its own log only
    /// through the index its storage has made durable.
    pub(super) fn maybe_commit(&mut self, out: &mut Out) {
        if self.state != State::Leader {
            return;
        }
        let q = self.leader_quorum(Phase::Two, self.persist.stable_index(), |p| p.match_index);
        debug_assert!(
            q <= self.log.last_index(),
            "no follower is ahead of its leader"
        );
        if q <= self.commit || self.log.term_at(q) != Some(self.term) {
            return;
        }
        let first_of_term = self.log.term_at(self.commit) != Some(self.term);
        let freed = self
            .log
            .range(self.commit.next(), q)
            .map(Entry::size_bytes)
            .sum::<usize>();
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(freed);
        let previous = self.commit;
        self.commit = q;
        debug_assert!(previous < self.commit && self.log.term_at(self.commit) == Some(self.term));
        if first_of_term {
            self.start_read_round(out);
        }
        self.on_commit_membership(previous, out);
    }
}

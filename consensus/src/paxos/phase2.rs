//! Phase 2 (accept and accepted) and learning: proposals, batching, pipelined Accepts
//! bounded by count and bytes, synchronising acceptors after phase 1, deciding, and
//! heartbeats that carry the decided prefix to learners.

use bytes::Bytes;
use rsm_core::{
    Ballot, ENTRY_HEADER_BYTES, Effect, Entry, LogIndex, NodeId, Persist, Phase, RejectReason,
    RequestId,
};

use super::{Out, Paxos, PaxosMessage, State, ballot_epoch};
use crate::progress::ProgressState;

impl Paxos {
    /// A client proposal. Returns whether the batch should be written and sent now: it is
    /// when the leader has no write in flight or the batch is full; otherwise it joins the
    /// batch that leaves when the write in flight completes.
    pub(super) fn propose(&mut self, req: RequestId, command: Bytes, out: &mut Out) -> bool {
        let reason = self.leadership_refusal().or_else(|| {
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
        let epoch = ballot_epoch(self.promised);
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

    /// Send the batch to every acceptor, then write it at the leader's own acceptor (the
    /// leader counts itself only once the write is durable).
    pub(super) fn flush(&mut self, out: &mut Out) {
        if self.unflushed > self.log.last_index() {
            return;
        }
        for i in 0..self.progress.len() {
            self.send_accept(i, out);
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
        self.persist_log(Persist::Accept { entries }, out);
    }

    /// Send acceptor `i` what its progress allows: one probe or synchronisation chunk, a
    /// window of pipelined Accepts, or a snapshot chunk when its next slot was trimmed.
    pub(super) fn send_accept(&mut self, i: usize, out: &mut Out) {
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
            let prev = pr.next_index.prev();
            if prev < self.log.snapshot.index {
                let (meta, data) = (self.log.snapshot.clone(), self.log.snapshot_data.clone());
                self.progress[i].become_snapshot(meta, data);
                continue;
            }
            let mut entries = Vec::new();
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
            let through = LogIndex(prev.0 + entries.len() as u64);
            let to = pr.id;
            let msg = PaxosMessage::Accept {
                ballot: self.promised,
                prev,
                entries,
                commit: self.commit,
                sync_end: self.sync_end,
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

    /// Phase 2b at the acceptor (`receive` made `ballot` its promise and its sender the
    /// leader). A synchronised acceptor extends its log; one not yet synchronised with
    /// `ballot` takes the leader's slots in place, and once they reach `sync_end` drops
    /// everything above and records `ballot` as accepted (module docs).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        prev: LogIndex,
        mut entries: Vec<Entry>,
        leader_commit: LogIndex,
        sync_end: LogIndex,
        out: &mut Out,
    ) {
        let epoch = ballot_epoch(ballot);
        let well_formed = entries
            .iter()
            .enumerate()
            .all(|(k, e)| e.index.0 == prev.0 + 1 + k as u64 && e.epoch <= epoch);
        if !well_formed {
            return;
        }
        debug_assert_eq!(self.promised, ballot);
        // Slots at or below the decided prefix are held here and decided: skip them.
        let mut prev = prev;
        if prev < self.commit {
            let skip = ((self.commit.0 - prev.0) as usize).min(entries.len());
            entries.drain(..skip);
            prev = LogIndex(prev.0 + skip as u64);
        }
        let end = LogIndex(prev.0 + entries.len() as u64);
        if self.accepted == ballot {
            if prev > self.log.last_index() {
                self.reply_accepted(from, ballot, self.log.last_index(), false, false, out);
                return;
            }
            let last = self.log.last_index();
            // A synchronised acceptor holds only this ballot's slots: they never differ.
            if entries
                .iter()
                .take_while(|e| e.index <= last)
                .any(|e| self.log.entry(e.index).is_none_or(|h| h.epoch != e.epoch))
            {
                return;
            }
            let fresh: Vec<Entry> = entries.into_iter().filter(|e| e.index > last).collect();
            if !fresh.is_empty() {
                for e in &fresh {
                    self.log.push(e.clone());
                }
                self.persist_log(Persist::Accept { entries: fresh }, out);
            }
            self.learn_commit(leader_commit);
            self.reply_accepted(from, ballot, self.log.last_index(), true, true, out);
            return;
        }
        let reach = match self.sync_through {
            Some((b, through)) if b == ballot => through.max(self.commit),
            _ => self.commit,
        };
        if prev > reach {
            self.reply_accepted(from, ballot, reach, false, false, out);
            return;
        }
        let last = self.log.last_index();
        let mut changed = Vec::new();
        for e in entries {
            if e.index > last {
                self.log.push(e.clone());
                changed.push(e);
            } else if self
                .log
                .entry(e.index)
                .is_none_or(|h| h.epoch != e.epoch || h.kind != e.kind)
            {
                self.log.overwrite(e.clone());
                changed.push(e);
            }
        }
        if let Some(first) = changed.first() {
            self.persist.forget_after(first.index.prev());
            self.persist_log(Persist::Accept { entries: changed }, out);
        }
        let through = end.max(reach);
        if through < sync_end {
            self.sync_through = Some((ballot, through));
            self.reply_accepted(from, ballot, through, false, true, out);
            return;
        }
        // Synchronised: nothing above `through` was decided below this ballot.
        if self.log.last_index() > through {
            self.log.truncate_from(through.next());
            self.persist.forget_after(through);
            self.persist_log(
                Persist::Truncate {
                    from: through.next(),
                },
                out,
            );
        }
        self.sync_through = None;
        self.accepted = ballot;
        self.persist_hard_state(out);
        self.learn_commit(leader_commit);
        self.reply_accepted(from, ballot, self.log.last_index(), true, true, out);
    }

    /// A synchronised acceptor's log is a prefix of its leader's: what the leader decided
    /// through its end is decided here too.
    fn learn_commit(&mut self, leader_commit: LogIndex) {
        let commit = leader_commit.min(self.log.last_index());
        if commit > self.commit {
            self.commit = commit;
        }
    }

    fn reply_accepted(
        &self,
        to: NodeId,
        ballot: Ballot,
        index: LogIndex,
        synced: bool,
        ok: bool,
        out: &mut Out,
    ) {
        let msg = PaxosMessage::Accepted {
            ballot,
            index,
            synced,
            ok,
        };
        self.send(to, msg, out);
    }

    pub(super) fn progress_index(&self, id: NodeId) -> Option<usize> {
        if self.state != State::Leader {
            return None;
        }
        self.progress.iter().position(|p| p.id == id)
    }

    /// The progress slot of an acceptor answering `ballot` about `index`, marked as heard
    /// from; `None` for another ballot, a non-member or an index beyond the log (bogus).
    pub(super) fn answering(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        index: LogIndex,
    ) -> Option<usize> {
        if ballot != self.promised || index > self.log.last_index() {
            return None;
        }
        let i = self.progress_index(from)?;
        self.progress[i].heard_tick = self.now;
        Some(i)
    }

    pub(super) fn handle_accepted(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        index: LogIndex,
        synced: bool,
        ok: bool,
        out: &mut Out,
    ) {
        let Some(i) = self.answering(from, ballot, index) else {
            return;
        };
        let pr = &mut self.progress[i];
        if ok && synced {
            let advanced = pr.acknowledge(index);
            if pr.state != ProgressState::Replicate {
                pr.become_replicate();
            }
            if advanced {
                self.maybe_commit(out);
            }
            // Deciding may change the membership, and with it the progress table.
            let Some(i) = self.progress_index(from) else {
                return;
            };
            self.send_accept(i, out);
        } else if ok {
            // A synchronisation chunk was taken: continue after it.
            if pr.state == ProgressState::Probe {
                pr.acked_since_heartbeat = true;
                pr.next_index = pr.next_index.max(index.next());
                pr.probe_sent = false;
            }
            self.send_accept(i, out);
        } else {
            if pr.state == ProgressState::Snapshot {
                return;
            }
            if index < pr.match_index {
                // The acceptor lost slots it acknowledged in this ballot (an older copy of
                // its disk): nothing is known to match any more.
                pr.forget_match();
            }
            pr.become_probe();
            pr.next_index = index.next().max(pr.match_index.next());
            self.send_accept(i, out);
        }
    }

    /// Once per heartbeat interval: restart silent pipelines, retry probes and snapshot
    /// chunks, and send heartbeats.
    pub(super) fn heartbeat_round(&mut self, out: &mut Out) {
        for p in &mut self.progress {
            p.heartbeat_interval_passed();
        }
        self.send_heartbeats(out);
    }

    pub(super) fn send_heartbeats(&mut self, out: &mut Out) {
        for p in &self.progress {
            let msg = PaxosMessage::Heartbeat {
                ballot: self.promised,
                // Never tell an acceptor to decide beyond what it is known to hold.
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
        ballot: Ballot,
        commit: LogIndex,
        read_round: u64,
        sent_tick: u64,
        out: &mut Out,
    ) {
        if self.accepted == ballot {
            self.learn_commit(commit);
        }
        let msg = PaxosMessage::HeartbeatReply {
            ballot,
            read_round,
            sent_tick,
        };
        self.send(from, msg, out);
    }

    pub(super) fn handle_heartbeat_reply(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        read_round: u64,
        sent_tick: u64,
        out: &mut Out,
    ) {
        let Some(i) = self.answering(from, ballot, LogIndex(0)) else {
            return;
        };
        self.reads
            .record_echo(&mut self.progress[i], read_round, sent_tick, self.now);
        self.advance_reads(out);
        self.send_accept(i, out);
    }

    /// Decide the highest slot a phase-2 quorum of synchronised acceptors holds. Every
    /// synchronised acceptor holds this ballot's log, so counting them decides older
    /// ballots' slots too. The leader counts its own acceptor only once its
    /// synchronisation and the slots are durable.
    pub(super) fn maybe_commit(&mut self, out: &mut Out) {
        if self.state != State::Leader {
            return;
        }
        let own = match self.own_sync {
            Some(seq) if self.persist.is_durable(seq) => self.persist.stable_index(),
            _ => LogIndex(0),
        };
        let q = self.leader_quorum(Phase::Two, own, |p| p.match_index);
        debug_assert!(
            q <= self.log.last_index(),
            "no acceptor is ahead of its leader"
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
        if previous < self.ballot_start && q >= self.ballot_start {
            self.start_read_round(out);
        }
        self.on_commit_membership(previous, out);
    }

    /// Whether no phase-2 quorum has been heard from within the minimal timeout: the
    /// leader's acceptors may then promise another proposer, so it stops leading.
    pub(super) fn quorum_silent(&self) -> bool {
        let since = self.leader_quorum(Phase::Two, self.now, |p| p.heard_tick);
        self.now >= since + self.cfg.election_ticks_min
    }
}

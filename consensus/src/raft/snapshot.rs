//! Snapshots and log compaction (§7): asking the host for a snapshot, compacting, and
//! sending snapshots to followers behind the compaction point in bounded chunks.

use bytes::Bytes;
use rsm_core::{Effect, LogIndex, NodeId, Persist, SnapshotMeta};

use super::progress::ProgressState;
use super::{Out, Raft, RaftMessage};

/// A snapshot being received from the leader, chunk by chunk, in order.
#[derive(Debug)]
pub(super) struct IncomingSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl Raft {
    pub(super) fn applied_through(&mut self, through: LogIndex, out: &mut Out) {
        // The host cannot have applied what was never handed to it.
        let through = through.min(self.applied);
        if through > self.host_applied {
            self.host_applied = through;
        }
        let threshold = self.cfg.snapshot_entries_threshold;
        let due = self.host_applied.0 >= self.log.snapshot.index.0 + threshold;
        let not_asked = self
            .snapshot_asked
            .is_none_or(|asked| self.host_applied.0 >= asked.0 + threshold);
        if due && not_asked {
            self.snapshot_asked = Some(self.host_applied);
            out.push(Effect::TakeSnapshot {
                through: self.host_applied,
            });
        }
    }

    /// The host took a snapshot of its state machine: store it and compact the log. The
    /// metadata is recomputed from the log, which knows the term and membership at the
    /// snapshot's index better than the host.
    pub(super) fn snapshot_taken(&mut self, meta: SnapshotMeta, data: Bytes, out: &mut Out) {
        let index = meta.index;
        if index <= self.log.snapshot.index || index > self.applied {
            return;
        }
        let Some(term) = self.log.term_at(index) else {
            return;
        };
        let meta = SnapshotMeta {
            index,
            epoch: rsm_core::Epoch(term.0),
            membership: self.log.membership_at(index),
        };
        self.snapshot_asked = None;
        self.persist(
            Persist::Snapshot {
                meta: meta.clone(),
                data: data.clone(),
            },
            out,
        );
        // A storage that keeps snapshots apart from the log drops covered segments here.
        self.persist(Persist::Compact { through: index }, out);
        self.log.install_snapshot(meta, data);
    }

    pub(super) fn send_snapshot_chunk(&mut self, i: usize, out: &mut Out) {
        let chunk_bytes = self.cfg.snapshot_chunk_bytes as u64;
        let term = self.term;
        let pr = &mut self.progress[i];
        let Some(s) = &mut pr.snapshot else {
            return;
        };
        if s.chunk_sent {
            return;
        }
        if s.offset == 0 && s.meta.index < self.log.snapshot.index {
            // Nothing sent has been accepted yet: send the newest snapshot instead, so a
            // follower that was away for long does not need two.
            s.meta = self.log.snapshot.clone();
            s.data = self.log.snapshot_data.clone();
        }
        let len = s.data.len() as u64;
        let offset = s.offset.min(len);
        let end = (offset + chunk_bytes).min(len);
        let msg = RaftMessage::InstallSnapshot {
            term,
            meta: s.meta.clone(),
            offset,
            data: s.data.slice(offset as usize..end as usize),
            done: end == len,
        };
        s.chunk_sent = true;
        out.push(Effect::Send { to: pr.id, msg });
    }

    /// §7: gather chunks in order; on the last one, store the snapshot, replace the state
    /// machine and keep any log suffix that follows it.
    pub(super) fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
        done: bool,
        out: &mut Out,
    ) {
        if meta.index <= self.commit {
            // Already here and committed: nothing to install.
            self.incoming = None;
            self.reply_snapshot(from, meta.index, 0, true, out);
            return;
        }
        if offset == 0 {
            self.incoming = Some(IncomingSnapshot {
                meta: meta.clone(),
                data: Vec::new(),
            });
        }
        let expected = match &self.incoming {
            Some(inc) if inc.meta == meta => inc.data.len() as u64,
            _ => 0,
        };
        let fits = expected as usize + data.len() <= self.cfg.snapshot_bytes_max;
        let Some(inc) = self.incoming.as_mut().filter(|inc| inc.meta == meta) else {
            self.reply_snapshot(from, meta.index, 0, false, out);
            return;
        };
        if offset != expected || !fits {
            if !fits {
                self.incoming = None;
            }
            let next = if fits { expected } else { 0 };
            self.reply_snapshot(from, meta.index, next, false, out);
            return;
        }
        inc.data.extend_from_slice(&data);
        if !done {
            let next = inc.data.len() as u64;
            self.reply_snapshot(from, meta.index, next, false, out);
            return;
        }
        let Some(inc) = self.incoming.take() else {
            return;
        };
        let data = Bytes::from(inc.data);
        let keeps_suffix = self
            .log
            .entry(meta.index)
            .is_some_and(|e| e.epoch == meta.epoch);
        self.log.install_snapshot(meta.clone(), data.clone());
        if !keeps_suffix {
            self.forget_stable_after(meta.index);
        }
        self.persist_log(
            Persist::Snapshot {
                meta: meta.clone(),
                data: data.clone(),
            },
            out,
        );
        self.commit = meta.index;
        self.applied = meta.index;
        self.host_applied = meta.index;
        self.snapshot_asked = None;
        let index = meta.index;
        out.push(Effect::InstallSnapshot { meta, data });
        self.reply_snapshot(from, index, 0, true, out);
    }

    fn reply_snapshot(
        &self,
        to: NodeId,
        index: LogIndex,
        next_offset: u64,
        done: bool,
        out: &mut Out,
    ) {
        let msg = RaftMessage::InstallSnapshotResponse {
            term: self.term,
            index,
            next_offset,
            done,
        };
        self.send(to, msg, out);
    }

    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        index: LogIndex,
        next_offset: u64,
        done: bool,
        out: &mut Out,
    ) {
        let Some(i) = self.answering_follower(from, index) else {
            return;
        };
        let pr = &mut self.progress[i];
        pr.acked_since_heartbeat = true;
        if done {
            if pr.state == ProgressState::Snapshot {
                pr.acknowledge(index);
                pr.become_probe();
            } else if pr.acknowledge(index) {
                pr.become_probe();
            }
            self.maybe_commit(out);
            // Committing may change the membership, and with it the progress table.
            let Some(i) = self.progress_index(from) else {
                return;
            };
            self.send_append(i, out);
            return;
        } else if pr.state == ProgressState::Snapshot {
            match &mut pr.snapshot {
                Some(s) if s.meta.index == index => {
                    s.offset = next_offset.min(s.data.len() as u64);
                    s.chunk_sent = false;
                }
                _ => return,
            }
        } else {
            return;
        }
        self.send_append(i, out);
    }
}

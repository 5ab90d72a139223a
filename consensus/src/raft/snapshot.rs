//! Snapshots and log compaction (§7): asking the host for a snapshot, compacting, and
//! sending snapshots to followers behind the compaction point in bounded chunks.

use bytes::Bytes;
use rsm_core::{Effect, LogIndex, NodeId, Persist, SnapshotMeta};

use super::{Out, Raft, RaftMessage};
use crate::progress::ProgressState;
use crate::snapshot_transfer::{Received, SnapshotAssembly};

impl Raft {
    pub(super) fn applied_through(&mut self, through: LogIndex, out: &mut Out) {
        self.apply.report(through);
        let host_applied = self.apply.host_applied();
        let threshold = self.cfg.snapshot_entries_threshold;
        let due = host_applied.0 >= self.log.snapshot.index.0 + threshold;
        let not_asked = self
            .snapshot_asked
            .is_none_or(|asked| host_applied.0 >= asked.0 + threshold);
        if due && not_asked {
            self.snapshot_asked = Some(host_applied);
            out.push(Effect::TakeSnapshot {
                through: host_applied,
            });
        }
    }

    /// The host took a snapshot of its state machine: store it and compact the log. The
    /// metadata is recomputed from the log, which knows the term and membership at the
    /// snapshot's index better than the host.
    pub(super) fn snapshot_taken(&mut self, meta: SnapshotMeta, data: Bytes, out: &mut Out) {
        let index = meta.index;
        if index <= self.log.snapshot.index || index > self.apply.applied() {
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
        let newest = (&self.log.snapshot, &self.log.snapshot_data);
        let pr = &mut self.progress[i];
        let Some(send) = &mut pr.snapshot else {
            return;
        };
        let Some(c) = send.next_chunk(newest, self.cfg.snapshot_chunk_bytes as u64) else {
            return;
        };
        let msg = RaftMessage::InstallSnapshot {
            term: self.term,
            meta: c.meta,
            offset: c.offset,
            data: c.data,
            done: c.done,
        };
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
        let received = SnapshotAssembly::receive(
            &mut self.incoming,
            &meta,
            offset,
            &data,
            done,
            self.cfg.snapshot_bytes_max,
        );
        let data = match received {
            Received::More { next_offset } | Received::Refused { next_offset } => {
                self.reply_snapshot(from, meta.index, next_offset, false, out);
                return;
            }
            Received::Done(data) => data,
        };
        let keeps_suffix = self
            .log
            .entry(meta.index)
            .is_some_and(|e| e.epoch == meta.epoch);
        // Entries above a snapshot that disagrees with the log at its index are from
        // another leader's history: §7 discards them, and a stored snapshot keeps them, so
        // they are truncated first (a crash in between leaves a shorter log, not a
        // snapshot followed by a suffix it never preceded).
        let conflicting_suffix = !keeps_suffix && self.log.last_index() > meta.index;
        self.log.install_snapshot(meta.clone(), data.clone());
        if !keeps_suffix {
            self.persist.forget_after(meta.index);
        }
        if conflicting_suffix {
            self.persist_log(
                Persist::Truncate {
                    from: meta.index.next(),
                },
                out,
            );
        }
        self.persist_log(
            Persist::Snapshot {
                meta: meta.clone(),
                data: data.clone(),
            },
            out,
        );
        self.commit = meta.index;
        self.apply.reset(meta.index);
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
            let taken = pr
                .snapshot
                .as_mut()
                .is_some_and(|s| s.acknowledged(index, next_offset));
            if !taken {
                return;
            }
        } else {
            return;
        }
        self.send_append(i, out);
    }
}

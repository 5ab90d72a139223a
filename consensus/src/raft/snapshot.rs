//! Snapshots and log compaction (§7): asking the host for a snapshot, compacting, and
//! sending snapshots to followers behind the compaction point in bounded chunks.

use bytes::Bytes;
use rsm_core::{Effect, LogIndex, NodeId, SnapshotMeta};

use super::{Out, Raft, RaftMessage};
use crate::progress::ProgressState;
use crate::snapshot_transfer::{
    Received, SnapshotAssembly, install_received, snapshot_due, store_taken,
};

impl Raft {
    pub(super) fn applied_through(&mut self, through: LogIndex, out: &mut Out) {
        self.apply.report(through);
        let due = snapshot_due(
            self.apply.host_applied(),
            self.log.snapshot.index,
            self.cfg.snapshot_entries_threshold,
            &mut self.snapshot_asked,
        );
        if let Some(through) = due {
            out.push(Effect::TakeSnapshot { through });
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
        if store_taken(&mut self.log, &mut self.persist, index, data, out).is_some() {
            self.snapshot_asked = None;
        }
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
        let index = meta.index;
        install_received(&mut self.log, &mut self.persist, meta, data, out);
        self.commit = index;
        self.apply.reset(index);
        self.snapshot_asked = None;
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

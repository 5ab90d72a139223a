//! Snapshots and trimming the log at the applied op, and snapshot transfer in bounded
//! chunks to backups behind the primary's trim point (the paper's state transfer for a
//! replica that lags beyond the log the primary keeps).

use bytes::Bytes;
use rsm_core::{Effect, LogIndex, NodeId, SnapshotMeta, View};

use super::{Out, Vsr, VsrMessage};
use crate::progress::ProgressState;
use crate::snapshot_transfer::{
    Received, SnapshotAssembly, install_received, snapshot_due, store_taken,
};

impl Vsr {
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

    /// The host took a snapshot: store it and trim the log. The metadata is recomputed from
    /// the log, which knows the op's view and the membership there better than the host.
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
        let msg = VsrMessage::Snapshot {
            view: self.view,
            meta: c.meta,
            offset: c.offset,
            data: c.data,
            done: c.done,
        };
        out.push(Effect::Send { to: pr.id, msg });
    }

    /// Gather chunks in order; on the last one, store the snapshot (its ops are
    /// committed), replace the state machine and keep any ops that agree after it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_snapshot(
        &mut self,
        from: NodeId,
        view: View,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
        done: bool,
        out: &mut Out,
    ) {
        if meta.index <= self.commit {
            self.incoming = None;
            self.reply_snapshot(from, view, meta.index, 0, true, out);
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
                self.reply_snapshot(from, view, meta.index, next_offset, false, out);
                return;
            }
            Received::Done(data) => data,
        };
        let index = meta.index;
        install_received(&mut self.log, &mut self.persist, meta, data, out);
        self.commit = index;
        self.apply.reset(index);
        self.snapshot_asked = None;
        self.reply_snapshot(from, view, index, 0, true, out);
    }

    fn reply_snapshot(
        &self,
        to: NodeId,
        view: View,
        index: LogIndex,
        next_offset: u64,
        done: bool,
        out: &mut Out,
    ) {
        let msg = VsrMessage::SnapshotReply {
            view,
            index,
            next_offset,
            done,
        };
        self.send(to, msg, out);
    }

    pub(super) fn handle_snapshot_reply(
        &mut self,
        from: NodeId,
        view: View,
        index: LogIndex,
        next_offset: u64,
        done: bool,
        out: &mut Out,
    ) {
        let Some(i) = self.answering(from, view, index) else {
            return;
        };
        let pr = &mut self.progress[i];
        pr.acked_since_heartbeat = true;
        if done {
            // The backup's commit number now reaches `index`: probe from there.
            if pr.state == ProgressState::Snapshot || index >= pr.next_index {
                pr.become_probe();
                pr.next_index = pr.next_index.max(index.next());
            }
            self.send_prepare(i, out);
            return;
        }
        if pr.state != ProgressState::Snapshot {
            return;
        }
        let taken = pr
            .snapshot
            .as_mut()
            .is_some_and(|s| s.acknowledged(index, next_offset));
        if taken {
            self.send_prepare(i, out);
        }
    }
}

//! Snapshots and trimming the log at the applied index, and snapshot transfer in bounded
//! chunks to acceptors behind the leader's trim point.

use bytes::Bytes;
use rsm_core::{Ballot, Effect, LogIndex, NodeId, SnapshotMeta};

use super::{Out, Paxos, PaxosMessage};
use crate::progress::ProgressState;
use crate::snapshot_transfer::{
    Received, SnapshotAssembly, install_received, snapshot_due, store_taken,
};

impl Paxos {
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
    /// the log, which knows the slot's ballot and the membership there better than the host.
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
        let msg = PaxosMessage::Snapshot {
            ballot: self.promised,
            meta: c.meta,
            offset: c.offset,
            data: c.data,
            done: c.done,
        };
        out.push(Effect::Send { to: pr.id, msg });
    }

    /// Gather chunks in order; on the last one, store the snapshot (its slots are
    /// decided), replace the state machine and keep any slots that follow it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_snapshot(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
        done: bool,
        out: &mut Out,
    ) {
        if meta.index <= self.commit {
            self.incoming = None;
            self.reply_snapshot(from, ballot, meta.index, 0, true, out);
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
                self.reply_snapshot(from, ballot, meta.index, next_offset, false, out);
                return;
            }
            Received::Done(data) => data,
        };
        let index = meta.index;
        install_received(&mut self.log, &mut self.persist, meta, data, out);
        self.commit = index;
        self.apply.reset(index);
        self.snapshot_asked = None;
        self.reply_snapshot(from, ballot, index, 0, true, out);
    }

    fn reply_snapshot(
        &self,
        to: NodeId,
        ballot: Ballot,
        index: LogIndex,
        next_offset: u64,
        done: bool,
        out: &mut Out,
    ) {
        let msg = PaxosMessage::SnapshotReply {
            ballot,
            index,
            next_offset,
            done,
        };
        self.send(to, msg, out);
    }

    pub(super) fn handle_snapshot_reply(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        index: LogIndex,
        next_offset: u64,
        done: bool,
        out: &mut Out,
    ) {
        let Some(i) = self.answering(from, ballot, index) else {
            return;
        };
        let pr = &mut self.progress[i];
        pr.acked_since_heartbeat = true;
        if done {
            // The acceptor's decided prefix now reaches `index`; it is synchronised from
            // there on.
            if pr.state == ProgressState::Snapshot || index >= pr.next_index {
                pr.become_probe();
                pr.next_index = pr.next_index.max(index.next());
            }
            self.send_accept(i, out);
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
            self.send_accept(i, out);
        }
    }
}

//! Chunked snapshot transfer: a leader sends a snapshot in bounded chunks, one in flight
//! at a time, and a follower reassembles them in order under a size limit.

use bytes::Bytes;
use rsm_core::{Effect, LogIndex, Persist, SnapshotMeta};

use crate::log_window::LogWindow;
use crate::persist_tracker::PersistTracker;

/// Whether to ask the host for a snapshot now that it applied through `host_applied`: once
/// `threshold` applied entries follow the latest snapshot, and not again before another
/// `threshold` entries follow the last request (`asked`, updated here).
pub(crate) fn snapshot_due(
    host_applied: LogIndex,
    snapshot_index: LogIndex,
    threshold: u64,
    asked: &mut Option<LogIndex>,
) -> Option<LogIndex> {
    let due = host_applied.0 >= snapshot_index.0 + threshold;
    let not_asked = asked.is_none_or(|a| host_applied.0 >= a.0 + threshold);
    if due && not_asked {
        *asked = Some(host_applied);
        Some(host_applied)
    } else {
        None
    }
}

/// Store a snapshot the host took at `meta.index` (metadata recomputed from the log) and
/// trim the log; `None` if the log no longer holds that index above its snapshot.
pub(crate) fn store_taken<M>(
    log: &mut LogWindow,
    persist: &mut PersistTracker,
    index: LogIndex,
    data: Bytes,
    out: &mut Vec<Effect<M>>,
) -> Option<()> {
    let epoch = log.entry(index)?.epoch;
    let meta = SnapshotMeta {
        index,
        epoch,
        membership: log.membership_at(index),
    };
    let op = Persist::Snapshot {
        meta: meta.clone(),
        data: data.clone(),
    };
    persist.emit(op, out);
    // A storage that keeps snapshots apart from the log drops covered segments here.
    persist.emit(Persist::Compact { through: index }, out);
    log.install_snapshot(meta, data);
    Some(())
}

/// Install a snapshot received whole from a leader: the log keeps what follows it if it
/// holds the snapshot's last entry, the snapshot is written, and the host's state machine
/// is replaced.
///
/// Entries above a snapshot that disagrees with the log at its index are from another
/// leader's history: they are discarded, and since a stored snapshot keeps what lies above
/// it, they are truncated first (a crash in between leaves a shorter log, not a snapshot
/// followed by a suffix it never preceded).
pub(crate) fn install_received<M>(
    log: &mut LogWindow,
    persist: &mut PersistTracker,
    meta: SnapshotMeta,
    data: Bytes,
    out: &mut Vec<Effect<M>>,
) {
    let keeps_suffix = log.entry(meta.index).is_some_and(|e| e.epoch == meta.epoch);
    let conflicting_suffix = !keeps_suffix && log.last_index() > meta.index;
    log.install_snapshot(meta.clone(), data.clone());
    if !keeps_suffix {
        persist.forget_after(meta.index);
    }
    if conflicting_suffix {
        let op = Persist::Truncate {
            from: meta.index.next(),
        };
        persist.emit_log(op, log.last_index(), out);
    }
    let op = Persist::Snapshot {
        meta: meta.clone(),
        data: data.clone(),
    };
    persist.emit_log(op, log.last_index(), out);
    out.push(Effect::InstallSnapshot { meta, data });
}

/// One chunk ready to leave.
#[derive(Clone, Debug)]
pub(crate) struct Chunk {
    pub meta: SnapshotMeta,
    pub offset: u64,
    pub data: Bytes,
    pub done: bool,
}

/// A snapshot being sent in chunks, one chunk in flight at a time.
#[derive(Debug)]
pub(crate) struct SnapshotSend {
    pub meta: SnapshotMeta,
    data: Bytes,
    offset: u64,
    chunk_sent: bool,
}

impl SnapshotSend {
    pub fn new(meta: SnapshotMeta, data: Bytes) -> Self {
        Self {
            meta,
            data,
            offset: 0,
            chunk_sent: false,
        }
    }

    /// The next chunk of at most `chunk_bytes`, unless one is in flight. While nothing
    /// has been accepted yet, a newer snapshot replaces the one being sent, so a follower
    /// that was away for long does not need two.
    pub fn next_chunk(
        &mut self,
        newest: (&SnapshotMeta, &Bytes),
        chunk_bytes: u64,
    ) -> Option<Chunk> {
        if self.chunk_sent {
            return None;
        }
        if self.offset == 0 && self.meta.index < newest.0.index {
            self.meta = newest.0.clone();
            self.data = newest.1.clone();
        }
        let len = self.data.len() as u64;
        let offset = self.offset.min(len);
        let end = (offset + chunk_bytes).min(len);
        self.chunk_sent = true;
        Some(Chunk {
            meta: self.meta.clone(),
            offset,
            data: self.data.slice(offset as usize..end as usize),
            done: end == len,
        })
    }

    /// The follower expects `next_offset` of the snapshot through `index` next. Returns
    /// false for an answer about another snapshot.
    pub fn acknowledged(&mut self, index: LogIndex, next_offset: u64) -> bool {
        if self.meta.index != index {
            return false;
        }
        self.offset = next_offset.min(self.data.len() as u64);
        self.chunk_sent = false;
        true
    }

    /// The chunk in flight was presumably lost: send it again.
    pub fn retry(&mut self) {
        self.chunk_sent = false;
    }
}

/// What a received chunk did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// Taken; the sender should continue from `next_offset`.
    More { next_offset: u64 },
    /// Out of order, for another snapshot, or over the size limit: the sender should
    /// continue from `next_offset` (0 to start over).
    Refused { next_offset: u64 },
    /// The last chunk: the whole snapshot.
    Done(Bytes),
}

/// A snapshot being received, chunk by chunk, in order.
#[derive(Debug)]
pub(crate) struct SnapshotAssembly {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

impl SnapshotAssembly {
    /// Take one chunk into `slot` (the snapshot being received, if any). A chunk at offset
    /// 0 starts over; a snapshot larger than `bytes_max` is dropped.
    pub fn receive(
        slot: &mut Option<SnapshotAssembly>,
        meta: &SnapshotMeta,
        offset: u64,
        data: &[u8],
        done: bool,
        bytes_max: usize,
    ) -> Received {
        if offset == 0 {
            *slot = Some(SnapshotAssembly {
                meta: meta.clone(),
                data: Vec::new(),
            });
        }
        let Some(inc) = slot.as_mut().filter(|inc| inc.meta == *meta) else {
            return Received::Refused { next_offset: 0 };
        };
        let expected = inc.data.len() as u64;
        if expected as usize + data.len() > bytes_max {
            *slot = None;
            return Received::Refused { next_offset: 0 };
        }
        if offset != expected {
            return Received::Refused {
                next_offset: expected,
            };
        }
        inc.data.extend_from_slice(data);
        if !done {
            return Received::More {
                next_offset: inc.data.len() as u64,
            };
        }
        match slot.take() {
            Some(inc) => Received::Done(Bytes::from(inc.data)),
            None => Received::Refused { next_offset: 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(i: u64) -> SnapshotMeta {
        SnapshotMeta {
            index: LogIndex(i),
            ..Default::default()
        }
    }

    #[test]
    fn chunks_leave_one_at_a_time_and_reassemble_in_order() {
        let data = Bytes::from_static(b"0123456789");
        let m = meta(5);
        let mut send = SnapshotSend::new(m.clone(), data.clone());
        let mut slot = None;
        let mut got = None;
        while got.is_none() {
            let c = send.next_chunk((&m, &data), 4).expect("nothing in flight");
            assert!(send.next_chunk((&m, &data), 4).is_none(), "one in flight");
            match SnapshotAssembly::receive(&mut slot, &c.meta, c.offset, &c.data, c.done, 64) {
                Received::More { next_offset } => assert!(send.acknowledged(m.index, next_offset)),
                Received::Done(bytes) => got = Some(bytes),
                Received::Refused { .. } => panic!("in-order chunks are taken"),
            }
        }
        assert_eq!(got, Some(data));
    }

    #[test]
    fn out_of_order_and_oversized_chunks_are_refused() {
        let mut slot = None;
        let m = meta(5);
        assert_eq!(
            SnapshotAssembly::receive(&mut slot, &m, 3, b"abc", false, 64),
            Received::Refused { next_offset: 0 }
        );
        assert_eq!(
            SnapshotAssembly::receive(&mut slot, &m, 0, b"abc", false, 64),
            Received::More { next_offset: 3 }
        );
        assert_eq!(
            SnapshotAssembly::receive(&mut slot, &m, 5, b"de", false, 64),
            Received::Refused { next_offset: 3 }
        );
        assert_eq!(
            SnapshotAssembly::receive(&mut slot, &m, 3, b"defgh", false, 6),
            Received::Refused { next_offset: 0 }
        );
        assert!(slot.is_none(), "an oversized snapshot is dropped");
    }
}

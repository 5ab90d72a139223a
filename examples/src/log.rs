//! The replicated log both example protocols keep: entries in memory and the follower
//! side of the append consistency check. Which appends are durable is tracked by the
//! protocol library's own [`PersistTracker`], the one Raft uses.

use rsm_consensus::PersistTracker;
use rsm_core::{Effect, Entry, Epoch, LogIndex, Persist, PersistSeq, RestoreError};

/// Entries in one replication message, at most.
pub const BATCH_ENTRIES_MAX: usize = 64;

/// A log that starts at index 1 (the examples never compact).
#[derive(Clone, Debug)]
pub struct Log {
    entries: Vec<Entry>,
    persist: PersistTracker,
}

/// Why a follower refused an append, and where the leader should resume.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The index the leader should send from next.
    pub hint: LogIndex,
}

impl Log {
    /// The log rebuilt from durable entries (all of them durable, consecutive from 1).
    pub fn from_durable(entries: Vec<Entry>) -> Result<Self, RestoreError> {
        for (k, e) in entries.iter().enumerate() {
            if e.index != LogIndex(k as u64 + 1) {
                return Err(RestoreError::LogGap {
                    index: e.index.0,
                    previous: k as u64,
                });
            }
        }
        let durable_index = LogIndex(entries.len() as u64);
        Ok(Self {
            entries,
            persist: PersistTracker::new(durable_index),
        })
    }

    /// The last index.
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.entries.len() as u64)
    }

    /// The epoch of the last entry (0 when empty).
    pub fn last_epoch(&self) -> Epoch {
        self.epoch_at(self.last_index())
    }

    /// The epoch of the entry at `index` (0 for index 0 or past the end).
    pub fn epoch_at(&self, index: LogIndex) -> Epoch {
        match index.0 {
            0 => Epoch(0),
            i => self
                .entries
                .get(i as usize - 1)
                .map_or(Epoch(0), |e| e.epoch),
        }
    }

    /// Everything through this index is on disk.
    pub fn durable_index(&self) -> LogIndex {
        self.persist.stable_index()
    }

    /// Entries `from..=through`, clamped to the log.
    pub fn slice(&self, from: LogIndex, through: LogIndex) -> Vec<Entry> {
        let lo = (from.0.max(1) - 1) as usize;
        let hi = through.0.min(self.last_index().0) as usize;
        if lo >= hi {
            return Vec::new();
        }
        self.entries[lo..hi].to_vec()
    }

    /// Up to [`BATCH_ENTRIES_MAX`] entries from `from`.
    pub fn batch(&self, from: LogIndex) -> Vec<Entry> {
        self.slice(from, LogIndex(from.0 + BATCH_ENTRIES_MAX as u64 - 1))
    }

    /// Emit a persist, numbering it; returns its number. An append must already be in
    /// the in-memory log.
    pub fn persist<M>(&mut self, op: Persist, out: &mut Vec<Effect<M>>) -> PersistSeq {
        match &op {
            Persist::Append { entries } if !entries.is_empty() => {
                // Writing at an index discards what was durable there and after.
                self.persist.forget_after(entries[0].index.prev());
                let last = self.last_index();
                self.persist.emit_log(op, last, out)
            }
            _ => self.persist.emit(op, out),
        }
    }

    /// Append one entry at the end and persist it.
    pub fn append<M>(&mut self, entry: Entry, out: &mut Vec<Effect<M>>) {
        debug_assert_eq!(entry.index, self.last_index().next());
        self.entries.push(entry.clone());
        self.persist(
            Persist::Append {
                entries: vec![entry],
            },
            out,
        );
    }

    /// Every persist through `through` is durable.
    pub fn persisted(&mut self, through: PersistSeq) {
        self.persist.persisted(through);
    }

    /// The follower side of replication: accept `entries` after `prev_index` if the log
    /// holds `prev_index` with `prev_epoch`, skipping entries already held and truncating
    /// at the first conflict. Returns the last index now known to match the sender.
    pub fn accept<M>(
        &mut self,
        prev_index: LogIndex,
        prev_epoch: Epoch,
        entries: Vec<Entry>,
        out: &mut Vec<Effect<M>>,
    ) -> Result<LogIndex, Mismatch> {
        if prev_index > self.last_index() {
            return Err(Mismatch {
                hint: self.last_index().next(),
            });
        }
        if self.epoch_at(prev_index) != prev_epoch {
            return Err(Mismatch { hint: prev_index });
        }
        let verified = LogIndex(prev_index.0 + entries.len() as u64);
        let mut fresh = Vec::new();
        for e in entries {
            if fresh.is_empty() && e.index <= self.last_index() {
                if self.epoch_at(e.index) == e.epoch {
                    continue;
                }
                self.entries.truncate((e.index.0 - 1) as usize);
            }
            fresh.push(e);
        }
        if !fresh.is_empty() {
            self.entries.extend(fresh.iter().cloned());
            self.persist(Persist::Append { entries: fresh }, out);
        }
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_core::Bytes;

    fn e(i: u64, epoch: u64) -> Entry {
        Entry::command(LogIndex(i), Epoch(epoch), Bytes::new())
    }

    #[test]
    fn accept_checks_prev_skips_held_and_truncates_conflicts() {
        let mut log = Log::from_durable(vec![e(1, 1), e(2, 1), e(3, 1)]).unwrap();
        let mut out: Vec<Effect<()>> = Vec::new();
        assert_eq!(
            log.accept(LogIndex(5), Epoch(1), vec![], &mut out),
            Err(Mismatch { hint: LogIndex(4) })
        );
        assert_eq!(
            log.accept(LogIndex(2), Epoch(9), vec![], &mut out),
            Err(Mismatch { hint: LogIndex(2) })
        );
        assert_eq!(
            log.accept(LogIndex(1), Epoch(1), vec![e(2, 1)], &mut out),
            Ok(LogIndex(2))
        );
        assert!(out.is_empty(), "nothing new to persist");
        assert_eq!(
            log.last_index(),
            LogIndex(3),
            "a stale append does not truncate"
        );
        assert_eq!(
            log.accept(LogIndex(1), Epoch(1), vec![e(2, 2)], &mut out),
            Ok(LogIndex(2))
        );
        assert_eq!(log.last_index(), LogIndex(2));
        assert_eq!(
            log.durable_index(),
            LogIndex(1),
            "the overwrite is not durable yet"
        );
        log.persisted(PersistSeq(1));
        assert_eq!(log.durable_index(), LogIndex(2));
    }
}

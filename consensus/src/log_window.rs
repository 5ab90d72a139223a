//! The in-memory log: the latest snapshot, the entries after it, and the configuration
//! entries among them.

use std::collections::VecDeque;

use bytes::Bytes;
use rsm_core::{
    Durable, Entry, EntryKind, Epoch, LogIndex, Membership, NodeId, RestoreError, Role,
    SnapshotMeta, Term,
};

/// The replica's view of its log. Entries are consecutive from `snapshot.index + 1`. In a
/// Raft log their terms never decrease, which lets lookups by term use binary search; a
/// Paxos log holds each slot's value with the ballot that created it, which may be lower
/// than its predecessor's (built with [`LogWindow::new_slots`], it has no lookups by term).
#[derive(Debug)]
pub(crate) struct LogWindow {
    /// What the latest snapshot covers (index 0 before any snapshot).
    pub snapshot: SnapshotMeta,
    /// The latest snapshot's bytes, kept to send to followers (refcounted, never copied).
    pub snapshot_data: Bytes,
    entries: VecDeque<Entry>,
    /// Configuration entries in the log, ascending, after the snapshot's membership.
    configs: Vec<(LogIndex, Membership)>,
    /// Whether epochs never decrease along the log (Raft's terms do; Paxos slots need not).
    epochs_ascending: bool,
}

impl LogWindow {
    pub fn new(snapshot: SnapshotMeta, snapshot_data: Bytes) -> Self {
        Self {
            snapshot,
            snapshot_data,
            entries: VecDeque::new(),
            configs: Vec::new(),
            epochs_ascending: true,
        }
    }

    /// A log of slots whose epochs may go down from one slot to the next.
    pub fn new_slots(snapshot: SnapshotMeta, snapshot_data: Bytes) -> Self {
        Self {
            epochs_ascending: false,
            ..Self::new(snapshot, snapshot_data)
        }
    }

    /// The log a replica restores from its durable snapshot and entries (a replica without
    /// a snapshot starts from `membership`). The entries must be consecutive, and in a log
    /// whose epochs ascend (`slots` false) they must not go down.
    pub fn restore(
        membership: &Membership,
        durable: &mut Durable,
        slots: bool,
    ) -> Result<Self, RestoreError> {
        let (meta, data) = durable.snapshot.take().unwrap_or_else(|| {
            let meta = SnapshotMeta {
                membership: membership.clone(),
                ..SnapshotMeta::default()
            };
            (meta, Bytes::new())
        });
        let mut log = if slots {
            Self::new_slots(meta, data)
        } else {
            Self::new(meta, data)
        };
        for e in std::mem::take(&mut durable.entries) {
            if e.index != log.last_index().next() {
                return Err(RestoreError::LogGap {
                    index: e.index.0,
                    previous: log.last_index().0,
                });
            }
            if log.epochs_ascending && e.epoch.0 < log.last_term().0 {
                return Err(RestoreError::EpochRegression {
                    index: e.index.0,
                    epoch: e.epoch.0,
                    previous: log.last_term().0,
                });
            }
            log.push(e);
        }
        Ok(log)
    }

    /// The role of `id` outside leadership and elections, by the membership in force: a
    /// voter follows, a non-voting member learns, anyone else was removed.
    pub fn member_role(&self, id: NodeId) -> Role {
        let m = self.membership().0;
        if m.is_voter(id) {
            Role::Follower
        } else if m.contains(id) {
            Role::Learner
        } else {
            Role::Removed
        }
    }

    #[cfg(test)]
    pub fn first_index(&self) -> LogIndex {
        self.snapshot.index.next()
    }

    #[inline]
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot.index.0 + self.entries.len() as u64)
    }

    pub fn last_term(&self) -> Term {
        self.term_at(self.last_index()).unwrap_or_default()
    }

    /// The term of the entry at `index`, if the log (or the snapshot boundary) knows it.
    #[inline]
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(Term(self.snapshot.epoch.0));
        }
        self.entry(index).map(|e| Term(e.epoch.0))
    }

    #[inline]
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.snapshot.index {
            return None;
        }
        self.entries
            .get((index.0 - self.snapshot.index.0 - 1) as usize)
    }

    /// Entries in `[lo, hi]`, clamped to what the log holds.
    pub fn range(&self, lo: LogIndex, hi: LogIndex) -> impl Iterator<Item = &Entry> {
        let base = self.snapshot.index.0 + 1;
        let lo = lo.0.max(base);
        let hi = hi.0.min(self.last_index().0);
        let (a, b) = if lo > hi {
            (0, 0)
        } else {
            ((lo - base) as usize, (hi - base + 1) as usize)
        };
        self.entries.range(a..b)
    }

    /// Append one entry at `last_index + 1`.
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index().next());
        debug_assert!(!self.epochs_ascending || entry.epoch >= Epoch(self.last_term().0));
        if entry.kind == EntryKind::Config
            && let Some(m) = entry.membership()
        {
            self.configs.push((entry.index, m));
        }
        self.entries.push_back(entry);
    }

    /// Replace the entry held at `entry.index` (above the snapshot, at or below the last
    /// index) in place, leaving every other slot as it is.
    pub fn overwrite(&mut self, entry: Entry) {
        debug_assert!(!self.epochs_ascending, "a Raft log is only truncated");
        debug_assert!(entry.index > self.snapshot.index && entry.index <= self.last_index());
        let at = entry.index;
        self.configs.retain(|(i, _)| *i != at);
        if entry.kind == EntryKind::Config
            && let Some(m) = entry.membership()
        {
            let k = self.configs.partition_point(|(i, _)| *i < at);
            self.configs.insert(k, (at, m));
        }
        let k = (at.0 - self.snapshot.index.0 - 1) as usize;
        self.entries[k] = entry;
    }

    /// Discard entries at `from` and above (never at or below the snapshot).
    pub fn truncate_from(&mut self, from: LogIndex) {
        debug_assert!(from > self.snapshot.index);
        let keep = (from.0 - self.snapshot.index.0 - 1) as usize;
        self.entries.truncate(keep);
        self.configs.retain(|(i, _)| *i < from);
    }

    /// Make `meta` the snapshot: entries through `meta.index` are dropped; if the log does
    /// not hold `meta.index` with `meta.epoch`, the whole log is dropped.
    pub fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) {
        let keep = self
            .entry(meta.index)
            .is_some_and(|e| e.epoch == meta.epoch);
        if keep {
            let drop = (meta.index.0 - self.snapshot.index.0) as usize;
            self.entries.drain(..drop);
            self.configs.retain(|(i, _)| *i > meta.index);
        } else {
            self.entries.clear();
            self.configs.clear();
        }
        self.snapshot = meta;
        self.snapshot_data = data;
    }

    /// The membership in force with the whole log: the latest configuration entry, or the
    /// snapshot's.
    pub fn membership(&self) -> (&Membership, LogIndex) {
        match self.configs.last() {
            Some((i, m)) => (m, *i),
            None => (&self.snapshot.membership, self.snapshot.index),
        }
    }

    /// The membership in force at `index` (at or after the snapshot).
    pub fn membership_at(&self, index: LogIndex) -> Membership {
        self.configs
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(|| self.snapshot.membership.clone(), |(_, m)| m.clone())
    }

    /// The first index of the run of entries with `term` that contains `index`, or the
    /// log's first index.
    pub fn first_index_of_term(&self, term: Term, index: LogIndex) -> LogIndex {
        debug_assert!(self.epochs_ascending);
        let upto = index
            .0
            .min(self.last_index().0)
            .saturating_sub(self.snapshot.index.0) as usize;
        let p = self
            .entries
            .partition_point(|e| e.epoch.0 < term.0)
            .min(upto);
        LogIndex(self.snapshot.index.0 + 1 + p as u64)
    }

    /// The last index whose entry has exactly `term`, if any.
    pub fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        debug_assert!(self.epochs_ascending);
        let p = self.entries.partition_point(|e| e.epoch.0 <= term.0);
        if p == 0 {
            return (self.snapshot.epoch.0 == term.0).then_some(self.snapshot.index);
        }
        let e = &self.entries[p - 1];
        (e.epoch.0 == term.0).then_some(e.index)
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date as this
    /// one (§5.4.1).
    pub fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Total `size_bytes` of the entries in `(after, last]`.
    pub fn bytes_after(&self, after: LogIndex) -> usize {
        self.range(after.next(), self.last_index())
            .map(Entry::size_bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_core::NodeId;

    fn log_with_terms(terms: &[u64]) -> LogWindow {
        let mut log = LogWindow::new(SnapshotMeta::default(), Bytes::new());
        for (i, t) in terms.iter().enumerate() {
            log.push(Entry::noop(LogIndex(i as u64 + 1), Epoch(*t)));
        }
        log
    }

    #[test]
    fn term_lookups_by_binary_search() {
        let log = log_with_terms(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.first_index_of_term(Term(2), LogIndex(5)), LogIndex(3));
        assert_eq!(log.first_index_of_term(Term(1), LogIndex(2)), LogIndex(1));
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(5)));
        assert_eq!(log.last_index_of_term(Term(3)), None);
        assert_eq!(log.last_index_of_term(Term(4)), Some(LogIndex(6)));
    }

    #[test]
    fn truncation_forgets_configuration_entries() {
        let mut log = log_with_terms(&[1]);
        let m = Membership::new([NodeId(1), NodeId(2)]);
        log.push(Entry::config(LogIndex(2), Epoch(1), &m));
        assert_eq!(log.membership().1, LogIndex(2));
        log.truncate_from(LogIndex(2));
        assert_eq!(log.membership().1, LogIndex(0));
        assert_eq!(log.last_index(), LogIndex(1));
    }

    #[test]
    fn snapshot_keeps_a_matching_suffix_only() {
        let mut log = log_with_terms(&[1, 1, 2]);
        let meta = SnapshotMeta {
            index: LogIndex(2),
            epoch: Epoch(1),
            membership: Membership::default(),
        };
        log.install_snapshot(meta, Bytes::new());
        assert_eq!(log.first_index(), LogIndex(3));
        assert_eq!(log.last_index(), LogIndex(3));
        let meta = SnapshotMeta {
            index: LogIndex(3),
            epoch: Epoch(5),
            membership: Membership::default(),
        };
        log.install_snapshot(meta, Bytes::new());
        assert_eq!(log.last_index(), LogIndex(3));
        assert_eq!(log.term_at(LogIndex(3)), Some(Term(5)));
        assert_eq!(log.term_at(LogIndex(2)), None);
    }
}

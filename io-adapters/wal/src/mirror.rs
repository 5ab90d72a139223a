//! The writer's view of the durable image: just enough to validate each persist exactly as
//! `Durable::apply` would, without holding payloads.

use rsm_core::{Entry, HardState, LogIndex, Persist, PersistError};

use crate::record::SnapshotRef;

/// Hard state, snapshot reference and which indexes the log holds after the snapshot.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mirror {
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<SnapshotRef>,
    held: Runs,
}

impl Mirror {
    pub(crate) fn new(
        hard_state: HardState,
        snapshot: Option<SnapshotRef>,
        entries: &[Entry],
    ) -> Self {
        let mut held = Runs::default();
        for e in entries {
            held.insert(e.index);
        }
        Self {
            hard_state,
            snapshot,
            held,
        }
    }

    pub(crate) fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index)
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.held.last().unwrap_or_else(|| self.snapshot_index())
    }

    /// The error `Durable::apply` would return for `op`, checked in the same order.
    pub(crate) fn check(&self, op: &Persist) -> Result<(), PersistError> {
        op.validate(self.last_index(), self.snapshot_index())
    }

    /// The last index the log would hold after `op` (checked by [`Mirror::check`]).
    pub(crate) fn last_index_after(&self, op: &Persist) -> LogIndex {
        let last = self.last_index();
        match op {
            Persist::Append { entries } => entries.last().map_or(last, |e| e.index),
            Persist::Accept { entries } => entries.last().map_or(last, |e| last.max(e.index)),
            Persist::Truncate { from } => self
                .held
                .last_below(*from)
                .unwrap_or_else(|| self.snapshot_index()),
            Persist::Snapshot { meta, .. } => last.max(meta.index),
            Persist::HardState(_) | Persist::Compact { .. } => last,
        }
    }

    /// Record a checked, non-empty append.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        self.held.truncate(entries[0].index);
        self.held
            .push_run(entries[0].index, entries[entries.len() - 1].index);
    }

    /// Record checked slot writes.
    pub(crate) fn accept(&mut self, entries: &[Entry]) {
        for e in entries {
            self.held.insert(e.index);
        }
    }

    pub(crate) fn truncate(&mut self, from: LogIndex) {
        self.held.truncate(from);
    }

    /// Record a snapshot: it discards every entry at or below its index.
    pub(crate) fn install_snapshot(&mut self, snapshot: SnapshotRef) {
        self.held.discard_through(snapshot.meta.index);
        self.snapshot = Some(snapshot);
    }
}

/// A set of log indexes as ascending, disjoint, non-adjacent inclusive runs. A log written
/// only by appends is one run; slot writes with holes add more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Runs(Vec<(LogIndex, LogIndex)>);

impl Runs {
    fn last(&self) -> Option<LogIndex> {
        self.0.last().map(|r| r.1)
    }

    /// The highest index held below `index`.
    fn last_below(&self, index: LogIndex) -> Option<LogIndex> {
        let k = self.0.partition_point(|r| r.0 < index);
        let run = self.0.get(k.checked_sub(1)?)?;
        Some(run.1.min(index.prev()))
    }

    /// Add `first..=last`, which lies above every index held.
    fn push_run(&mut self, first: LogIndex, last: LogIndex) {
        debug_assert!(self.last().is_none_or(|l| l < first) && first <= last);
        match self.0.last_mut() {
            Some(run) if run.1.next() == first => run.1 = last,
            _ => self.0.push((first, last)),
        }
    }

    fn insert(&mut self, index: LogIndex) {
        // The first run that ends at or after the index before `index`: the only ones
        // `index` can join.
        let k = self.0.partition_point(|r| r.1.next() < index);
        let joins_left = self.0.get(k).is_some_and(|r| r.0 <= index);
        if joins_left {
            let run = &mut self.0[k];
            run.1 = run.1.max(index);
            // Filling the hole before the next run merges the two.
            if self.0.get(k + 1).is_some_and(|r| r.0 == self.0[k].1.next()) {
                self.0[k].1 = self.0[k + 1].1;
                self.0.remove(k + 1);
            }
        } else if self.0.get(k).is_some_and(|r| r.0 == index.next()) {
            self.0[k].0 = index;
        } else {
            self.0.insert(k, (index, index));
        }
    }

    /// Forget every index at `from` or above.
    fn truncate(&mut self, from: LogIndex) {
        let k = self.0.partition_point(|r| r.0 < from);
        self.0.truncate(k);
        if let Some(run) = self.0.last_mut() {
            run.1 = run.1.min(from.prev());
        }
    }

    /// Forget every index at or below `through`.
    fn discard_through(&mut self, through: LogIndex) {
        let k = self.0.partition_point(|r| r.1 <= through);
        self.0.drain(..k);
        if let Some(run) = self.0.first_mut() {
            run.0 = run.0.max(through.next());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[derive(Clone, Debug)]
    enum Op {
        Push(u64),
        Insert(u64),
        Truncate(u64),
        Discard(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1u64..4).prop_map(Op::Push),
            (1u64..30).prop_map(Op::Insert),
            (1u64..30).prop_map(Op::Truncate),
            (0u64..30).prop_map(Op::Discard),
        ]
    }

    proptest! {
        /// The runs hold exactly the indexes of a plain set, always in canonical form.
        #[test]
        fn runs_agree_with_a_set(ops in proptest::collection::vec(op(), 1..60)) {
            let mut runs = Runs::default();
            let mut set = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Push(n) => {
                        let first = set.last().map_or(1, |l| l + 1 + n % 2);
                        runs.push_run(LogIndex(first), LogIndex(first + n - 1));
                        set.extend(first..first + n);
                    }
                    Op::Insert(i) => {
                        runs.insert(LogIndex(i));
                        set.insert(i);
                    }
                    Op::Truncate(i) => {
                        runs.truncate(LogIndex(i));
                        set.retain(|&j| j < i);
                    }
                    Op::Discard(i) => {
                        runs.discard_through(LogIndex(i));
                        set.retain(|&j| j > i);
                    }
                }
                let held: Vec<u64> = runs.0.iter().flat_map(|r| r.0.0..=r.1.0).collect();
                prop_assert_eq!(&held, &set.iter().copied().collect::<Vec<_>>());
                for w in runs.0.windows(2) {
                    prop_assert!(w[0].1.next() < w[1].0, "runs neither overlap nor touch");
                }
                prop_assert_eq!(runs.last().map(|l| l.0), set.last().copied());
                for i in 1..32 {
                    let below = set.range(..i).next_back().copied();
                    prop_assert_eq!(runs.last_below(LogIndex(i)).map(|l| l.0), below);
                }
            }
        }
    }
}

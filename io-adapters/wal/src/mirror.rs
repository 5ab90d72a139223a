//! The writer's view of the durable image: just enough to validate each persist exactly as
//! `Durable::apply` would and to resolve snapshots, without holding payloads.

use rsm_core::{Entry, Epoch, HardState, LogIndex, Persist, PersistError, SnapshotMeta};

use crate::record::SnapshotRef;

/// Hard state, snapshot reference and the epoch of every entry after the snapshot.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mirror {
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<SnapshotRef>,
    /// Index of `epochs[0]`; meaningless while `epochs` is empty.
    first: LogIndex,
    epochs: Vec<Epoch>,
}

impl Mirror {
    pub(crate) fn new(
        hard_state: HardState,
        snapshot: Option<SnapshotRef>,
        entries: &[Entry],
    ) -> Self {
        Self {
            hard_state,
            snapshot,
            first: entries.first().map_or(LogIndex(0), |e| e.index),
            epochs: entries.iter().map(|e| e.epoch).collect(),
        }
    }

    pub(crate) fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index)
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        match self.epochs.len() {
            0 => self.snapshot_index(),
            n => LogIndex(self.first.0 + n as u64 - 1),
        }
    }

    fn epoch_at(&self, index: LogIndex) -> Option<Epoch> {
        let offset = index.0.checked_sub(self.first.0)?;
        self.epochs.get(usize::try_from(offset).ok()?).copied()
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
            Persist::Truncate { from } => last.min(from.prev()).max(self.snapshot_index()),
            Persist::Snapshot { meta, .. } if self.keeps_suffix(meta) => last.max(meta.index),
            Persist::Snapshot { meta, .. } => meta.index,
            Persist::HardState(_) | Persist::Compact { .. } => last,
        }
    }

    /// Record a checked, non-empty append.
    pub(crate) fn append(&mut self, entries: &[Entry]) {
        let first = entries[0].index;
        self.truncate(first);
        if self.epochs.is_empty() {
            self.first = first;
        }
        self.epochs.extend(entries.iter().map(|e| e.epoch));
    }

    pub(crate) fn truncate(&mut self, from: LogIndex) {
        let keep = from.0.saturating_sub(self.first.0);
        self.epochs
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// Whether installing a snapshot described by `meta` keeps the entries after it: the
    /// log must hold `meta.index` with `meta.epoch`.
    pub(crate) fn keeps_suffix(&self, meta: &SnapshotMeta) -> bool {
        self.epoch_at(meta.index) == Some(meta.epoch)
    }

    pub(crate) fn install_snapshot(&mut self, snapshot: SnapshotRef, keep_suffix: bool) {
        if keep_suffix {
            let drop = (snapshot.meta.index.0 + 1).saturating_sub(self.first.0);
            let drop =
                usize::try_from(drop).map_or(self.epochs.len(), |d| d.min(self.epochs.len()));
            self.epochs.drain(..drop);
            self.first = snapshot.meta.index.next();
        } else {
            self.epochs.clear();
        }
        self.snapshot = Some(snapshot);
    }
}

//! The image recovery rebuilds by replaying records.
//!
//! Replay may start at any segment's base record rather than at the beginning of history,
//! because compaction deletes old segments. That is sound because a segment is deleted only
//! when every entry it ever wrote is at or below a snapshot recorded after it: in the full
//! history those entries are all discarded by that snapshot, so a replay that never saw
//! them ends in the same place. Until then the replayed log is an upper part of the true
//! one (an append discards everything at or above its first index, so entries from
//! deleted segments can only sit below replayed ones), which is why an append may start a
//! fresh log below or at the start of the replayed one, but never leave a gap above it.

use rsm_core::{Entry, HardState, LogIndex};

use crate::record::{BaseRecord, Record, SnapshotRef};

/// Hard state, snapshot reference and entries as replayed so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Image {
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<SnapshotRef>,
    pub(crate) entries: Vec<Entry>,
}

impl Image {
    pub(crate) fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index)
    }

    /// Apply one record; an error says how the record contradicts the image.
    pub(crate) fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::Base(BaseRecord {
                hard_state,
                snapshot,
                ..
            }) => {
                self.hard_state = hard_state;
                if let Some(s) = &snapshot {
                    self.discard_through(s.meta.index);
                }
                self.snapshot = snapshot;
            }
            Record::Append(entries) => self.append(entries)?,
            Record::Truncate(from) => {
                if from <= self.snapshot_index() {
                    return Err(format!(
                        "truncation from {from} reaches the snapshot at {}",
                        self.snapshot_index()
                    ));
                }
                self.truncate_from(from);
            }
            Record::HardState(hard_state) => self.hard_state = hard_state,
            Record::Snapshot(s) => {
                if s.keep_suffix {
                    self.discard_through(s.snapshot.meta.index);
                } else {
                    self.entries.clear();
                }
                self.snapshot = Some(s.snapshot);
            }
        }
        Ok(())
    }

    fn append(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        let Some(first) = entries.first().map(|e| e.index) else {
            return Err("empty append".into());
        };
        if first <= self.snapshot_index() {
            return Err(format!(
                "append at {first} reaches the snapshot at {}",
                self.snapshot_index()
            ));
        }
        if let Some(w) = entries.windows(2).find(|w| w[1].index != w[0].index.next()) {
            return Err(format!("appended entries jump to {}", w[1].index));
        }
        if let Some(last) = self.entries.last().map(|e| e.index)
            && first > last.next()
        {
            return Err(format!("append at {first} leaves a gap after {last}"));
        }
        self.truncate_from(first);
        self.entries.extend(entries);
        Ok(())
    }

    fn truncate_from(&mut self, from: LogIndex) {
        if let Some(start) = self.entries.first().map(|e| e.index) {
            let keep = from.0.saturating_sub(start.0);
            self.entries
                .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        }
    }

    fn discard_through(&mut self, through: LogIndex) {
        if let Some(start) = self.entries.first().map(|e| e.index) {
            let drop = (through.0 + 1).saturating_sub(start.0);
            let drop =
                usize::try_from(drop).map_or(self.entries.len(), |d| d.min(self.entries.len()));
            self.entries.drain(..drop);
        }
    }

    /// Check the end state: the log follows the snapshot directly.
    pub(crate) fn check_complete(&self) -> Result<(), String> {
        match self.entries.first() {
            Some(e) if e.index != self.snapshot_index().next() => Err(format!(
                "the log starts at {} but the snapshot ends at {}",
                e.index,
                self.snapshot_index()
            )),
            _ => Ok(()),
        }
    }
}

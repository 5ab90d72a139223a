//! The image recovery rebuilds by replaying records.
//!
//! Records are applied with the reference semantics (`Durable::apply`), so replay cannot
//! drift from what the writer validated; only where a replay may legitimately see less than
//! the writer did does it apply an operation in two steps that mean the same thing.
//!
//! Replay may start at any segment's base record rather than at the beginning of history,
//! because compaction deletes old segments. That is sound because a segment is deleted only
//! when every entry it ever wrote (appended or accepted) is at or below a snapshot written
//! before the deletion. So the replayed log always equals the true one minus some entries
//! at or below that snapshot's index, and every operation treats those the same way in
//! both: an append or truncation discards from its index up in both, a slot write replaces
//! its slots in both, and the snapshot, met in a base record or a snapshot record, discards
//! the missing entries from the true log too. From then on the two are equal.
//!
//! Only one check depends on entries the replay may lack: an append must not leave a gap
//! above the log. While only appends were replayed, the replayed log is an upper part of
//! the true one (an append discards everything at or above its first index, so missing
//! entries can only sit below replayed ones), and a gap above it is damage. Once slots
//! were written, a missing entry may sit above a replayed one, so an append is replayed as
//! the truncation and slot writes it consists of, which need no gap check.

use bytes::Bytes;
use rsm_core::{Durable, Entry, HardState, LogIndex, Persist};

use crate::record::{BaseRecord, Record, SnapshotRef};

/// Hard state, snapshot reference and entries as replayed so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Image {
    /// The log and hard state; its snapshot carries no data (that lives in its own file,
    /// described by `snapshot`).
    log: Durable,
    pub(crate) snapshot: Option<SnapshotRef>,
    /// Whether a slot-write record was replayed: the log may have holes.
    slots_written: bool,
}

impl Image {
    pub(crate) fn hard_state(&self) -> &HardState {
        &self.log.hard_state
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.log.entries
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }

    /// The durable image, with the snapshot's data loaded from its file.
    pub(crate) fn into_durable(self, snapshot_data: Option<Bytes>) -> Durable {
        Durable {
            snapshot: self.snapshot.map(|s| s.meta).zip(snapshot_data),
            ..self.log
        }
    }

    /// Apply one record; an error says how the record contradicts the image.
    pub(crate) fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::Base(BaseRecord {
                hard_state,
                snapshot,
                ..
            }) => {
                self.log.hard_state = hard_state;
                match &snapshot {
                    Some(s) => self.install(s, true)?,
                    None => self.log.snapshot = None,
                }
                self.snapshot = snapshot;
            }
            Record::Append(entries) => self.append(entries)?,
            Record::Accept(entries) => {
                if entries.is_empty() {
                    return Err("empty slot write".into());
                }
                self.slots_written = true;
                self.persist(Persist::Accept { entries })?;
            }
            Record::Truncate(from) => self.persist(Persist::Truncate { from })?,
            Record::HardState(hard_state) => self.log.hard_state = hard_state,
            Record::Snapshot(s) => {
                self.install(&s.snapshot, s.keep_suffix)?;
                self.snapshot = Some(s.snapshot);
            }
        }
        Ok(())
    }

    fn persist(&mut self, op: Persist) -> Result<(), String> {
        self.log.apply(&op).map_err(|e| e.to_string())
    }

    fn install(&mut self, s: &SnapshotRef, keep_suffix: bool) -> Result<(), String> {
        self.persist(Persist::Snapshot {
            meta: s.meta.clone(),
            data: Bytes::new(),
        })?;
        if !keep_suffix {
            self.persist(Persist::Truncate {
                from: s.meta.index.next(),
            })?;
        }
        Ok(())
    }

    fn append(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        let Some(first) = entries.first().map(|e| e.index) else {
            return Err("empty append".into());
        };
        if let Some(w) = entries.windows(2).find(|w| w[1].index != w[0].index.next()) {
            return Err(format!("appended entries jump to {}", w[1].index));
        }
        if !self.slots_written
            && let Some(last) = self.log.entries.last().map(|e| e.index)
            && first > last.next()
        {
            return Err(format!("append at {first} leaves a gap after {last}"));
        }
        self.persist(Persist::Truncate { from: first })?;
        self.persist(Persist::Accept { entries })
    }

    /// Check the end state: unless slots were written, the log follows the snapshot
    /// directly.
    pub(crate) fn check_complete(&self) -> Result<(), String> {
        match self.log.entries.first() {
            Some(e) if !self.slots_written && e.index != self.log.snapshot_index().next() => {
                Err(format!(
                    "the log starts at {} but the snapshot ends at {}",
                    e.index,
                    self.log.snapshot_index()
                ))
            }
            _ => Ok(()),
        }
    }
}

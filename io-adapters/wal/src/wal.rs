//! The write-ahead log: buffered writes, group-commit syncs, segment rotation and
//! compaction.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rsm_core::{Durable, Entry, LogIndex, Persist, SnapshotMeta};
use serde::Serialize;

use crate::config::WalConfig;
use crate::error::WalError;
use crate::manifest::Manifest;
use crate::mirror::Mirror;
use crate::record::{
    BaseRecord, ENTRY_OVERHEAD_BYTES_MAX, RECORD_HEADER_BYTES, RecordType, SEGMENT_HEADER_BYTES,
    SEQ_PREFIX_BYTES_MAX, SegmentId, SnapshotRecord, SnapshotRef, begin_record, seal_record,
    segment_header,
};
use crate::recovery::{self, Recovered};
use crate::segment::{self, SegmentInfo};

/// Counters a host reports: how many syncs it paid for and how much each one covered.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Group commits: calls to [`Wal::sync`] that flushed and synced new records.
    pub syncs: u64,
    /// Every fsync or fdatasync issued, including those of segment rotation, snapshot
    /// files and directories.
    pub fsyncs: u64,
    /// Records written (appends may be split across several).
    pub records: u64,
    /// Entries written by appends and slot writes.
    pub entries: u64,
    /// Entries made durable by group commits; `entries_synced / syncs` is the batching
    /// factor.
    pub entries_synced: u64,
    /// Record bytes written, headers included.
    pub bytes: u64,
    /// Segment files created.
    pub segments_created: u64,
    /// Segment files deleted by compaction.
    pub segments_removed: u64,
    /// Snapshot files written.
    pub snapshots: u64,
}

/// A durable log and hard-state store in one directory.
///
/// [`Wal::write`] encodes a [`Persist`] operation into an in-memory buffer (snapshots go to
/// their own file first); [`Wal::sync`] makes every write so far durable with one
/// `fdatasync`. A host executing `Effect::Persist { seq, op }` effects writes each, syncs
/// once, and then reports `Input::Persisted { through }` with the highest `seq` written.
/// Dropping a `Wal` discards unsynced writes, exactly as a crash would.
pub struct Wal {
    dir: PathBuf,
    config: WalConfig,
    /// Held for the `Wal`'s lifetime; the OS lock keeps a second opener out.
    _lock: File,
    /// The directory's id and the segments that make up the log, as last written.
    manifest: Manifest,
    /// Oldest first; the last is the segment being written.
    segments: VecDeque<SegmentInfo>,
    /// The segment being written.
    file: File,
    /// Bytes of the current segment already handed to the operating system.
    flushed_bytes: u64,
    /// Offset just past the current segment's base record.
    base_end: u64,
    /// Encoded records that follow `flushed_bytes`.
    buffer: Vec<u8>,
    /// Whether records were written since the last sync.
    dirty: bool,
    entries_unsynced: u64,
    mirror: Mirror,
    next_snapshot_id: u64,
    /// Snapshot files replaced by a newer one; deleted once the newer record is durable.
    stale_snapshots: Vec<u64>,
    /// The highest `Compact { through }` requested.
    compact_through: LogIndex,
    poisoned: bool,
    stats: WalStats,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("segments", &self.segments)
            .field("flushed_bytes", &self.flushed_bytes)
            .field("buffered_bytes", &self.buffer.len())
            .field("last_index", &self.mirror.last_index())
            .field("snapshot_index", &self.mirror.snapshot_index())
            .field("poisoned", &self.poisoned)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Open (or create) the log in `dir` and recover its durable state: exactly what
    /// `Replica::restore` needs.
    ///
    /// A torn record at the end of the newest segment (a write in flight at a crash) is cut
    /// away. Anything else that shows durable data was lost or damaged is refused with a
    /// typed error naming the file: a missing segment ([`WalError::MissingSegment`]), a
    /// shortened one ([`WalError::SegmentLength`]), one from another directory
    /// ([`WalError::ForeignSegment`]), a hard state ahead of the log
    /// ([`WalError::HardStateAhead`]), damage ([`WalError::Corrupt`],
    /// [`WalError::BadSnapshot`]); nothing is returned then.
    pub fn open(dir: impl AsRef<Path>, config: WalConfig) -> Result<(Wal, Durable), WalError> {
        config.validate()?;
        let dir = dir.as_ref().to_owned();
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(WalError::io(&dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                segment::sync_dir(parent)?;
            }
        }
        let lock = lock_dir(&dir)?;
        let recovered = match recovery::recover(&dir, &config)? {
            Some(recovered) => recovered,
            None => {
                // A new log: its manifest (and id) first, listing no segment yet, so that
                // a crash before the first segment is listed leaves a directory that
                // recovers as empty.
                let manifest = Manifest::fresh();
                manifest.write(&dir)?;
                Recovered {
                    manifest,
                    image: Default::default(),
                    snapshot_data: None,
                    segments: VecDeque::new(),
                    base_end: 0,
                    next_snapshot_id: 1,
                }
            }
        };
        let Recovered {
            manifest,
            image,
            snapshot_data,
            segments,
            base_end,
            next_snapshot_id,
        } = recovered;
        let mirror = Mirror::new(
            image.hard_state().clone(),
            image.snapshot.clone(),
            image.entries(),
        );
        let durable = image.into_durable(snapshot_data);
        let fresh = segments.is_empty();
        let (file, flushed_bytes) = match segments.back() {
            Some(last) => {
                let path = segment::segment_path(&dir, last.seq);
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(WalError::io(&path))?;
                // New records go right after the durable ones, over the zeros.
                file.seek(SeekFrom::Start(last.bytes))
                    .map_err(WalError::io(&path))?;
                (file, last.bytes)
            }
            // Replaced by the first segment below before anything is written.
            None => (lock.try_clone().map_err(WalError::io(&dir))?, 0),
        };
        let mut wal = Wal {
            file,
            dir,
            config,
            _lock: lock,
            manifest,
            segments,
            flushed_bytes,
            base_end,
            buffer: Vec::new(),
            dirty: false,
            entries_unsynced: 0,
            mirror,
            next_snapshot_id,
            stale_snapshots: Vec::new(),
            compact_through: LogIndex(0),
            poisoned: false,
            stats: WalStats::default(),
        };
        if fresh {
            wal.start_segment(wal.manifest.newest + 1, 0, 0)?;
            // Counters describe the host's work, not the setup of an empty directory.
            wal.stats = WalStats::default();
        }
        Ok((wal, durable))
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// Counters of the work done since this `Wal` was opened.
    pub fn stats(&self) -> WalStats {
        self.stats
    }

    /// Group commits so far (see [`WalStats::syncs`]).
    pub fn sync_count(&self) -> u64 {
        self.stats.syncs
    }

    /// The last log index written (durable or not), or the snapshot's if the log is empty.
    pub fn last_index(&self) -> LogIndex {
        self.mirror.last_index()
    }

    /// The index of the latest snapshot written, or 0.
    pub fn snapshot_index(&self) -> LogIndex {
        self.mirror.snapshot_index()
    }

    /// Where the next record goes: the newest segment's sequence number and the byte
    /// offset after the last record written to it (durable once synced).
    pub fn tail(&self) -> (u64, u64) {
        let seq = self.segments.back().map_or(0, |s| s.seq);
        (seq, self.flushed_bytes + self.buffer.len() as u64)
    }

    /// Sequence numbers of the segment files present, oldest first.
    pub fn segments(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.seq).collect()
    }

    /// Buffer one persist operation. It becomes durable at the next [`Wal::sync`].
    ///
    /// An operation `Durable::apply` would refuse is refused with the same
    /// [`WalError::Persist`] error and changes nothing; so do oversized ones (see
    /// [`WalError::is_refusal`]). Any other error poisons the log: unsynced writes may or may
    /// not have reached the disk, and only reopening tells which.
    ///
    /// An append or slot write too large for one record is split across several, so a
    /// crash before the sync may keep a prefix of its entries, a state the write passes
    /// through anyway.
    /// A snapshot's data is written to its own file and made
    /// durable before this returns; the record that installs it waits for the sync like
    /// any other. `Compact` deletes, at the next sync, every whole segment whose entries
    /// all lie at or below both `through` and the snapshot.
    pub fn write(&mut self, op: &Persist) -> Result<(), WalError> {
        self.usable()?;
        self.mirror.check(op)?;
        self.check_commit(op)?;
        self.check_size(op)?;
        let result = self.write_checked(op);
        if matches!(result, Err(ref e) if !e.is_refusal()) {
            self.poisoned = true;
        }
        result
    }

    /// Make every write so far durable: flush the buffer and issue one `fdatasync` for the
    /// whole group. Then carry out pending compaction and delete replaced snapshot files,
    /// which is safe only once the records that supersede them are durable.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.usable()?;
        let result = self.sync_and_collect();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        Ok(())
    }

    /// Refuse an operation that would leave the hard state's commit index beyond the end of
    /// the log: recovery takes that state for lost entries.
    fn check_commit(&self, op: &Persist) -> Result<(), WalError> {
        let commit = match op {
            Persist::HardState(hs) => hs.commit,
            _ => self.mirror.hard_state.commit,
        };
        let last_index = self.mirror.last_index_after(op);
        if commit > last_index {
            return Err(WalError::CommitBeyondLog {
                commit: commit.0,
                last_index: last_index.0,
            });
        }
        Ok(())
    }

    /// Refuse, before anything is written, an operation that cannot fit the limits.
    fn check_size(&self, op: &Persist) -> Result<(), WalError> {
        let limit = self.config.record_bytes_max;
        match op {
            Persist::Append { entries } | Persist::Accept { entries } => {
                for e in entries {
                    let len = entry_bytes_max(e) + SEQ_PREFIX_BYTES_MAX;
                    if len > limit {
                        return Err(WalError::EntryTooLarge {
                            index: e.index.0,
                            len,
                            limit,
                        });
                    }
                }
            }
            Persist::Snapshot { meta, data } => {
                if data.len() as u64 > self.config.snapshot_bytes_max {
                    return Err(WalError::SnapshotTooLarge {
                        len: data.len() as u64,
                        limit: self.config.snapshot_bytes_max,
                    });
                }
                let record = SnapshotRecord {
                    snapshot: SnapshotRef {
                        meta: meta.clone(),
                        file_id: u64::MAX,
                        data_bytes: u64::MAX,
                        data_crc: u32::MAX,
                    },
                    keep_suffix: false,
                };
                check_body_size(&record, limit)?;
            }
            Persist::Truncate { .. } | Persist::HardState(_) | Persist::Compact { .. } => {}
        }
        Ok(())
    }

    fn write_checked(&mut self, op: &Persist) -> Result<(), WalError> {
        match op {
            Persist::Append { entries } if !entries.is_empty() => {
                self.write_entries(RecordType::Append, entries)?;
                self.mirror.append(entries);
                Ok(())
            }
            Persist::Accept { entries } if !entries.is_empty() => {
                self.write_entries(RecordType::Accept, entries)?;
                self.mirror.accept(entries);
                Ok(())
            }
            Persist::Append { .. } | Persist::Accept { .. } => Ok(()),
            Persist::Truncate { from } => {
                // Truncating past the end changes nothing, so it needs no record.
                if *from <= self.mirror.last_index() {
                    self.write_record(RecordType::Truncate, from)?;
                    self.mirror.truncate(*from);
                }
                Ok(())
            }
            Persist::HardState(hs) => {
                if *hs != self.mirror.hard_state {
                    self.write_record(RecordType::HardState, hs)?;
                    self.mirror.hard_state = hs.clone();
                }
                Ok(())
            }
            Persist::Snapshot { meta, data } => self.write_snapshot(meta, data),
            Persist::Compact { through } => {
                self.compact_through = self.compact_through.max(*through);
                Ok(())
            }
        }
    }

    /// Write the records of an append or a slot write (`ty`), split so that each fits.
    fn write_entries(&mut self, ty: RecordType, entries: &[Entry]) -> Result<(), WalError> {
        let limit = self.config.record_bytes_max;
        let mut rest = entries;
        while !rest.is_empty() {
            // Split so that each record's worst-case size fits; `check_size` guaranteed
            // that every entry fits on its own.
            let mut bytes = SEQ_PREFIX_BYTES_MAX;
            let mut take = 0;
            while take < rest.len() && bytes + entry_bytes_max(&rest[take]) <= limit {
                bytes += entry_bytes_max(&rest[take]);
                take += 1;
            }
            let (chunk, tail) = rest.split_at(take.max(1));
            self.write_record(ty, chunk)?;
            let segment = self.segments.back_mut().expect("a segment is always open");
            segment.max_index = segment.max_index.max(chunk[chunk.len() - 1].index);
            rest = tail;
        }
        self.stats.entries += entries.len() as u64;
        self.entries_unsynced += entries.len() as u64;
        Ok(())
    }

    fn write_snapshot(&mut self, meta: &SnapshotMeta, data: &Bytes) -> Result<(), WalError> {
        let file_id = self.next_snapshot_id;
        self.next_snapshot_id += 1;
        // Write, sync, rename, sync the directory: the file appears whole or not at all,
        // and it is durable before any record refers to it.
        let temp = segment::snapshot_temp_path(&self.dir, file_id);
        let path = segment::snapshot_path(&self.dir, file_id);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .and_then(|mut f| {
                f.write_all(data)?;
                f.sync_all()
            })
            .map_err(WalError::io(&temp))?;
        fs::rename(&temp, &path).map_err(WalError::io(&path))?;
        segment::sync_dir(&self.dir)?;
        self.stats.fsyncs += 2;
        self.stats.snapshots += 1;
        let record = SnapshotRecord {
            snapshot: SnapshotRef {
                meta: meta.clone(),
                file_id,
                data_bytes: data.len() as u64,
                data_crc: crc32c::crc32c(data),
            },
            keep_suffix: true,
        };
        self.write_record(RecordType::Snapshot, &record)?;
        if let Some(old) = &self.mirror.snapshot {
            self.stale_snapshots.push(old.file_id);
        }
        self.mirror.install_snapshot(record.snapshot);
        Ok(())
    }

    /// Encode one record into the buffer (refusing, with nothing changed, a body over
    /// `record_bytes_max`), first rotating to a new segment if the record
    /// would take the current one past `segment_bytes_max`.
    fn write_record<T: Serialize + ?Sized>(
        &mut self,
        ty: RecordType,
        body: &T,
    ) -> Result<(), WalError> {
        let mut start = begin_record(&mut self.buffer, ty, body)?;
        let len = (self.buffer.len() - start) as u64;
        let body_len = len - RECORD_HEADER_BYTES as u64;
        if body_len > self.config.record_bytes_max {
            self.buffer.truncate(start);
            return Err(WalError::RecordTooLarge {
                len: body_len,
                limit: self.config.record_bytes_max,
            });
        }
        let offset = self.flushed_bytes + start as u64;
        // Records never go past the length the segment was created with; a new segment is
        // made long enough for the record that opens it.
        let file_bytes = self.segments.back().map_or(0, |s| s.file_bytes);
        if offset + len > file_bytes {
            let record = self.buffer.split_off(start);
            self.rotate(len)?;
            start = self.buffer.len();
            self.buffer.extend_from_slice(&record);
        }
        let offset = self.flushed_bytes + start as u64;
        let id = self.segment_id();
        seal_record(&mut self.buffer[start..], id, offset);
        self.stats.records += 1;
        self.stats.bytes += len;
        self.dirty = true;
        if self.buffer.len() >= self.config.write_buffer_bytes_max {
            self.flush()?;
        }
        Ok(())
    }

    /// The segment being written.
    fn segment_id(&self) -> SegmentId {
        SegmentId {
            log: self.manifest.log,
            seq: self.segments.back().map_or(0, |s| s.seq),
        }
    }

    /// Close the current segment (flushed and synced, so that no later segment's records
    /// can be durable while an earlier one's are not) and start the next, with room for a
    /// first record of `need` bytes.
    fn rotate(&mut self, need: u64) -> Result<(), WalError> {
        self.flush()?;
        let seq = self.segments.back().map_or(0, |s| s.seq);
        let path = segment::segment_path(&self.dir, seq);
        self.file.sync_data().map_err(WalError::io(&path))?;
        self.stats.fsyncs += 1;
        let closed_bytes = self.flushed_bytes;
        if let Some(last) = self.segments.back_mut() {
            last.bytes = closed_bytes;
        }
        self.start_segment(seq + 1, closed_bytes, need)
    }

    /// Create segment `seq` and make it the log's newest: its header and base record are
    /// written and the file given its final length (zeros after the base, room for a first
    /// record of `need` bytes), all synced; then the manifest lists it. Until the
    /// manifest does, recovery removes the file, and nothing in it can have been synced.
    /// Every write so far must be durable: the base record describes the state they make.
    fn start_segment(
        &mut self,
        seq: u64,
        prev_segment_bytes: u64,
        need: u64,
    ) -> Result<(), WalError> {
        debug_assert!(self.buffer.is_empty(), "the old segment was flushed");
        let base = BaseRecord {
            prev_segment_bytes,
            hard_state: self.mirror.hard_state.clone(),
            snapshot: self.mirror.snapshot.clone(),
        };
        let id = SegmentId {
            log: self.manifest.log,
            seq,
        };
        let mut head = vec![0; SEGMENT_HEADER_BYTES];
        let start = begin_record(&mut head, RecordType::Base, &base)?;
        seal_record(&mut head[start..], id, start as u64);
        let base_end = head.len() as u64;
        let file_bytes = self.config.segment_bytes_max.max(base_end + need);
        head[..SEGMENT_HEADER_BYTES].copy_from_slice(&segment_header(id, file_bytes));
        let path = segment::segment_path(&self.dir, seq);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(WalError::io(&path))?;
        file.write_all(&head)
            .and_then(|()| file.set_len(file_bytes))
            .and_then(|()| file.sync_all())
            .map_err(WalError::io(&path))?;
        segment::sync_dir(&self.dir)?;
        let mut manifest = self.manifest;
        manifest.newest = seq;
        manifest.write(&self.dir)?;
        self.manifest = manifest;
        // The file, the directory, and the manifest's file and directory.
        self.stats.fsyncs += 4;
        self.stats.segments_created += 1;
        self.file = file;
        self.flushed_bytes = base_end;
        self.base_end = base_end;
        self.segments.push_back(SegmentInfo {
            seq,
            max_index: LogIndex(0),
            bytes: base_end,
            file_bytes,
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WalError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.buffer) {
            let seq = self.segments.back().map_or(0, |s| s.seq);
            return Err(WalError::io(segment::segment_path(&self.dir, seq))(e));
        }
        self.flushed_bytes += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    fn sync_and_collect(&mut self) -> Result<(), WalError> {
        if self.dirty {
            self.flush()?;
            let seq = self.segments.back().map_or(0, |s| s.seq);
            self.file
                .sync_data()
                .map_err(WalError::io(segment::segment_path(&self.dir, seq)))?;
            self.dirty = false;
            self.stats.syncs += 1;
            self.stats.fsyncs += 1;
            self.stats.entries_synced += self.entries_unsynced;
            self.entries_unsynced = 0;
        }
        if let Some(last) = self.segments.back_mut() {
            last.bytes = self.flushed_bytes;
        }
        self.remove_compacted_segments()?;
        for id in std::mem::take(&mut self.stale_snapshots) {
            let path = segment::snapshot_path(&self.dir, id);
            fs::remove_file(&path).map_err(WalError::io(&path))?;
            segment::sync_dir(&self.dir)?;
            self.stats.fsyncs += 1;
        }
        Ok(())
    }

    /// Delete the oldest segments while every entry they wrote is at or below the
    /// compaction point and the snapshot. The snapshot's record (or a later segment's base
    /// record carrying it) follows them and is durable, so replay from the first remaining
    /// segment reaches the same state (see the `replay` module). The segment being written
    /// is never deleted.
    fn remove_compacted_segments(&mut self) -> Result<(), WalError> {
        let bound = self.compact_through.min(self.mirror.snapshot_index());
        let covered = self
            .segments
            .iter()
            .take(self.segments.len() - 1)
            .take_while(|s| s.max_index <= bound)
            .count();
        if covered == 0 {
            return Ok(());
        }
        // The manifest stops listing them first; a crash before they are all deleted
        // leaves files recovery knows to remove.
        let mut manifest = self.manifest;
        manifest.oldest = self.segments[covered].seq;
        manifest.write(&self.dir)?;
        self.manifest = manifest;
        self.stats.fsyncs += 2;
        for segment in self.segments.drain(..covered) {
            let path = segment::segment_path(&self.dir, segment.seq);
            fs::remove_file(&path).map_err(WalError::io(&path))?;
            self.stats.segments_removed += 1;
        }
        segment::sync_dir(&self.dir)?;
        self.stats.fsyncs += 1;
        Ok(())
    }
}

/// Worst-case encoded size of one entry.
fn entry_bytes_max(e: &Entry) -> u64 {
    e.payload.len() as u64 + ENTRY_OVERHEAD_BYTES_MAX
}

fn check_body_size<T: Serialize>(body: &T, limit: u64) -> Result<(), WalError> {
    let mut scratch = Vec::new();
    rsm_core::encode_body(body, &mut scratch)?;
    if scratch.len() as u64 > limit {
        return Err(WalError::RecordTooLarge {
            len: scratch.len() as u64,
            limit,
        });
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let path = dir.join(segment::LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(WalError::io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(WalError::Locked {
            path: dir.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(WalError::io(&path)(e)),
    }
}

/// The write-ahead log is the storage a node driver writes its persists to: `write`
/// buffers one operation, `sync` makes everything written so far durable with one fsync.
impl rsm_core::Storage for Wal {
    type Error = WalError;

    fn write(&mut self, op: &Persist) -> Result<(), WalError> {
        Wal::write(self, op)
    }

    fn sync(&mut self) -> Result<(), WalError> {
        Wal::sync(self)
    }

    fn stats(&self) -> rsm_core::StorageStats {
        let stats = self.stats;
        rsm_core::StorageStats {
            syncs: stats.syncs,
            fsyncs: stats.fsyncs,
            entries_synced: stats.entries_synced,
            bytes_written: stats.bytes,
        }
    }
}

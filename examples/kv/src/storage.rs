//! The write-ahead log as the driver's [`Storage`], with its counters published for the
//! status request (the node loop owns the log on its own thread).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rsm_core::{Persist, Storage};
use rsm_wal::{Wal, WalError, WalStats};

/// Counters of the log, readable from any thread while the node loop owns the log.
#[derive(Debug, Default)]
pub struct DiskCounters {
    syncs: AtomicU64,
    fsyncs: AtomicU64,
    entries_synced: AtomicU64,
}

impl DiskCounters {
    /// `(group commits, fsyncs, entries made durable by group commits)` so far.
    pub fn read(&self) -> (u64, u64, u64) {
        (
            self.syncs.load(Ordering::Relaxed),
            self.fsyncs.load(Ordering::Relaxed),
            self.entries_synced.load(Ordering::Relaxed),
        )
    }

    fn publish(&self, stats: WalStats) {
        self.syncs.store(stats.syncs, Ordering::Relaxed);
        self.fsyncs.store(stats.fsyncs, Ordering::Relaxed);
        self.entries_synced
            .store(stats.entries_synced, Ordering::Relaxed);
    }
}

/// A sync that takes longer than this is logged as a stall: every client request and
/// every acknowledgement to peers waits for it.
pub const SYNC_STALL_WARN: Duration = Duration::from_millis(500);

/// A [`Wal`] driven through the [`Storage`] trait.
#[derive(Debug)]
pub struct WalStorage {
    wal: Wal,
    counters: Arc<DiskCounters>,
}

impl WalStorage {
    /// Wrap an opened log; `counters` receives its statistics after every sync.
    pub fn new(wal: Wal, counters: Arc<DiskCounters>) -> Self {
        counters.publish(wal.stats());
        Self { wal, counters }
    }
}

impl Storage for WalStorage {
    type Error = WalError;

    fn write(&mut self, op: &Persist) -> Result<(), WalError> {
        Storage::write(&mut self.wal, op)?;
        match op {
            Persist::Snapshot { meta, data } => tracing::info!(
                through = meta.index.0,
                bytes = data.len(),
                "stored a snapshot in the write-ahead log"
            ),
            Persist::Compact { through } => {
                tracing::debug!(through = through.0, "compacted the write-ahead log");
            }
            _ => {}
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), WalError> {
        let started = Instant::now();
        Storage::sync(&mut self.wal)?;
        let took = started.elapsed();
        if took >= SYNC_STALL_WARN {
            tracing::warn!(
                ?took,
                "write-ahead log sync stalled the node: every request and acknowledgement waited for it"
            );
        }
        self.counters.publish(self.wal.stats());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_core::{Bytes, Entry, Epoch, LogIndex};
    use rsm_wal::WalConfig;

    #[test]
    fn synced_writes_survive_a_reopen_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let counters = Arc::new(DiskCounters::default());
        let (wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        let mut storage = WalStorage::new(wal, counters.clone());
        for i in 1..=3 {
            let entry = Entry::command(LogIndex(i), Epoch(1), Bytes::from_static(b"x"));
            storage
                .write(&Persist::Append {
                    entries: vec![entry],
                })
                .unwrap();
        }
        storage.sync().unwrap();
        let (syncs, fsyncs, entries) = counters.read();
        assert_eq!((syncs, entries), (1, 3));
        assert!(fsyncs >= 1);
        drop(storage);
        let (_, durable) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        assert_eq!(durable.last_index(), LogIndex(3));
    }
}

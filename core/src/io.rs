//! What a host binds an automaton to: durable [`Storage`] and a message [`Transport`].
//!
//! Both traits are runtime-agnostic and tiny, so storage engines (the write-ahead log),
//! transports (TCP, gRPC, pipes, rings) and drivers meet here without depending on each
//! other.

use bytes::Bytes;

use crate::error::PersistError;
use crate::ids::NodeId;
use crate::replica::{Durable, Persist};

/// Durable storage for one replica: writes are buffered in order and made durable by
/// `sync`. A write that `sync` has not covered may be lost in a crash; a synced one may not.
pub trait Storage {
    /// Why a write or sync failed. A failed sync is fatal for the node: it must stop
    /// rather than act on state that may not be durable.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Buffer one persist operation, with the semantics of [`Durable::apply`].
    fn write(&mut self, op: &Persist) -> Result<(), Self::Error>;

    /// Make every write so far durable (one fsync may cover many writes).
    fn sync(&mut self) -> Result<(), Self::Error>;

    /// What the storage has done so far, for status reports and batching figures. A
    /// storage that counts nothing reports zeros (the default).
    fn stats(&self) -> StorageStats {
        StorageStats::default()
    }
}

/// Counters a [`Storage`] may keep about its own work. They only ever grow.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Syncs that made new writes durable (group commits).
    pub syncs: u64,
    /// fsync or fdatasync calls issued, those of file and directory maintenance included.
    pub fsyncs: u64,
    /// Log entries made durable by syncs; `entries_synced / syncs` is the batching factor.
    pub entries_synced: u64,
    /// Bytes written, framing included.
    pub bytes_written: u64,
}

/// Storage in memory: a [`Durable`] image, for tests and for nodes that need no disk.
/// `sync` is a no-op; use it where losing everything on a crash is acceptable.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    /// The image every write has been applied to.
    pub durable: Durable,
    /// How many times `sync` was called.
    pub syncs: u64,
}

impl Storage for MemStorage {
    type Error = PersistError;

    fn write(&mut self, op: &Persist) -> Result<(), PersistError> {
        self.durable.apply(op)
    }

    fn sync(&mut self) -> Result<(), PersistError> {
        self.syncs += 1;
        Ok(())
    }

    fn stats(&self) -> StorageStats {
        StorageStats {
            syncs: self.syncs,
            ..StorageStats::default()
        }
    }
}

/// Sends encoded messages to peers. Receiving is the transport's own business: it hands
/// inbound `(from, bytes)` pairs to its host, having authenticated `from`.
pub trait Transport {
    /// Queue one encoded message for `to`. Never blocks: when the peer is unreachable or
    /// its queue is full the message is dropped, which consensus protocols tolerate.
    fn send(&self, to: NodeId, message: Bytes);
}

/// A transport that drops everything, for single-node clusters and tests.
#[derive(Copy, Clone, Debug, Default)]
pub struct NullTransport;

impl Transport for NullTransport {
    fn send(&self, _to: NodeId, _message: Bytes) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, Epoch, LogIndex};

    #[test]
    fn mem_storage_follows_the_reference_semantics() {
        let mut s = MemStorage::default();
        let e = |i| Entry::noop(LogIndex(i), Epoch(1));
        s.write(&Persist::Append {
            entries: vec![e(1), e(2)],
        })
        .unwrap();
        assert!(
            s.write(&Persist::Append {
                entries: vec![e(5)]
            })
            .is_err()
        );
        s.sync().unwrap();
        assert_eq!(s.durable.last_index(), LogIndex(2));
        assert_eq!(s.syncs, 1);
        assert_eq!(s.stats().syncs, 1);
    }
}

//! rsm-wal: a durable log and hard-state store for rsm replicas.
//!
//! A host that drives a [`Replica`](rsm_core::Replica) executes each
//! `Effect::Persist { seq, op }` by passing `op` to [`Wal::write`], and after a batch of
//! them calls [`Wal::sync`] once (group commit) before reporting
//! `Input::Persisted { through: seq }`. After a crash, [`Wal::open`] returns the durable
//! image, a [`Durable`](rsm_core::Durable) equal to applying every synced operation with
//! `Durable::apply`, ready for `Replica::restore`.
//!
//! The log is a directory of segment files holding checksummed records; snapshots are
//! separate files written atomically. Recovery cuts away a torn write at the very end of
//! the log; it never skips or repairs damage anywhere else: such damage is reported as a
//! typed [`WalError`] and nothing past it is applied. The log never interprets entry
//! payloads, never spawns threads and never syncs on its own except when closing a segment.
//!
//! Read first: [`Wal`] (open, write, sync), [`WalConfig`] (every size bound) and
//! [`WalError`].
//!
//! ```
//! use rsm_core::{Bytes, Entry, Epoch, LogIndex, Persist};
//! use rsm_wal::{Wal, WalConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let (mut wal, durable) = Wal::open(dir.path(), WalConfig::default())?;
//! assert!(durable.entries.is_empty());
//! for i in 1..=3 {
//!     let entry = Entry::command(LogIndex(i), Epoch(1), Bytes::from_static(b"put x 1"));
//!     wal.write(&Persist::Append { entries: vec![entry] })?;
//! }
//! wal.sync()?; // one fdatasync for all three
//! drop(wal);
//!
//! let (_, durable) = Wal::open(dir.path(), WalConfig::default())?;
//! assert_eq!(durable.last_index(), LogIndex(3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod config;
mod error;
mod mirror;
mod record;
mod recovery;
mod replay;
mod segment;
mod wal;

pub use config::{
    RECORD_BYTES_MAX_DEFAULT, SEGMENT_BYTES_MAX_DEFAULT, SNAPSHOT_BYTES_MAX_DEFAULT,
    WRITE_BUFFER_BYTES_MAX_DEFAULT, WalConfig,
};
pub use error::{CorruptKind, WalError};
pub use wal::{Wal, WalStats};

//! rsm-wal: a durable log and hard-state store for rsm replicas.
//!
//! A host that drives a [`Replica`](rsm_core::Replica) executes each
//! `Effect::Persist { seq, op }` by passing `op` to [`Wal::write`], and after a batch of
//! them calls [`Wal::sync`] once (group commit) before reporting
//! `Input::Persisted { through: seq }`. After a crash, [`Wal::open`] returns the durable
//! image, a [`Durable`](rsm_core::Durable) equal to applying every synced operation with
//! `Durable::apply`, ready for `Replica::restore`.
//!
//! Every kind of write is stored: appends that discard the suffix (Raft, VSR), slot writes
//! with holes that discard nothing else (Paxos acceptors), truncations, hard state,
//! snapshots and compaction, each with the reference semantics of `Durable::apply`.
//!
//! The log is a directory of segment files holding checksummed records, a small manifest,
//! and snapshots in separate files written atomically. Recovery cuts away a torn write at
//! the very end of the log; it never skips or repairs damage anywhere else: such damage is
//! reported as a typed [`WalError`] naming the file, and nothing past it is applied. The
//! log never interprets entry payloads, never spawns threads and never syncs on its own
//! except when starting a segment or compacting.
//!
//! # Telling lost data from a torn write
//!
//! A crash may leave the last write half done; recovery must cut that away and nothing
//! else. Three facts written outside the tail let it tell the two apart, and none costs
//! anything on the write path (a group commit stays one `fdatasync`):
//!
//! - The **manifest** (`MANIFEST`) names the directory's random log id and the range of
//!   segments that make up the log. It is replaced atomically, and synced, whenever a
//!   segment is added or compaction removes some; a segment is created (header, base
//!   record, final length, all synced) before the manifest lists it.
//! - Every segment is created at its **final length** (zeros after its base record), which
//!   its checksummed header records. Records are written over the zeros; a write never
//!   changes the file's length, so a crash cannot either.
//! - Every header and record checksum covers the **log id, segment number and offset**, and
//!   each segment's base record carries the length the previous segment was closed at.
//!
//! Detected and refused at [`Wal::open`], with the file named:
//!
//! - a missing segment, newest or oldest or between ([`WalError::MissingSegment`]), and a
//!   directory with segments but no manifest ([`WalError::MissingManifest`]);
//! - a segment cut short or grown, at any offset, even inside the last synced record
//!   ([`WalError::SegmentLength`]);
//! - a segment copied from another directory, even one with the same number
//!   ([`WalError::ForeignSegment`]), or a stray file beyond the listed range
//!   ([`WalError::StraySegment`]);
//! - a hard state whose commit index lies beyond the log it was written after: entries
//!   lost below it ([`WalError::HardStateAhead`]); writes that would create that state are
//!   refused ([`WalError::CommitBeyondLog`]);
//! - any bad record with a valid record after it, any bad record in an older segment, an
//!   older segment whose records end before the length the next one recorded, a damaged
//!   header, base record, manifest or snapshot ([`WalError::Corrupt`],
//!   [`WalError::BadManifest`], [`WalError::BadSnapshot`]).
//!
//! Cut as a torn write: a damaged or partial record at the end of the newest segment with
//! nothing valid after it. Only that is cut: its bytes are overwritten with zeros.
//!
//! Not detectable without paying a second sync per group commit: the records of the newest
//! segment overwritten with zeros, or damaged, from some record to the end, with the file
//! length kept. That looks exactly like a write that never reached the disk, so the
//! records are cut as a torn tail. A whole directory replaced by an older copy of itself
//! (same log id, consistent files) is also accepted: nothing in the directory can tell
//! what it lacks. Such a node comes back with an older log, and possibly an older vote;
//! its peers repair the log (a Raft leader notices a follower whose log went backwards),
//! but a forgotten vote or acknowledgement is unsafe, which is why a node known to have
//! lost data must rejoin as a new member (see the README) rather than restart.
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
mod manifest;
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

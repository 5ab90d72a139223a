//! rsm-consensus: consensus protocols as deterministic, I/O-free automata.
//!
//! Each protocol implements [`rsm_core::Replica`]: it consumes inputs (ticks, messages,
//! proposals, persistence and apply reports) and emits effects (send, persist, apply) in
//! the order the host must execute them. Nothing here opens a socket or a file, reads a
//! clock or draws randomness from the operating system: time is counted in ticks and
//! election jitter comes from a PRNG seeded by the configuration.
//!
//! Read first: [`Raft`] (the automaton), [`RaftConfig`] (its limits and timeouts, every
//! one a named field) and [`RaftMessage`] (what replicas say to each other); [`registry`]
//! lists every protocol by name for the tools. [`Paxos`] is Multi-Paxos behind the same
//! contract, with [`PaxosConfig`] and [`PaxosMessage`]; [`Vsr`] is Viewstamped
//! Replication, with [`VsrConfig`] and [`VsrMessage`].

#![warn(missing_docs)]

// Machinery every log-based protocol needs, used by Raft now and by Multi-Paxos and VSR
// next: the log window, persist tracking, the apply pump, per-peer progress with in-flight
// limits, and chunked snapshot transfer.
mod apply_pump;
mod log_window;
mod membership_change;
mod persist_tracker;
mod progress;
mod read_queue;
mod snapshot_transfer;

mod paxos;
mod raft;
pub mod registry;
mod vsr;

pub use paxos::{BALLOT_NODE_MAX, Paxos, PaxosConfig, PaxosMessage, ballot_epoch};
pub use persist_tracker::{PersistTracker, UNSYNCED_LOG_WRITES_MAX};
pub use progress::{ProgressState, ReplicationProgress};
pub use raft::{ConfigError, Raft, RaftConfig, RaftMessage};
pub use vsr::{Vsr, VsrConfig, VsrMessage};

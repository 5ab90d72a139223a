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
//! lists every protocol by name for the tools.

#![warn(missing_docs)]

mod raft;
pub mod registry;

pub use raft::{ConfigError, ProgressState, Raft, RaftConfig, RaftMessage, ReplicationProgress};

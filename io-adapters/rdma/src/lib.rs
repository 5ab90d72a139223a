//! rsm-rdma: a [`Transport`](rsm_core::Transport) of one-sided writes into ring buffers,
//! the shape RDMA replication systems use: the sender writes a message straight into a
//! ring in the receiver's memory and bumps a completion counter there; the receiver polls
//! that counter (a bounded spin, then a doorbell) and hands the message to its host, and
//! returns credits by writing a consumed counter into the sender's memory. No receiver
//! system call sits on the data path and the payload is copied once, from the automaton's
//! `Bytes` into the ring.
//!
//! The ring protocol (slots with sequence numbers and checksums, credits, splitting and
//! reassembly, the typed resets of a corrupt, stale or overrun ring) is written once,
//! against the [`RingMemory`] trait, and a [`Backend`] only sets that memory up: [`Shm`]
//! is a sealed memfd shared by two processes on one machine and handed over a Unix socket;
//! `Verbs` (behind the `verbs` feature) registers each half with an RDMA device and carries
//! slots and counters with RDMA WRITEs on a reliable connection, addressed over TCP.
//! Backends share the handshake (the core [`Hello`](rsm_core::Hello) over a control socket), the
//! reconnection with backoff, the bounded queues and the counters. The transport never
//! decodes protocol messages, never blocks a sender and never panics on what a peer
//! writes.
//!
//! Read first: [`RingTransport`] (start, send, stats, shutdown), [`RingConfig`] (every
//! bound it keeps), [`RingMemory`] and [`Layout`] (the ring and what a backend provides).
//! [`RingStats`] and [`Refusal`] say what happened to traffic and to refused or reset
//! connections.

#![warn(missing_docs)]

mod backend;
mod config;
mod error;
mod link;
mod ring;
mod shm;
mod stats;
mod transport;
#[cfg(feature = "verbs")]
mod verbs;

pub use backend::Backend;
pub use config::RingConfig;
pub use error::{ConfigError, RdmaError, Refusal, Refused};
pub use ring::{
    Half, Layout, RING_SLOTS_MAX, RingMemory, SLOT_BYTES_MAX, SLOT_BYTES_MIN, SLOT_HEADER_BYTES,
    Word,
};
pub use shm::{Shm, ShmMemory};
pub use stats::{PeerStats, RingStats};
pub use transport::RingTransport;
#[cfg(feature = "verbs")]
pub use verbs::{Verbs, VerbsMemory};

/// The shared-memory ring transport.
pub type ShmTransport = RingTransport<Shm>;
/// Configuration of a shared-memory ring transport: peers are Unix socket paths.
pub type ShmConfig = RingConfig<std::path::PathBuf>;
/// The RDMA verbs ring transport.
#[cfg(feature = "verbs")]
pub type VerbsTransport = RingTransport<Verbs>;

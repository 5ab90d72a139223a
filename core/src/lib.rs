//! rsm-core: the contract every rsm crate builds on.
//!
//! Consensus protocols in rsm are deterministic, I/O-free automata. An automaton never
//! touches a socket, a file, a clock or a random source: every nondeterministic event
//! enters as an [`Input`], and everything the world must do leaves as an [`Effect`], in
//! order. A host executes effects in order, and a `Send` that follows a `Persist` leaves
//! only after that `Persist` is durable.
//!
//! Read first: [`Replica`] (the trait all protocols implement), [`Input`] and [`Effect`]
//! (the vocabulary), [`Host`] (the one implementation of the host rule, which every
//! simulator, driver and benchmark runs), and [`Durable`] (what survives a crash, and the reference semantics of
//! [`Persist`]). [`kv`] holds the reference key-value state machine and [`session`] the
//! exactly-once client sessions every protocol shares.
//!
//! The testing tools live beside this crate, each in its own: `rsm-sim` (the
//! deterministic simulator), `rsm-check` (the linearizability checker) and `rsm-script`
//! (scripted interaction tests with golden transcripts). This crate does no I/O at all.

#![warn(missing_docs)]

mod codec;
mod entry;
mod error;
mod hello;
mod host;
mod ids;
mod io;
pub mod kv;
mod membership;
mod refusal;
mod reject;
mod replica;
mod rng;
pub mod session;
mod start;
mod state_machine;
pub mod text;

pub use codec::{
    Codec, FRAME_BYTES_MAX_DEFAULT, FRAME_HEADER_BYTES, FRAME_VERSION, decode_body, encode_body,
};
pub use entry::{ENTRY_HEADER_BYTES, Entry, EntryKind, SnapshotMeta};
pub use error::{CodecError, PersistError, QuorumError, RestoreError};
pub use hello::{HELLO_BYTES_MAX, HELLO_MAGIC, Hello, HelloError, PROTOCOL_VERSION, dials};
pub use host::{
    ClientError, Completion, CompletionOf, FOLLOWUPS_PER_CALL_MAX, Host, HostConfig, HostError,
    HostEvent, HostEventOf, HostParts, HostStats, Reply, Ticket,
};
pub use ids::{Ballot, Epoch, LogIndex, NodeId, PersistSeq, RequestId, Term, View};
pub use io::{MemStorage, NullTransport, Storage, StorageStats, Transport};
pub use membership::{Membership, Phase, QuorumSizes};
pub use refusal::{Refusal, RefusalCounts, Refused};
pub use reject::RejectReason;
pub use replica::{Durable, Effect, HardState, Input, Persist, Replica, Role, Status};
pub use rng::Prng;
pub use start::{REJOIN_PROCEDURE, StartError, StartMode};
pub use state_machine::{Queryable, StateMachine};

/// Re-exported so that users of the contract name the same `Bytes` type.
pub use bytes::Bytes;

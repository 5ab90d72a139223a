//! rsm-driver: the node loop that binds one consensus [`Replica`](rsm_core::Replica) to the
//! world: a [`Transport`](rsm_core::Transport), a [`Storage`](rsm_core::Storage) and the
//! user's [`StateMachine`](rsm_core::StateMachine).
//!
//! It follows the host rule exactly: effects run in order; persists are grouped so that
//! one sync covers many, and a send that follows a persist leaves only after that sync;
//! committed entries are applied to the state machine; snapshots are taken and installed
//! when the replica asks; client requests end `Ok`, with a definite failure, or with an
//! indefinite one. It never acknowledges anything that may not be durable (a failed sync
//! stops the node), never lets a queue grow without bound (a full queue pushes back on
//! clients with a definite `Busy`), and never panics on bytes from the network.
//!
//! Read first: [`NodeCore`] (the reference [`rsm_core::Host`] bound to a transport and a
//! group-commit policy, usable from any event loop and from tests), [`ClientError`] (definite versus indefinite outcomes) and
//! [`Queryable`] (how reads reach the state machine).

#![warn(missing_docs)]

mod clock;
mod config;
mod error;
mod kv_session;
mod node_core;
mod runner;
#[cfg(feature = "tokio")]
mod tokio_runner;

pub use clock::{ManualClock, ManualClockHandle, Ticker};
pub use config::DriverConfig;
pub use error::{ClientError, NodeError};
pub use kv_session::KvSession;
pub use node_core::{Completion, NodeCore, NodeStats, Reply, Ticket};
pub use rsm_core::{CompletionOf, Queryable};
pub use runner::{Client, Inbox, NodeHandles, NodeRunner, Shutdown, Stopped};
#[cfg(feature = "tokio")]
pub use tokio_runner::{NodeTask, TokioTicker, spawn as spawn_tokio};

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
//! Read first: [`NodeRunner`] (the loop: it reads a transport's inbound channel, answers
//! [`Client`] futures, and runs on its own thread or on tokio), [`NodeCore`] (the
//! reference [`rsm_core::Host`] bound to a transport and a group-commit policy, usable
//! from any event loop and from tests), [`StatusView`] (the status and counters a node
//! publishes for other threads) and [`ClientError`] (definite versus indefinite outcomes).
//!
//! A node in a few lines, reading the channel its transport delivers into:
//!
//! ```
//! use rsm_core::kv::KvStore;
//! use rsm_core::{Membership, MemStorage, NodeId, NullTransport, Replica};
//! use rsm_driver::{DriverConfig, IntervalTicker, NodeCore, NodeRunner};
//! use rsm_consensus::{Raft, RaftConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let replica = Raft::restore(
//!     RaftConfig::new(NodeId(1), Membership::new([NodeId(1)]), 7),
//!     Default::default(),
//! )?;
//! // A transport such as rsm-tcp is started with `inbound_tx` and delivers into it.
//! let (_inbound_tx, inbound) = async_channel::bounded(1024);
//! let core = NodeCore::new(DriverConfig::default(), replica, MemStorage::default(),
//!                          NullTransport, KvStore::new());
//! let (runner, handles) = NodeRunner::with_inbound(core, inbound);
//! let node = runner.spawn_thread("node-1", IntervalTicker::new(std::time::Duration::from_millis(10))?)?;
//! let ticks = handles.status.get().ticks;
//! # let _ = ticks;
//! handles.shutdown.shutdown();
//! assert!(node.join().error.is_none());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod clock;
mod config;
mod error;
mod node_core;
mod runner;
mod status;
mod thread_runner;
#[cfg(feature = "tokio")]
mod tokio_runner;

pub use clock::{ManualClock, ManualClockHandle, Ticker};
pub use config::DriverConfig;
pub use error::{ClientError, NodeError};
pub use node_core::{Completion, NodeCore, NodeStats, Reply, Ticket};
pub use rsm_core::{CompletionOf, Queryable};
pub use runner::{Client, Inbox, NodeHandles, NodeRunner, Shutdown, Stopped};
pub use status::{NodeStatus, StatusView};
pub use thread_runner::{IntervalTicker, NodeThread, block_on};
#[cfg(feature = "tokio")]
pub use tokio_runner::{NodeTask, TokioTicker};

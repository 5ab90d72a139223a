//! What a client and the node owner can be told went wrong: the reference host's types,
//! under the names the driver has always used.

pub use rsm_core::ClientError;

/// Why a node stopped: the reference host's [`rsm_core::HostError`]. Every variant is
/// fatal: the node acts on nothing after it, so that nothing that may not be durable is
/// ever acknowledged.
pub type NodeError<E> = rsm_core::HostError<E>;

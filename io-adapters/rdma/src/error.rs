//! Typed errors: why a transport could not start, and why a connection was refused or reset.

use std::time::Duration;

use rsm_core::NodeId;

/// Why a ring transport failed to start.
#[derive(Debug, thiserror::Error)]
pub enum RdmaError {
    /// The configuration breaks one of its bounds.
    #[error("invalid transport configuration: {0}")]
    Config(#[from] ConfigError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address from the configuration.
        addr: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A thread or wake-up descriptor could not be created.
    #[error("cannot start the transport: {0}")]
    Io(#[from] std::io::Error),
    /// The backend cannot run on this machine (for verbs: no RDMA device, or no
    /// libibverbs to find one with). The message names what is missing.
    #[error("{0}")]
    Unavailable(String),
}

/// A configuration bound that does not hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The node lists itself as a peer.
    #[error("node {0} lists itself among its peers")]
    SelfInPeers(NodeId),
    /// A bound that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A ring dimension is outside what the protocol supports.
    #[error("{field} of {value} is outside {min}..={max}{}", if *.field == "slot_bytes" { " (and must be a multiple of 8)" } else { "" })]
    Ring {
        /// `slot_bytes` or `ring_slots`.
        field: &'static str,
        /// The configured value.
        value: usize,
        /// The smallest allowed.
        min: usize,
        /// The largest allowed.
        max: usize,
    },
    /// `frame_bytes_max` does not fit the 32-bit length of a slot header.
    #[error("frame_bytes_max of {0} does not fit a 32-bit message length")]
    FrameTooLarge(usize),
    /// The reconnect delays are the wrong way round.
    #[error("reconnect_delay_max {max:?} is below reconnect_delay_min {min:?}")]
    BackoffInverted {
        /// The configured minimum.
        min: Duration,
        /// The configured maximum.
        max: Duration,
    },
}

pub use rsm_core::{Refusal, Refused};

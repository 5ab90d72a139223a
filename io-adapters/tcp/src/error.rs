//! Typed errors: why a transport could not start, and why a connection was refused.

use std::net::SocketAddr;
use std::time::Duration;

use rsm_core::NodeId;

/// Why [`TcpTransport::start`](crate::TcpTransport::start) failed.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    /// The configuration breaks one of its bounds.
    #[error("invalid transport configuration: {0}")]
    Config(#[from] ConfigError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address from the configuration.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The TLS material is unusable (bad certificate, key or CA).
    #[cfg(feature = "tls")]
    #[error("TLS configuration rejected: {0}")]
    Tls(String),
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
    /// `frame_bytes_max` does not fit the 4-byte length of a frame header.
    #[error("frame_bytes_max of {0} does not fit a 32-bit frame length")]
    FrameTooLarge(usize),
    /// `tcp_keepalive` is below the one-second resolution of the kernel's timer.
    #[error("tcp_keepalive must be at least one second")]
    KeepaliveTooShort,
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

//! rsm-tcp: a tokio TCP [`Transport`](rsm_core::Transport) for rsm nodes.
//!
//! It carries opaque message bodies between the configured peers of one cluster: one
//! connection per peer pair (the lower node id dials), each message framed with the core
//! [`Codec`](rsm_core::Codec) layout (version byte, `u32` length, maximum size), batched per
//! write, reconnected with jittered exponential backoff. A connection is admitted only after
//! a [`Hello`] handshake names a configured peer of the same cluster and, with the `tls`
//! feature, after mutual TLS proves that identity with a certificate. It never decodes
//! protocol messages, never blocks a sender (each peer has a bounded queue, and overflow is
//! dropped and counted) and never panics on what arrives from the network: a malformed,
//! oversized or unauthenticated connection is closed with a logged reason while the node
//! keeps running.
//!
//! Read first: [`TcpTransport`] (start, send, stats, shutdown), [`TcpConfig`] (every bound
//! it keeps) and [`Hello`] (the handshake, shared with every rsm transport through rsm-core). [`TcpStats`] and
//! [`Refusal`] say what happened to traffic and to refused connections.

#![warn(missing_docs)]

mod config;
mod error;
mod handshake;
mod peer;
mod stats;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod wire;

pub use config::{DropPolicy, TcpConfig};
pub use error::{ConfigError, Refusal, TcpError};
pub use rsm_core::{HELLO_BYTES_MAX, HELLO_MAGIC, Hello, PROTOCOL_VERSION};
pub use stats::{PeerStats, TcpStats};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, tls_identity};
pub use transport::TcpTransport;

//! Typed errors: why a transport could not start, and why a connection was refused.

use std::fmt;
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

/// Why a connection was refused or closed by this node. Each refusal is logged with its
/// details and counted in [`TcpStats`](crate::TcpStats); the node keeps running.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// No verified handshake within `handshake_timeout` (a silent or half-open socket).
    HandshakeTimeout,
    /// The other side closed or broke the connection before the handshake completed.
    HandshakeIncomplete,
    /// Too many inbound handshakes were already pending.
    TooManyHandshakes,
    /// The handshake did not start with the rsm magic: not an rsm peer.
    BadMagic,
    /// The handshake names a protocol version this build does not speak.
    BadProtocolVersion,
    /// The peer belongs to another cluster.
    WrongCluster,
    /// The peer's node id is not configured (or is this node's own id).
    UnknownPeer,
    /// The peer dialed although this node is the one that dials it (lower id dials).
    WrongDialer,
    /// A dialed address answered with another node id than the one configured for it.
    UnexpectedPeer,
    /// The TLS handshake failed: no client certificate, an untrusted one, or a server
    /// certificate that does not name the dialed node.
    Tls,
    /// The client certificate does not name the node id claimed in the handshake.
    CertificateMismatch,
    /// A frame did not parse: wrong frame version byte or an undecodable body.
    Malformed,
    /// A frame declared a body longer than `frame_bytes_max`.
    Oversized,
}

impl Refusal {
    /// Every reason, in a fixed order (the order of the counters).
    pub const ALL: [Refusal; 13] = [
        Refusal::HandshakeTimeout,
        Refusal::HandshakeIncomplete,
        Refusal::TooManyHandshakes,
        Refusal::BadMagic,
        Refusal::BadProtocolVersion,
        Refusal::WrongCluster,
        Refusal::UnknownPeer,
        Refusal::WrongDialer,
        Refusal::UnexpectedPeer,
        Refusal::Tls,
        Refusal::CertificateMismatch,
        Refusal::Malformed,
        Refusal::Oversized,
    ];

    /// A short stable name, used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::HandshakeTimeout => "handshake timeout",
            Refusal::HandshakeIncomplete => "handshake incomplete",
            Refusal::TooManyHandshakes => "too many pending handshakes",
            Refusal::BadMagic => "bad magic",
            Refusal::BadProtocolVersion => "unsupported protocol version",
            Refusal::WrongCluster => "wrong cluster",
            Refusal::UnknownPeer => "unknown peer",
            Refusal::WrongDialer => "peer must not dial this node",
            Refusal::UnexpectedPeer => "unexpected peer at dialed address",
            Refusal::Tls => "TLS handshake failed",
            Refusal::CertificateMismatch => "certificate does not name the peer",
            Refusal::Malformed => "malformed frame",
            Refusal::Oversized => "oversized frame",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal with the details worth logging.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) reason: Refusal,
    pub(crate) detail: String,
}

impl Refused {
    pub(crate) fn new(reason: Refusal, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_at_its_index() {
        for (i, r) in Refusal::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r}");
        }
    }
}

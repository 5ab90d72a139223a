//! What a transport is told at start: who it is, whom it talks to, and every bound it keeps.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use rsm_core::{FRAME_BYTES_MAX_DEFAULT, NodeId};

use crate::error::ConfigError;
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;

/// Which message a full peer queue gives up.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum DropPolicy {
    /// Drop the oldest queued message to make room: a peer that catches up sees the freshest
    /// state (the latest heartbeat, the latest commit index) rather than stale traffic.
    #[default]
    DropOldest,
    /// Refuse the new message and keep what is queued.
    DropNewest,
}

/// Configuration of one node's TCP transport.
///
/// Build it with [`TcpConfig::new`], then adjust the public fields; [`TcpTransport::start`]
/// validates it.
///
/// [`TcpTransport::start`]: crate::TcpTransport::start
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// This node's id. It is sent in the handshake and must not appear in `peers`.
    pub id: NodeId,
    /// The cluster this node belongs to; a peer announcing another cluster is refused.
    pub cluster_id: u64,
    /// Where to listen. Port 0 picks an ephemeral port (see `TcpTransport::local_addr`).
    pub listen: SocketAddr,
    /// Every peer this node talks to, and where it listens. A connection from any other
    /// node id is refused. The node with the lower id dials; the other one waits for it.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The largest message body sent or accepted. A longer send is dropped and counted; a
    /// longer frame on the wire closes its connection before its body is read.
    pub frame_bytes_max: usize,
    /// How many messages may wait for one peer. Sending to a full queue drops a message
    /// according to `drop_policy` and counts it; `send` never blocks.
    pub peer_queue_messages_max: usize,
    /// Which message a full queue gives up.
    pub drop_policy: DropPolicy,
    /// How many bytes of frames one write gathers. A single message larger than this is
    /// written on its own.
    pub batch_bytes_max: usize,
    /// The first delay before redialing a peer; it doubles after every failure.
    pub reconnect_delay_min: Duration,
    /// The longest delay between two dials of the same peer.
    pub reconnect_delay_max: Duration,
    /// How long a connection may take from accept (or dial) to a verified handshake,
    /// including TLS. A connection that says nothing for this long is closed.
    pub handshake_timeout: Duration,
    /// How long an established connection may be silent before the kernel starts probing
    /// it (TCP keepalive, probing at the same interval). A peer whose host vanished without
    /// closing its socket is then detected and its link redialed or awaited anew. `None`
    /// leaves the system default (usually no keepalive).
    pub tcp_keepalive: Option<Duration>,
    /// How many inbound connections may be in their handshake at once; more are closed
    /// at once, so a flood of silent sockets cannot pin memory.
    pub handshakes_pending_max: usize,
    /// Mutual TLS. `None` runs plain TCP, relying on the handshake's claimed identity.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
}

impl TcpConfig {
    /// A configuration with default bounds: 16 MiB frames, 1024 queued messages per peer
    /// (dropping the oldest), 256 KiB write batches, redials between 50 ms and 5 s, a 5 s
    /// handshake timeout, TCP keepalive after 5 s of silence, 64 pending handshakes, no TLS.
    pub fn new(
        id: NodeId,
        cluster_id: u64,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> Self {
        Self {
            id,
            cluster_id,
            listen,
            peers,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            peer_queue_messages_max: 1024,
            drop_policy: DropPolicy::default(),
            batch_bytes_max: 256 << 10,
            reconnect_delay_min: Duration::from_millis(50),
            reconnect_delay_max: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            tcp_keepalive: Some(Duration::from_secs(5)),
            handshakes_pending_max: 64,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Check every bound; `TcpTransport::start` calls this first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.peers.contains_key(&self.id) {
            return Err(ConfigError::SelfInPeers(self.id));
        }
        let positive = [
            ("frame_bytes_max", self.frame_bytes_max),
            ("peer_queue_messages_max", self.peer_queue_messages_max),
            ("batch_bytes_max", self.batch_bytes_max),
            ("handshakes_pending_max", self.handshakes_pending_max),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(field));
        }
        if self.frame_bytes_max > u32::MAX as usize {
            return Err(ConfigError::FrameTooLarge(self.frame_bytes_max));
        }
        if self.reconnect_delay_min.is_zero() {
            return Err(ConfigError::Zero("reconnect_delay_min"));
        }
        if self
            .tcp_keepalive
            .is_some_and(|d| d < Duration::from_secs(1))
        {
            // The kernel counts keepalive time in whole seconds.
            return Err(ConfigError::KeepaliveTooShort);
        }
        if self.handshake_timeout.is_zero() {
            return Err(ConfigError::Zero("handshake_timeout"));
        }
        if self.reconnect_delay_max < self.reconnect_delay_min {
            return Err(ConfigError::BackoffInverted {
                min: self.reconnect_delay_min,
                max: self.reconnect_delay_max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TcpConfig {
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        TcpConfig::new(NodeId(1), 7, local, BTreeMap::from([(NodeId(2), local)]))
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn every_bound_is_checked() {
        let mut c = config();
        c.peers.insert(NodeId(1), c.listen);
        assert_eq!(c.validate(), Err(ConfigError::SelfInPeers(NodeId(1))));

        let mut c = config();
        c.peer_queue_messages_max = 0;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero("peer_queue_messages_max"))
        );

        let mut c = config();
        c.reconnect_delay_max = Duration::from_millis(1);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BackoffInverted { .. })
        ));

        let mut c = config();
        c.tcp_keepalive = Some(Duration::from_millis(500));
        assert_eq!(c.validate(), Err(ConfigError::KeepaliveTooShort));

        let mut c = config();
        c.handshake_timeout = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::Zero("handshake_timeout")));
    }
}

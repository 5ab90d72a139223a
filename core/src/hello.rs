//! The handshake every rsm peer transport opens a connection with, whatever carries it
//! (TCP, a Unix socket, an RDMA connection): a [`Hello`] each way, and the admission rules
//! that decide whether the other side is a configured peer of the same cluster.
//!
//! Only the rules and the byte layout live here; reading and writing the frames is the
//! transport's business, so this module touches no socket.

use serde::{Deserialize, Serialize};

use crate::codec::{Codec, decode_body};
use crate::error::CodecError;
use crate::ids::NodeId;

/// The first four bytes of every hello body: "RSMT".
pub const HELLO_MAGIC: [u8; 4] = *b"RSMT";
/// The transport protocol version this build speaks and accepts: the hello, the framing and
/// the message encodings of every registered protocol. Raised whenever any of them changes,
/// so that nodes of two builds refuse each other at the handshake instead of failing to decode
/// messages later. Version 2: Raft's heartbeat reply carries `log_behind`; Multi-Paxos and
/// Viewstamped Replication messages exist.
pub const PROTOCOL_VERSION: u16 = 2;
/// The largest hello body accepted, far above the real size, so that an unauthenticated
/// connection can make a node buffer no more than this.
pub const HELLO_BYTES_MAX: usize = 64;

/// The handshake frame. The dialer sends one first; the acceptor checks it and answers with
/// its own, and only then do messages flow.
///
/// Its body is the core body encoding of the fields in order; the magic (4 raw bytes) and
/// the protocol version come first in every version, so that any build can recognise a
/// peer it cannot talk to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`HELLO_MAGIC`].
    pub magic: [u8; 4],
    /// The sender's [`PROTOCOL_VERSION`].
    pub protocol_version: u16,
    /// The sender's cluster.
    pub cluster_id: u64,
    /// The sender's node id.
    pub node_id: NodeId,
}

/// Why a hello was not accepted. Transports map each to their own refusal counter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The body does not start with [`HELLO_MAGIC`]: not an rsm peer.
    #[error("hello lacks the magic")]
    BadMagic,
    /// The peer speaks another protocol version.
    #[error("protocol version {0}, this build speaks {PROTOCOL_VERSION}")]
    BadProtocolVersion(u16),
    /// The body does not decode.
    #[error("hello: {0}")]
    Malformed(String),
    /// The peer belongs to another cluster.
    #[error("{peer} speaks for cluster {theirs}, this node is in {ours}")]
    WrongCluster {
        /// Who said hello.
        peer: NodeId,
        /// The cluster it named.
        theirs: u64,
        /// This node's cluster.
        ours: u64,
    },
    /// The peer is not configured (or is this node itself).
    #[error("{peer} is not a configured peer of {us}")]
    UnknownPeer {
        /// Who said hello.
        peer: NodeId,
        /// This node.
        us: NodeId,
    },
    /// The peer dialed although the rule says this node dials it.
    #[error("{us} dials {peer}, not the other way round")]
    WrongDialer {
        /// Who said hello.
        peer: NodeId,
        /// This node.
        us: NodeId,
    },
    /// A dialed peer answered with another node id.
    #[error("dialed {dialed}, {answered} answered")]
    UnexpectedPeer {
        /// The node this one meant to reach.
        dialed: NodeId,
        /// The node that answered.
        answered: NodeId,
    },
}

/// The one rule that keeps a single connection per peer pair: the lower id dials.
pub fn dials(from: NodeId, to: NodeId) -> bool {
    from < to
}

impl Hello {
    /// The hello this build sends for `node_id` in `cluster_id`.
    pub fn new(cluster_id: u64, node_id: NodeId) -> Self {
        Self {
            magic: HELLO_MAGIC,
            protocol_version: PROTOCOL_VERSION,
            cluster_id,
            node_id,
        }
    }

    /// The hello as one core-codec frame, ready to write.
    pub fn encode_frame(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(crate::codec::FRAME_HEADER_BYTES + HELLO_BYTES_MAX);
        Codec::new(HELLO_BYTES_MAX).encode(self, &mut out)?;
        Ok(out)
    }

    /// Check a received hello body: magic and version first, then the whole struct.
    pub fn parse(body: &[u8]) -> Result<Hello, HelloError> {
        if body.get(..HELLO_MAGIC.len()) != Some(&HELLO_MAGIC[..]) {
            return Err(HelloError::BadMagic);
        }
        let (_, version): ([u8; 4], u16) = postcard::take_from_bytes(body)
            .map(|(v, _)| v)
            .map_err(|e| HelloError::Malformed(e.to_string()))?;
        if version != PROTOCOL_VERSION {
            return Err(HelloError::BadProtocolVersion(version));
        }
        decode_body(body).map_err(|e| HelloError::Malformed(e.to_string()))
    }

    /// The acceptor's check of a dialer's hello: same cluster, a configured peer
    /// (`is_peer`), and one that is meant to dial `us`.
    pub fn admit(
        &self,
        us: NodeId,
        cluster_id: u64,
        is_peer: impl FnOnce(NodeId) -> bool,
    ) -> Result<NodeId, HelloError> {
        let peer = self.node_id;
        self.check_cluster(cluster_id)?;
        if peer == us || !is_peer(peer) {
            return Err(HelloError::UnknownPeer { peer, us });
        }
        if !dials(peer, us) {
            return Err(HelloError::WrongDialer { peer, us });
        }
        Ok(peer)
    }

    /// The dialer's check of the acceptor's answer: same cluster, and the node dialed.
    pub fn check_answer(&self, cluster_id: u64, dialed: NodeId) -> Result<(), HelloError> {
        self.check_cluster(cluster_id)?;
        if self.node_id != dialed {
            return Err(HelloError::UnexpectedPeer {
                dialed,
                answered: self.node_id,
            });
        }
        Ok(())
    }

    fn check_cluster(&self, ours: u64) -> Result<(), HelloError> {
        if self.cluster_id == ours {
            return Ok(());
        }
        Err(HelloError::WrongCluster {
            peer: self.node_id,
            theirs: self.cluster_id,
            ours,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FRAME_HEADER_BYTES;

    #[test]
    fn the_lower_id_dials() {
        assert!(dials(NodeId(1), NodeId(2)));
        assert!(!dials(NodeId(2), NodeId(1)));
        assert!(!dials(NodeId(2), NodeId(2)));
    }

    #[test]
    fn hello_round_trips_and_rejects_strangers() {
        let hello = Hello::new(9, NodeId(3));
        let frame = hello.encode_frame().expect("a hello fits");
        assert_eq!(Hello::parse(&frame[FRAME_HEADER_BYTES..]), Ok(hello));

        let mut other = hello;
        other.protocol_version = PROTOCOL_VERSION + 1;
        let frame = other.encode_frame().expect("a hello fits");
        assert_eq!(
            Hello::parse(&frame[FRAME_HEADER_BYTES..]),
            Err(HelloError::BadProtocolVersion(PROTOCOL_VERSION + 1))
        );
        assert_eq!(Hello::parse(b"HTTP/1.1"), Err(HelloError::BadMagic));
        assert!(matches!(
            Hello::parse(b"RSMT"),
            Err(HelloError::Malformed(_))
        ));
    }

    #[test]
    fn admission_names_cluster_peer_and_dialer() {
        let peers = |p: NodeId| p.get() <= 3;
        let us = NodeId(2);
        assert_eq!(Hello::new(7, NodeId(1)).admit(us, 7, peers), Ok(NodeId(1)));
        assert!(matches!(
            Hello::new(8, NodeId(1)).admit(us, 7, peers),
            Err(HelloError::WrongCluster { .. })
        ));
        assert!(matches!(
            Hello::new(7, NodeId(9)).admit(us, 7, peers),
            Err(HelloError::UnknownPeer { .. })
        ));
        assert!(matches!(
            Hello::new(7, NodeId(2)).admit(us, 7, peers),
            Err(HelloError::UnknownPeer { .. })
        ));
        assert!(matches!(
            Hello::new(7, NodeId(3)).admit(us, 7, peers),
            Err(HelloError::WrongDialer { .. })
        ));
        assert_eq!(Hello::new(7, NodeId(3)).check_answer(7, NodeId(3)), Ok(()));
        assert!(matches!(
            Hello::new(7, NodeId(4)).check_answer(7, NodeId(3)),
            Err(HelloError::UnexpectedPeer { .. })
        ));
    }
}

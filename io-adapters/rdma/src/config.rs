//! What a ring transport is told at start: who it is, whom it talks to, and every bound.

use std::collections::BTreeMap;
use std::time::Duration;

use rsm_core::{FRAME_BYTES_MAX_DEFAULT, NodeId};

use crate::error::ConfigError;
use crate::ring::{Layout, RING_SLOTS_MAX, SLOT_BYTES_MAX, SLOT_BYTES_MIN};

/// Configuration of one node's ring transport; `A` is the backend's address type (a Unix
/// socket path for shared memory, a TCP address for verbs).
///
/// Build it with [`RingConfig::new`], then adjust the public fields; the transport's
/// `start` validates it.
#[derive(Clone, Debug)]
pub struct RingConfig<A> {
    /// This node's id. It is sent in the handshake and must not appear in `peers`.
    pub id: NodeId,
    /// The cluster this node belongs to; a peer announcing another cluster is refused.
    pub cluster_id: u64,
    /// Where to listen for peers' handshakes.
    pub listen: A,
    /// Every peer this node talks to, and where it listens. The node with the lower id
    /// dials; the other one waits for it.
    pub peers: BTreeMap<NodeId, A>,
    /// The largest message sent or accepted. A longer send is dropped and counted; a
    /// longer message in the ring resets the connection.
    pub frame_bytes_max: usize,
    /// Bytes per ring slot, its 24-byte header included. Larger messages are split over
    /// several slots and reassembled.
    pub slot_bytes: usize,
    /// Slots per direction and peer: the credits a sender has before it must wait for the
    /// receiver to consume.
    pub ring_slots: usize,
    /// How many messages may wait for one peer while its ring is full or its connection
    /// down. Sending to a full queue drops the oldest message and counts it; `send` never
    /// blocks.
    pub peer_queue_messages_max: usize,
    /// How many times an idle link polls its ring before it sleeps and asks its peer for
    /// a doorbell. Higher trades CPU for latency.
    pub spin_polls_max: u32,
    /// The longest an idle link sleeps before it looks again without a doorbell (a
    /// safety net for a doorbell lost with an RDMA write that overtook its flag).
    pub idle_wait_max: Duration,
    /// The first delay before redialing a peer; it doubles after every failure.
    pub reconnect_delay_min: Duration,
    /// The longest delay between two dials of the same peer.
    pub reconnect_delay_max: Duration,
    /// How long a connection may take from accept (or dial) to an established ring.
    pub handshake_timeout: Duration,
    /// How many inbound connections may be in their handshake at once; more are closed.
    pub handshakes_pending_max: usize,
}

impl<A> RingConfig<A> {
    /// A configuration with default bounds: 16 MiB messages, 512 slots of 4 KiB per
    /// direction and peer (2 MiB), 1024 queued messages per peer, 2000 polls before
    /// sleeping, 10 ms idle waits, redials between 50 ms and 5 s, a 5 s handshake timeout
    /// and 64 pending handshakes.
    pub fn new(id: NodeId, cluster_id: u64, listen: A, peers: BTreeMap<NodeId, A>) -> Self {
        Self {
            id,
            cluster_id,
            listen,
            peers,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            slot_bytes: 4096,
            ring_slots: 512,
            peer_queue_messages_max: 1024,
            spin_polls_max: 2000,
            idle_wait_max: Duration::from_millis(10),
            reconnect_delay_min: Duration::from_millis(50),
            reconnect_delay_max: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            handshakes_pending_max: 64,
        }
    }

    /// The ring geometry both sides must agree on.
    pub fn layout(&self) -> Layout {
        Layout {
            slot_bytes: self.slot_bytes,
            slots: self.ring_slots,
        }
    }

    /// Check every bound; the transport's `start` calls this first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.peers.contains_key(&self.id) {
            return Err(ConfigError::SelfInPeers(self.id));
        }
        let positive = [
            ("frame_bytes_max", self.frame_bytes_max),
            ("peer_queue_messages_max", self.peer_queue_messages_max),
            ("handshakes_pending_max", self.handshakes_pending_max),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(field));
        }
        match self.layout().check() {
            Ok(()) => {}
            Err("slot_bytes") => {
                return Err(ConfigError::Ring {
                    field: "slot_bytes",
                    value: self.slot_bytes,
                    min: SLOT_BYTES_MIN,
                    max: SLOT_BYTES_MAX,
                });
            }
            Err(field) => {
                return Err(ConfigError::Ring {
                    field,
                    value: self.ring_slots,
                    min: 2,
                    max: RING_SLOTS_MAX,
                });
            }
        }
        if self.frame_bytes_max > u32::MAX as usize {
            return Err(ConfigError::FrameTooLarge(self.frame_bytes_max));
        }
        for (field, d) in [
            ("reconnect_delay_min", self.reconnect_delay_min),
            ("handshake_timeout", self.handshake_timeout),
            ("idle_wait_max", self.idle_wait_max),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Zero(field));
            }
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

    fn config() -> RingConfig<&'static str> {
        RingConfig::new(NodeId(1), 7, "a", BTreeMap::from([(NodeId(2), "b")]))
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn every_bound_is_checked() {
        let mut c = config();
        c.peers.insert(NodeId(1), "a");
        assert_eq!(c.validate(), Err(ConfigError::SelfInPeers(NodeId(1))));

        let mut c = config();
        c.peer_queue_messages_max = 0;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero("peer_queue_messages_max"))
        );

        let mut c = config();
        c.slot_bytes = 100;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Ring {
                field: "slot_bytes",
                ..
            })
        ));

        let mut c = config();
        c.ring_slots = 1;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Ring {
                field: "ring_slots",
                ..
            })
        ));

        let mut c = config();
        c.reconnect_delay_max = Duration::from_millis(1);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BackoffInverted { .. })
        ));

        let mut c = config();
        c.idle_wait_max = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::Zero("idle_wait_max")));
    }
}

//! Counters the transport keeps, and the snapshot [`RingStats`] a host reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rsm_core::{NodeId, Refusal, RefusalCounts};

/// Counters shared by all of one transport's threads. Relaxed ordering throughout: each is
/// an independent tally, read only to report.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) dropped_unroutable: AtomicU64,
    pub(crate) dropped_oversized: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) dial_failures: AtomicU64,
    pub(crate) rejections: RefusalCounts,
}

/// Counters of one peer link.
#[derive(Debug, Default)]
pub(crate) struct PeerCounters {
    pub(crate) connected: AtomicBool,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) slots_received: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) credit_waits: AtomicU64,
    pub(crate) doorbells: AtomicU64,
    pub(crate) disconnects: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    add(counter, 1);
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// What one peer link has done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Whether an established ring connects this node to the peer right now.
    pub connected: bool,
    /// Messages waiting for ring space or a connection (at most `peer_queue_messages_max`).
    pub queued: usize,
    /// Messages whose every fragment was written into the peer's ring.
    pub messages_sent: u64,
    /// Messages read from this node's ring and handed to the host.
    pub messages_received: u64,
    /// Slots read from this node's ring.
    pub slots_received: u64,
    /// Messages for the peer dropped: its queue was full, the connection was reset with the
    /// message half written, or the transport stopped.
    pub dropped: u64,
    /// Times a sender found no credit left and had to wait for the peer to consume.
    pub credit_waits: u64,
    /// Doorbells rung to wake the sleeping peer.
    pub doorbells: u64,
    /// Established connections that ended (peer closed, died, or was reset).
    pub disconnects: u64,
}

/// A snapshot of a transport's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Per configured peer.
    pub peers: BTreeMap<NodeId, PeerStats>,
    /// Messages dropped because their destination is not a configured peer.
    pub dropped_unroutable: u64,
    /// Messages dropped because they exceed `frame_bytes_max`.
    pub dropped_oversized: u64,
    /// Rings established, in either direction.
    pub connections: u64,
    /// Dials that failed before a handshake started (peer down or not listening).
    pub dial_failures: u64,
    /// Refused or reset connections, by reason; reasons never seen are absent.
    pub rejections: BTreeMap<Refusal, u64>,
}

impl RingStats {
    pub(crate) fn collect<'a>(
        counters: &Counters,
        peers: impl Iterator<Item = (NodeId, &'a PeerCounters, usize)>,
    ) -> Self {
        let peers = peers
            .map(|(id, c, queued)| {
                let stats = PeerStats {
                    connected: c.connected.load(Ordering::Relaxed),
                    queued,
                    messages_sent: read(&c.messages_sent),
                    messages_received: read(&c.messages_received),
                    slots_received: read(&c.slots_received),
                    dropped: read(&c.dropped),
                    credit_waits: read(&c.credit_waits),
                    doorbells: read(&c.doorbells),
                    disconnects: read(&c.disconnects),
                };
                (id, stats)
            })
            .collect();
        Self {
            peers,
            dropped_unroutable: read(&counters.dropped_unroutable),
            dropped_oversized: read(&counters.dropped_oversized),
            connections: read(&counters.connections),
            dial_failures: read(&counters.dial_failures),
            rejections: counters.rejections.snapshot(),
        }
    }

    /// How many connections were refused or reset for `reason`.
    pub fn rejected(&self, reason: Refusal) -> u64 {
        self.rejections.get(&reason).copied().unwrap_or(0)
    }

    /// Messages sent, over all peers.
    pub fn messages_sent(&self) -> u64 {
        self.peers.values().map(|p| p.messages_sent).sum()
    }

    /// Messages received, over all peers.
    pub fn messages_received(&self) -> u64 {
        self.peers.values().map(|p| p.messages_received).sum()
    }

    /// Messages dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.peers.values().map(|p| p.dropped).sum::<u64>()
            + self.dropped_unroutable
            + self.dropped_oversized
    }
}

//! Counters the transport keeps, and the snapshot [`TcpStats`] a host reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rsm_core::{NodeId, Refusal, RefusalCounts};

/// Counters shared by all of one transport's tasks. Relaxed ordering throughout: each is an
/// independent tally, read only to report.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) batches_sent: AtomicU64,
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
    pub(crate) frames_sent: AtomicU64,
    pub(crate) frames_received: AtomicU64,
    pub(crate) dropped: AtomicU64,
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
    /// Whether a verified connection to the peer is up right now.
    pub connected: bool,
    /// Messages waiting in the peer's queue (never above `peer_queue_messages_max`).
    pub queued: usize,
    /// Frames written to the peer.
    pub frames_sent: u64,
    /// Frames received from the peer and handed to the host.
    pub frames_received: u64,
    /// Messages for the peer dropped because its queue was full (or the transport stopped).
    pub dropped: u64,
}

/// A snapshot of a transport's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Per configured peer.
    pub peers: BTreeMap<NodeId, PeerStats>,
    /// Writes issued; each carries one or more frames.
    pub batches_sent: u64,
    /// Messages dropped because their destination is not a configured peer.
    pub dropped_unroutable: u64,
    /// Messages dropped because they exceed `frame_bytes_max`.
    pub dropped_oversized: u64,
    /// Verified connections established, in either direction.
    pub connections: u64,
    /// Dials that failed before a connection opened (peer down, refused, unreachable).
    pub dial_failures: u64,
    /// Refused or closed connections, by reason; reasons never seen are absent.
    pub rejections: BTreeMap<Refusal, u64>,
}

impl TcpStats {
    pub(crate) fn collect<'a>(
        counters: &Counters,
        peers: impl Iterator<Item = (NodeId, &'a PeerCounters, usize)>,
    ) -> Self {
        let peers = peers
            .map(|(id, c, queued)| {
                let stats = PeerStats {
                    connected: c.connected.load(Ordering::Relaxed),
                    queued,
                    frames_sent: read(&c.frames_sent),
                    frames_received: read(&c.frames_received),
                    dropped: read(&c.dropped),
                };
                (id, stats)
            })
            .collect();
        Self {
            peers,
            batches_sent: read(&counters.batches_sent),
            dropped_unroutable: read(&counters.dropped_unroutable),
            dropped_oversized: read(&counters.dropped_oversized),
            connections: read(&counters.connections),
            dial_failures: read(&counters.dial_failures),
            rejections: counters.rejections.snapshot(),
        }
    }

    /// How many connections were refused for `reason`.
    pub fn rejected(&self, reason: Refusal) -> u64 {
        self.rejections.get(&reason).copied().unwrap_or(0)
    }

    /// Frames written, over all peers.
    pub fn frames_sent(&self) -> u64 {
        self.peers.values().map(|p| p.frames_sent).sum()
    }

    /// Frames received, over all peers.
    pub fn frames_received(&self) -> u64 {
        self.peers.values().map(|p| p.frames_received).sum()
    }

    /// Messages dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.peers.values().map(|p| p.dropped).sum::<u64>()
            + self.dropped_unroutable
            + self.dropped_oversized
    }
}

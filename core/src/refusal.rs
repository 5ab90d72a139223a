//! Why a peer transport refused or closed a connection: one vocabulary for every
//! transport (TCP, rings over shared memory or RDMA), so that logs, counters and tests
//! name the same reasons the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hello::HelloError;

/// Why a connection was refused at its handshake or closed later by this node. Each is
/// logged with its details and counted; the node keeps running. A transport uses the
/// reasons that can happen to it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// No complete handshake within the handshake timeout (a silent or half-open peer).
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
    /// A frame or ring slot did not parse: a wrong version byte, an undecodable body,
    /// fragments out of order.
    Malformed,
    /// A frame or message longer than the configured maximum.
    Oversized,
    /// A ring's memory exchange failed: another geometry, a missing or unsealed memory
    /// file, or an RDMA queue pair that would not connect.
    RingSetup,
    /// A ring slot failed its checksum: the memory was scribbled on or torn.
    Corrupt,
    /// A ring slot carried another sequence number than the next one expected.
    OutOfSequence,
    /// A peer's ring counters claim more slots than the ring holds, or credits for slots
    /// never written.
    Overrun,
    /// A one-sided write to the peer failed (an RDMA work request error).
    WriteFailed,
}

impl Refusal {
    /// Every reason, in a fixed order (the order of the counters).
    pub const ALL: [Refusal; 18] = [
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
        Refusal::RingSetup,
        Refusal::Corrupt,
        Refusal::OutOfSequence,
        Refusal::Overrun,
        Refusal::WriteFailed,
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
            Refusal::RingSetup => "ring setup failed",
            Refusal::Corrupt => "corrupt ring slot",
            Refusal::OutOfSequence => "ring slot out of sequence",
            Refusal::Overrun => "ring counters overrun",
            Refusal::WriteFailed => "one-sided write failed",
        }
    }

    fn index(self) -> usize {
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
pub struct Refused {
    /// The counted reason.
    pub reason: Refusal,
    /// What exactly was wrong.
    pub detail: String,
}

impl Refused {
    /// A refusal for `reason`, explained by `detail`.
    pub fn new(reason: Refusal, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl From<HelloError> for Refused {
    fn from(e: HelloError) -> Self {
        let reason = match e {
            HelloError::BadMagic => Refusal::BadMagic,
            HelloError::BadProtocolVersion(_) => Refusal::BadProtocolVersion,
            HelloError::Malformed(_) => Refusal::Malformed,
            HelloError::WrongCluster { .. } => Refusal::WrongCluster,
            HelloError::UnknownPeer { .. } => Refusal::UnknownPeer,
            HelloError::WrongDialer { .. } => Refusal::WrongDialer,
            HelloError::UnexpectedPeer { .. } => Refusal::UnexpectedPeer,
        };
        Refused::new(reason, e.to_string())
    }
}

/// One counter per [`Refusal`], shared by a transport's tasks. Relaxed ordering: each is
/// an independent tally, read only to report.
#[derive(Debug, Default)]
pub struct RefusalCounts([AtomicU64; Refusal::ALL.len()]);

impl RefusalCounts {
    /// Count one refusal for `reason`.
    pub fn count(&self, reason: Refusal) {
        if let Some(counter) = self.0.get(reason.index()) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The reasons seen so far, with their counts.
    pub fn snapshot(&self) -> BTreeMap<Refusal, u64> {
        Refusal::ALL
            .iter()
            .map(|r| (*r, self.0[r.index()].load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
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

    #[test]
    fn counts_show_only_reasons_seen() {
        let counts = RefusalCounts::default();
        counts.count(Refusal::Corrupt);
        counts.count(Refusal::Corrupt);
        counts.count(Refusal::Tls);
        assert_eq!(
            counts.snapshot(),
            BTreeMap::from([(Refusal::Tls, 1), (Refusal::Corrupt, 2)])
        );
    }
}

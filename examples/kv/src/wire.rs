//! The client protocol: one request, one response, each a core [`Codec`] frame on a TCP
//! connection to a server's client port. A connection carries one request at a time.
//!
//! A frame is read with memory that grows with the bytes that actually arrived, never
//! with the length its header announces, and every byte of buffer is charged to a
//! [`ByteBudget`] first: a header announcing 16 MiB followed by silence costs nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
#[cfg(doc)]
use rsm_core::kv::KvCommand;
use rsm_core::kv::KvResponse;
use rsm_core::{Codec, CodecError, Epoch, LogIndex, NodeId, RejectReason, Role, decode_body};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// What a client asks a server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Replicate a numbered command: an encoded [`KvCommand`], proposed as it is (the
    /// store answers `Malformed` to bytes that do not decode).
    Command {
        /// The encoded command.
        command: Bytes,
    },
    /// Read a key linearizably (no log entry).
    Read {
        /// The key.
        key: Bytes,
    },
    /// Describe the server's replica and its disk.
    Status,
}

/// What a server answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The command committed; the store's response.
    Applied(KvResponse),
    /// The value read.
    Value(Option<Bytes>),
    /// The server's status.
    Status(ServerStatus),
    /// The request did not complete.
    Failed(RemoteError),
}

/// Why a server could not complete a request, split like the driver's outcomes into
/// definite (it did not and will not happen) and indefinite (it may have happened).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteError {
    /// The replica refused it. Definite unless the reason says leadership was lost.
    #[error("refused: {0}")]
    Rejected(RejectReason),
    /// Another entry committed where the command had been appended. Definite.
    #[error("superseded at index {0}")]
    Superseded(LogIndex),
    /// The node is not running. Definite.
    #[error("the node is not running")]
    NotRunning,
    /// No answer within the server's request timeout. Indefinite.
    #[error("the server timed out; outcome unknown")]
    Timeout,
    /// The node stopped, or a snapshot covered the command, with the outcome unknown.
    /// Indefinite.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The client port refused the request before reading all of it (the server then
    /// closes the connection). Definite.
    #[error("refused by the client port: {0}")]
    Refused(PortRefusal),
}

/// Why a server's client port refused a request or a connection without serving it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PortRefusal {
    /// The frame header announced a body over the server's frame limit. Retrying cannot
    /// help.
    #[error("a request of {len} bytes is over the {max_bytes}-byte frame limit")]
    FrameTooLarge {
        /// The announced body length.
        len: u64,
        /// The server's limit.
        max_bytes: u64,
    },
    /// The server already buffers as many request bytes as its budget allows; a retry
    /// later may succeed.
    #[error("the server's {budget_bytes}-byte budget for buffered requests is full")]
    BudgetFull {
        /// The server's budget.
        budget_bytes: u64,
    },
    /// The server serves its limit of connections and none of them is idle.
    #[error("the server serves its limit of {connections_max} connections, none idle")]
    TooManyConnections {
        /// The server's limit.
        connections_max: u64,
    },
}

impl RemoteError {
    /// True when the request certainly did not and will not take effect.
    pub fn is_definite(&self) -> bool {
        match self {
            RemoteError::Rejected(reason) => reason.is_definite(),
            RemoteError::Superseded(_) | RemoteError::NotRunning | RemoteError::Refused(_) => true,
            RemoteError::Timeout | RemoteError::Unknown(_) => false,
        }
    }

    /// The leader the server believes in, if it said.
    pub fn leader_hint(&self) -> Option<NodeId> {
        match self {
            RemoteError::Rejected(reason) => reason.leader_hint(),
            _ => None,
        }
    }
}

impl From<rsm_driver::ClientError> for RemoteError {
    fn from(error: rsm_driver::ClientError) -> Self {
        use rsm_driver::ClientError as E;
        match error {
            E::Rejected(reason) => RemoteError::Rejected(reason),
            E::Superseded { index } => RemoteError::Superseded(index),
            E::NotRunning => RemoteError::NotRunning,
            E::Timeout => RemoteError::Timeout,
            other @ (E::Shutdown | E::OutcomeUnknown { .. }) => {
                debug_assert!(!other.is_definite());
                RemoteError::Unknown(other.to_string())
            }
        }
    }
}

/// A server's view of itself, for operators, the demo (finding the leader) and the load
/// generator (counting fsyncs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// The server's node id.
    pub id: NodeId,
    /// The replica's role.
    pub role: Role,
    /// The replica's epoch (Raft term).
    pub epoch: Epoch,
    /// The leader the replica believes in.
    pub leader: Option<NodeId>,
    /// The highest index the replica knows to be committed.
    pub commit: LogIndex,
    /// The highest index applied to the store.
    pub applied: LogIndex,
    /// Group commits: syncs of the write-ahead log that covered new records.
    pub wal_syncs: u64,
    /// Every fsync the write-ahead log issued (segment and snapshot files included).
    pub wal_fsyncs: u64,
    /// Entries made durable by group commits.
    pub wal_entries_synced: u64,
    /// The client addresses of the members this server knows (itself included), so that
    /// a client can follow a leader hint to a server it was not told about.
    pub clients: BTreeMap<NodeId, SocketAddr>,
    /// The client port: its open connections, buffered bytes and refusals.
    pub client_port: ClientPortStatus,
}

/// What a server's client port holds and what it refused, since the server started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPortStatus {
    /// Connections open now.
    pub connections: u64,
    /// Request bytes buffered now (frames being read and requests being served).
    pub buffered_bytes: u64,
    /// The most request bytes ever buffered at once.
    pub buffered_bytes_peak: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Idle connections closed to make room for a new one at the connection limit.
    pub shed_idle: u64,
    /// New connections refused at the connection limit because none was idle.
    pub refused_connection_limit: u64,
    /// Connections closed for sending no complete request within the handshake timeout.
    pub closed_handshake_timeout: u64,
    /// Connections closed for sending no complete request within the idle timeout.
    pub closed_idle_timeout: u64,
    /// Frames refused for announcing a body over the frame limit.
    pub refused_oversized: u64,
    /// Frames refused because the buffered-bytes budget was full.
    pub refused_budget_full: u64,
    /// Connections closed for sending bytes that are not a request.
    pub refused_malformed: u64,
}

/// A shared limit on bytes buffered at once, in bytes. Readers charge it through a
/// [`Charge`] before they grow a buffer and give the bytes back when the charge drops.
#[derive(Debug)]
pub struct ByteBudget {
    bytes_max: usize,
    held: AtomicUsize,
    peak: AtomicUsize,
}

impl ByteBudget {
    /// A budget of `bytes_max` bytes.
    pub fn new(bytes_max: usize) -> Arc<Self> {
        Arc::new(Self {
            bytes_max,
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// A budget that never runs out (for a client reading a server's answers).
    pub fn unlimited() -> Arc<Self> {
        Self::new(usize::MAX)
    }

    /// The limit, in bytes.
    pub fn bytes_max(&self) -> usize {
        self.bytes_max
    }

    /// Bytes charged now.
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The most bytes ever charged at once.
    pub fn peak_bytes(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// An empty charge against this budget.
    pub fn charge(self: &Arc<Self>) -> Charge {
        Charge {
            budget: self.clone(),
            bytes: 0,
        }
    }

    fn take(&self, bytes: usize) -> bool {
        let taken = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(bytes).filter(|t| *t <= self.bytes_max)
            });
        match taken {
            Ok(before) => {
                self.peak.fetch_max(before + bytes, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }
}

/// Bytes one reader holds of a [`ByteBudget`]; they go back when it is released or
/// dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<ByteBudget>,
    bytes: usize,
}

impl Charge {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Hold `total` bytes in all, taking the difference from the budget; refused (with
    /// nothing taken) when the budget cannot cover it.
    fn grow_to(&mut self, total: usize) -> Result<(), FrameError> {
        if total > self.bytes {
            if !self.budget.take(total - self.bytes) {
                return Err(FrameError::BudgetFull {
                    budget_bytes: self.budget.bytes_max,
                });
            }
            self.bytes = total;
        }
        Ok(())
    }

    /// Give every held byte back.
    pub fn release(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
        self.bytes = 0;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.release();
    }
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The frame was malformed or too large.
    #[error("bad frame: {0}")]
    Codec(#[from] CodecError),
    /// Reading on would take more buffer than the budget has left.
    #[error("the {budget_bytes}-byte budget for buffered frames is full")]
    BudgetFull {
        /// The budget's limit.
        budget_bytes: usize,
    },
}

/// The smallest step by which a frame buffer grows; later steps double it, so a buffer
/// never holds more than twice the bytes received plus this.
const BODY_STEP_BYTES_MIN: usize = 1024;

/// Read one frame and decode its body, charging the buffer to `charge` (which keeps the
/// bytes until the caller releases it).
///
/// The header's length is checked against the codec's limit first; the body buffer
/// then grows only as bytes arrive, so memory follows what the peer sent, not what it
/// announced.
pub async fn read_frame<T, S>(
    stream: &mut S,
    codec: &Codec,
    charge: &mut Charge,
) -> Result<T, FrameError>
where
    T: serde::de::DeserializeOwned,
    S: AsyncBufRead + Unpin,
{
    let mut header = [0u8; rsm_core::FRAME_HEADER_BYTES];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = codec.peek_len(&header)?;
    let mut body = Vec::new();
    while body.len() < len {
        let arrived = stream.fill_buf().await?;
        if arrived.is_empty() {
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let n = arrived.len().min(len - body.len());
        if body.capacity() - body.len() < n {
            let step = body.len().max(BODY_STEP_BYTES_MIN).max(n);
            let capacity = (body.len() + step).min(len);
            charge.grow_to(charge.bytes().max(capacity))?;
            body.reserve_exact(capacity - body.len());
        }
        body.extend_from_slice(&arrived[..n]);
        stream.consume(n);
    }
    Ok(decode_body(&body)?)
}

/// Encode `value` into one frame and write it. `buf` is reused between calls.
pub async fn write_frame<T, S>(
    stream: &mut S,
    codec: &Codec,
    buf: &mut Vec<u8>,
    value: &T,
) -> Result<(), FrameError>
where
    T: Serialize,
    S: tokio::io::AsyncWrite + Unpin,
{
    buf.clear();
    codec.encode(value, buf)?;
    stream.write_all(buf).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_core::kv::{KvCommand, KvOp};
    use rsm_core::session::{ClientId, SessionHeader};

    #[tokio::test]
    async fn frames_round_trip_and_oversized_frames_are_refused() {
        let codec = Codec::new(64);
        let (mut a, b) = tokio::io::duplex(1024);
        let request = Request::Command {
            command: KvCommand {
                session: SessionHeader {
                    client: ClientId(7),
                    seq: 3,
                },
                op: KvOp::Put {
                    key: Bytes::from_static(b"k"),
                    value: Bytes::from_static(b"v"),
                },
            }
            .encode(),
        };
        let mut buf = Vec::new();
        write_frame(&mut a, &codec, &mut buf, &request)
            .await
            .unwrap();
        let mut b = tokio::io::BufReader::new(b);
        let budget = ByteBudget::new(1024);
        let mut charge = budget.charge();
        let got: Request = read_frame(&mut b, &codec, &mut charge).await.unwrap();
        assert_eq!(got, request);
        assert!(budget.held_bytes() > 0);
        charge.release();
        assert_eq!(budget.held_bytes(), 0);

        // A header announcing more than the limit is refused before its body is read.
        let big = Codec::new(1 << 20);
        let value = Request::Read {
            key: Bytes::from(vec![0u8; 100]),
        };
        write_frame(&mut a, &big, &mut buf, &value).await.unwrap();
        let refused = read_frame::<Request, _>(&mut b, &codec, &mut charge).await;
        assert!(matches!(
            refused,
            Err(FrameError::Codec(CodecError::TooLarge { .. }))
        ));

        drop(a);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        let closed = read_frame::<Request, _>(&mut b, &codec, &mut charge).await;
        assert!(matches!(closed, Err(FrameError::Closed)));
    }

    #[tokio::test]
    async fn a_frame_costs_what_arrived_not_what_its_header_announced() {
        let codec = Codec::new(16 << 20);
        let budget = ByteBudget::new(64 << 10);
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let mut b = tokio::io::BufReader::new(b);
        // A header announcing 16 MiB, then 10 bytes, then silence.
        a.write_all(&codec.header(16 << 20).unwrap()).await.unwrap();
        a.write_all(&[7u8; 10]).await.unwrap();
        let mut charge = budget.charge();
        let mut read = Box::pin(read_frame::<Request, _>(&mut b, &codec, &mut charge));
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), &mut read).await;
        assert!(waited.is_err(), "the frame is incomplete");
        let held = budget.held_bytes();
        assert!(held > 0 && held <= BODY_STEP_BYTES_MIN, "{held}");

        // Sending on grows the charge with what arrives, until the budget refuses.
        a.write_all(&vec![7u8; 256 << 10]).await.unwrap();
        let refused = (&mut read).await;
        assert!(
            matches!(refused, Err(FrameError::BudgetFull { budget_bytes }) if budget_bytes == 64 << 10),
            "{refused:?}"
        );
        assert!(budget.held_bytes() <= 64 << 10);
        drop(read);
        drop(charge);
        assert_eq!(budget.held_bytes(), 0);
        assert!(budget.peak_bytes() <= 64 << 10);
    }

    #[test]
    fn only_leadership_loss_timeouts_and_unknowns_are_indefinite() {
        let not_leader = RemoteError::Rejected(RejectReason::NotLeader {
            hint: Some(NodeId(2)),
        });
        assert!(not_leader.is_definite());
        assert_eq!(not_leader.leader_hint(), Some(NodeId(2)));
        assert!(!RemoteError::Rejected(RejectReason::LeadershipLost { hint: None }).is_definite());
        assert!(!RemoteError::Timeout.is_definite());
        assert!(!RemoteError::from(rsm_driver::ClientError::Shutdown).is_definite());
        assert!(RemoteError::from(rsm_driver::ClientError::NotRunning).is_definite());
    }
}

//! The client protocol: one request, one response, each a core [`Codec`] frame on a TCP
//! connection to a server's client port. A connection carries one request at a time.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
#[cfg(doc)]
use rsm_core::kv::KvCommand;
use rsm_core::kv::KvResponse;
use rsm_core::{Codec, CodecError, Epoch, LogIndex, NodeId, RejectReason, Role, decode_body};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
}

impl RemoteError {
    /// True when the request certainly did not and will not take effect.
    pub fn is_definite(&self) -> bool {
        match self {
            RemoteError::Rejected(reason) => reason.is_definite(),
            RemoteError::Superseded(_) | RemoteError::NotRunning => true,
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
}

/// Read one frame and decode its body. `buf` is reused between calls.
pub async fn read_frame<T, S>(
    stream: &mut S,
    codec: &Codec,
    buf: &mut Vec<u8>,
) -> Result<T, FrameError>
where
    T: serde::de::DeserializeOwned,
    S: tokio::io::AsyncRead + Unpin,
{
    let mut header = [0u8; rsm_core::FRAME_HEADER_BYTES];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    // The length is checked against the codec's limit before any body byte is read.
    let len = codec.peek_len(&header)?;
    buf.clear();
    buf.resize(len, 0);
    stream.read_exact(buf).await?;
    Ok(decode_body(buf)?)
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
        let (mut a, mut b) = tokio::io::duplex(1024);
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
        let got: Request = read_frame(&mut b, &codec, &mut Vec::new()).await.unwrap();
        assert_eq!(got, request);

        // A header announcing more than the limit is refused before its body is read.
        let big = Codec::new(1 << 20);
        let value = Request::Read {
            key: Bytes::from(vec![0u8; 100]),
        };
        write_frame(&mut a, &big, &mut buf, &value).await.unwrap();
        let refused = read_frame::<Request, _>(&mut b, &codec, &mut Vec::new()).await;
        assert!(matches!(
            refused,
            Err(FrameError::Codec(CodecError::TooLarge { .. }))
        ));

        drop(a);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        let closed = read_frame::<Request, _>(&mut b, &codec, &mut Vec::new()).await;
        assert!(matches!(closed, Err(FrameError::Closed)));
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

//! The client library: exactly-once commands and linearizable reads against a cluster.
//!
//! A [`KvClient`] is one session (a random client id and a sequence number per command).
//! It sends to the server it believes leads, follows leader hints, and retries a command
//! under the same sequence number until it gets an answer or its operation deadline
//! passes, so a retry is never applied twice. Its errors keep the one distinction the
//! linearizability checker relies on: [`KvError::Failed`] only when no attempt could have
//! taken effect, [`KvError::Unknown`] otherwise.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rsm_core::kv::{KvCommand, KvOp, KvResponse};
use rsm_core::session::{ClientId, SessionHeader};
use rsm_core::{Codec, NodeId, RejectReason};
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, sleep, timeout};

use crate::wire::{
    ByteBudget, FrameError, PortRefusal, RemoteError, Request, Response, ServerStatus, read_frame,
    write_frame,
};

/// Where the servers are and how patient a client is.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Every server's client address, by node id (leader hints name node ids).
    pub servers: BTreeMap<NodeId, SocketAddr>,
    /// Servers known only by their client address: before its first request the client
    /// asks each for its status, which names its node id (and the other servers).
    pub addresses: Vec<SocketAddr>,
    /// The longest one request to one server may take before the client gives up on that
    /// server (its outcome is then unknown) and tries another.
    pub attempt_timeout: Duration,
    /// The longest one operation may take, retries included.
    pub op_timeout: Duration,
    /// The pause before retrying when no leader is known or the leader is busy.
    pub retry_delay: Duration,
    /// Largest frame sent or accepted.
    pub frame_bytes_max: usize,
}

impl ClientConfig {
    /// Defaults: 1 s per attempt, 10 s per operation, 20 ms between blind retries.
    pub fn new(servers: BTreeMap<NodeId, SocketAddr>) -> Self {
        Self {
            servers,
            addresses: Vec::new(),
            attempt_timeout: Duration::from_secs(1),
            op_timeout: Duration::from_secs(10),
            retry_delay: Duration::from_millis(20),
            frame_bytes_max: rsm_core::FRAME_BYTES_MAX_DEFAULT,
        }
    }
}

/// Why one attempt at one server did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// The server answered that it could not complete the request.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// No connection could be made; the request was never sent.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server's address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The connection failed after the request may have been sent.
    #[error("connection lost: {0}")]
    Connection(#[from] FrameError),
    /// No answer within `attempt_timeout`.
    #[error("no answer within the attempt timeout")]
    TimedOut,
    /// The answer does not fit the request (a server bug, or a stale answer).
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The client was configured with no servers.
    #[error("no servers configured")]
    NoServers,
}

/// Why an operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// It did not and will not take effect.
    #[error("failed: {0}")]
    Failed(AttemptError),
    /// It may have taken effect, now or later.
    #[error("outcome unknown: {0}")]
    Unknown(AttemptError),
}

impl KvError {
    /// True when the operation certainly did not take effect.
    pub fn is_definite(&self) -> bool {
        matches!(self, KvError::Failed(_))
    }

    /// True when the cluster refused the operation for good: no retry, at any server or
    /// any time, could change the answer (too large, unsupported, invalid).
    pub fn is_refusal(&self) -> bool {
        matches!(self, KvError::Failed(AttemptError::Remote(remote)) if is_final(remote))
    }
}

/// The result of a compare-and-swap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasOutcome {
    /// Whether the value was swapped.
    pub swapped: bool,
    /// The value found before the operation.
    pub current: Option<Bytes>,
}

struct Connection {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Connection {
    /// False when the server has closed the connection (or sent bytes nobody asked for,
    /// which would be taken for the next answer): either way it must not carry a request.
    fn still_open(&self) -> bool {
        if !self.read.buffer().is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(
            self.read.get_ref().try_read(&mut probe),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        )
    }
}

/// One client session against a cluster. Use it for one operation at a time.
pub struct KvClient {
    config: ClientConfig,
    codec: Codec,
    id: ClientId,
    seq: u64,
    /// The server believed to lead.
    leader: Option<NodeId>,
    /// Where a blind retry goes next (position in `config.servers`).
    rotation: usize,
    /// At most one per configured server.
    connections: BTreeMap<NodeId, Connection>,
    buf: Vec<u8>,
    /// Answers are read into buffers charged here; a client trusts its servers' sizes
    /// up to `frame_bytes_max`, so the budget has no limit of its own.
    answers: std::sync::Arc<ByteBudget>,
}

impl std::fmt::Debug for KvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvClient")
            .field("id", &self.id)
            .field("seq", &self.seq)
            .field("leader", &self.leader)
            .finish_non_exhaustive()
    }
}

impl KvClient {
    /// A new session with a random id (unique across processes with high probability, so
    /// that no two clients ever share a session).
    pub fn new(config: ClientConfig) -> Self {
        let id = ClientId(RandomState::new().hash_one(std::process::id()) | 1);
        Self::with_id(config, id)
    }

    /// A new session under a chosen id, which must never have been used in this cluster.
    pub fn with_id(config: ClientConfig, id: ClientId) -> Self {
        let rotation = (id.0 as usize) % config.servers.len().max(1);
        Self {
            codec: Codec::new(config.frame_bytes_max),
            config,
            id,
            seq: 0,
            leader: None,
            rotation,
            connections: BTreeMap::new(),
            buf: Vec::new(),
            answers: ByteBudget::unlimited(),
        }
    }

    /// The session's id.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The servers this client knows, by node id.
    pub fn servers(&self) -> &BTreeMap<NodeId, SocketAddr> {
        &self.config.servers
    }

    /// The server this client believes leads.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Read `key`.
    pub async fn get(&mut self, key: Bytes) -> Result<Option<Bytes>, KvError> {
        match self.request(&Request::Read { key }, false).await? {
            Response::Value(value) => Ok(value),
            other => Err(KvError::Unknown(unexpected(&other))),
        }
    }

    /// Write `value` at `key`.
    pub async fn put(&mut self, key: Bytes, value: Bytes) -> Result<(), KvError> {
        match self.command(KvOp::Put { key, value }).await? {
            KvResponse::Done => Ok(()),
            other => Err(KvError::Unknown(unexpected(&other))),
        }
    }

    /// Remove `key`.
    pub async fn delete(&mut self, key: Bytes) -> Result<(), KvError> {
        match self.command(KvOp::Delete { key }).await? {
            KvResponse::Done => Ok(()),
            other => Err(KvError::Unknown(unexpected(&other))),
        }
    }

    /// Set `key` to `new` (remove it if `None`) if it holds `expected` (absent if `None`).
    pub async fn cas(
        &mut self,
        key: Bytes,
        expected: Option<Bytes>,
        new: Option<Bytes>,
    ) -> Result<CasOutcome, KvError> {
        match self.command(KvOp::Cas { key, expected, new }).await? {
            KvResponse::Cas { swapped, current } => Ok(CasOutcome { swapped, current }),
            other => Err(KvError::Unknown(unexpected(&other))),
        }
    }

    /// Ask one server for its status (a single attempt).
    pub async fn status(&mut self, node: NodeId) -> Result<ServerStatus, AttemptError> {
        let deadline = Instant::now() + self.config.attempt_timeout;
        match self.attempt(node, &Request::Status, deadline).await {
            Ok(Response::Status(status)) => Ok(status),
            Ok(other) => Err(unexpected(&other)),
            Err((error, _)) => Err(error),
        }
    }

    /// Replicate `op` exactly once under the next sequence number.
    pub async fn command(&mut self, op: KvOp) -> Result<KvResponse, KvError> {
        self.seq += 1;
        let command = KvCommand {
            session: SessionHeader {
                client: self.id,
                seq: self.seq,
            },
            op,
        }
        .encode();
        match self.request(&Request::Command { command }, true).await? {
            Response::Applied(KvResponse::Malformed) => Err(KvError::Failed(
                AttemptError::Unexpected("the store could not decode the command".into()),
            )),
            Response::Applied(response @ (KvResponse::Stale | KvResponse::SessionExpired)) => {
                // The session table did not apply it now, but an earlier attempt may have.
                Err(KvError::Unknown(unexpected(&response)))
            }
            Response::Applied(response) => Ok(response),
            other => Err(KvError::Unknown(unexpected(&other))),
        }
    }

    /// Send `request` until a server answers it, following leader hints. `effects` says
    /// whether the request changes state (so that an unanswered attempt makes the whole
    /// operation's outcome unknown).
    async fn request(&mut self, request: &Request, effects: bool) -> Result<Response, KvError> {
        let deadline = Instant::now() + self.config.op_timeout;
        let mut unknown = false;
        loop {
            let unidentified = self.identify_servers_by(deadline).await;
            let Some(node) = self.target() else {
                let error = unidentified.unwrap_or(AttemptError::NoServers);
                if Instant::now() >= deadline || self.config.addresses.is_empty() {
                    return Err(KvError::Failed(error));
                }
                sleep(self.config.retry_delay).await;
                continue;
            };
            let error = match self.attempt(node, request, deadline).await {
                Ok(Response::Failed(remote)) => {
                    let definite = remote.is_definite();
                    (AttemptError::Remote(remote), definite)
                }
                Ok(response) => {
                    self.leader = Some(node);
                    return Ok(response);
                }
                Err(failed) => failed,
            };
            let (error, definite) = error;
            unknown |= effects && !definite;
            if let AttemptError::Remote(remote) = &error
                && is_final(remote)
            {
                // No retry, here or elsewhere, can change this answer.
                return Err(KvError::Failed(error));
            }
            let hint = match &error {
                AttemptError::Remote(remote) => remote.leader_hint().filter(|h| *h != node),
                _ => None,
            };
            if let Some(leader) = hint
                && !self.config.servers.contains_key(&leader)
            {
                self.learn_servers(node, deadline).await;
            }
            let busy = matches!(
                error,
                AttemptError::Remote(RemoteError::Rejected(RejectReason::Busy))
            );
            match hint {
                Some(leader) if self.config.servers.contains_key(&leader) && !busy => {
                    self.leader = Some(leader);
                }
                _ => {
                    // No usable hint: try the next server after a pause, so an election
                    // in progress is not hammered.
                    if !busy {
                        self.leader = None;
                        self.rotation = self.rotation.wrapping_add(1);
                    }
                    sleep(self.config.retry_delay).await;
                }
            }
            if Instant::now() >= deadline {
                return Err(if unknown {
                    KvError::Unknown(error)
                } else {
                    KvError::Failed(error)
                });
            }
        }
    }

    /// Ask each server known only by address ([`ClientConfig::addresses`]) for its status,
    /// which names its node id, and add it (and the servers it knows) to the servers this
    /// client knows, one attempt each. Those that do not answer stay to be asked again;
    /// the last error.
    pub async fn identify_servers(&mut self) -> Option<AttemptError> {
        let deadline = Instant::now() + self.config.attempt_timeout;
        self.identify_servers_by(deadline).await
    }

    async fn identify_servers_by(&mut self, deadline: Instant) -> Option<AttemptError> {
        let mut last_error = None;
        for addr in std::mem::take(&mut self.config.addresses) {
            let deadline = deadline.min(Instant::now() + self.config.attempt_timeout);
            let exchange = match self.open(addr, deadline).await {
                Ok(mut connection) => self
                    .exchange(&mut connection, &Request::Status, deadline)
                    .await
                    .map(|response| (response, connection)),
                Err((error, _)) => Err(error),
            };
            match exchange {
                Ok((Response::Status(status), connection)) => {
                    self.config.servers.insert(status.id, addr);
                    self.connections.insert(status.id, connection);
                    self.learn(&status.clients);
                }
                Ok((Response::Failed(remote), _)) => {
                    // Its connection is dropped here; it is asked again next time.
                    last_error = Some(AttemptError::Remote(remote));
                    self.config.addresses.push(addr);
                }
                Ok((other, _)) => {
                    last_error = Some(unexpected(&other));
                    self.config.addresses.push(addr);
                }
                Err(error) => {
                    last_error = Some(error);
                    self.config.addresses.push(addr);
                }
            }
        }
        last_error
    }

    /// Add the client addresses `node` knows (from its status) to the servers this client
    /// knows, so that a hint naming a server it was not told about can be followed.
    async fn learn_servers(&mut self, node: NodeId, deadline: Instant) {
        if let Ok(Response::Status(status)) = self.attempt(node, &Request::Status, deadline).await {
            self.learn(&status.clients);
        }
    }

    /// Add servers this client did not know (a server's status lists the client
    /// addresses it knows); the addresses of known ones are kept.
    pub fn learn(&mut self, servers: &BTreeMap<NodeId, SocketAddr>) {
        for (id, addr) in servers {
            self.config.servers.entry(*id).or_insert(*addr);
        }
    }

    fn target(&self) -> Option<NodeId> {
        if let Some(leader) = self.leader {
            return Some(leader);
        }
        let n = self.config.servers.len();
        if n == 0 {
            return None;
        }
        self.config.servers.keys().nth(self.rotation % n).copied()
    }

    /// One request to one server. On error, also whether the request certainly had no
    /// effect there (it was never sent, or the server said so).
    async fn attempt(
        &mut self,
        node: NodeId,
        request: &Request,
        deadline: Instant,
    ) -> Result<Response, (AttemptError, bool)> {
        let Some(&addr) = self.config.servers.get(&node) else {
            return Err((AttemptError::NoServers, true));
        };
        let deadline = deadline.min(Instant::now() + self.config.attempt_timeout);
        // A pooled connection the server closed (an idle timeout, a restart) is replaced
        // before sending, so that the request is not lost in a closed socket with its
        // outcome unknown.
        let pooled = self
            .connections
            .remove(&node)
            .filter(Connection::still_open);
        let mut connection = match pooled {
            Some(connection) => connection,
            None => self.open(addr, deadline).await?,
        };
        let outcome = self.exchange(&mut connection, request, deadline).await;
        if let Ok(response) = &outcome
            && reusable(response)
        {
            self.connections.insert(node, connection);
        }
        outcome.map_err(|error| (error, false))
    }

    /// Connect to `addr`; on error, the request was certainly not sent.
    async fn open(
        &self,
        addr: SocketAddr,
        deadline: Instant,
    ) -> Result<Connection, (AttemptError, bool)> {
        let connect = tokio::time::timeout_at(deadline, TcpStream::connect(addr));
        let stream = match connect.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err((AttemptError::Connect { addr, source }, true)),
            Err(_) => return Err((AttemptError::TimedOut, true)),
        };
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Ok(Connection {
            read: BufReader::new(read),
            write,
        })
    }

    /// Send `request` on `connection` and read the answer, by `deadline`.
    async fn exchange(
        &mut self,
        connection: &mut Connection,
        request: &Request,
        deadline: Instant,
    ) -> Result<Response, AttemptError> {
        let codec = self.codec;
        let buf = &mut self.buf;
        let mut charge = self.answers.charge();
        let exchange = async {
            write_frame(&mut connection.write, &codec, buf, request).await?;
            read_frame::<Response, _>(&mut connection.read, &codec, &mut charge).await
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        match timeout(remaining, exchange).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(AttemptError::Connection(error)),
            Err(_) => Err(AttemptError::TimedOut),
        }
    }
}

/// Whether the connection that carried `response` can carry the next request: a failed
/// exchange leaves it unusable (after a timeout, a late answer would be mistaken for the
/// next one's), and a server closes a connection after refusing on it.
fn reusable(response: &Response) -> bool {
    !matches!(response, Response::Failed(RemoteError::Refused(_)))
}

/// Whether a refusal stands wherever and whenever the request is retried.
fn is_final(remote: &RemoteError) -> bool {
    matches!(
        remote,
        RemoteError::Rejected(
            RejectReason::TooLarge { .. }
                | RejectReason::InvalidConfig(_)
                | RejectReason::Unsupported
        ) | RemoteError::Refused(PortRefusal::FrameTooLarge { .. })
    )
}

fn unexpected(what: &impl std::fmt::Debug) -> AttemptError {
    AttemptError::Unexpected(format!("{what:?}"))
}

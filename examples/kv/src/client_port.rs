//! The client port: accepting client connections and serving their requests within
//! explicit limits, so that no client, however it behaves, can exhaust the server.
//!
//! The limits ([`ClientPortLimits`]) and what each abuse meets:
//! - A frame is read with memory that follows the bytes received (see [`read_frame`]),
//!   and every buffered request byte, from the first byte of a frame until its answer is
//!   written, is charged to one per-node budget (`buffered_bytes_max`). A frame over
//!   the server's `frame_bytes_max` is refused from its header; a frame that would overrun the budget
//!   is refused when it does. Both get a typed [`PortRefusal`] answer, then the
//!   connection closes.
//! - A new connection must complete its first request within `handshake_timeout`; an
//!   established one its next request within `idle_timeout` of its last answer.
//! - At `connections_max`, a new connection closes the connection that has been idle
//!   (not being served) the longest; if every connection is being served, the newcomer
//!   gets [`PortRefusal::TooManyConnections`] and is closed.
//!
//! Every refusal and forced close is counted ([`ClientPortStatus`], part of the server's
//! status) and logged as a tracing event naming the peer address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsm_core::kv::KvStore;
use rsm_core::{Codec, CodecError};
use rsm_driver::Client;
use tokio::io::{AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::wire::{
    ByteBudget, ClientPortStatus, FrameError, PortRefusal, RemoteError, Request, Response,
    ServerStatus, read_frame, write_frame,
};

/// The bounds of one server's client port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientPortLimits {
    /// Client connections open at once; at the limit a newcomer sheds the idlest one.
    pub connections_max: usize,
    /// Request bytes buffered at once over all connections, in bytes: frames being read
    /// and requests waiting for their answer.
    pub buffered_bytes_max: usize,
    /// How long a new connection may take to deliver its first complete request.
    pub handshake_timeout: Duration,
    /// How long a connection may take, after an answer, to deliver its next complete
    /// request.
    pub idle_timeout: Duration,
}

impl Default for ClientPortLimits {
    /// 1024 connections, a 64 MiB budget, a 10 s handshake timeout and a 5 min idle
    /// timeout.
    fn default() -> Self {
        Self {
            connections_max: 1024,
            buffered_bytes_max: 64 << 20,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

impl ClientPortLimits {
    /// Why these limits cannot run with frames of up to `frame_bytes_max` bytes, naming
    /// the flag to fix.
    pub fn check(&self, frame_bytes_max: usize) -> Result<(), String> {
        if self.connections_max == 0 {
            return Err("--client-connections-max must be at least 1".into());
        }
        if self.buffered_bytes_max < frame_bytes_max {
            return Err(format!(
                "--client-buffered-bytes-max ({}) must be at least --frame-bytes-max ({}), \
                 or the largest request could never be read",
                self.buffered_bytes_max, frame_bytes_max
            ));
        }
        if self.handshake_timeout.is_zero() || self.idle_timeout.is_zero() {
            return Err(
                "--client-handshake-timeout and --client-idle-timeout must be positive".into(),
            );
        }
        Ok(())
    }
}

/// Counters of the client port, shared by its tasks.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    shed_idle: AtomicU64,
    refused_connection_limit: AtomicU64,
    closed_handshake_timeout: AtomicU64,
    closed_idle_timeout: AtomicU64,
    refused_oversized: AtomicU64,
    refused_budget_full: AtomicU64,
    refused_malformed: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One open connection, as the shedding policy sees it.
#[derive(Debug)]
struct Slot {
    /// When the connection last became idle (accepted, or answered); `None` while a
    /// request is being served.
    idle_since: Option<Instant>,
    close: Arc<Notify>,
}

/// The open connections, for the connection limit.
#[derive(Debug, Default)]
struct Connections {
    next: u64,
    open: HashMap<u64, Slot>,
}

/// The client port's shared state: limits, budget, counters and open connections.
#[derive(Debug)]
pub(crate) struct ClientPort {
    limits: ClientPortLimits,
    codec: Codec,
    budget: Arc<ByteBudget>,
    counters: Counters,
    connections: Mutex<Connections>,
}

/// What admitting a new connection did.
enum Admission {
    /// Admitted under this id, closing nobody.
    Room(u64, Arc<Notify>),
    /// Admitted after closing an idle connection.
    Shed(u64, Arc<Notify>),
    /// Refused: every connection is being served.
    Full,
}

impl ClientPort {
    /// A port with nothing open yet, reading frames with `codec`.
    pub(crate) fn new(limits: ClientPortLimits, codec: Codec) -> Arc<Self> {
        Arc::new(Self {
            budget: ByteBudget::new(limits.buffered_bytes_max),
            limits,
            codec,
            counters: Counters::default(),
            connections: Mutex::default(),
        })
    }

    /// The port's part of the server's status.
    pub(crate) fn status(&self) -> ClientPortStatus {
        let c = &self.counters;
        let read = |x: &AtomicU64| x.load(Ordering::Relaxed);
        ClientPortStatus {
            connections: self.lock().open.len() as u64,
            buffered_bytes: self.budget.held_bytes() as u64,
            buffered_bytes_peak: self.budget.peak_bytes() as u64,
            accepted: read(&c.accepted),
            shed_idle: read(&c.shed_idle),
            refused_connection_limit: read(&c.refused_connection_limit),
            closed_handshake_timeout: read(&c.closed_handshake_timeout),
            closed_idle_timeout: read(&c.closed_idle_timeout),
            refused_oversized: read(&c.refused_oversized),
            refused_budget_full: read(&c.refused_budget_full),
            refused_malformed: read(&c.refused_malformed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connections> {
        // A panic while holding this lock leaves the map consistent (every update is one
        // insert, remove or field store), so a poisoned lock is still usable.
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn admit(&self) -> Admission {
        let mut connections = self.lock();
        let mut shed = false;
        if connections.open.len() >= self.limits.connections_max {
            let idlest = connections
                .open
                .iter()
                .filter_map(|(id, slot)| slot.idle_since.map(|since| (since, *id)))
                .min();
            let Some((_, id)) = idlest else {
                return Admission::Full;
            };
            if let Some(slot) = connections.open.remove(&id) {
                slot.close.notify_one();
            }
            shed = true;
        }
        let id = connections.next;
        connections.next += 1;
        let close = Arc::new(Notify::new());
        connections.open.insert(
            id,
            Slot {
                idle_since: Some(Instant::now()),
                close: close.clone(),
            },
        );
        if shed {
            Admission::Shed(id, close)
        } else {
            Admission::Room(id, close)
        }
    }

    /// Mark connection `id` as being served (`busy`) or idle from now on.
    fn set_busy(&self, id: u64, busy: bool) {
        if let Some(slot) = self.lock().open.get_mut(&id) {
            slot.idle_since = if busy { None } else { Some(Instant::now()) };
        }
    }

    fn forget(&self, id: u64) {
        self.lock().open.remove(&id);
    }
}

/// Where a connection finds the node and the server's status.
#[derive(Clone, Debug)]
pub(crate) struct Backend<S> {
    /// The node loop's client handle.
    pub(crate) client: Client<KvStore>,
    /// Builds the server's status (without the port's part, which this module adds).
    pub(crate) status: S,
}

/// Bytes a connection's reader buffers from its socket: a fixed cost per connection,
/// bounded by the connection limit.
const SOCKET_READ_BUFFER_BYTES: usize = 4096;

/// Accept clients on `listener` until the runtime stops.
pub(crate) async fn accept_clients<S>(
    listener: TcpListener,
    port: Arc<ClientPort>,
    backend: Backend<S>,
) where
    S: Fn() -> ServerStatus + Clone + Send + Sync + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, usually: wait a little rather than spin.
                warn!(%error, "client port: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (id, close) = match port.admit() {
            Admission::Room(id, close) => (id, close),
            Admission::Shed(id, close) => {
                bump(&port.counters.shed_idle);
                info!(client = %peer, "client port: at the connection limit, closed the idlest connection");
                (id, close)
            }
            Admission::Full => {
                bump(&port.counters.refused_connection_limit);
                warn!(
                    client = %peer,
                    connections_max = port.limits.connections_max,
                    "client port: refused a connection: at the limit and none idle"
                );
                let refusal = PortRefusal::TooManyConnections {
                    connections_max: port.limits.connections_max as u64,
                };
                tokio::spawn(refuse(stream, port.codec, refusal));
                continue;
            }
        };
        bump(&port.counters.accepted);
        let port = port.clone();
        let backend = backend.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, id, close, &port, backend).await;
            port.forget(id);
        });
    }
}

/// Tell a client why it is refused (best effort, briefly), then close.
async fn refuse<W: AsyncWrite + Unpin>(mut stream: W, codec: Codec, refusal: PortRefusal) {
    let answer = Response::Failed(RemoteError::Refused(refusal));
    let mut buf = Vec::new();
    let write = write_frame(&mut stream, &codec, &mut buf, &answer);
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Why a connection stopped waiting for its next request.
enum Stop {
    /// A newcomer at the connection limit closed it.
    Shed,
    /// No complete request within the timeout.
    TimedOut,
    /// The frame could not be read.
    Frame(FrameError),
}

/// Answer one request at a time until the client hangs up, goes quiet, is shed or sends
/// something the port refuses.
async fn serve_connection<S>(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    close: Arc<Notify>,
    port: &ClientPort,
    backend: Backend<S>,
) where
    S: Fn() -> ServerStatus,
{
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(SOCKET_READ_BUFFER_BYTES, read);
    let codec = port.codec;
    let mut charge = port.budget.charge();
    let mut wbuf = Vec::new();
    let mut first = true;
    loop {
        let limit = if first {
            port.limits.handshake_timeout
        } else {
            port.limits.idle_timeout
        };
        let next = tokio::select! {
            _ = close.notified() => Err(Stop::Shed),
            read = tokio::time::timeout(limit, read_frame::<Request, _>(&mut read, &codec, &mut charge)) => match read {
                Err(_) => Err(Stop::TimedOut),
                Ok(Err(error)) => Err(Stop::Frame(error)),
                Ok(Ok(request)) => Ok(request),
            },
        };
        let request = match next {
            Ok(request) => request,
            Err(stop) => {
                let refusal = stopped(port, peer, first, stop);
                if let Some(refusal) = refusal {
                    refuse(&mut write, codec, refusal).await;
                }
                return;
            }
        };
        first = false;
        port.set_busy(id, true);
        let response = match request {
            Request::Command { command } => match backend.client.propose(command).await {
                Ok(response) => Response::Applied(response),
                Err(error) => Response::Failed(error.into()),
            },
            Request::Read { key } => match backend.client.read(key).await {
                Ok(value) => Response::Value(value),
                Err(error) => Response::Failed(error.into()),
            },
            Request::Status => {
                let mut status = (backend.status)();
                status.client_port = port.status();
                Response::Status(status)
            }
        };
        let written = write_frame(&mut write, &codec, &mut wbuf, &response).await;
        charge.release();
        port.set_busy(id, false);
        if written.is_err() {
            return;
        }
    }
}

/// Count and log why a connection stops; the refusal to send it, if any.
fn stopped(port: &ClientPort, peer: SocketAddr, first: bool, stop: Stop) -> Option<PortRefusal> {
    let c = &port.counters;
    match stop {
        Stop::Shed => {
            debug!(client = %peer, "client port: closed to make room for a new connection");
            None
        }
        Stop::TimedOut if first => {
            bump(&c.closed_handshake_timeout);
            info!(client = %peer, timeout = ?port.limits.handshake_timeout, "client port: closed a connection that sent no complete request within the handshake timeout");
            None
        }
        Stop::TimedOut => {
            bump(&c.closed_idle_timeout);
            debug!(client = %peer, timeout = ?port.limits.idle_timeout, "client port: closed an idle connection");
            None
        }
        Stop::Frame(FrameError::Codec(CodecError::TooLarge { len, max_bytes })) => {
            bump(&c.refused_oversized);
            warn!(client = %peer, len, max_bytes, "client port: refused a frame over the frame limit");
            Some(PortRefusal::FrameTooLarge {
                len: len as u64,
                max_bytes: max_bytes as u64,
            })
        }
        Stop::Frame(FrameError::BudgetFull { budget_bytes }) => {
            bump(&c.refused_budget_full);
            warn!(client = %peer, budget_bytes, "client port: refused a frame: the buffered-bytes budget is full");
            Some(PortRefusal::BudgetFull {
                budget_bytes: budget_bytes as u64,
            })
        }
        Stop::Frame(FrameError::Codec(error)) => {
            bump(&c.refused_malformed);
            warn!(client = %peer, %error, "client port: closed a connection that sent a malformed frame");
            None
        }
        Stop::Frame(FrameError::Closed) => None,
        Stop::Frame(FrameError::Io(error)) => {
            debug!(client = %peer, %error, "client port: connection failed");
            None
        }
    }
}

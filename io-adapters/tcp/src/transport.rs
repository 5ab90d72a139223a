//! [`TcpTransport`]: the listener, the accept loop and one link task per configured peer.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;
use bytes::Bytes;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tracing::{debug, warn};

use rsm_core::{Codec, NodeId, Prng, Transport};

use crate::config::{DropPolicy, TcpConfig};
use crate::error::{Refusal, Refused, TcpError};
use crate::handshake::{BoxStream, Handshaker, dials};
use crate::peer::{LinkLimits, LinkTask, PeerLink, refuse, stopped};
use crate::stats::{Counters, PeerCounters, TcpStats, bump};

/// Connections the kernel may hold for us before `accept`.
const LISTEN_BACKLOG: u32 = 1024;
/// Verified connections waiting for their link task, per peer. One is enough: a newer one
/// from the same peer supersedes any still waiting.
const HANDOFF_STREAMS_MAX: usize = 1;

/// A running TCP transport for one node.
///
/// [`send`](Transport::send) queues a message for a peer and returns at once; link tasks
/// connect, write in batches and deliver what peers send, as `(from, body)`, to the
/// `inbound` channel given at start. `from` is always a configured peer that passed the
/// handshake (and, with TLS, proved its identity with a certificate).
///
/// Dropping the transport aborts its tasks; [`shutdown`](Self::shutdown) stops them and
/// waits until every socket is closed, so the port can be reused at once.
///
/// # Example
///
/// ```no_run
/// use std::collections::BTreeMap;
///
/// use rsm_core::{Bytes, NodeId, Transport};
/// use rsm_tcp::{TcpConfig, TcpTransport};
///
/// # async fn node() -> Result<(), Box<dyn std::error::Error>> {
/// let peers = BTreeMap::from([(NodeId(2), "10.0.0.2:7000".parse()?)]);
/// let config = TcpConfig::new(NodeId(1), 42, "0.0.0.0:7000".parse()?, peers);
/// let (inbound, received) = async_channel::bounded(1024);
/// let transport = TcpTransport::start(config, inbound).await?;
/// transport.send(NodeId(2), Bytes::from_static(b"an encoded message"));
/// let (from, message) = received.recv().await?;
/// assert_eq!(from, NodeId(2));
/// # drop(message);
/// transport.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TcpTransport {
    id: NodeId,
    local_addr: SocketAddr,
    frame_bytes_max: usize,
    drop_policy: DropPolicy,
    links: BTreeMap<NodeId, Arc<PeerLink>>,
    counters: Arc<Counters>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl TcpTransport {
    /// Listen on `config.listen` and start connecting to the configured peers. Must be
    /// called inside a tokio runtime (with the time and I/O drivers enabled).
    pub async fn start(
        config: TcpConfig,
        inbound: Sender<(NodeId, Bytes)>,
    ) -> Result<Self, TcpError> {
        config.validate()?;
        let handshaker = Arc::new(Handshaker::new(&config)?);
        let listen_error = |source| TcpError::Listen {
            addr: config.listen,
            source,
        };
        let listener = listen(config.listen).map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let limits = LinkLimits {
            codec: Codec::new(config.frame_bytes_max),
            batch_bytes_max: config.batch_bytes_max,
            reconnect_delay_min: config.reconnect_delay_min,
            reconnect_delay_max: config.reconnect_delay_max,
            handshake_timeout: config.handshake_timeout,
        };
        let seed = RandomState::new().hash_one(config.id);

        let mut tasks = JoinSet::new();
        let mut links = BTreeMap::new();
        let mut handoffs = BTreeMap::new();
        for (&peer, &addr) in &config.peers {
            let (queue_tx, queue_rx) = async_channel::bounded(config.peer_queue_messages_max);
            let link = Arc::new(PeerLink {
                queue: queue_tx,
                counters: PeerCounters::default(),
            });
            let handoff = dials(peer, config.id).then(|| {
                let (tx, rx) = async_channel::bounded(HANDOFF_STREAMS_MAX);
                handoffs.insert(peer, tx);
                rx
            });
            let task = LinkTask {
                peer,
                addr,
                link: link.clone(),
                queue: queue_rx,
                handoff,
                inbound: inbound.clone(),
                handshaker: handshaker.clone(),
                counters: counters.clone(),
                limits: limits.clone(),
                rng: Prng::new(seed ^ peer.get()),
                pending: None,
                batch: Vec::with_capacity(config.batch_bytes_max),
            };
            tasks.spawn(task.run(shutdown_rx.clone()));
            links.insert(peer, link);
        }
        let acceptor = AcceptLoop {
            listener,
            handshaker,
            handoffs: Arc::new(handoffs),
            counters: counters.clone(),
            handshake_timeout: config.handshake_timeout,
            accept_retry_delay: config.reconnect_delay_min,
            handshake_slots: Arc::new(Semaphore::new(config.handshakes_pending_max)),
        };
        tasks.spawn(acceptor.run(shutdown_rx));
        debug!(id = %config.id, %local_addr, "transport started");
        Ok(Self {
            id: config.id,
            local_addr,
            frame_bytes_max: config.frame_bytes_max,
            drop_policy: config.drop_policy,
            links,
            counters,
            shutdown,
            tasks,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address the transport listens on (with the real port when 0 was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TcpStats {
        TcpStats::collect(
            &self.counters,
            self.links
                .iter()
                .map(|(id, link)| (*id, &link.counters, link.queue.len())),
        )
    }

    /// Stop every task and close every socket, the listener included; returns when all
    /// are gone. Messages still queued are discarded.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
        debug!(id = %self.id, "transport stopped");
    }
}

impl Transport for TcpTransport {
    fn send(&self, to: NodeId, message: Bytes) {
        let Some(link) = self.links.get(&to) else {
            bump(&self.counters.dropped_unroutable);
            debug!(%to, "dropping a message for a node that is not a configured peer");
            return;
        };
        if message.len() > self.frame_bytes_max {
            bump(&self.counters.dropped_oversized);
            warn!(%to, len = message.len(), max = self.frame_bytes_max, "dropping an oversized message");
            return;
        }
        let dropped = match self.drop_policy {
            DropPolicy::DropNewest => link.queue.try_send(message).is_err(),
            DropPolicy::DropOldest => !matches!(link.queue.force_send(message), Ok(None)),
        };
        if dropped {
            bump(&link.counters.dropped);
        }
    }
}

/// Open the listening socket. Address reuse lets a restarted node bind its port while
/// connections of its previous life linger in TIME_WAIT.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections and runs each handshake in its own task, bounded in number and in
/// time; a verified connection goes to its peer's link task.
struct AcceptLoop {
    listener: TcpListener,
    handshaker: Arc<Handshaker>,
    handoffs: Arc<BTreeMap<NodeId, Sender<BoxStream>>>,
    counters: Arc<Counters>,
    handshake_timeout: Duration,
    accept_retry_delay: Duration,
    handshake_slots: Arc<Semaphore>,
}

impl AcceptLoop {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut handshakes = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = stopped(&mut shutdown) => {
                    // Close the sockets of unfinished handshakes before reporting stopped.
                    handshakes.shutdown().await;
                    return;
                }
                Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
                accepted = self.listener.accept() => accepted,
            };
            let (tcp, from) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or memory: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::select! {
                        _ = stopped(&mut shutdown) => return,
                        _ = sleep(self.accept_retry_delay) => continue,
                    }
                }
            };
            let Ok(slot) = self.handshake_slots.clone().try_acquire_owned() else {
                let r = Refused::new(Refusal::TooManyHandshakes, "handshake slots exhausted");
                refuse(&self.counters, None, from, &r);
                continue;
            };
            let handshaker = self.handshaker.clone();
            let handoffs = self.handoffs.clone();
            let counters = self.counters.clone();
            let limit = self.handshake_timeout;
            handshakes.spawn(async move {
                let _slot = slot;
                match timeout(limit, handshaker.accept(tcp)).await {
                    Ok(Ok((peer, stream))) => {
                        if let Some(handoff) = handoffs.get(&peer) {
                            // A connection still waiting from the same peer is older: drop it.
                            let _ = handoff.force_send(stream);
                        }
                    }
                    Ok(Err(r)) => refuse(&counters, None, from, &r),
                    Err(_) => {
                        let r = Refused::new(Refusal::HandshakeTimeout, "no hello in time");
                        refuse(&counters, None, from, &r);
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<TcpTransport>();
    }
}

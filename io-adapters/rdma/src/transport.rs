//! [`RingTransport`]: the listener, the accept thread and one link thread per peer.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use async_channel::Sender;
use bytes::Bytes;
use rustix::event::{PollFd, PollFlags};
use tracing::{debug, warn};

use rsm_core::{NodeId, Prng, Transport};

use crate::backend::{self, Backend, Identity};
use crate::config::RingConfig;
use crate::error::{RdmaError, Refusal, Refused};
use crate::link::{LinkTask, PeerLink, Waker, poll, refuse};
use crate::ring::Outbound;
use crate::stats::{Counters, RingStats, bump};

/// A running ring transport for one node, over backend `B` (such as [`Shm`](crate::Shm)).
///
/// [`send`](Transport::send) writes a message into the peer's ring at once when there is
/// room, and otherwise queues it for the peer's link thread; it never blocks. Link threads
/// connect, poll, and deliver what peers send, as `(from, body)`, to the `inbound` channel
/// given at start. `from` is always a configured peer that passed the handshake.
///
/// Dropping the transport (or [`shutdown`](Self::shutdown)) stops every thread, closes
/// every connection and removes what the listener left behind.
///
/// # Example
///
/// ```no_run
/// use std::collections::BTreeMap;
/// use std::path::PathBuf;
///
/// use rsm_core::{Bytes, NodeId, Transport};
/// use rsm_rdma::{RingConfig, RingTransport, Shm};
///
/// # fn node() -> Result<(), Box<dyn std::error::Error>> {
/// let peers = BTreeMap::from([(NodeId(2), PathBuf::from("/run/rsm/2.sock"))]);
/// let config = RingConfig::new(NodeId(1), 42, PathBuf::from("/run/rsm/1.sock"), peers);
/// let (inbound, received) = async_channel::bounded(1024);
/// let transport = RingTransport::start(Shm, config, inbound)?;
/// transport.send(NodeId(2), Bytes::from_static(b"an encoded message"));
/// let (from, message) = received.recv_blocking()?;
/// assert_eq!(from, NodeId(2));
/// # drop(message);
/// transport.shutdown();
/// # Ok(())
/// # }
/// ```
pub struct RingTransport<B: Backend> {
    id: NodeId,
    backend: Arc<B>,
    local_addr: B::Addr,
    frame_bytes_max: usize,
    links: BTreeMap<NodeId, Arc<PeerLink<B::Memory>>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    accept_waker: Arc<Waker>,
    threads: Vec<JoinHandle<()>>,
}

impl<B: Backend> fmt::Debug for RingTransport<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingTransport")
            .field("id", &self.id)
            .field("local_addr", &self.local_addr)
            .field("peers", &self.links.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> RingTransport<B> {
    /// Listen at `config.listen` and start connecting to the configured peers: one thread
    /// per peer and one accepting.
    pub fn start(
        backend: B,
        config: RingConfig<B::Addr>,
        inbound: Sender<(NodeId, Bytes)>,
    ) -> Result<Self, RdmaError> {
        config.validate()?;
        let backend = Arc::new(backend);
        let (listener, local_addr) =
            backend
                .listen(&config.listen)
                .map_err(|source| RdmaError::Listen {
                    addr: format!("{:?}", config.listen),
                    source,
                })?;
        let me = Identity {
            id: config.id,
            cluster_id: config.cluster_id,
            layout: config.layout(),
            handshake_timeout: config.handshake_timeout,
        };
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let seed = RandomState::new().hash_one(config.id);
        let mut transport = Self {
            id: config.id,
            backend: backend.clone(),
            local_addr,
            frame_bytes_max: config.frame_bytes_max,
            links: BTreeMap::new(),
            counters: counters.clone(),
            stop: stop.clone(),
            accept_waker: Arc::new(Waker::new()?),
            threads: Vec::new(),
        };
        // From here on, an early return drops `transport`, which stops what started.
        for (&peer, addr) in &config.peers {
            let link = Arc::new(PeerLink::new(
                peer,
                Outbound::new(me.layout),
                config.peer_queue_messages_max,
            )?);
            let task = LinkTask {
                backend: backend.clone(),
                me: me.clone(),
                addr: addr.clone(),
                link: link.clone(),
                inbound: inbound.clone(),
                counters: counters.clone(),
                stop: stop.clone(),
                frame_bytes_max: config.frame_bytes_max,
                spin_polls_max: config.spin_polls_max,
                idle_wait_max: config.idle_wait_max,
                reconnect_delay_min: config.reconnect_delay_min,
                reconnect_delay_max: config.reconnect_delay_max,
                rng: Prng::new(seed ^ peer.get()),
            };
            transport.links.insert(peer, link);
            transport.threads.push(
                std::thread::Builder::new()
                    .name(format!("rsm-ring-{}-{}", config.id.get(), peer.get()))
                    .spawn(move || task.run())?,
            );
        }
        let acceptor = AcceptLoop {
            backend,
            me,
            listener,
            links: Arc::new(transport.links.clone()),
            counters,
            stop,
            waker: transport.accept_waker.clone(),
            handshakes_pending: Arc::new(AtomicUsize::new(0)),
            handshakes_pending_max: config.handshakes_pending_max,
            accept_retry_delay: config.reconnect_delay_min,
        };
        transport.threads.push(
            std::thread::Builder::new()
                .name(format!("rsm-ring-{}-accept", config.id.get()))
                .spawn(move || acceptor.run())?,
        );
        debug!(id = %config.id, addr = ?transport.local_addr, "ring transport started");
        Ok(transport)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address the transport listens on.
    pub fn local_addr(&self) -> &B::Addr {
        &self.local_addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RingStats {
        RingStats::collect(
            &self.counters,
            self.links
                .iter()
                .map(|(id, link)| (*id, &link.counters, link.queued())),
        )
    }

    /// Stop every thread and close every connection; returns when all are gone. Messages
    /// still queued are discarded (and counted as dropped).
    pub fn shutdown(self) {
        drop(self);
    }
}

impl<B: Backend> Drop for RingTransport<B> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for link in self.links.values() {
            link.waker.wake();
        }
        self.accept_waker.wake();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                warn!(id = %self.id, "a ring thread panicked");
            }
        }
        self.backend.unlisten(&self.local_addr);
        debug!(id = %self.id, "ring transport stopped");
    }
}

impl<B: Backend> Transport for RingTransport<B> {
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
        link.send(message);
    }
}

/// Accepts control connections and runs each handshake on a thread of its own, bounded in
/// number (and each in time); an established connection goes to its peer's link.
struct AcceptLoop<B: Backend> {
    backend: Arc<B>,
    me: Identity,
    listener: B::Listener,
    links: Arc<BTreeMap<NodeId, Arc<PeerLink<B::Memory>>>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    handshakes_pending: Arc<AtomicUsize>,
    handshakes_pending_max: usize,
    accept_retry_delay: Duration,
}

impl<B: Backend> AcceptLoop<B> {
    fn run(self) {
        let mut handshakes: Vec<JoinHandle<()>> = Vec::new();
        while !self.stop.load(Ordering::Acquire) {
            let mut fds = [
                PollFd::new(&self.listener, PollFlags::IN),
                PollFd::new(self.waker.fd(), PollFlags::IN),
            ];
            if let Err(e) = poll(&mut fds, None) {
                warn!(error = %e, "waiting for ring connections failed");
                self.waker.wait(Some(self.accept_retry_delay));
            }
            handshakes.retain(|h| !h.is_finished());
            loop {
                match self.backend.accept(&self.listener) {
                    Ok(stream) => {
                        if let Some(h) = self.start_handshake(stream) {
                            handshakes.push(h);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        // Out of descriptors or memory: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        self.waker.wait(Some(self.accept_retry_delay));
                        break;
                    }
                }
            }
        }
        // Handshakes end within their timeout; none may outlive the transport.
        for h in handshakes {
            let _ = h.join();
        }
    }

    fn start_handshake(&self, stream: B::Stream) -> Option<JoinHandle<()>> {
        let pending = self.handshakes_pending.fetch_add(1, Ordering::AcqRel);
        if pending >= self.handshakes_pending_max {
            self.handshakes_pending.fetch_sub(1, Ordering::AcqRel);
            let r = Refused::new(Refusal::TooManyHandshakes, "handshake slots exhausted");
            refuse(&self.counters, None, &r);
            return None;
        }
        let backend = self.backend.clone();
        let me = self.me.clone();
        let links = self.links.clone();
        let counters = self.counters.clone();
        let slots = self.handshakes_pending.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("rsm-ring-{}-handshake", me.id.get()))
            .spawn(move || {
                match backend::accept(&*backend, &me, stream, |p| links.contains_key(&p)) {
                    Ok((peer, conn)) => {
                        if let Some(link) = links.get(&peer) {
                            link.hand_over(conn);
                        }
                    }
                    Err(r) => refuse(&counters, None, &r),
                }
                slots.fetch_sub(1, Ordering::AcqRel);
            });
        match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                self.handshakes_pending.fetch_sub(1, Ordering::AcqRel);
                warn!(error = %e, "cannot start a handshake thread");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shm;

    #[test]
    fn the_transport_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<RingTransport<Shm>>();
    }
}

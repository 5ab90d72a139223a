//! One peer link: its bounded outbound queue, the sending side of its ring, and the
//! thread that keeps a connection to the peer, polls the inbound ring and hands messages
//! to the host.
//!
//! [`PeerLink::send`] writes straight into the peer's ring from the caller's thread when
//! the ring has room and nothing is queued, so an idle link costs a message no thread
//! hop. Otherwise the message waits in the queue for the link thread, which drains it as
//! credits come back. The link thread polls with a bounded spin, then sleeps in `poll(2)`
//! on the control socket (doorbells, and the peer's death) and on its own eventfd (local
//! sends, handoffs, shutdown), having asked the peer for a doorbell.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_channel::{Sender, TrySendError};
use bytes::Bytes;
use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::net::SendFlags;
use tracing::{debug, info, warn};

use rsm_core::{NodeId, Prng, dials};

use crate::backend::{self, Backend, Conn, Identity};
use crate::error::{Refusal, Refused};
use crate::ring::{Inbound, Outbound, RingMemory, Sending, Word};
use crate::stats::{Counters, PeerCounters, add, bump};

/// How long a link waits before retrying delivery to a full host queue. The host is
/// behind; checking more often would only burn the CPU it needs.
const DELIVERY_RETRY_DELAY: Duration = Duration::from_micros(50);
/// Control-socket bytes read per wake-up: doorbells carry no data, any count means "look".
const DOORBELL_READ_BYTES: usize = 64;

/// An eventfd that wakes a sleeping thread.
#[derive(Debug)]
pub(crate) struct Waker(OwnedFd);

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self(rustix::event::eventfd(
            0,
            EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC,
        )?))
    }

    pub(crate) fn wake(&self) {
        // Only fails when the counter would overflow, and then a wake-up is pending anyway.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.0, &mut buf);
    }

    /// Sleep until woken or `timeout` (forever when `None`).
    pub(crate) fn wait(&self, timeout: Option<Duration>) {
        let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
        let _ = poll(&mut fds, timeout);
        self.drain();
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.0
    }
}

/// `poll(2)` with an optional timeout; an interrupted call counts as a wake-up.
pub(crate) fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let timeout = timeout.map(|d| {
        Timespec::try_from(d).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        })
    });
    match rustix::event::poll(fds, timeout.as_ref()) {
        Ok(n) => Ok(n),
        Err(rustix::io::Errno::INTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The state `send` and the link thread share.
#[derive(Debug)]
struct SendSide<M> {
    conn: Option<Arc<Conn<M>>>,
    out: Outbound,
    /// A message partly written, waiting for credits; it goes before the queue.
    current: Option<Sending>,
    queue: VecDeque<Bytes>,
    /// A fault the sending path met; the link thread resets the connection for it.
    fault: Option<Refused>,
}

/// Everything about one peer that outlives its connections.
#[derive(Debug)]
pub(crate) struct PeerLink<M> {
    pub(crate) peer: NodeId,
    side: Mutex<SendSide<M>>,
    /// A verified inbound connection the accept loop handed over.
    handoff: Mutex<Option<Conn<M>>>,
    handoff_pending: AtomicBool,
    pub(crate) waker: Waker,
    pub(crate) counters: PeerCounters,
    queue_messages_max: usize,
}

/// How a served connection ended.
enum Ended {
    Shutdown,
    Closed,
    Replaced,
}

impl<M: RingMemory> PeerLink<M> {
    pub(crate) fn new(peer: NodeId, out: Outbound, queue_messages_max: usize) -> io::Result<Self> {
        Ok(Self {
            peer,
            side: Mutex::new(SendSide {
                conn: None,
                out,
                current: None,
                queue: VecDeque::new(),
                fault: None,
            }),
            handoff: Mutex::new(None),
            handoff_pending: AtomicBool::new(false),
            waker: Waker::new()?,
            counters: PeerCounters::default(),
            queue_messages_max,
        })
    }

    fn side(&self) -> MutexGuard<'_, SendSide<M>> {
        // A panic while holding the lock leaves consistent state (every field is replaced
        // whole), so a poisoned lock is still usable.
        self.side.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn queued(&self) -> usize {
        self.side().queue.len()
    }

    /// Queue or write one message; never blocks on the peer.
    pub(crate) fn send(&self, message: Bytes) {
        let mut side = self.side();
        if side.queue.is_empty()
            && side.current.is_none()
            && side.fault.is_none()
            && let Some(conn) = side.conn.clone()
        {
            let mut sending = Sending::new(message);
            let written = side
                .out
                .write(&conn.mem, &mut sending)
                .and_then(|done| side.out.publish(&conn.mem).map(|_| done));
            match written {
                Ok(true) => bump(&self.counters.messages_sent),
                Ok(false) => {
                    bump(&self.counters.credit_waits);
                    side.current = Some(sending);
                }
                Err(fault) => side.fault = Some(fault),
            }
            let hand_over = side.current.is_some() || side.fault.is_some();
            drop(side);
            ring_if_sleeping(&conn, &self.counters);
            if hand_over {
                self.waker.wake();
            }
            return;
        }
        if side.queue.len() >= self.queue_messages_max {
            // The oldest goes: a peer that catches up wants the freshest state.
            side.queue.pop_front();
            bump(&self.counters.dropped);
        }
        side.queue.push_back(message);
        drop(side);
        self.waker.wake();
    }

    /// Hand over a verified inbound connection; the link thread switches to it.
    pub(crate) fn hand_over(&self, conn: Conn<M>) {
        let mut slot = self.handoff.lock().unwrap_or_else(|e| e.into_inner());
        // A connection still waiting from the same peer is older: drop it.
        *slot = Some(conn);
        self.handoff_pending.store(true, Ordering::Release);
        drop(slot);
        self.waker.wake();
    }

    fn take_handoff(&self) -> Option<Conn<M>> {
        if !self.handoff_pending.swap(false, Ordering::Acquire) {
            return None;
        }
        self.handoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Write what waits, as far as credits allow. Returns whether anything moved.
    fn drain(&self, conn: &Conn<M>) -> Result<bool, Refused> {
        let mut side = self.side();
        if let Some(fault) = side.fault.take() {
            return Err(fault);
        }
        let mut moved = false;
        loop {
            let mut sending = match side.current.take() {
                Some(sending) => sending,
                None => match side.queue.pop_front() {
                    Some(message) => Sending::new(message),
                    None => break,
                },
            };
            let before = sending.fragments_done;
            let done = side.out.write(&conn.mem, &mut sending)?;
            moved |= sending.fragments_done > before;
            if done {
                bump(&self.counters.messages_sent);
            } else {
                if before == 0 {
                    bump(&self.counters.credit_waits);
                }
                side.current = Some(sending);
                break;
            }
        }
        let published = side.out.publish(&conn.mem)?;
        drop(side);
        if published {
            ring_if_sleeping(conn, &self.counters);
        }
        Ok(moved)
    }

    /// Whether the sending side has work it could do now.
    fn can_send(&self, conn: &Conn<M>) -> bool {
        let side = self.side();
        if side.fault.is_some() {
            return true;
        }
        let waiting = side.current.is_some() || !side.queue.is_empty();
        waiting && side.out.credits(&conn.mem).map_or(true, |c| c > 0)
    }

    fn install(&self, conn: &Arc<Conn<M>>, out: Outbound) {
        let mut side = self.side();
        side.conn = Some(conn.clone());
        side.out = out;
        side.fault = None;
        self.counters.connected.store(true, Ordering::Relaxed);
    }

    fn uninstall(&self, out: Outbound) {
        let mut side = self.side();
        side.conn = None;
        side.out = out;
        side.fault = None;
        if let Some(sending) = side.current.take() {
            if sending.fragments_done == 0 {
                side.queue.push_front(sending.message);
            } else {
                // Half of it went into a ring that is gone; the rest alone is useless.
                bump(&self.counters.dropped);
            }
        }
        self.counters.connected.store(false, Ordering::Relaxed);
    }

    /// Drop what waits (at shutdown), counting it.
    pub(crate) fn discard(&self) {
        let mut side = self.side();
        let n = side.queue.len() + usize::from(side.current.is_some());
        side.queue.clear();
        side.current = None;
        side.conn = None;
        add(&self.counters.dropped, n as u64);
    }
}

/// After a publish: if the peer asked for a doorbell, ring it.
fn ring_if_sleeping<M: RingMemory>(conn: &Conn<M>, counters: &PeerCounters) {
    // Pairs with the fence a sleeper puts between raising its flag and its last look at
    // the counters: either it sees what was just published or this sees its flag.
    fence(Ordering::SeqCst);
    let flag = conn.mem.local().word(Word::Sleeping);
    if flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::AcqRel) != 0 {
        // A full socket buffer already holds doorbells; a dead peer is noticed by the
        // link thread. Neither needs handling here.
        let _ = rustix::net::send(
            &conn.control,
            &[1],
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        );
        bump(&counters.doorbells);
    }
}

/// Log and count a refused or reset connection.
pub(crate) fn refuse(counters: &Counters, peer: Option<NodeId>, r: &Refused) {
    counters.rejections.count(r.reason);
    match peer {
        Some(peer) => {
            warn!(%peer, reason = %r.reason, detail = %r.detail, "closing ring connection")
        }
        None => warn!(reason = %r.reason, detail = %r.detail, "closing ring connection"),
    }
}

/// What a link thread needs besides its link.
pub(crate) struct LinkTask<B: Backend> {
    pub(crate) backend: Arc<B>,
    pub(crate) me: Identity,
    pub(crate) addr: B::Addr,
    pub(crate) link: Arc<PeerLink<B::Memory>>,
    pub(crate) inbound: Sender<(NodeId, Bytes)>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) frame_bytes_max: usize,
    pub(crate) spin_polls_max: u32,
    pub(crate) idle_wait_max: Duration,
    pub(crate) reconnect_delay_min: Duration,
    pub(crate) reconnect_delay_max: Duration,
    pub(crate) rng: Prng,
}

impl<B: Backend> LinkTask<B> {
    pub(crate) fn run(mut self) {
        if dials(self.me.id, self.link.peer) {
            self.run_dialing();
        } else {
            self.run_accepting();
        }
        self.link.discard();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn run_dialing(&mut self) {
        let mut delay = self.reconnect_delay_min;
        let peer = self.link.peer;
        while !self.stopping() {
            match self.backend.connect(&self.addr, self.me.handshake_timeout) {
                Ok(stream) => match backend::dial(&*self.backend, &self.me, stream, peer) {
                    Ok(conn) => {
                        delay = self.reconnect_delay_min;
                        if let Ended::Shutdown = self.serve(conn) {
                            return;
                        }
                    }
                    Err(r) => refuse(&self.counters, Some(peer), &r),
                },
                Err(e) => {
                    bump(&self.counters.dial_failures);
                    debug!(%peer, addr = ?self.addr, error = %e, "dial failed");
                }
            }
            let wait = jittered(delay, &mut self.rng);
            delay = (delay * 2).min(self.reconnect_delay_max);
            self.link.waker.wait(Some(wait));
        }
    }

    fn run_accepting(&mut self) {
        while !self.stopping() {
            match self.link.take_handoff() {
                Some(conn) => {
                    if let Ended::Shutdown = self.serve(conn) {
                        return;
                    }
                }
                None => self.link.waker.wait(None),
            }
        }
    }

    /// Run one established connection until it fails, is replaced, or the transport
    /// stops.
    fn serve(&mut self, conn: Conn<B::Memory>) -> Ended {
        let peer = self.link.peer;
        let conn = Arc::new(conn);
        bump(&self.counters.connections);
        self.link.install(&conn, Outbound::new(self.me.layout));
        info!(%peer, "ring connected");
        let mut inbound = Inbound::new(self.me.layout, self.frame_bytes_max);
        let ended = match self.pump(&conn, &mut inbound) {
            Ok(ended) => ended,
            Err(r) => {
                refuse(&self.counters, Some(peer), &r);
                Ended::Closed
            }
        };
        self.link.uninstall(Outbound::new(self.me.layout));
        bump(&self.link.counters.disconnects);
        // The Arc held by `send` is gone with `uninstall`; this drop unmaps the ring and
        // closes the control socket, which tells the peer.
        drop(conn);
        ended
    }

    /// The polling loop of one connection.
    fn pump(&mut self, conn: &Conn<B::Memory>, inbound: &mut Inbound) -> Result<Ended, Refused> {
        let peer = self.link.peer;
        let mut idle = 0u32;
        loop {
            if self.stopping() {
                return Ok(Ended::Shutdown);
            }
            if self.link.handoff_pending.load(Ordering::Acquire) {
                info!(%peer, "peer connected again; replacing its old ring");
                return Ok(Ended::Replaced);
            }
            let mut moved = false;
            if inbound.ready(&conn.mem) {
                let slots = inbound.poll(&conn.mem, |message| self.deliver(message))?;
                add(&self.link.counters.slots_received, slots);
                // Credits went back: a sender waiting for them may want a doorbell.
                ring_if_sleeping(conn, &self.link.counters);
                moved = true;
            }
            moved |= self.link.drain(conn)?;
            if moved {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle < self.spin_polls_max {
                std::hint::spin_loop();
                continue;
            }
            if let Some(ended) = self.sleep(conn, inbound)? {
                return Ok(ended);
            }
            idle = 0;
        }
    }

    /// Ask the peer for a doorbell and sleep until one rings, a local event, or
    /// `idle_wait_max`. `Some` when the connection ended meanwhile.
    fn sleep(&self, conn: &Conn<B::Memory>, inbound: &Inbound) -> Result<Option<Ended>, Refused> {
        let write_failed = |e: io::Error| Refused::new(Refusal::WriteFailed, e.to_string());
        conn.mem.publish(Word::Sleeping, 1).map_err(write_failed)?;
        fence(Ordering::SeqCst);
        let work = inbound.ready(&conn.mem)
            || self.link.can_send(conn)
            || self.stopping()
            || self.link.handoff_pending.load(Ordering::Acquire);
        if !work {
            let mut fds = [
                PollFd::new(&conn.control, PollFlags::IN),
                PollFd::new(self.link.waker.fd(), PollFlags::IN),
            ];
            let _ = poll(&mut fds, Some(self.idle_wait_max));
            let control = fds[0].revents();
            self.link.waker.drain();
            if !control.is_empty() && !self.read_doorbells(conn) {
                return Ok(Some(Ended::Closed));
            }
        }
        conn.mem.publish(Word::Sleeping, 0).map_err(write_failed)?;
        Ok(None)
    }

    /// Consume doorbell bytes; false when the peer closed the connection or died.
    fn read_doorbells(&self, conn: &Conn<B::Memory>) -> bool {
        let mut buf = [0u8; DOORBELL_READ_BYTES];
        loop {
            match rustix::io::read(conn.control.as_fd(), &mut buf) {
                Ok(0) => {
                    info!(peer = %self.link.peer, "peer closed the ring connection");
                    return false;
                }
                Ok(_) => continue,
                Err(rustix::io::Errno::AGAIN) => return true,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    info!(peer = %self.link.peer, error = %e, "ring connection lost");
                    return false;
                }
            }
        }
    }

    /// Hand a message to the host, waiting while its queue is full (the ring then fills
    /// and the peer's sends queue and drop), unless the transport stops.
    fn deliver(&self, message: Bytes) {
        bump(&self.link.counters.messages_received);
        let mut item = (self.link.peer, message);
        loop {
            match self.inbound.try_send(item) {
                Ok(()) => return,
                Err(TrySendError::Full(back)) if !self.stopping() => {
                    item = back;
                    std::thread::sleep(DELIVERY_RETRY_DELAY);
                }
                // A host that closed its receiver, or a transport stopping, wants nothing.
                Err(_) => return,
            }
        }
    }
}

/// A delay drawn from `[delay / 2, delay]`, so that peers that lost each other at the same
/// moment do not redial in lockstep.
fn jittered(delay: Duration, rng: &mut Prng) -> Duration {
    let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rng.range(micros / 2, micros.saturating_add(1)))
}

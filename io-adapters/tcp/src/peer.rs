//! One peer link: its bounded outbound queue and the task that keeps a connection to the
//! peer, writing queued messages in batches and handing received ones to the host.
//!
//! A link whose peer has a higher id dials it, redialing with jittered exponential backoff.
//! A link whose peer has a lower id waits for the accept loop to hand it a verified
//! connection; a newer connection from the same peer replaces the current one (the peer
//! restarted, or its old socket went half-open).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::watch;
use tokio::time::{sleep, timeout};
use tracing::{debug, info, warn};

use rsm_core::{Codec, FRAME_HEADER_BYTES, NodeId, Prng};

use crate::error::{Refusal, Refused};
use crate::handshake::{BoxStream, DialError, Handshaker};
use crate::stats::{Counters, PeerCounters, add, bump};
use crate::wire::{ReadError, frame_header, push_frame, read_frame};

/// Read buffering per connection: many small frames cost one system call.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// The sending side of one link, shared with [`TcpTransport::send`](crate::TcpTransport).
#[derive(Debug)]
pub(crate) struct PeerLink {
    pub(crate) queue: Sender<Bytes>,
    pub(crate) counters: PeerCounters,
}

/// The bounds a link task keeps.
#[derive(Clone, Debug)]
pub(crate) struct LinkLimits {
    pub(crate) codec: Codec,
    pub(crate) batch_bytes_max: usize,
    pub(crate) reconnect_delay_min: Duration,
    pub(crate) reconnect_delay_max: Duration,
    pub(crate) handshake_timeout: Duration,
}

/// How a served connection ended.
enum Ended {
    Shutdown,
    Closed,
    Replaced(BoxStream),
}

/// The task that owns one peer's connection.
pub(crate) struct LinkTask {
    pub(crate) peer: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) link: Arc<PeerLink>,
    pub(crate) queue: Receiver<Bytes>,
    /// Verified inbound connections from the peer; `None` when this node dials it.
    pub(crate) handoff: Option<Receiver<BoxStream>>,
    pub(crate) inbound: Sender<(NodeId, Bytes)>,
    pub(crate) handshaker: Arc<Handshaker>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) limits: LinkLimits,
    pub(crate) rng: Prng,
    /// A message taken from the queue that did not fit the last batch; it leads the next.
    pub(crate) pending: Option<Bytes>,
    /// The write buffer, reused across batches and connections.
    pub(crate) batch: Vec<u8>,
}

/// Resolves once the transport is told to stop (or is dropped).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Log and count a refused connection.
pub(crate) fn refuse(counters: &Counters, peer: Option<NodeId>, addr: SocketAddr, r: &Refused) {
    counters.rejections.count(r.reason);
    match peer {
        Some(peer) => {
            warn!(%peer, %addr, reason = %r.reason, detail = %r.detail, "closing connection")
        }
        None => warn!(%addr, reason = %r.reason, detail = %r.detail, "closing connection"),
    }
}

impl LinkTask {
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        match self.handoff.take() {
            Some(handoff) => self.run_accepting(&handoff, &mut shutdown).await,
            None => self.run_dialing(&mut shutdown).await,
        }
    }

    async fn run_dialing(&mut self, shutdown: &mut watch::Receiver<bool>) {
        let mut delay = self.limits.reconnect_delay_min;
        loop {
            let attempt = timeout(
                self.limits.handshake_timeout,
                self.handshaker.dial(self.peer, self.addr),
            );
            let dialed = tokio::select! {
                _ = stopped(shutdown) => return,
                dialed = attempt => dialed,
            };
            match dialed {
                Ok(Ok(stream)) => {
                    delay = self.limits.reconnect_delay_min;
                    if let Ended::Shutdown = self.serve(stream, None, shutdown).await {
                        return;
                    }
                }
                Ok(Err(DialError::Connect(e))) => {
                    bump(&self.counters.dial_failures);
                    debug!(peer = %self.peer, addr = %self.addr, error = %e, "dial failed");
                }
                Ok(Err(DialError::Refused(r))) => {
                    refuse(&self.counters, Some(self.peer), self.addr, &r);
                }
                Err(_) => {
                    let r = Refused::new(Refusal::HandshakeTimeout, "dialed peer did not answer");
                    refuse(&self.counters, Some(self.peer), self.addr, &r);
                }
            }
            let wait = jittered(delay, &mut self.rng);
            delay = (delay * 2).min(self.limits.reconnect_delay_max);
            tokio::select! {
                _ = stopped(shutdown) => return,
                _ = sleep(wait) => {}
            }
        }
    }

    async fn run_accepting(
        &mut self,
        handoff: &Receiver<BoxStream>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let mut next = None;
        loop {
            let stream = match next.take() {
                Some(stream) => stream,
                None => tokio::select! {
                    _ = stopped(shutdown) => return,
                    stream = handoff.recv() => match stream {
                        Ok(stream) => stream,
                        Err(_) => return,
                    },
                },
            };
            match self.serve(stream, Some(handoff), shutdown).await {
                Ended::Shutdown => return,
                Ended::Closed => {}
                Ended::Replaced(stream) => {
                    info!(peer = %self.peer, "peer connected again; replacing its old connection");
                    next = Some(stream);
                }
            }
        }
    }

    /// Run one verified connection until it fails, is replaced, or the transport stops.
    async fn serve(
        &mut self,
        stream: BoxStream,
        handoff: Option<&Receiver<BoxStream>>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended {
        bump(&self.counters.connections);
        self.link.counters.connected.store(true, Ordering::Relaxed);
        info!(peer = %self.peer, "connected");
        let (reader, writer) = tokio::io::split(stream);
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
        let peer = self.peer;
        let reading = read_loop(
            &mut reader,
            peer,
            &self.limits.codec,
            &self.inbound,
            &self.link.counters,
        );
        let writing = write_loop(
            writer,
            &self.queue,
            &mut self.pending,
            &mut self.batch,
            self.limits.batch_bytes_max,
            &self.link.counters,
            &self.counters,
        );
        let ended = tokio::select! {
            _ = stopped(shutdown) => Ended::Shutdown,
            stream = next_handoff(handoff) => Ended::Replaced(stream),
            read = reading => {
                match read {
                    Ok(()) => info!(%peer, "peer closed the connection"),
                    Err(ReadError::Io(e)) => info!(%peer, error = %e, "connection lost"),
                    Err(ReadError::Refused(r)) => refuse(&self.counters, Some(peer), self.addr, &r),
                }
                Ended::Closed
            }
            write = writing => {
                if let Err(e) = write {
                    info!(%peer, error = %e, "connection lost while writing");
                }
                Ended::Closed
            }
        };
        self.link.counters.connected.store(false, Ordering::Relaxed);
        if self.batch.capacity() > 2 * self.limits.batch_bytes_max {
            // One oversized burst must not pin its buffer for the life of the link.
            self.batch = Vec::new();
        }
        ended
    }
}

/// The next connection handed over for this peer; never resolves for a dialing link.
async fn next_handoff(handoff: Option<&Receiver<BoxStream>>) -> BoxStream {
    if let Some(handoff) = handoff
        && let Ok(stream) = handoff.recv().await
    {
        return stream;
    }
    std::future::pending().await
}

/// Hand every received frame to the host until the stream ends or misbehaves.
async fn read_loop<R: AsyncRead + Unpin>(
    reader: &mut R,
    peer: NodeId,
    codec: &Codec,
    inbound: &Sender<(NodeId, Bytes)>,
    link: &PeerCounters,
) -> Result<(), ReadError> {
    while let Some(body) = read_frame(reader, codec).await? {
        bump(&link.frames_received);
        // Waiting here when the host is slow pushes back through TCP to the peer, whose own
        // bounded queue then drops. A host that closed its receiver wants nothing more.
        let _ = inbound.send((peer, body)).await;
    }
    Ok(())
}

/// Write queued messages, as many frames per write as `batch_bytes_max` allows.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    queue: &Receiver<Bytes>,
    pending: &mut Option<Bytes>,
    batch: &mut Vec<u8>,
    batch_bytes_max: usize,
    link: &PeerCounters,
    counters: &Counters,
) -> std::io::Result<()> {
    loop {
        let first = match pending.take() {
            Some(message) => message,
            None => match queue.recv().await {
                Ok(message) => message,
                Err(_) => return Ok(()),
            },
        };
        if FRAME_HEADER_BYTES + first.len() > batch_bytes_max {
            // Too big to gather: write it straight from its buffer.
            writer.write_all(&frame_header(first.len())).await?;
            writer.write_all(&first).await?;
            writer.flush().await?;
            bump(&link.frames_sent);
            bump(&counters.batches_sent);
            continue;
        }
        batch.clear();
        push_frame(batch, &first);
        let mut frames = 1;
        while let Ok(next) = queue.try_recv() {
            if batch.len() + FRAME_HEADER_BYTES + next.len() > batch_bytes_max {
                *pending = Some(next);
                break;
            }
            push_frame(batch, &next);
            frames += 1;
        }
        writer.write_all(batch).await?;
        writer.flush().await?;
        add(&link.frames_sent, frames);
        bump(&counters.batches_sent);
    }
}

/// A delay drawn from `[delay / 2, delay]`, so that peers that lost each other at the same
/// moment do not redial in lockstep.
fn jittered(delay: Duration, rng: &mut Prng) -> Duration {
    let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rng.range(micros / 2, micros.saturating_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_full_delay() {
        let mut rng = Prng::new(5);
        let delay = Duration::from_millis(80);
        for _ in 0..1000 {
            let d = jittered(delay, &mut rng);
            assert!(d >= delay / 2 && d <= delay, "{d:?}");
        }
        assert_eq!(jittered(Duration::ZERO, &mut rng), Duration::ZERO);
    }

    #[test]
    fn batches_respect_the_byte_bound_and_keep_the_overflow() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        let (tx, rx) = async_channel::bounded(16);
        for body in [&b"aaaa"[..], b"bbbb", b"cccc"] {
            tx.try_send(Bytes::from_static(body)).expect("room");
        }
        let link = PeerCounters::default();
        let counters = Counters::default();
        let mut pending = None;
        let mut batch = Vec::new();
        let mut out = Vec::new();
        // Room for two 9-byte frames per batch; the loop ends when the queue closes.
        drop(tx);
        rt.block_on(write_loop(
            &mut out,
            &rx,
            &mut pending,
            &mut batch,
            18,
            &link,
            &counters,
        ))
        .expect("writing to memory");
        assert_eq!(out.len(), 27);
        assert_eq!(link.frames_sent.load(Ordering::Relaxed), 3);
        assert_eq!(counters.batches_sent.load(Ordering::Relaxed), 2);
        assert!(pending.is_none());
    }
}

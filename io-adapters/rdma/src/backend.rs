//! What a backend provides, and the connection handshake every backend runs over its
//! control socket.
//!
//! A connection starts on an ordinary stream socket (a Unix socket for shared memory, TCP
//! for verbs): the core [`Hello`] each way, then the backend's memory exchange
//! ([`Backend::offer`] on the dialer, [`Backend::take`] on the acceptor), then one
//! [`READY`] byte from the acceptor. The socket stays open for the life of the ring: its
//! bytes after that are doorbells, and its end is how each side learns that the other
//! process died.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rsm_core::{Codec, CodecError, FRAME_HEADER_BYTES, HELLO_BYTES_MAX, Hello, NodeId};
use rustix::net::sockopt::{Timeout, set_socket_timeout};

use crate::error::{Refusal, Refused};
use crate::ring::{Layout, RingMemory};

/// The byte an acceptor sends once the ring memory is mapped: the dialer may start.
pub(crate) const READY: u8 = 0x52;
/// The largest memory-exchange frame a backend reads during the handshake.
pub(crate) const SETUP_BYTES_MAX: usize = 256;

/// A way to give two nodes ring memory they can write into one-sidedly. The ring protocol,
/// the handshake, flow control and reconnection are shared; a backend only connects
/// sockets and sets up memory.
pub trait Backend: Send + Sync + 'static {
    /// Where a node listens (a socket path, a TCP address).
    type Addr: Clone + fmt::Debug + Send + Sync + 'static;
    /// The listening socket.
    type Listener: AsFd + Send + Sync + 'static;
    /// A control connection.
    type Stream: Read + Write + AsFd + Into<OwnedFd> + Send + 'static;
    /// The ring memory of one established connection.
    type Memory: RingMemory + 'static;

    /// Listen at `addr`, without blocking accepts; returns the address really bound.
    fn listen(&self, addr: &Self::Addr) -> io::Result<(Self::Listener, Self::Addr)>;
    /// Accept one pending connection (`WouldBlock` when there is none).
    fn accept(&self, listener: &Self::Listener) -> io::Result<Self::Stream>;
    /// Open a control connection to `addr`, giving up after `timeout`.
    fn connect(&self, addr: &Self::Addr, timeout: Duration) -> io::Result<Self::Stream>;
    /// Dialer side, after the hellos: create the memory for `layout` and hand the peer
    /// what it needs to map or address it.
    fn offer(
        &self,
        stream: &mut Self::Stream,
        layout: Layout,
        deadline: Instant,
    ) -> Result<Self::Memory, Refused>;
    /// Acceptor side, after the hellos: take the memory the dialer offers, checking that
    /// it has `layout`.
    fn take(
        &self,
        stream: &mut Self::Stream,
        layout: Layout,
        deadline: Instant,
    ) -> Result<Self::Memory, Refused>;
    /// Release what `listen` left behind (a socket file) once the listener is closed.
    fn unlisten(&self, _addr: &Self::Addr) {}
}

/// An established connection: its ring memory and its control socket.
#[derive(Debug)]
pub(crate) struct Conn<M> {
    pub(crate) mem: M,
    pub(crate) control: OwnedFd,
}

/// What the handshake knows about this node.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) id: NodeId,
    pub(crate) cluster_id: u64,
    pub(crate) layout: Layout,
    pub(crate) handshake_timeout: Duration,
}

/// Dial side of the handshake on a connected `stream`.
pub(crate) fn dial<B: Backend>(
    backend: &B,
    me: &Identity,
    mut stream: B::Stream,
    peer: NodeId,
) -> Result<Conn<B::Memory>, Refused> {
    let deadline = Instant::now() + me.handshake_timeout;
    send_hello(&mut stream, me, deadline)?;
    read_hello(&mut stream, deadline)?.check_answer(me.cluster_id, peer)?;
    let mem = backend.offer(&mut stream, me.layout, deadline)?;
    let mut ready = [0u8];
    read_exact(&mut stream, &mut ready, deadline)
        .map_err(|e| incomplete(format!("waiting for the peer to map the ring: {e}")))?;
    if ready[0] != READY {
        return Err(Refused::new(
            Refusal::Malformed,
            format!("expected the ready byte, got {:#04x}", ready[0]),
        ));
    }
    established(stream, mem)
}

/// Accept side of the handshake: the peer it comes from and the connection.
pub(crate) fn accept<B: Backend>(
    backend: &B,
    me: &Identity,
    mut stream: B::Stream,
    is_peer: impl FnOnce(NodeId) -> bool,
) -> Result<(NodeId, Conn<B::Memory>), Refused> {
    let deadline = Instant::now() + me.handshake_timeout;
    let hello = read_hello(&mut stream, deadline)?;
    let peer = hello.admit(me.id, me.cluster_id, is_peer)?;
    send_hello(&mut stream, me, deadline)?;
    let mem = backend.take(&mut stream, me.layout, deadline)?;
    write_all(&mut stream, &[READY], deadline)
        .map_err(|e| incomplete(format!("sending the ready byte: {e}")))?;
    Ok((peer, established(stream, mem)?))
}

/// From here on the socket carries doorbells, which never wait.
fn established<S: Into<OwnedFd>, M>(stream: S, mem: M) -> Result<Conn<M>, Refused> {
    let control: OwnedFd = stream.into();
    rustix::io::ioctl_fionbio(&control, true)
        .map_err(|e| incomplete(format!("making the control socket non-blocking: {e}")))?;
    Ok(Conn { mem, control })
}

pub(crate) fn incomplete(detail: String) -> Refused {
    Refused::new(Refusal::HandshakeIncomplete, detail)
}

/// Bound the next blocking operation on `stream` by what is left until `deadline`.
pub(crate) fn arm<S: AsFd>(stream: &S, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    set_socket_timeout(stream, Timeout::Recv, Some(left))?;
    set_socket_timeout(stream, Timeout::Send, Some(left))?;
    Ok(())
}

/// Write all of `bytes` before `deadline`.
pub(crate) fn write_all<S: Write + AsFd>(
    stream: &mut S,
    bytes: &[u8],
    deadline: Instant,
) -> io::Result<()> {
    arm(stream, deadline)?;
    stream.write_all(bytes)
}

/// Fill `buf` before `deadline`.
pub(crate) fn read_exact<S: Read + AsFd>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Instant,
) -> io::Result<()> {
    arm(stream, deadline)?;
    stream.read_exact(buf)
}

/// Read one core-codec frame of at most `max` bytes before `deadline`; `prefix` holds
/// bytes of it already read (by a `recvmsg` that carried a descriptor).
pub(crate) fn read_frame<S: Read + AsFd>(
    stream: &mut S,
    max: usize,
    prefix: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, Refused> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let from_prefix = prefix.len().min(FRAME_HEADER_BYTES);
    header[..from_prefix].copy_from_slice(&prefix[..from_prefix]);
    read_exact(stream, &mut header[from_prefix..], deadline)
        .map_err(|e| timed_out_or_incomplete(e, "reading a handshake frame"))?;
    let len = Codec::new(max).peek_len(&header).map_err(|e| {
        let reason = match e {
            CodecError::TooLarge { .. } => Refusal::Oversized,
            _ => Refusal::Malformed,
        };
        Refused::new(reason, format!("handshake frame: {e}"))
    })?;
    let rest = &prefix[from_prefix..];
    if rest.len() > len {
        return Err(Refused::new(
            Refusal::Malformed,
            "bytes after a handshake frame",
        ));
    }
    let mut body = vec![0u8; len];
    body[..rest.len()].copy_from_slice(rest);
    read_exact(stream, &mut body[rest.len()..], deadline)
        .map_err(|e| timed_out_or_incomplete(e, "reading a handshake frame"))?;
    Ok(body)
}

pub(crate) fn timed_out_or_incomplete(e: io::Error, doing: &str) -> Refused {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Refused::new(
            Refusal::HandshakeTimeout,
            format!("{doing}: no answer in time"),
        ),
        _ => incomplete(format!("{doing}: {e}")),
    }
}

fn send_hello<S: Write + AsFd>(
    stream: &mut S,
    me: &Identity,
    deadline: Instant,
) -> Result<(), Refused> {
    let frame = Hello::new(me.cluster_id, me.id)
        .encode_frame()
        .map_err(|e| incomplete(format!("encoding the hello: {e}")))?;
    write_all(stream, &frame, deadline).map_err(|e| incomplete(format!("sending the hello: {e}")))
}

fn read_hello<S: Read + AsFd>(stream: &mut S, deadline: Instant) -> Result<Hello, Refused> {
    let body = read_frame(stream, HELLO_BYTES_MAX, &[], deadline)?;
    Ok(Hello::parse(&body)?)
}

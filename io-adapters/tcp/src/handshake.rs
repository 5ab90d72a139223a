//! Turning a raw TCP connection into a verified link with a known peer.
//!
//! The lower node id dials. The dialer (after TLS, when configured) sends its [`Hello`]; the
//! acceptor admits it only if it names this cluster and a configured peer that is meant to
//! dial this node (and, with TLS, if the client certificate names that peer), then answers
//! with its own hello, which the dialer checks in turn. Anything else closes the connection
//! with a [`Refusal`]. Callers bound the whole exchange with the handshake timeout.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use rsm_core::NodeId;
pub(crate) use rsm_core::dials;

use crate::config::TcpConfig;
use crate::error::{Refusal, Refused, TcpError};
#[cfg(feature = "tls")]
use crate::tls::{self, TlsContext};
use crate::wire::read_hello;

/// A byte stream a verified link runs on: plain TCP or TLS over TCP.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub(crate) type BoxStream = Box<dyn Stream>;

/// Why a dial produced no link.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The TCP connection could not be opened (the peer is down or unreachable).
    Connect(std::io::Error),
    /// A connection opened but the handshake failed.
    Refused(Refused),
}

/// Runs both sides of the handshake for one node.
#[derive(Clone, Debug)]
pub(crate) struct Handshaker {
    id: NodeId,
    cluster_id: u64,
    peers: BTreeSet<NodeId>,
    tcp_keepalive: Option<Duration>,
    #[cfg(feature = "tls")]
    tls: Option<TlsContext>,
}

impl Handshaker {
    pub(crate) fn new(config: &TcpConfig) -> Result<Self, TcpError> {
        Ok(Self {
            id: config.id,
            cluster_id: config.cluster_id,
            peers: config.peers.keys().copied().collect(),
            tcp_keepalive: config.tcp_keepalive,
            #[cfg(feature = "tls")]
            tls: config.tls.as_ref().map(TlsContext::new).transpose()?,
        })
    }

    /// Socket options for a peer connection. Failing to set one costs latency or slower
    /// detection of a dead peer, not correctness, so it is logged and ignored.
    fn tune(&self, tcp: &TcpStream) {
        // Frames are batched here already; Nagle's delay would only add latency.
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(error = %e, "cannot disable Nagle's algorithm");
        }
        if let Some(idle) = self.tcp_keepalive {
            let keepalive = TcpKeepalive::new().with_time(idle);
            #[cfg(any(
                target_os = "linux",
                target_os = "android",
                target_os = "macos",
                target_os = "ios",
                target_os = "windows",
                target_os = "freebsd",
                target_os = "netbsd",
                target_os = "dragonfly",
                target_os = "illumos",
                target_os = "fuchsia",
            ))]
            let keepalive = keepalive.with_interval(idle);
            if let Err(e) = SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
                debug!(error = %e, "cannot enable TCP keepalive");
            }
        }
    }

    /// Verify an inbound connection: the peer it comes from, and the stream to use.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> Result<(NodeId, BoxStream), Refused> {
        self.tune(&tcp);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let stream = tls
                .acceptor
                .accept(tcp)
                .await
                .map_err(|e| Refused::new(Refusal::Tls, e.to_string()))?;
            let cluster_id = self.cluster_id;
            return self
                .admit_on(stream, |s, claimed| {
                    tls::check_client_identity(
                        s.get_ref().1.peer_certificates(),
                        cluster_id,
                        claimed,
                    )
                })
                .await;
        }
        self.admit_on(tcp, |_, _| Ok(())).await
    }

    /// Read the dialer's hello, check it and the identity proof, answer with ours.
    async fn admit_on<S: Stream + 'static>(
        &self,
        mut stream: S,
        prove: impl FnOnce(&S, NodeId) -> Result<(), Refused>,
    ) -> Result<(NodeId, BoxStream), Refused> {
        let hello = read_hello(&mut stream).await?;
        let peer = hello.admit(self.id, self.cluster_id, |p| self.peers.contains(&p))?;
        prove(&stream, peer)?;
        self.send_hello(&mut stream).await?;
        Ok((peer, Box::new(stream)))
    }

    /// Open a verified link to `peer` at `addr`.
    pub(crate) async fn dial(
        &self,
        peer: NodeId,
        addr: SocketAddr,
    ) -> Result<BoxStream, DialError> {
        let tcp = TcpStream::connect(addr).await.map_err(DialError::Connect)?;
        self.tune(&tcp);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let name = tls::server_name(self.cluster_id, peer).map_err(DialError::Refused)?;
            let stream = tls
                .connector
                .connect(name, tcp)
                .await
                .map_err(|e| DialError::Refused(Refused::new(Refusal::Tls, e.to_string())))?;
            return self
                .greet_on(stream, peer)
                .await
                .map_err(DialError::Refused);
        }
        self.greet_on(tcp, peer).await.map_err(DialError::Refused)
    }

    /// Send our hello and check that the answer comes from `peer` in our cluster.
    async fn greet_on<S: Stream + 'static>(
        &self,
        mut stream: S,
        peer: NodeId,
    ) -> Result<BoxStream, Refused> {
        self.send_hello(&mut stream).await?;
        read_hello(&mut stream)
            .await?
            .check_answer(self.cluster_id, peer)?;
        Ok(Box::new(stream))
    }

    async fn send_hello<S: Stream>(&self, stream: &mut S) -> Result<(), Refused> {
        let incomplete = |e: String| Refused::new(Refusal::HandshakeIncomplete, e);
        let frame = rsm_core::Hello::new(self.cluster_id, self.id)
            .encode_frame()
            .map_err(|e| incomplete(format!("encoding the hello: {e}")))?;
        stream
            .write_all(&frame)
            .await
            .map_err(|e| incomplete(format!("sending the hello: {e}")))?;
        stream
            .flush()
            .await
            .map_err(|e| incomplete(format!("sending the hello: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn peer_sockets_get_keepalive_and_no_delay() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a current-thread runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = TcpConfig::new(NodeId(1), 7, addr, BTreeMap::new());
        let handshaker = Handshaker::new(&config).expect("plain TCP needs no material");
        rt.block_on(async {
            let tcp = TcpStream::connect(addr).await.expect("connect");
            handshaker.tune(&tcp);
            assert!(tcp.nodelay().expect("read TCP_NODELAY"));
            assert!(SockRef::from(&tcp).keepalive().expect("read SO_KEEPALIVE"));
        });
    }
}

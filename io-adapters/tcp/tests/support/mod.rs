//! Shared by the TCP and TLS test files: clusters on 127.0.0.1, waiting with an upper
//! bound, and a raw socket that speaks (or breaks) the handshake by hand.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use async_channel::Receiver;
use bytes::Bytes;
use rsm_core::{Codec, NodeId};
use rsm_tcp::{HELLO_BYTES_MAX, Hello, Refusal, TcpConfig, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Turns a hang into a failure; never a statement about speed.
pub const LIMIT: Duration = Duration::from_secs(20);
pub const CLUSTER: u64 = 7;
/// Where a peer that is never dialed "listens": a node never dials a lower id, so the
/// address of a lower-id peer is never used.
pub const NEVER_DIALED: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1);

pub fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A node's configuration with quick redials, for tests.
pub fn config(id: u64, listen: SocketAddr, peers: &[(u64, SocketAddr)]) -> TcpConfig {
    let peers: BTreeMap<NodeId, SocketAddr> = peers
        .iter()
        .map(|(id, addr)| (NodeId(*id), *addr))
        .collect();
    let mut c = TcpConfig::new(NodeId(id), CLUSTER, listen, peers);
    c.reconnect_delay_min = Duration::from_millis(10);
    c.reconnect_delay_max = Duration::from_millis(200);
    c
}

/// One running node and what it received.
pub struct Node {
    pub transport: TcpTransport,
    pub inbox: Receiver<(NodeId, Bytes)>,
}

impl Node {
    pub async fn start(config: TcpConfig) -> Node {
        let (tx, inbox) = async_channel::bounded(4096);
        let transport = TcpTransport::start(config, tx)
            .await
            .expect("transport starts");
        Node { transport, inbox }
    }

    pub fn addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    pub fn send(&self, to: u64, body: &str) {
        rsm_core::Transport::send(&self.transport, NodeId(to), Bytes::from(body.to_owned()));
    }

    /// The next message, or a failure after [`LIMIT`].
    pub async fn recv(&self) -> (u64, String) {
        let (from, body) = within(self.inbox.recv()).await.expect("inbox open");
        (
            from.get(),
            String::from_utf8(body.to_vec()).expect("utf-8 test body"),
        )
    }

    /// The next message if one arrives within `wait` (for retry loops, not assertions).
    pub async fn recv_within(&self, wait: Duration) -> Option<(u64, String)> {
        let (from, body) = tokio::time::timeout(wait, self.inbox.recv())
            .await
            .ok()?
            .ok()?;
        Some((
            from.get(),
            String::from_utf8(body.to_vec()).expect("utf-8 test body"),
        ))
    }
}

/// Start a fully meshed cluster of nodes 1..=n, highest id first so that every node knows
/// the (ephemeral) address of each node it dials. `tweak` adjusts each configuration.
pub async fn cluster(n: u64, tweak: impl Fn(&mut TcpConfig)) -> Vec<Node> {
    let mut started: BTreeMap<u64, Node> = BTreeMap::new();
    for id in (1..=n).rev() {
        let peers: Vec<(u64, SocketAddr)> = (1..=n)
            .filter(|p| *p != id)
            .map(|p| (p, started.get(&p).map_or(NEVER_DIALED, Node::addr)))
            .collect();
        let mut c = config(id, localhost(), &peers);
        tweak(&mut c);
        started.insert(id, Node::start(c).await);
    }
    started.into_values().collect()
}

/// Await `f`, failing the test after [`LIMIT`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("did not finish within the test's upper bound")
}

/// Poll `ready` until it holds, failing the test after [`LIMIT`].
pub async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let wait = async {
        while !ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if tokio::time::timeout(LIMIT, wait).await.is_err() {
        panic!("never happened: {what}");
    }
}

/// Wait until `node` has refused exactly `count` connections for `reason` (a refusal is
/// counted as its socket closes, so the count may trail what a test observed).
pub async fn expect_rejected(node: &Node, reason: Refusal, count: u64) {
    let what = format!("{count} refusals for {reason}");
    eventually(&what, || node.transport.stats().rejected(reason) >= count).await;
    assert_eq!(node.transport.stats().rejected(reason), count, "{reason}");
}

/// Send `body` from `a` to `b` until `b` receives it: a link that may still be (re)connecting
/// loses messages, which is allowed. Returns once one copy arrived.
pub async fn deliver(a: &Node, b: &Node, body: &str) {
    let (from, to) = (a.transport.id().get(), b.transport.id().get());
    within(async {
        loop {
            a.send(to, body);
            while let Some((f, got)) = b.recv_within(Duration::from_millis(100)).await {
                if f == from && got == body {
                    return;
                }
            }
        }
    })
    .await;
}

/// Receive until `body` from `from` arrives, skipping anything else (such as retried copies
/// from [`deliver`]).
pub async fn expect_message(node: &Node, from: u64, body: &str) {
    within(async {
        loop {
            if node.recv().await == (from, body.to_owned()) {
                return;
            }
        }
    })
    .await;
}

/// Hand-written side of the protocol, for misbehaving peers.
pub struct RawPeer {
    pub stream: TcpStream,
}

impl RawPeer {
    pub async fn connect(addr: SocketAddr) -> RawPeer {
        let stream = within(TcpStream::connect(addr)).await.expect("connect");
        RawPeer { stream }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .expect("write to the node");
    }

    pub async fn send_hello(&mut self, hello: Hello) {
        let frame = hello.encode_frame().expect("a hello fits");
        self.write(&frame).await;
    }

    /// Send a hello as `id` of `cluster` and return the node's answer.
    pub async fn handshake(&mut self, cluster: u64, id: u64) -> Hello {
        self.send_hello(Hello::new(cluster, NodeId(id))).await;
        self.read_hello().await
    }

    /// Answer a node that dialed this socket: read its hello, reply as `id` of `cluster`.
    pub async fn answer_handshake(&mut self, cluster: u64, id: u64) -> Hello {
        let theirs = self.read_hello().await;
        self.send_hello(Hello::new(cluster, NodeId(id))).await;
        theirs
    }

    async fn read_hello(&mut self) -> Hello {
        let mut header = [0u8; rsm_core::FRAME_HEADER_BYTES];
        within(self.stream.read_exact(&mut header))
            .await
            .expect("hello header");
        let codec = Codec::new(HELLO_BYTES_MAX);
        let len = codec.peek_len(&header).expect("a valid hello header");
        let mut frame = header.to_vec();
        frame.resize(header.len() + len, 0);
        within(self.stream.read_exact(&mut frame[header.len()..]))
            .await
            .expect("hello body");
        codec.decode::<Hello>(&frame).expect("a valid hello").0
    }

    /// Wait until the node closes this connection and return how many bytes it sent
    /// before closing; fails the test if it never closes.
    pub async fn expect_closed(&mut self) -> usize {
        let mut sink = [0u8; 1024];
        let mut received = 0;
        within(async {
            loop {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received += n,
                }
            }
        })
        .await;
        received
    }
}

/// A frame with the core layout around raw bytes.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = vec![rsm_core::FRAME_VERSION];
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

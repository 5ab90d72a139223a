//! The TCP transport on 127.0.0.1: delivery, batching, bounded queues, reconnection, and
//! every kind of bad connection, each closed with its reason while the node keeps working.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use rsm_core::NodeId;
use rsm_tcp::{ConfigError, DropPolicy, Hello, Refusal, TcpConfig, TcpError, TcpTransport};
use support::{
    CLUSTER, NEVER_DIALED, Node, RawPeer, cluster, config, deliver, eventually, expect_message,
    expect_rejected, frame, localhost, within,
};
use tokio::net::TcpSocket;

fn peer_stats(node: &Node, peer: u64) -> rsm_tcp::PeerStats {
    node.transport.stats().peers[&NodeId(peer)].clone()
}

/// Node 3 with a real node 1 connected to it; the slot of node 2 is free for a raw socket
/// to take. `tweak` adjusts node 3's configuration.
async fn node_with_a_free_slot(tweak: impl Fn(&mut TcpConfig)) -> (Node, Node) {
    let mut c3 = config(3, localhost(), &[(1, NEVER_DIALED), (2, NEVER_DIALED)]);
    tweak(&mut c3);
    let n3 = Node::start(c3).await;
    let n1 = Node::start(config(1, localhost(), &[(3, n3.addr())])).await;
    deliver(&n1, &n3, "n1 is connected").await;
    (n1, n3)
}

#[tokio::test]
async fn two_nodes_exchange_messages_in_order_both_ways() {
    let nodes = cluster(2, |_| {}).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);
    for i in 0..100 {
        n1.send(2, &format!("ping {i}"));
    }
    for i in 0..100 {
        assert_eq!(n2.recv().await, (1, format!("ping {i}")));
    }
    for i in 0..100 {
        n2.send(1, &format!("pong {i}"));
    }
    for i in 0..100 {
        assert_eq!(n1.recv().await, (2, format!("pong {i}")));
    }
    let (s1, s2) = (n1.transport.stats(), n2.transport.stats());
    assert_eq!(s1.peers[&NodeId(2)].frames_sent, 100);
    assert_eq!(s1.peers[&NodeId(2)].frames_received, 100);
    assert_eq!(s2.frames_sent(), 100);
    assert_eq!(s2.frames_received(), 100);
    assert_eq!((s1.connections, s2.connections), (1, 1));
    assert_eq!(s1.dropped() + s2.dropped(), 0);
    assert!(s1.rejections.is_empty() && s2.rejections.is_empty());
}

#[tokio::test]
async fn three_nodes_keep_one_connection_per_pair() {
    let nodes = cluster(3, |_| {}).await;
    for a in &nodes {
        for b in &nodes {
            let (a_id, b_id) = (a.transport.id().get(), b.transport.id().get());
            if a_id != b_id {
                a.send(b_id, &format!("{a_id}->{b_id}"));
            }
        }
    }
    for node in &nodes {
        let me = node.transport.id().get();
        let mut got = BTreeSet::new();
        for _ in 0..2 {
            got.insert(node.recv().await);
        }
        let expected: BTreeSet<(u64, String)> = (1..=3)
            .filter(|p| *p != me)
            .map(|p| (p, format!("{p}->{me}")))
            .collect();
        assert_eq!(got, expected);
    }
    for node in &nodes {
        let stats = node.transport.stats();
        assert_eq!(stats.connections, 2, "one connection to each of two peers");
        assert!(stats.peers.values().all(|p| p.connected));
    }
}

#[tokio::test]
async fn messages_queued_before_the_peer_exists_leave_in_one_batch() {
    let n2 = Node::start(config(2, localhost(), &[(1, NEVER_DIALED)])).await;
    for i in 0..300 {
        n2.send(1, &format!("m{i}"));
    }
    assert_eq!(peer_stats(&n2, 1).queued, 300);
    let n1 = Node::start(config(1, localhost(), &[(2, n2.addr())])).await;
    for i in 0..300 {
        assert_eq!(n1.recv().await, (2, format!("m{i}")));
    }
    let stats = n2.transport.stats();
    assert_eq!(stats.peers[&NodeId(1)].frames_sent, 300);
    assert_eq!(stats.peers[&NodeId(1)].queued, 0);
    assert_eq!(stats.batches_sent, 1, "300 small frames fit one write");
}

#[tokio::test]
async fn full_queues_drop_by_policy_and_count_it() {
    for (policy, kept) in [
        (DropPolicy::DropOldest, 6..10),
        (DropPolicy::DropNewest, 0..4),
    ] {
        let mut c2 = config(2, localhost(), &[(1, NEVER_DIALED)]);
        c2.peer_queue_messages_max = 4;
        c2.drop_policy = policy;
        let n2 = Node::start(c2).await;
        for i in 0..10 {
            n2.send(1, &format!("m{i}"));
        }
        let stats = peer_stats(&n2, 1);
        assert_eq!((stats.queued, stats.dropped), (4, 6), "{policy:?}");
        let n1 = Node::start(config(1, localhost(), &[(2, n2.addr())])).await;
        for i in kept {
            assert_eq!(n1.recv().await, (2, format!("m{i}")), "{policy:?}");
        }
    }
}

#[tokio::test]
async fn messages_for_unknown_or_oversized_destinations_are_dropped_and_counted() {
    let mut c = config(1, localhost(), &[(2, NEVER_DIALED)]);
    c.frame_bytes_max = 16;
    let n1 = Node::start(c).await;
    n1.send(42, "nobody is node 42");
    n1.send(1, "not to myself");
    n1.send(2, "seventeen bytes!!");
    let stats = n1.transport.stats();
    assert_eq!(stats.dropped_unroutable, 2);
    assert_eq!(stats.dropped_oversized, 1);
    assert_eq!(stats.peers[&NodeId(2)].queued, 0);
    assert_eq!(stats.dropped(), 3);
}

#[tokio::test]
async fn reconnects_after_a_peer_restarts_on_the_same_port() {
    let mut nodes = cluster(2, |_| {}).await;
    deliver(&nodes[0], &nodes[1], "before").await;
    deliver(&nodes[1], &nodes[0], "before, back").await;

    // The acceptor restarts: the dialer notices and redials with backoff.
    let n2 = nodes.pop().expect("node 2");
    let n2_addr = n2.addr();
    n2.transport.shutdown().await;
    eventually("node 1 sees the link drop", || {
        !peer_stats(&nodes[0], 2).connected
    })
    .await;
    let n2 = Node::start(config(2, n2_addr, &[(1, NEVER_DIALED)])).await;
    deliver(&nodes[0], &n2, "after n2 restarted").await;
    deliver(&n2, &nodes[0], "after n2 restarted, back").await;
    assert!(nodes[0].transport.stats().connections >= 2);

    // The dialer restarts: its new connection takes over at the acceptor.
    let n1 = nodes.pop().expect("node 1");
    let n1_addr = n1.addr();
    n1.transport.shutdown().await;
    let n1 = Node::start(config(1, n1_addr, &[(2, n2_addr)])).await;
    deliver(&n1, &n2, "after n1 restarted").await;
    deliver(&n2, &n1, "after n1 restarted, back").await;
    assert!(n2.transport.stats().connections >= 2);
    assert!(n2.transport.stats().rejections.is_empty());
}

#[tokio::test]
async fn silent_and_half_finished_handshakes_time_out_without_disturbing_others() {
    let nodes = cluster(2, |c| c.handshake_timeout = Duration::from_millis(300)).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let mut silent = RawPeer::connect(n2.addr()).await;
    let mut half_header = RawPeer::connect(n2.addr()).await;
    half_header.write(&[rsm_core::FRAME_VERSION, 20]).await;
    let mut half_hello = RawPeer::connect(n2.addr()).await;
    half_hello.write(&frame(&[0u8; 20])[..10]).await;

    deliver(n1, n2, "while sockets hang").await;
    deliver(n2, n1, "while sockets hang, back").await;
    for raw in [&mut silent, &mut half_header, &mut half_hello] {
        assert_eq!(raw.expect_closed().await, 0, "closed without an answer");
    }
    eventually("three handshake timeouts counted", || {
        n2.transport.stats().rejected(Refusal::HandshakeTimeout) >= 3
    })
    .await;
    deliver(n1, n2, "after they were closed").await;
    assert!(peer_stats(n2, 1).connected);
}

#[tokio::test]
async fn pending_handshakes_are_bounded() {
    let mut c = config(2, localhost(), &[(1, NEVER_DIALED)]);
    c.handshakes_pending_max = 2;
    // Far beyond the test's upper bound: only the slot limit can close the third socket.
    c.handshake_timeout = Duration::from_secs(600);
    let n2 = Node::start(c).await;
    let _first = RawPeer::connect(n2.addr()).await;
    let _second = RawPeer::connect(n2.addr()).await;
    let mut third = RawPeer::connect(n2.addr()).await;
    assert_eq!(third.expect_closed().await, 0);
    expect_rejected(&n2, Refusal::TooManyHandshakes, 1).await;
}

#[tokio::test]
async fn garbage_on_the_socket_closes_only_that_connection() {
    let nodes = cluster(2, |_| {}).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);
    deliver(n1, n2, "before the garbage").await;

    let mut http = RawPeer::connect(n2.addr()).await;
    http.write(b"GET / HTTP/1.1\r\nHost: rsm\r\n\r\n").await;
    assert_eq!(http.expect_closed().await, 0);

    let mut stranger = RawPeer::connect(n2.addr()).await;
    stranger.write(&frame(b"\x00\xffnot a hello at all")).await;
    assert_eq!(stranger.expect_closed().await, 0);

    let mut bad_version_field = RawPeer::connect(n2.addr()).await;
    bad_version_field
        .write(&frame(b"RSMT\xff\xff\xff\xff\xff\xff"))
        .await;
    assert_eq!(bad_version_field.expect_closed().await, 0);

    expect_rejected(n2, Refusal::Malformed, 2).await;
    expect_rejected(n2, Refusal::BadMagic, 1).await;
    deliver(n1, n2, "after the garbage").await;
    deliver(n2, n1, "after the garbage, back").await;
    assert_eq!(
        n2.transport.stats().connections,
        1,
        "the real link never dropped"
    );
}

#[tokio::test]
async fn garbage_after_a_good_handshake_closes_that_peer_only() {
    let (n1, n3) = node_with_a_free_slot(|_| {}).await;
    let mut fake = RawPeer::connect(n3.addr()).await;
    let answer = fake.handshake(CLUSTER, 2).await;
    assert_eq!(answer, Hello::new(CLUSTER, NodeId(3)));
    fake.write(&frame(b"a real message")).await;
    expect_message(&n3, 2, "a real message").await;
    fake.write(&[9, 0, 0, 0, 0]).await;
    fake.expect_closed().await;
    expect_rejected(&n3, Refusal::Malformed, 1).await;
    deliver(&n1, &n3, "still here").await;
    assert!(peer_stats(&n3, 1).connected);
}

#[tokio::test]
async fn unknown_peers_wrong_clusters_and_wrong_dialers_are_refused() {
    let nodes = cluster(3, |_| {}).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);
    deliver(n1, n2, "before").await;
    let refused = [
        (Hello::new(CLUSTER, NodeId(99)), Refusal::UnknownPeer),
        (Hello::new(CLUSTER, NodeId(2)), Refusal::UnknownPeer),
        (Hello::new(CLUSTER + 1, NodeId(1)), Refusal::WrongCluster),
        // Node 2 dials node 3, never the other way round.
        (Hello::new(CLUSTER, NodeId(3)), Refusal::WrongDialer),
        (
            Hello {
                protocol_version: 99,
                ..Hello::new(CLUSTER, NodeId(1))
            },
            Refusal::BadProtocolVersion,
        ),
    ];
    for (hello, _) in refused {
        let mut raw = RawPeer::connect(n2.addr()).await;
        raw.send_hello(hello).await;
        assert_eq!(raw.expect_closed().await, 0, "{hello:?} got no answer");
    }
    for reason in [
        Refusal::WrongCluster,
        Refusal::WrongDialer,
        Refusal::BadProtocolVersion,
    ] {
        expect_rejected(n2, reason, 1).await;
    }
    expect_rejected(n2, Refusal::UnknownPeer, 2).await;
    deliver(n1, n2, "after").await;
    assert_eq!(n2.transport.stats().connections, 2, "links to 1 and 3 only");
}

#[tokio::test]
async fn a_dialed_address_answering_as_another_node_is_refused() {
    // Node 1 believes node 2 listens where node 3 does.
    let n3 = Node::start(config(3, localhost(), &[(1, NEVER_DIALED)])).await;
    let n1 = Node::start(config(1, localhost(), &[(2, n3.addr())])).await;
    eventually("node 1 refuses the impostor", || {
        n1.transport.stats().rejected(Refusal::UnexpectedPeer) >= 1
    })
    .await;
    assert!(!peer_stats(&n1, 2).connected);
}

#[tokio::test]
async fn a_dialed_node_of_another_cluster_is_refused() {
    let mut c2 = config(2, localhost(), &[(1, NEVER_DIALED)]);
    c2.cluster_id = CLUSTER + 1;
    let n2 = Node::start(c2).await;
    let n1 = Node::start(config(1, localhost(), &[(2, n2.addr())])).await;
    eventually("node 2 refuses the other cluster", || {
        n2.transport.stats().rejected(Refusal::WrongCluster) >= 1
    })
    .await;
    assert!(!peer_stats(&n1, 2).connected);
    assert_eq!(n2.transport.stats().connections, 0);
}

#[tokio::test]
async fn oversized_frames_are_refused_before_their_body_is_read() {
    let (n1, n3) = node_with_a_free_slot(|c| c.frame_bytes_max = 1024).await;

    // During the handshake the bound is the hello's own, far below frame_bytes_max.
    let mut big_hello = RawPeer::connect(n3.addr()).await;
    big_hello
        .write(&frame(&[0u8; 512])[..rsm_core::FRAME_HEADER_BYTES])
        .await;
    assert_eq!(big_hello.expect_closed().await, 0);

    let mut fake = RawPeer::connect(n3.addr()).await;
    fake.handshake(CLUSTER, 2).await;
    let at_the_limit = "x".repeat(1024);
    fake.write(&frame(at_the_limit.as_bytes())).await;
    expect_message(&n3, 2, &at_the_limit).await;
    // Only the header of a 1 MiB frame is ever sent: the node must not wait for its body.
    fake.write(&frame(&[0u8; 1025])[..rsm_core::FRAME_HEADER_BYTES])
        .await;
    fake.expect_closed().await;

    expect_rejected(&n3, Refusal::Oversized, 2).await;
    deliver(&n1, &n3, "still here").await;
}

#[tokio::test]
async fn a_slow_peer_fills_only_its_own_bounded_queue() {
    // Node 2 is a socket with a small receive buffer that completes the handshake and then
    // never reads; node 3 is a real node.
    let n3 = Node::start(config(3, localhost(), &[(1, NEVER_DIALED)])).await;
    let slow = TcpSocket::new_v4().expect("socket");
    slow.set_recv_buffer_size(4096)
        .expect("small receive buffer");
    slow.bind(localhost()).expect("bind");
    let slow = slow.listen(1).expect("listen");
    let mut c1 = config(
        1,
        localhost(),
        &[(2, slow.local_addr().expect("addr")), (3, n3.addr())],
    );
    c1.peer_queue_messages_max = 8;
    let n1 = Node::start(c1).await;
    let (socket, _) = within(slow.accept()).await.expect("node 1 dials");
    let mut fake = RawPeer { stream: socket };
    fake.answer_handshake(CLUSTER, 2).await;
    eventually("node 1 is connected to the slow peer", || {
        peer_stats(&n1, 2).connected
    })
    .await;

    let body = "x".repeat(16 << 10);
    let mut round = 0;
    // Each round queues less than the bound, so a peer that reads would never drop; the
    // slow one fills its socket buffers, then its queue, then drops.
    while peer_stats(&n1, 2).dropped == 0 {
        for _ in 0..4 {
            n1.send(2, &body);
        }
        assert!(peer_stats(&n1, 2).queued <= 8, "the queue bound holds");
        let note = format!("round {round}");
        n1.send(3, &note);
        assert_eq!(n3.recv().await, (1, note), "the other peer is unaffected");
        round += 1;
        assert!(round < 10_000, "the slow peer never filled its queue");
    }
    let slow_stats = peer_stats(&n1, 2);
    assert!(slow_stats.connected && slow_stats.queued <= 8);
    assert_eq!(peer_stats(&n1, 3).dropped, 0);
    // The node still works with the slow peer stuck.
    n1.send(3, "after");
    assert_eq!(n3.recv().await, (1, "after".to_owned()));
}

#[tokio::test]
async fn start_reports_typed_errors() {
    let n2 = Node::start(config(2, localhost(), &[(1, NEVER_DIALED)])).await;
    let (tx, _rx) = async_channel::bounded(1);
    let taken = config(3, n2.addr(), &[(1, NEVER_DIALED)]);
    let err = TcpTransport::start(taken, tx.clone())
        .await
        .expect_err("port in use");
    assert!(
        matches!(err, TcpError::Listen { addr, .. } if addr == n2.addr()),
        "{err}"
    );

    let mut zero_queue = config(3, localhost(), &[(1, NEVER_DIALED)]);
    zero_queue.peer_queue_messages_max = 0;
    let err = TcpTransport::start(zero_queue, tx)
        .await
        .expect_err("invalid");
    assert!(matches!(
        err,
        TcpError::Config(ConfigError::Zero("peer_queue_messages_max"))
    ));
}

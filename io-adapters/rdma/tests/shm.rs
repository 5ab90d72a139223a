//! The shared-memory ring transport between threads and between processes: delivery in
//! order across wrap-around and fragmentation, credits, refusals, garbage in a slot, a peer
//! killed mid-write, and two processes hammering each other.
//!
//! Tests that need a second process run this test binary again with `RSM_RDMA_CHILD` set:
//! the `child_process` test then plays the peer and every other test is filtered out.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_channel::Receiver;
use bytes::Bytes;
use rsm_core::{FRAME_HEADER_BYTES, Hello, NodeId, Prng, Transport};
use rsm_rdma::{Backend, Layout, Refusal, RingMemory, Shm, ShmConfig, ShmTransport, Word};

const CLUSTER: u64 = 7;
const CHILD_ENV: &str = "RSM_RDMA_CHILD";
/// Long enough for a loaded 2-core machine; a healthy run takes a fraction of it.
const PATIENCE: Duration = Duration::from_secs(60);

fn sock(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.sock"))
}

/// A config for `id` among nodes 1 and 2, with a small ring so that tests wrap it often.
fn config(dir: &Path, id: u64) -> ShmConfig {
    let other = 3 - id;
    let mut c = ShmConfig::new(
        NodeId(id),
        CLUSTER,
        sock(dir, id),
        BTreeMap::from([(NodeId(other), sock(dir, other))]),
    );
    c.slot_bytes = 1024;
    c.ring_slots = 16;
    c.reconnect_delay_min = Duration::from_millis(5);
    c.reconnect_delay_max = Duration::from_millis(50);
    c.spin_polls_max = 200;
    c
}

fn start(c: ShmConfig, inbound_max: usize) -> (ShmTransport, Receiver<(NodeId, Bytes)>) {
    let (tx, rx) = async_channel::bounded(inbound_max);
    let t = ShmTransport::start(Shm, c, tx).expect("transport starts");
    (t, rx)
}

fn recv(rx: &Receiver<(NodeId, Bytes)>) -> (NodeId, Bytes) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(m) = rx.try_recv() {
            return m;
        }
        assert!(Instant::now() < deadline, "no message within {PATIENCE:?}");
        std::thread::sleep(Duration::from_micros(100));
    }
}

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Message `seq` of stream `seed`: its number, then bytes the receiver can regenerate.
fn message(seed: u64, seq: u64, len_max: u64) -> Bytes {
    let mut rng = Prng::new(seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let len = rng.range(8, len_max + 1) as usize;
    let mut out = seq.to_le_bytes().to_vec();
    out.extend((8..len).map(|_| rng.next_u64() as u8));
    Bytes::from(out)
}

fn seq_of(body: &[u8]) -> u64 {
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&body[..8]);
    u64::from_le_bytes(seq)
}

#[test]
fn messages_of_every_size_arrive_in_order_both_ways() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, a_rx) = start(config(dir.path(), 1), 1024);
    let (b, b_rx) = start(config(dir.path(), 2), 1024);
    // Sizes around the slot payload (1000 bytes) and above the whole ring (16 KiB).
    let sizes = [0usize, 1, 999, 1000, 1001, 4096, 16_000, 40_000, 100_000, 7];
    for (i, &len) in sizes.iter().enumerate() {
        a.send(NodeId(2), Bytes::from(vec![i as u8; len]));
        b.send(NodeId(1), Bytes::from(vec![i as u8 + 100; len]));
    }
    for (i, &len) in sizes.iter().enumerate() {
        assert_eq!(recv(&b_rx), (NodeId(1), Bytes::from(vec![i as u8; len])));
        assert_eq!(
            recv(&a_rx),
            (NodeId(2), Bytes::from(vec![i as u8 + 100; len]))
        );
    }
    let stats = a.stats();
    assert_eq!(stats.messages_sent(), sizes.len() as u64);
    assert_eq!(stats.messages_received(), sizes.len() as u64);
    assert_eq!(stats.connections, 1);
    assert!(stats.rejections.is_empty(), "{stats:?}");
    // Unroutable and oversized sends are dropped and counted, never queued.
    a.send(NodeId(9), Bytes::new());
    a.send(NodeId(2), Bytes::from(vec![0; (16 << 20) + 1]));
    let stats = a.stats();
    assert_eq!((stats.dropped_unroutable, stats.dropped_oversized), (1, 1));
    a.shutdown();
    b.shutdown();
    assert!(
        !sock(dir.path(), 1).exists(),
        "shutdown removes the socket file"
    );
}

#[test]
fn credits_run_out_while_the_host_is_slow_and_come_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, _a_rx) = start(config(dir.path(), 1), 16);
    // The receiving host takes one message at a time and is not reading yet.
    let (b, b_rx) = start(config(dir.path(), 2), 1);
    eventually("connected", || a.stats().peers[&NodeId(2)].connected);
    let count = 200u64;
    for seq in 0..count {
        a.send(NodeId(2), message(1, seq, 3000));
    }
    eventually("the sender waits for credits", || {
        a.stats().peers[&NodeId(2)].credit_waits > 0
    });
    assert!(a.stats().peers[&NodeId(2)].queued > 0);
    for seq in 0..count {
        let (_, body) = recv(&b_rx);
        assert_eq!(body, message(1, seq, 3000), "message {seq}");
    }
    let stats = a.stats();
    assert_eq!(stats.peers[&NodeId(2)].queued, 0);
    assert_eq!(stats.dropped(), 0);
    assert_eq!(stats.messages_sent(), count);
    drop(b);
}

#[test]
fn a_full_queue_drops_the_oldest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut c = config(dir.path(), 1);
    c.peer_queue_messages_max = 4;
    // No peer is listening: everything queues.
    let (a, _rx) = start(c, 16);
    for seq in 0..10 {
        a.send(NodeId(2), message(2, seq, 64));
    }
    let stats = a.stats();
    assert_eq!(stats.peers[&NodeId(2)].queued, 4);
    assert_eq!(stats.peers[&NodeId(2)].dropped, 6);
    // When the peer comes, the four newest arrive.
    let (_b, b_rx) = start(config(dir.path(), 2), 16);
    for seq in 6..10 {
        assert_eq!(recv(&b_rx).1, message(2, seq, 64));
    }
}

/// Dial `to` by hand as node `id` and run the dialer's side of the hello.
fn raw_hello(dir: &Path, to: u64, hello: Hello) -> UnixStream {
    let mut s = UnixStream::connect(sock(dir, to)).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.write_all(&hello.encode_frame().expect("a hello fits"))
        .expect("send hello");
    s
}

fn read_hello(s: &mut UnixStream) -> Option<Hello> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    s.read_exact(&mut header).ok()?;
    let mut body = vec![0u8; header[1] as usize];
    s.read_exact(&mut body).ok()?;
    Hello::parse(&body).ok()
}

#[test]
fn strangers_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (b, _rx) = start(config(dir.path(), 2), 16);
    let cases = [
        (Hello::new(CLUSTER + 1, NodeId(1)), Refusal::WrongCluster),
        (Hello::new(CLUSTER, NodeId(5)), Refusal::UnknownPeer),
        (
            Hello {
                protocol_version: 9,
                ..Hello::new(CLUSTER, NodeId(1))
            },
            Refusal::BadProtocolVersion,
        ),
    ];
    for (hello, reason) in cases {
        let mut s = raw_hello(dir.path(), 2, hello);
        assert_eq!(read_hello(&mut s), None, "{reason} gets no answer");
        eventually("counted", || b.stats().rejected(reason) == 1);
    }
    // A peer with another ring geometry is refused at the memory exchange.
    let mut s = raw_hello(dir.path(), 2, Hello::new(CLUSTER, NodeId(1)));
    assert_eq!(read_hello(&mut s), Some(Hello::new(CLUSTER, NodeId(2))));
    let other = Layout {
        slot_bytes: 2048,
        slots: 16,
    };
    let _mem = Shm
        .offer(&mut s, other, Instant::now() + PATIENCE)
        .expect("offer");
    eventually("geometry refused", || {
        b.stats().rejected(Refusal::RingSetup) == 1
    });
    assert_eq!(b.stats().connections, 0);
}

#[test]
fn garbage_in_a_slot_resets_the_connection_and_a_real_peer_then_gets_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let c = config(dir.path(), 2);
    let layout = c.layout();
    let (b, b_rx) = start(c, 16);
    let mut s = raw_hello(dir.path(), 2, Hello::new(CLUSTER, NodeId(1)));
    assert!(read_hello(&mut s).is_some());
    let mem = Shm
        .offer(&mut s, layout, Instant::now() + PATIENCE)
        .expect("offer");
    let mut ready = [0u8];
    s.read_exact(&mut ready).expect("ready byte");
    eventually("connected", || b.stats().peers[&NodeId(1)].connected);
    // Scribble over the first slot of the peer's ring and announce it, with a doorbell.
    let staging = mem.staging();
    let noise: Vec<u8> = (0..layout.slot_bytes).map(|i| (i * 31 + 7) as u8).collect();
    staging.write(3 * 64, &noise);
    mem.publish(Word::Written, 1).expect("publish");
    s.write_all(&[1]).expect("doorbell");
    eventually("corruption detected", || {
        b.stats().rejected(Refusal::Corrupt) == 1
    });
    // The victim closed the connection: the rogue reads its end (or a reset, when the
    // doorbell was still unread at the close).
    let mut rest = Vec::new();
    if let Err(e) = s.read_to_end(&mut rest) {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    assert!(b_rx.is_empty(), "nothing from the garbage was delivered");
    drop(mem);
    let (a, _a_rx) = start(config(dir.path(), 1), 16);
    a.send(NodeId(2), Bytes::from_static(b"after the reset"));
    assert_eq!(recv(&b_rx).1, Bytes::from_static(b"after the reset"));
    assert_eq!(b.stats().connections, 2);
}

#[test]
fn a_dialer_whose_peer_vanishes_redials_until_it_is_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, _a_rx) = start(config(dir.path(), 1), 16);
    let (b, b_rx) = start(config(dir.path(), 2), 16);
    a.send(NodeId(2), Bytes::from_static(b"one"));
    assert_eq!(recv(&b_rx).1, Bytes::from_static(b"one"));
    b.shutdown();
    eventually("the loss is noticed", || {
        let p = &a.stats().peers[&NodeId(2)];
        !p.connected && p.disconnects == 1
    });
    let (b, b_rx) = start(config(dir.path(), 2), 16);
    a.send(NodeId(2), Bytes::from_static(b"two"));
    assert_eq!(recv(&b_rx).1, Bytes::from_static(b"two"));
    assert_eq!(a.stats().connections, 2);
    drop(b);
}

// ---- Two processes -------------------------------------------------------------------

/// Run this test binary as the peer: `role id seed count dir`.
fn spawn_child(role: &str, id: u64, seed: u64, count: u64, dir: &Path) -> Child {
    let exe = std::env::current_exe().expect("test binary");
    Command::new(exe)
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{role} {id} {seed} {count} {}", dir.display()),
        )
        // The harness's chatter would interleave with ours; panics still reach stderr.
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the peer process")
}

/// Send `count` messages of stream `seed` to the peer while checking that the peer's
/// stream `peer_seed` arrives exactly once and in order.
fn hammer(
    t: &ShmTransport,
    rx: &Receiver<(NodeId, Bytes)>,
    peer: NodeId,
    seed: u64,
    peer_seed: u64,
    count: u64,
) {
    let len_max = 20_000;
    let mut sent = 0;
    let mut expected = 0;
    let deadline = Instant::now() + PATIENCE;
    while expected < count {
        assert!(
            Instant::now() < deadline,
            "hammering stalled at {expected}/{count}"
        );
        // Keep the queue short so that nothing is ever dropped.
        while sent < count && t.stats().peers[&peer].queued < 64 {
            t.send(peer, message(seed, sent, len_max));
            sent += 1;
        }
        match rx.try_recv() {
            Ok((from, body)) => {
                assert_eq!(from, peer);
                assert_eq!(seq_of(&body), expected, "out of order or duplicated");
                assert_eq!(
                    body,
                    message(peer_seed, expected, len_max),
                    "message {expected}"
                );
                expected += 1;
            }
            Err(_) => std::thread::sleep(Duration::from_micros(50)),
        }
    }
    eventually("every message written", || {
        let p = &t.stats().peers[&peer];
        p.queued == 0 && p.messages_sent == count
    });
    assert_eq!(t.stats().dropped(), 0);
}

#[test]
fn child_process() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let args: Vec<&str> = args.splitn(5, ' ').collect();
    let [role, id, seed, count, dir] = args[..] else {
        panic!("bad {CHILD_ENV}: {args:?}");
    };
    let id: u64 = id.parse().expect("id");
    let seed: u64 = seed.parse().expect("seed");
    let count: u64 = count.parse().expect("count");
    let peer = NodeId(3 - id);
    let mut c = config(Path::new(dir), id);
    c.peer_queue_messages_max = 1 << 16;
    let (t, rx) = start(c, 1024);
    match role {
        "hammer" => {
            hammer(&t, &rx, peer, seed, seed + 1, count);
            // Stay until the parent has everything: it says bye last.
            let (_, bye) = recv(&rx);
            assert_eq!(bye, Bytes::from_static(b"bye"));
        }
        "flood" => loop {
            // Large messages, so that the kill most likely lands mid-write.
            if t.stats().peers[&peer].queued < 8 {
                let mut body = vec![seed as u8; 60_000];
                body[..8].copy_from_slice(&seed.to_le_bytes());
                t.send(peer, Bytes::from(body));
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        },
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn two_processes_hammer_each_other_and_every_message_arrives_once_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let count = 3000;
    for (seed, child_id) in [(10u64, 1u64), (20, 2)] {
        let parent_id = 3 - child_id;
        let mut c = config(dir.path(), parent_id);
        c.peer_queue_messages_max = 1 << 16;
        let (t, rx) = start(c, 1024);
        let mut child = spawn_child("hammer", child_id, seed, count, dir.path());
        hammer(&t, &rx, NodeId(child_id), seed + 1, seed, count);
        // Read before the goodbye: once the peer exits, this node may redial its
        // closing listener.
        let stats = t.stats();
        assert_eq!(stats.connections, 1, "{stats:?}");
        assert!(stats.rejections.is_empty(), "{stats:?}");
        t.send(NodeId(child_id), Bytes::from_static(b"bye"));
        let status = child.wait().expect("child ends");
        assert!(status.success(), "the peer process failed: {status}");
    }
}

#[test]
fn a_peer_killed_mid_write_is_detected_and_its_successor_connects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (b, rx) = start(config(dir.path(), 2), 4);
    for incarnation in 1..=2u64 {
        let mut child = spawn_child("flood", 1, incarnation, 0, dir.path());
        // Take a few messages of this incarnation, whole and intact.
        let mut taken = 0;
        while taken < 20 {
            let (_, body) = recv(&rx);
            assert_eq!(body.len(), 60_000);
            if seq_of(&body) == incarnation {
                assert!(body[8..].iter().all(|&x| x == incarnation as u8));
                taken += 1;
            }
        }
        child.kill().expect("kill the peer");
        child.wait().expect("reap the peer");
        eventually("the death is noticed", || {
            // Keep reading: a link blocked on a full host queue notices nothing.
            while rx.try_recv().is_ok() {}
            let p = &b.stats().peers[&NodeId(1)];
            !p.connected && p.disconnects == incarnation
        });
        while rx.try_recv().is_ok() {}
    }
    let stats = b.stats();
    assert_eq!(stats.connections, 2);
    assert!(
        stats.rejections.is_empty(),
        "a torn write was never read: {stats:?}"
    );
}

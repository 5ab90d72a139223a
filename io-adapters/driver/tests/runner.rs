//! The async node loop, driven by a hand-advanced clock on plain threads: client futures,
//! timeouts in ticks, back-pressure from the request queue, shutdown and fatal errors.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread;

use common::{
    FakeStorage, InboxTransport, ThreadNode, World, block_on, fixed_leader, kv_node, kv_put,
    poll_once, spawn_single_kv_node, spawn_thread,
};
use rsm_core::kv::{KvResponse, KvStore};
use rsm_core::{Bytes, LogIndex, NodeId, RejectReason, Role, Transport};
use rsm_driver::{
    ClientError, DriverConfig, IntervalTicker, ManualClock, NodeCore, NodeError, NodeRunner,
    Stopped,
};

fn put(seq: u64, key: &'static str, value: &'static str) -> Bytes {
    kv_put(1, seq, key, value)
}

#[test]
fn a_client_commits_and_reads_through_a_running_node() {
    let ThreadNode {
        join: node,
        handles,
        ..
    } = spawn_single_kv_node();

    let client = handles.client.clone();
    assert_eq!(
        block_on(client.propose(put(1, "k", "v"))),
        Ok(KvResponse::Done)
    );
    assert_eq!(
        block_on(client.read(Bytes::from_static(b"k"))),
        Ok(Some(Bytes::from_static(b"v")))
    );

    handles.shutdown.shutdown();
    let Stopped { core, error } = node.join();
    assert!(error.is_none(), "{error:?}");
    assert_eq!(core.machine().get(b"k"), Some(&Bytes::from_static(b"v")));
    assert_eq!(core.storage().synced.last_index(), LogIndex(1));
    assert_eq!(
        block_on(client.propose(put(2, "k", "w"))),
        Err(ClientError::NotRunning)
    );
}

#[test]
fn requests_time_out_after_ticks_of_the_clock() {
    let world = World::default();
    let config = DriverConfig {
        request_timeout_ticks: 3,
        ..DriverConfig::default()
    };
    // A leader whose followers never answer: nothing commits.
    let ThreadNode {
        join: node,
        handles,
        time,
    } = spawn_thread(kv_node(config, 1, &[1, 2, 3], &world));

    let client = handles.client.clone();
    let waiting = thread::spawn(move || block_on(client.propose(put(1, "k", "v"))));
    let mut ticks = 0;
    while !waiting.is_finished() {
        assert!(time.advance_blocking(1));
        ticks += 1;
        assert!(ticks < 100_000, "the proposal never timed out");
    }
    let e = waiting.join().unwrap().unwrap_err();
    assert_eq!(e, ClientError::Timeout);
    assert!(!e.is_definite());
    assert!(ticks >= 3, "a timeout takes request_timeout_ticks ticks");

    handles.shutdown.shutdown();
    let stopped = node.join();
    assert!(stopped.core.ticks() >= 3);
}

#[test]
fn a_full_request_queue_pushes_back_and_queued_requests_never_run_after_shutdown() {
    let world = World::default();
    let config = DriverConfig {
        client_queue_max: 1,
        ..DriverConfig::default()
    };
    let (runner, handles) = NodeRunner::new(kv_node(config, 1, &[1], &world));
    let mut queued = Box::pin(handles.client.propose(put(1, "a", "1")));
    assert!(poll_once(&mut queued).is_pending());
    let mut refused = Box::pin(handles.client.propose(put(2, "b", "2")));
    match poll_once(&mut refused) {
        Poll::Ready(Err(e)) => {
            assert_eq!(e, ClientError::Rejected(RejectReason::Busy));
            assert!(e.is_definite());
        }
        other => panic!("expected Busy at once, got {other:?}"),
    }

    // Shut down before the loop ever runs: the queued request was never handed on.
    handles.shutdown.shutdown();
    let (clock, _time) = ManualClock::new(1);
    let stopped = block_on(runner.run(clock));
    assert!(stopped.error.is_none());
    assert_eq!(block_on(queued), Err(ClientError::NotRunning));
    assert_eq!(stopped.core.storage().mem.durable.last_index(), LogIndex(0));
}

#[test]
fn a_failed_sync_stops_the_loop_and_in_flight_requests_end_indefinite() {
    let world = World::default();
    let core = kv_node(DriverConfig::default(), 1, &[1], &world);
    *core.storage().fail_syncs.lock().unwrap() = true;
    let ThreadNode {
        join: node,
        handles,
        time: _time,
    } = spawn_thread(core);

    let e = block_on(handles.client.propose(put(1, "k", "v"))).unwrap_err();
    assert_eq!(e, ClientError::Shutdown);
    assert!(!e.is_definite(), "it may have reached a disk");
    let Stopped { core, error } = node.join();
    assert!(matches!(error, Some(NodeError::Sync(_))), "{error:?}");
    assert_eq!(core.machine().len(), 0, "nothing was applied");
    assert_eq!(
        block_on(handles.client.propose(put(2, "k", "v"))),
        Err(ClientError::NotRunning)
    );
}

#[test]
fn three_running_nodes_replicate_over_their_inboxes() {
    let members = [1, 2, 3];
    let inboxes = Arc::new(Mutex::new(HashMap::new()));
    let mut nodes = Vec::new();
    let mut clients = Vec::new();
    let mut shutdowns = Vec::new();
    let mut clocks = Vec::new();
    for &id in &members {
        let core = NodeCore::new(
            DriverConfig::default(),
            fixed_leader(id, &members),
            FakeStorage::new(World::default()),
            InboxTransport {
                me: NodeId(id),
                inboxes: inboxes.clone(),
            },
            KvStore::new(),
        );
        let (runner, handles) = NodeRunner::new(core);
        inboxes
            .lock()
            .unwrap()
            .insert(NodeId(id), handles.inbox.expect("the loop's own queue"));
        let (clock, time) = ManualClock::new(4);
        nodes.push(thread::spawn(move || block_on(runner.run(clock))));
        clients.push(handles.client);
        shutdowns.push(handles.shutdown);
        clocks.push(time);
    }
    for seq in 1..=3 {
        assert_eq!(
            block_on(clients[0].propose(put(seq, "k", ["a", "b", "c"][seq as usize - 1]))),
            Ok(KvResponse::Done)
        );
    }
    let e = block_on(clients[2].propose(put(9, "x", "y"))).unwrap_err();
    assert_eq!(e.leader_hint(), Some(NodeId(1)));
    assert!(e.is_definite());

    for s in &shutdowns {
        s.shutdown();
    }
    let stopped: Vec<_> = nodes.into_iter().map(|n| n.join().unwrap()).collect();
    assert_eq!(
        stopped[0].core.machine().get(b"k"),
        Some(&Bytes::from_static(b"c"))
    );
    let durable_followers = stopped[1..]
        .iter()
        .filter(|s| s.core.storage().synced.last_index() == LogIndex(3))
        .count();
    assert!(
        durable_followers >= 1,
        "a majority held every committed entry"
    );
    drop(clocks);
}

/// The sending end of a node's inbound channel.
type InboundSender = async_channel::Sender<(NodeId, Bytes)>;

/// Hands each message straight to the recipient's channel, as rsm-tcp and rsm-rdma do
/// with the channel they are started with.
#[derive(Clone, Debug)]
struct ChannelTransport {
    me: NodeId,
    peers: Arc<Mutex<HashMap<NodeId, InboundSender>>>,
}

impl Transport for ChannelTransport {
    fn send(&self, to: NodeId, message: Bytes) {
        if let Some(peer) = self.peers.lock().unwrap().get(&to) {
            let _ = peer.try_send((self.me, message));
        }
    }
}

#[test]
fn nodes_read_the_channels_their_transport_feeds_and_close_them_when_stopped() {
    let members = [1, 2, 3];
    let peers = Arc::new(Mutex::new(HashMap::new()));
    let mut nodes = Vec::new();
    let mut clocks = Vec::new();
    for &id in &members {
        let (inbound_tx, inbound) = async_channel::bounded(64);
        peers.lock().unwrap().insert(NodeId(id), inbound_tx);
        let core = NodeCore::new(
            DriverConfig::default(),
            fixed_leader(id, &members),
            FakeStorage::new(World::default()),
            ChannelTransport {
                me: NodeId(id),
                peers: peers.clone(),
            },
            KvStore::new(),
        );
        let (runner, handles) = NodeRunner::with_inbound(core, inbound);
        assert!(handles.inbox.is_none(), "the caller's channel is the inbox");
        let (clock, time) = ManualClock::new(4);
        nodes.push((
            runner.spawn_thread(format!("node-{id}"), clock).unwrap(),
            handles,
        ));
        clocks.push(time);
    }
    for seq in 1..=2 {
        assert_eq!(
            block_on(nodes[0].1.client.propose(put(seq, "k", "v"))),
            Ok(KvResponse::Done)
        );
    }
    for (_, handles) in &nodes {
        handles.shutdown.shutdown();
    }
    let stopped: Vec<_> = nodes.into_iter().map(|(node, _)| node.join()).collect();
    assert_eq!(stopped[0].core.applied_index(), LogIndex(2));
    let replicated = stopped[1..]
        .iter()
        .filter(|s| s.core.storage().synced.last_index() == LogIndex(2))
        .count();
    assert!(replicated >= 1, "a majority held both entries");
    for (id, peer) in peers.lock().unwrap().iter() {
        assert!(peer.is_closed(), "node {id}'s loop closed its channel");
    }
    drop(clocks);
}

#[test]
fn the_status_view_follows_a_running_node_and_its_stop() {
    let ThreadNode {
        join: node,
        handles,
        time,
    } = spawn_single_kv_node();
    let view = handles.status.clone();
    assert!(!view.is_stopped());
    assert!(time.advance_blocking(2));
    assert_eq!(
        block_on(handles.client.propose(put(1, "k", "v"))),
        Ok(KvResponse::Done)
    );
    // The answer leaves after the sync that published the commit.
    let running = view.get();
    assert_eq!(running.status.role, Role::Leader);
    assert_eq!(running.status.commit, LogIndex(1));
    assert!(running.stats.syncs >= 1, "{running:?}");
    assert_eq!(running.storage.syncs, running.stats.syncs);
    assert!(!running.stopped);

    handles.shutdown.shutdown();
    block_on(view.stopped());
    let Stopped { core, error } = node.join();
    assert!(error.is_none(), "{error:?}");
    let last = view.get();
    assert!(last.stopped && view.is_stopped());
    assert_eq!(last.ticks, core.ticks());
    assert_eq!(last.stats, core.stats());
    assert_eq!(last.status, core.status());
}

#[test]
fn a_node_on_its_own_thread_times_requests_out_by_the_system_clock() {
    let world = World::default();
    let config = DriverConfig {
        request_timeout_ticks: 5,
        ..DriverConfig::default()
    };
    // Node 1 of a cluster whose peers never answer: it commits nothing, so the proposal
    // can only end by timing out, which needs ticks from the interval.
    let (runner, handles) = NodeRunner::new(kv_node(config, 1, &[1, 2, 3], &world));
    let ticker = IntervalTicker::new(std::time::Duration::from_millis(1)).unwrap();
    let node = runner.spawn_thread("node-1", ticker).unwrap();
    assert_eq!(
        block_on(handles.client.propose(put(1, "k", "v"))),
        Err(ClientError::Timeout)
    );
    handles.shutdown.shutdown();
    let stopped = node.join();
    assert!(stopped.error.is_none());
    assert!(stopped.core.ticks() >= 5);
    assert!(handles.status.is_stopped() && handles.status.get().stopped);
}

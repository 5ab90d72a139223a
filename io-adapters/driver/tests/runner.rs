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
use rsm_core::{Bytes, LogIndex, NodeId, RejectReason};
use rsm_driver::{
    ClientError, DriverConfig, ManualClock, NodeCore, NodeError, NodeRunner, Stopped,
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
    let Stopped { core, error } = node.join().unwrap();
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
    let stopped = node.join().unwrap();
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
    let Stopped { core, error } = node.join().unwrap();
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
        inboxes.lock().unwrap().insert(NodeId(id), handles.inbox);
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

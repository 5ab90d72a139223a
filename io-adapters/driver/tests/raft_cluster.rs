//! Three Raft replicas hosted by the driver: one cluster pumped by hand through the
//! synchronous core (deterministic), and one running on threads, reached only through
//! `Client` futures while manual clocks tick.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;

use common::{
    FakeStorage, FakeTransport, InboxTransport, World, WorldEvent, block_on, kv_put, spawn_thread,
};
use rsm_consensus::{Raft, RaftConfig};
use rsm_core::kv::{KvResponse, KvStore};
use rsm_core::{Bytes, Durable, LogIndex, Membership, NodeId, Role, Storage, Transport};
use rsm_driver::{DriverConfig, ManualClockHandle, NodeCore};

const MEMBERS: [u64; 3] = [1, 2, 3];

fn raft_core<S: Storage, T: Transport>(
    id: u64,
    storage: S,
    transport: T,
) -> NodeCore<Raft, S, T, KvStore> {
    let membership = Membership::new(MEMBERS.map(NodeId));
    let config = RaftConfig::new(NodeId(id), membership, 0x5eed + id);
    NodeCore::recover(
        DriverConfig::default(),
        config,
        Durable::default(),
        storage,
        transport,
        KvStore::new(),
    )
    .expect("a fresh replica starts")
}

type PumpedNode = NodeCore<Raft, FakeStorage, FakeTransport, KvStore>;

/// One round: every node ticks, then syncs and exchanges messages until quiet.
fn round(nodes: &mut [PumpedNode], world: &World) {
    for n in nodes.iter_mut() {
        n.tick().unwrap();
    }
    for _ in 0..64 {
        for n in nodes.iter_mut() {
            n.sync().unwrap();
        }
        let sends: Vec<_> = world
            .take()
            .into_iter()
            .filter_map(|e| match e {
                WorldEvent::Send { from, to, bytes } => Some((from, to, bytes)),
                _ => None,
            })
            .collect();
        if sends.is_empty() {
            return;
        }
        for (from, to, bytes) in sends {
            nodes[to.0 as usize - 1].receive(from, &bytes).unwrap();
        }
    }
}

#[test]
fn a_pumped_raft_cluster_elects_commits_and_converges() {
    let world = World::default();
    let mut nodes: Vec<PumpedNode> = MEMBERS
        .iter()
        .map(|&id| {
            let transport = FakeTransport {
                me: NodeId(id),
                world: world.clone(),
            };
            raft_core(id, FakeStorage::new(world.clone()), transport)
        })
        .collect();
    let mut leader = None;
    for _ in 0..200 {
        round(&mut nodes, &world);
        leader = nodes.iter().position(|n| n.status().role == Role::Leader);
        if leader.is_some() {
            break;
        }
    }
    let leader = leader.expect("a leader within 200 rounds");

    let mut tickets = Vec::new();
    for (seq, value) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
        tickets.push(
            nodes[leader]
                .propose(kv_put(1, seq as u64 + 1, "k", value))
                .unwrap(),
        );
    }
    let mut answers = Vec::new();
    for _ in 0..50 {
        round(&mut nodes, &world);
        answers.extend(nodes[leader].drain_completions());
        let last = nodes[leader].applied_index();
        if answers.len() == tickets.len() && nodes.iter().all(|n| n.applied_index() == last) {
            break;
        }
    }
    assert_eq!(answers.len(), tickets.len(), "{answers:?}");
    assert!(answers.iter().all(|c| matches!(
        c.result,
        Ok(rsm_driver::Reply::Applied {
            response: KvResponse::Done,
            ..
        })
    )));
    for n in &nodes {
        assert_eq!(n.applied_index(), nodes[leader].applied_index());
        assert_eq!(n.machine(), nodes[leader].machine());
        assert_eq!(n.machine().get(b"k"), Some(&Bytes::from_static(b"e")));
    }
    let follower = (leader + 1) % 3;
    let refused = nodes[follower].propose(kv_put(2, 1, "x", "y")).unwrap();
    let done: Vec<_> = nodes[follower].drain_completions().collect();
    assert_eq!(done[0].ticket, refused);
    let e = done[0].result.clone().unwrap_err();
    assert!(e.is_definite());
    assert_eq!(e.leader_hint(), Some(NodeId(leader as u64 + 1)));
}

/// Run `call` on its own thread, ticking every clock until it returns.
fn while_ticking<T: Send + 'static>(
    clocks: &[ManualClockHandle],
    call: impl FnOnce() -> T + Send + 'static,
) -> T {
    let call = thread::spawn(call);
    while !call.is_finished() {
        for c in clocks {
            assert!(c.advance_blocking(1));
        }
    }
    call.join().unwrap()
}

#[test]
fn clients_commit_through_a_threaded_raft_cluster() {
    let inboxes = Arc::new(Mutex::new(HashMap::new()));
    let nodes: Vec<_> = MEMBERS
        .iter()
        .map(|&id| {
            let transport = InboxTransport {
                me: NodeId(id),
                inboxes: inboxes.clone(),
            };
            let node = spawn_thread(raft_core(id, FakeStorage::new(World::default()), transport));
            inboxes.lock().unwrap().insert(
                NodeId(id),
                node.handles.inbox.clone().expect("the loop's own queue"),
            );
            node
        })
        .collect();
    let clocks: Vec<_> = nodes.iter().map(|n| n.time.clone()).collect();

    let mut target = 0;
    let mut attempts = 0;
    for (seq, value) in ["a", "b", "c"].into_iter().enumerate() {
        // One session number per command: retrying it after an unknown outcome is safe.
        let command = kv_put(1, seq as u64 + 1, "k", value);
        loop {
            attempts += 1;
            assert!(attempts < 10_000, "no leader took the command");
            let client = nodes[target].handles.client.clone();
            let c = command.clone();
            match while_ticking(&clocks, move || block_on(client.propose(c))) {
                Ok(response) => {
                    assert_eq!(response, KvResponse::Done);
                    break;
                }
                // Certainly not applied: find the leader and try again.
                Err(e) if e.is_definite() => {
                    target = match e.leader_hint() {
                        Some(id) => id.0 as usize - 1,
                        None => (target + 1) % MEMBERS.len(),
                    };
                    for c in &clocks {
                        assert!(c.advance_blocking(1));
                    }
                }
                // Perhaps applied: the same session number makes the retry safe.
                Err(_) => {}
            }
        }
    }
    let client = nodes[target].handles.client.clone();
    let read = while_ticking(&clocks, move || {
        block_on(client.read(Bytes::from_static(b"k")))
    });
    assert_eq!(read, Ok(Some(Bytes::from_static(b"c"))));

    for n in &nodes {
        n.handles.shutdown.shutdown();
    }
    let stopped: Vec<_> = nodes.into_iter().map(|n| n.join.join()).collect();
    let leader = &stopped[target];
    assert!(leader.error.is_none());
    assert_eq!(
        leader.core.machine().get(b"k"),
        Some(&Bytes::from_static(b"c"))
    );
    let holding = stopped
        .iter()
        .filter(|s| s.core.storage().synced.last_index() >= leader.core.applied_index())
        .count();
    assert!(
        holding >= 2,
        "a majority made every committed entry durable"
    );
    assert!(leader.core.applied_index() >= LogIndex(3));
}

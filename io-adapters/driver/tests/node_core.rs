//! The synchronous node core against fake storage, a fake transport and scripted or
//! fixed-leader replicas: the host rule, group commit, client outcomes, snapshots and
//! fatal storage errors.

mod common;

use common::{
    FakeStorage, FakeTransport, FixedLeader, Note, Recorder, ScriptedReplica, World, WorldEvent,
    kv_node, kv_put,
};
use rsm_core::kv::{KvResponse, KvStore};
use rsm_core::{
    Bytes, Effect, Entry, Epoch, Input, LogIndex, NodeId, Persist, PersistSeq, RejectReason,
    RequestId, SnapshotMeta, StateMachine, encode_body,
};
use rsm_driver::{ClientError, CompletionOf, DriverConfig, NodeCore, NodeError, Reply};

type ScriptCore = NodeCore<ScriptedReplica, FakeStorage, FakeTransport, Recorder>;

fn scripted(
    config: DriverConfig,
    script: impl FnMut(&Input<Note>) -> Vec<Effect<Note>> + Send + 'static,
) -> (
    ScriptCore,
    World,
    std::sync::Arc<std::sync::Mutex<Vec<Input<Note>>>>,
) {
    let world = World::default();
    let (replica, inputs) = ScriptedReplica::new(script);
    let core = NodeCore::new(
        config,
        replica,
        FakeStorage::new(world.clone()),
        FakeTransport {
            me: NodeId(1),
            world: world.clone(),
        },
        Recorder::default(),
    );
    (core, world, inputs)
}

fn note_bytes(n: u64) -> Bytes {
    let mut v = Vec::new();
    encode_body(&Note(n), &mut v).unwrap();
    Bytes::from(v)
}

fn send_of(to: u64, n: u64) -> WorldEvent {
    WorldEvent::Send {
        from: NodeId(1),
        to: NodeId(to),
        bytes: note_bytes(n),
    }
}

fn cmd(i: u64, epoch: u64, payload: &'static [u8]) -> Entry {
    Entry::command(LogIndex(i), Epoch(epoch), Bytes::from_static(payload))
}

fn completions<M: rsm_driver::Queryable, R: rsm_core::Replica>(
    core: &mut NodeCore<R, FakeStorage, FakeTransport, M>,
) -> Vec<CompletionOf<M>> {
    core.drain_completions().collect()
}

fn leader_core(
    members: &[u64],
) -> (
    NodeCore<FixedLeader, FakeStorage, FakeTransport, KvStore>,
    World,
) {
    let world = World::default();
    (
        kv_node(DriverConfig::default(), members[0], members, &world),
        world,
    )
}

// ----- the host rule --------------------------------------------------------------------

#[test]
fn effects_run_in_order_and_sends_after_a_persist_wait_for_its_sync() {
    let (mut core, world, inputs) = scripted(DriverConfig::default(), |input| match input {
        Input::Tick => vec![
            Effect::Send {
                to: NodeId(2),
                msg: Note(1),
            },
            Effect::Persist {
                seq: PersistSeq(1),
                op: Persist::Append {
                    entries: vec![cmd(1, 1, b"a")],
                },
            },
            Effect::Send {
                to: NodeId(3),
                msg: Note(2),
            },
            Effect::Apply {
                entries: vec![cmd(1, 1, b"a")],
            },
            Effect::Send {
                to: NodeId(2),
                msg: Note(3),
            },
        ],
        _ => vec![],
    });
    core.tick().unwrap();
    // The send before the persist left with the step (the host hands released sends to
    // the transport once the step's effects ran); the ones after it wait.
    assert_eq!(world.take(), vec![WorldEvent::Write, send_of(2, 1)]);
    assert!(core.needs_sync());
    // Apply is not a send: it ran in order, and the replica heard `Applied` after the batch.
    assert_eq!(
        core.machine().applied,
        vec![(LogIndex(1), Bytes::from_static(b"a"))]
    );
    assert_eq!(
        *inputs.lock().unwrap(),
        vec![
            Input::Tick,
            Input::Applied {
                through: LogIndex(1)
            }
        ]
    );

    core.sync().unwrap();
    assert_eq!(
        world.take(),
        vec![WorldEvent::Sync, send_of(3, 2), send_of(2, 3)],
        "one sync, then the waiting sends in emission order"
    );
    assert_eq!(
        inputs.lock().unwrap().last(),
        Some(&Input::Persisted {
            through: PersistSeq(1)
        })
    );
    assert!(!core.needs_sync());
    core.sync().unwrap();
    assert!(world.take().is_empty(), "nothing to sync, no sync");
}

#[test]
fn group_commit_covers_many_proposals_with_one_sync() {
    let (mut core, world) = leader_core(&[1, 2, 3]);
    for seq in 1..=5 {
        core.propose(kv_put(9, seq, "k", "v")).unwrap();
    }
    let before = world.take();
    assert_eq!(
        before,
        vec![WorldEvent::Write; 5],
        "no send before the sync"
    );
    core.sync().unwrap();
    let after = world.take();
    assert_eq!(after[0], WorldEvent::Sync);
    assert_eq!(
        after.len(),
        1 + 5 * 2,
        "the 10 appends left after the one sync"
    );
    assert!(
        after[1..]
            .iter()
            .all(|e| matches!(e, WorldEvent::Send { .. }))
    );
    assert_eq!(core.stats().syncs, 1);
    assert_eq!(core.stats().writes, 5);
}

#[test]
fn a_full_batch_syncs_on_its_own() {
    let config = DriverConfig {
        sync_batch_max: 4,
        ..DriverConfig::default()
    };
    let world = World::default();
    let mut core = kv_node(config, 1, &[1, 2, 3], &world);
    // Each proposal writes once and holds two sends: the second crosses the bound.
    core.propose(kv_put(1, 1, "a", "1")).unwrap();
    assert_eq!(world.syncs(), 0);
    core.propose(kv_put(1, 2, "b", "2")).unwrap();
    assert_eq!(world.syncs(), 1);
    let events = world.take();
    let sync_at = events.iter().position(|e| *e == WorldEvent::Sync).unwrap();
    assert_eq!(
        events[..sync_at],
        [WorldEvent::Write, WorldEvent::Write],
        "nothing left before the sync"
    );
    assert_eq!(events.len() - sync_at - 1, 4, "the held sends followed it");
}

// ----- bad input ------------------------------------------------------------------------

#[test]
fn malformed_inbound_bytes_are_counted_and_dropped() {
    let (mut core, _world, inputs) = scripted(DriverConfig::default(), |_| vec![]);
    core.receive(NodeId(2), &[]).unwrap();
    let mut trailing = note_bytes(5).to_vec();
    trailing.push(0);
    core.receive(NodeId(2), &trailing).unwrap();
    core.receive(NodeId(2), &[0xff; 11]).unwrap();
    assert!(
        inputs.lock().unwrap().is_empty(),
        "the replica heard none of it"
    );
    assert_eq!(core.stats().malformed_inbound, 3);

    core.receive(NodeId(2), &note_bytes(5)).unwrap();
    assert_eq!(
        *inputs.lock().unwrap(),
        vec![Input::Receive {
            from: NodeId(2),
            msg: Note(5)
        }]
    );
}

// ----- client outcomes ------------------------------------------------------------------

#[test]
fn back_pressure_fails_new_requests_definitely_when_pending_is_full() {
    let config = DriverConfig {
        pending_requests_max: 2,
        ..DriverConfig::default()
    };
    let (mut core, _world, inputs) = scripted(config, |input| match input {
        Input::Propose { req, command } if &command[..] == b"refuse" => vec![Effect::Reject {
            req: *req,
            reason: RejectReason::NotLeader { hint: None },
        }],
        _ => vec![],
    });
    let a = core.propose(Bytes::from_static(b"a")).unwrap();
    core.read(()).unwrap();
    let busy = core.propose(Bytes::from_static(b"c")).unwrap_err();
    assert_eq!(busy, ClientError::Rejected(RejectReason::Busy));
    assert!(busy.is_definite());
    assert_eq!(
        inputs.lock().unwrap().len(),
        2,
        "the refused request never reached the replica"
    );

    // Room frees up when a request is answered.
    let (mut core2, _, _) = scripted(
        DriverConfig {
            pending_requests_max: 1,
            ..DriverConfig::default()
        },
        |input| match input {
            Input::Propose { req, .. } => vec![Effect::Reject {
                req: *req,
                reason: RejectReason::NotLeader { hint: None },
            }],
            _ => vec![],
        },
    );
    core2.propose(Bytes::from_static(b"refuse")).unwrap();
    core2.propose(Bytes::from_static(b"refuse")).unwrap();
    assert_eq!(core2.drain_completions().count(), 2);
    assert_eq!(core.pending_requests(), 2);
    assert_ne!(a, RequestId(0));
}

#[test]
fn outcomes_are_ok_definite_or_indefinite_as_the_log_says() {
    let mut ticks = 0;
    let (mut core, _world, _inputs) = scripted(
        DriverConfig {
            request_timeout_ticks: 3,
            ..DriverConfig::default()
        },
        move |input| match input {
            Input::Propose { req, command } => match &command[..] {
                b"lost-slot" => vec![Effect::Proposed {
                    req: *req,
                    index: LogIndex(1),
                    epoch: Epoch(1),
                }],
                b"wins" => vec![Effect::Proposed {
                    req: *req,
                    index: LogIndex(2),
                    epoch: Epoch(2),
                }],
                b"not-leader" => vec![Effect::Reject {
                    req: *req,
                    reason: RejectReason::NotLeader {
                        hint: Some(NodeId(3)),
                    },
                }],
                b"leader-lost" => vec![Effect::Reject {
                    req: *req,
                    reason: RejectReason::LeadershipLost { hint: None },
                }],
                _ => vec![],
            },
            // A new leader's entry took index 1; ours at index 2 commits.
            Input::Tick => {
                ticks += 1;
                if ticks > 1 {
                    return vec![];
                }
                vec![Effect::Apply {
                    entries: vec![cmd(1, 2, b"other"), cmd(2, 2, b"wins")],
                }]
            }
            _ => vec![],
        },
    );
    let lost = core.propose(Bytes::from_static(b"lost-slot")).unwrap();
    let wins = core.propose(Bytes::from_static(b"wins")).unwrap();
    let not_leader = core.propose(Bytes::from_static(b"not-leader")).unwrap();
    let leader_lost = core.propose(Bytes::from_static(b"leader-lost")).unwrap();
    let silent = core.propose(Bytes::from_static(b"silent")).unwrap();
    core.tick().unwrap();
    let done = completions(&mut core);
    let outcome = |t| done.iter().find(|c| c.ticket == t).unwrap().result.clone();

    let e = outcome(not_leader).unwrap_err();
    assert!(e.is_definite());
    assert_eq!(e.leader_hint(), Some(NodeId(3)));
    assert!(!outcome(leader_lost).unwrap_err().is_definite());
    let e = outcome(lost).unwrap_err();
    assert_eq!(e, ClientError::Superseded { index: LogIndex(1) });
    assert!(e.is_definite());
    assert_eq!(
        outcome(wins),
        Ok(Reply::Applied {
            index: LogIndex(2),
            response: 2
        })
    );
    assert!(done.iter().all(|c| c.ticket != silent));

    core.tick().unwrap();
    core.tick().unwrap();
    let done = completions(&mut core);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ticket, silent);
    assert_eq!(done[0].result, Err(ClientError::Timeout));
    assert!(!ClientError::Timeout.is_definite());

    let in_flight = core.propose(Bytes::from_static(b"silent")).unwrap();
    core.stop();
    let done = completions(&mut core);
    assert_eq!(done[0].ticket, in_flight);
    assert_eq!(done[0].result, Err(ClientError::Shutdown));
    assert!(!ClientError::Shutdown.is_definite());
    let e = core.propose(Bytes::from_static(b"late")).unwrap_err();
    assert_eq!(e, ClientError::NotRunning);
    assert!(e.is_definite());
    assert!(matches!(core.tick(), Err(NodeError::Stopped)));
}

#[test]
fn reads_are_served_once_the_machine_reaches_the_read_index() {
    let (mut core, _world, _inputs) = scripted(DriverConfig::default(), |input| match input {
        Input::Read { req } => vec![Effect::ReadReady {
            req: *req,
            index: LogIndex(2),
        }],
        Input::Tick => vec![Effect::Apply {
            entries: vec![cmd(1, 1, b"a")],
        }],
        Input::Receive { .. } => vec![Effect::Apply {
            entries: vec![cmd(2, 1, b"b")],
        }],
        _ => vec![],
    });
    let read = core.read(()).unwrap();
    core.tick().unwrap();
    assert_eq!(
        core.drain_completions().count(),
        0,
        "applied 1 < read index 2"
    );
    core.receive(NodeId(2), &note_bytes(0)).unwrap();
    let done = completions(&mut core);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ticket, read);
    assert!(matches!(done[0].result, Ok(Reply::Read { answer: 2, .. })));
}

// ----- snapshots ------------------------------------------------------------------------

#[test]
fn a_requested_snapshot_is_taken_and_handed_back() {
    let (mut core, _world, inputs) = scripted(DriverConfig::default(), |input| match input {
        Input::Tick => vec![
            Effect::Apply {
                entries: vec![cmd(1, 1, b"a"), cmd(2, 1, b"b")],
            },
            Effect::TakeSnapshot {
                through: LogIndex(2),
            },
        ],
        _ => vec![],
    });
    core.tick().unwrap();
    let expected = core.machine().snapshot();
    let inputs = inputs.lock().unwrap();
    let Some(Input::Snapshot { meta, data }) = inputs.last() else {
        panic!("no snapshot handed back: {inputs:?}");
    };
    assert_eq!(meta.index, LogIndex(2));
    assert_eq!(meta.epoch, Epoch(1));
    assert_eq!(*data, expected);
    assert!(matches!(
        inputs[1],
        Input::Applied {
            through: LogIndex(2)
        }
    ));
    assert_eq!(core.stats().snapshots_taken, 1);
}

#[test]
fn an_installed_snapshot_replaces_the_machine_and_settles_covered_proposals() {
    let mut source = Recorder::default();
    for i in 1..=3 {
        source.apply(LogIndex(i), &Bytes::from_static(b"x"));
    }
    let data = source.snapshot();
    let meta = SnapshotMeta {
        index: LogIndex(3),
        epoch: Epoch(4),
        ..SnapshotMeta::default()
    };
    let install = Effect::InstallSnapshot {
        meta: meta.clone(),
        data,
    };
    let (mut core, _world, inputs) = scripted(DriverConfig::default(), move |input| match input {
        Input::Propose { req, .. } => vec![Effect::Proposed {
            req: *req,
            index: LogIndex(2),
            epoch: Epoch(1),
        }],
        Input::Tick => vec![install.clone()],
        _ => vec![],
    });
    let covered = core.propose(Bytes::from_static(b"p")).unwrap();
    core.tick().unwrap();
    assert_eq!(*core.machine(), source);
    assert_eq!(core.applied_index(), LogIndex(3));
    let done = completions(&mut core);
    assert_eq!(done[0].ticket, covered);
    let e = done[0].result.clone().unwrap_err();
    assert_eq!(e, ClientError::OutcomeUnknown { index: LogIndex(2) });
    assert!(!e.is_definite(), "the snapshot may or may not hold it");
    assert_eq!(
        inputs.lock().unwrap().last(),
        Some(&Input::Applied {
            through: LogIndex(3)
        })
    );
}

#[test]
fn a_snapshot_the_machine_cannot_load_stops_the_node() {
    let (mut core, _world, _inputs) = scripted(DriverConfig::default(), |input| match input {
        Input::Tick => vec![Effect::InstallSnapshot {
            meta: SnapshotMeta::default(),
            data: Bytes::from_static(&[0xff, 0xff]),
        }],
        _ => vec![],
    });
    assert!(matches!(core.tick(), Err(NodeError::SnapshotRestore(_))));
    assert!(core.is_stopped());
}

// ----- fatal storage errors -------------------------------------------------------------

#[test]
fn a_failed_sync_stops_the_node_without_acking_or_sending() {
    let (mut core, world) = leader_core(&[1, 2, 3]);
    let ticket = core.propose(kv_put(1, 1, "k", "v")).unwrap();
    *core.storage().fail_syncs.lock().unwrap() = true;
    let err = core.sync().unwrap_err();
    assert!(matches!(err, NodeError::Sync(_)), "{err}");
    assert!(core.is_stopped());
    assert_eq!(
        world.take(),
        vec![WorldEvent::Write],
        "the appends waiting for the sync never left"
    );
    let done = completions(&mut core);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ticket, ticket);
    assert_eq!(
        done[0].result,
        Err(ClientError::Shutdown),
        "never Ok, never definite"
    );
    assert_eq!(
        core.status().commit,
        LogIndex(0),
        "the replica never heard Persisted"
    );
    assert!(matches!(core.sync(), Err(NodeError::Stopped)));
    assert!(matches!(
        core.receive(NodeId(2), &[1, 2, 3]),
        Err(NodeError::Stopped)
    ));
    assert_eq!(
        core.propose(kv_put(1, 2, "k", "v")),
        Err(ClientError::NotRunning)
    );
}

#[test]
fn a_single_node_commits_only_after_its_own_sync() {
    let (mut core, _world) = leader_core(&[1]);
    let ticket = core.propose(kv_put(1, 1, "k", "v")).unwrap();
    assert_eq!(
        core.drain_completions().count(),
        0,
        "not durable, not committed"
    );
    core.sync().unwrap();
    let done = completions(&mut core);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ticket, ticket);
    assert_eq!(
        done[0].result,
        Ok(Reply::Applied {
            index: LogIndex(1),
            response: KvResponse::Done
        })
    );
    let read = core.read(Bytes::from_static(b"k")).unwrap();
    let done = completions(&mut core);
    assert_eq!(done[0].ticket, read);
    assert!(matches!(
        &done[0].result,
        Ok(Reply::Read { answer: Some(v), .. }) if v == &Bytes::from_static(b"v")
    ));
}

// ----- a cluster over a fake network ----------------------------------------------------

#[test]
fn three_cores_over_a_fake_network_replicate_and_agree() {
    let members = [1, 2, 3];
    let world = World::default();
    let mut nodes: Vec<_> = members
        .iter()
        .map(|&id| kv_node(DriverConfig::default(), id, &members, &world))
        .collect();
    let mut tickets = Vec::new();
    for seq in 1..=4 {
        tickets.push(
            nodes[0]
                .propose(kv_put(7, seq, "k", ["a", "b", "c", "d"][seq as usize - 1]))
                .unwrap(),
        );
    }
    let refused = nodes[1].propose(kv_put(8, 1, "x", "y")).unwrap();
    let mut answered = Vec::new();
    // Deliver until quiet: each round syncs every node (group commit) and delivers what left.
    for _round in 0..20 {
        for n in nodes.iter_mut() {
            n.sync().unwrap();
        }
        let sends = world.take();
        for e in sends {
            if let WorldEvent::Send { from, to, bytes } = e {
                nodes[to.0 as usize - 1].receive(from, &bytes).unwrap();
            }
        }
        nodes[0].tick().unwrap();
        for n in nodes.iter_mut() {
            answered.extend(n.drain_completions());
        }
    }
    for (i, t) in tickets.iter().enumerate() {
        let c = answered.iter().find(|c| c.ticket == *t && c.result.is_ok());
        assert!(c.is_some(), "proposal {i} committed: {answered:?}");
    }
    let refusal = answered.iter().find(|c| c.ticket == refused).unwrap();
    assert_eq!(
        refusal.result,
        Err(ClientError::Rejected(RejectReason::NotLeader {
            hint: Some(NodeId(1))
        }))
    );
    for n in &nodes {
        assert_eq!(n.applied_index(), LogIndex(4));
        assert_eq!(n.machine(), nodes[0].machine());
        assert_eq!(n.machine().get(b"k"), Some(&Bytes::from_static(b"d")));
    }
}

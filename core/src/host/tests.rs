//! The host rule, tested once, at the host: a scripted replica emits exactly the effects a
//! test needs, and the tests watch what leaves the host and what the replica is fed.

use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::io::MemStorage;
use crate::kv::KvStore;
use crate::state_machine::StateMachine as _;
use crate::{HardState, LogIndex};

type Msg = u32;
type Script = Box<dyn FnMut(&Input<Msg>, &mut Vec<Effect<Msg>>)>;

/// A replica whose effects come from a closure, and which records every input it is fed.
struct Scripted {
    script: Script,
    fed: Rc<RefCell<Vec<Input<Msg>>>>,
}

impl Replica for Scripted {
    type Message = Msg;
    type Config = ();

    fn restore(_: (), _: Durable) -> Result<Self, RestoreError> {
        Ok(Self {
            script: Box::new(|_, _| {}),
            fed: Rc::default(),
        })
    }

    fn step(&mut self, input: Input<Msg>, out: &mut Vec<Effect<Msg>>) {
        (self.script)(&input, out);
        self.fed.borrow_mut().push(input);
    }

    fn status(&self) -> Status {
        Status::default()
    }
}

type TestHost = Host<Scripted, MemStorage, KvStore>;

fn host(
    script: impl FnMut(&Input<Msg>, &mut Vec<Effect<Msg>>) + 'static,
) -> (TestHost, Rc<RefCell<Vec<Input<Msg>>>>) {
    let fed = Rc::new(RefCell::new(Vec::new()));
    let replica = Scripted {
        script: Box::new(script),
        fed: fed.clone(),
    };
    let config = HostConfig {
        record_events: true,
        request_timeout_ticks: 5,
        ..HostConfig::default()
    };
    (
        Host::new(config, replica, MemStorage::default(), KvStore::new()),
        fed,
    )
}

fn hard(epoch: u64) -> Persist {
    Persist::HardState(HardState {
        epoch: Epoch(epoch),
        ..HardState::default()
    })
}

fn persist(seq: u64, op: Persist) -> Effect<Msg> {
    Effect::Persist {
        seq: PersistSeq(seq),
        op,
    }
}

fn send(to: u64, msg: Msg) -> Effect<Msg> {
    Effect::Send {
        to: NodeId(to),
        msg,
    }
}

fn sends(h: &mut TestHost) -> Vec<(u64, Msg)> {
    h.drain_sends().map(|(to, m)| (to.0, m)).collect()
}

fn command(i: u64, epoch: u64) -> Entry {
    let cmd = crate::kv::KvCommand {
        session: crate::session::SessionHeader {
            client: crate::session::ClientId(1),
            seq: i,
        },
        op: crate::kv::KvOp::Put {
            key: Bytes::from_static(b"k"),
            value: Bytes::from(format!("v{i}")),
        },
    };
    Entry::command(LogIndex(i), Epoch(epoch), cmd.encode())
}

#[test]
fn a_send_before_any_persist_leaves_at_once() {
    let (mut h, _) = host(|input, out| {
        if matches!(input, Input::Tick) {
            out.push(send(2, 7));
        }
    });
    h.tick().unwrap();
    assert_eq!(sends(&mut h), vec![(2, 7)]);
}

#[test]
fn sends_after_a_persist_wait_for_it_and_leave_in_order() {
    let (mut h, fed) = host(|input, out| {
        if matches!(input, Input::Tick) {
            out.push(send(2, 1));
            out.push(persist(1, hard(1)));
            out.push(send(2, 2));
            out.push(send(3, 3));
        }
    });
    h.tick().unwrap();
    assert_eq!(
        sends(&mut h),
        vec![(2, 1)],
        "only the send before the persist left"
    );
    assert_eq!(h.held_sends(), 2);
    assert!(h.needs_sync());
    h.sync().unwrap();
    assert_eq!(sends(&mut h), vec![(2, 2), (3, 3)]);
    assert_eq!(
        fed.borrow().last(),
        Some(&Input::Persisted {
            through: PersistSeq(1)
        }),
        "the replica hears of durability after the sends left"
    );
    assert_eq!(h.storage().syncs, 1);
    assert_eq!(h.storage().durable.hard_state.epoch, Epoch(1));
}

#[test]
fn durability_of_a_prefix_releases_only_the_sends_behind_it() {
    let (mut h, fed) = host(|input, out| {
        if matches!(input, Input::Tick) {
            out.push(persist(1, hard(1)));
            out.push(send(2, 1));
            out.push(persist(2, hard(2)));
            out.push(send(2, 2));
        }
    });
    h.tick().unwrap();
    assert!(sends(&mut h).is_empty());
    h.persisted(PersistSeq(1)).unwrap();
    assert_eq!(sends(&mut h), vec![(2, 1)]);
    assert!(h.needs_sync());
    h.persisted(PersistSeq(2)).unwrap();
    assert_eq!(sends(&mut h), vec![(2, 2)]);
    let persisted: Vec<_> = fed
        .borrow()
        .iter()
        .filter_map(|i| match i {
            Input::Persisted { through } => Some(through.0),
            _ => None,
        })
        .collect();
    assert_eq!(persisted, vec![1, 2]);
    assert!(
        matches!(h.persisted(PersistSeq(9)), Err(HostError::Contract(_))),
        "durability beyond what was written is a shell bug"
    );
}

#[test]
fn persists_out_of_order_stop_the_host() {
    let (mut h, _) = host(|input, out| {
        if matches!(input, Input::Tick) {
            out.push(persist(2, hard(1)));
        }
    });
    assert!(matches!(h.tick(), Err(HostError::Contract(_))));
    assert!(h.is_stopped());
    assert!(matches!(h.tick(), Err(HostError::Stopped)));
}

#[test]
fn applied_is_fed_once_per_step_before_the_snapshot_taken() {
    let (mut h, fed) = host(|input, out| {
        if matches!(input, Input::Tick) {
            out.push(Effect::Apply {
                entries: vec![Entry::noop(LogIndex(1), Epoch(1))],
            });
            out.push(Effect::Apply {
                entries: vec![command(2, 1)],
            });
            out.push(Effect::TakeSnapshot {
                through: LogIndex(2),
            });
        }
    });
    h.tick().unwrap();
    let fed = fed.borrow();
    assert_eq!(fed.len(), 3, "{fed:?}");
    assert_eq!(
        fed[1],
        Input::Applied {
            through: LogIndex(2)
        }
    );
    let Input::Snapshot { meta, data } = &fed[2] else {
        panic!("the snapshot follows Applied: {fed:?}");
    };
    assert_eq!(meta.index, LogIndex(2));
    assert_eq!(meta.epoch, Epoch(1));
    let mut restored = KvStore::new();
    restored.restore(data).unwrap();
    assert_eq!(restored.get(b"k"), Some(&Bytes::from_static(b"v2")));
}

#[test]
fn applying_out_of_order_or_snapshotting_ahead_stops_the_host() {
    let (mut h, _) = host(|input, out| {
        if matches!(input, Input::Tick) {
            out.push(Effect::Apply {
                entries: vec![Entry::noop(LogIndex(2), Epoch(1))],
            });
        }
    });
    assert!(matches!(h.tick(), Err(HostError::Contract(_))));
    let (mut h, _) = host(|input, out| {
        if matches!(input, Input::Tick) {
            out.push(Effect::TakeSnapshot {
                through: LogIndex(1),
            });
        }
    });
    assert!(matches!(h.tick(), Err(HostError::Contract(_))));
}

/// A leader-like script: a proposal is appended at the next index in epoch `epoch`, and
/// `Tick` applies whatever `commit` says.
fn proposer(
    epoch: Rc<RefCell<u64>>,
    commit: Rc<RefCell<Vec<Entry>>>,
) -> impl FnMut(&Input<Msg>, &mut Vec<Effect<Msg>>) {
    let mut next = 0u64;
    move |input, out| match input {
        Input::Propose { req, .. } => {
            next += 1;
            out.push(Effect::Proposed {
                req: *req,
                index: LogIndex(next),
                epoch: Epoch(*epoch.borrow()),
            });
        }
        Input::Tick => {
            let entries: Vec<Entry> = commit.borrow_mut().drain(..).collect();
            if !entries.is_empty() {
                out.push(Effect::Apply { entries });
            }
        }
        _ => {}
    }
}

#[test]
fn a_proposal_succeeds_iff_its_index_is_applied_in_its_epoch() {
    let epoch = Rc::new(RefCell::new(1));
    let commit = Rc::new(RefCell::new(Vec::new()));
    let (mut h, _) = host(proposer(epoch.clone(), commit.clone()));
    let a = h.propose(command(1, 1).payload).unwrap();
    let b = h.propose(command(2, 1).payload).unwrap();
    // Entry 1 commits as proposed; another leader's entry (epoch 2) takes index 2.
    commit.borrow_mut().extend([command(1, 1), command(2, 2)]);
    h.tick().unwrap();
    let done: Vec<_> = h.drain_completions().collect();
    assert_eq!(done.len(), 2);
    assert_eq!(done[0].ticket, a);
    assert!(matches!(
        done[0].result,
        Ok(Reply::Applied {
            index: LogIndex(1),
            ..
        })
    ));
    assert_eq!(done[1].ticket, b);
    let error = done[1].result.clone().unwrap_err();
    assert_eq!(error, ClientError::Superseded { index: LogIndex(2) });
    assert!(error.is_definite());
}

#[test]
fn a_proposal_named_after_its_index_was_applied_is_unknown() {
    let epoch = Rc::new(RefCell::new(1));
    let commit = Rc::new(RefCell::new(vec![Entry::noop(LogIndex(1), Epoch(1))]));
    let (mut h, _) = host(proposer(epoch, commit));
    h.tick().unwrap();
    let t = h.propose(Bytes::from_static(b"x")).unwrap();
    let done: Vec<_> = h.drain_completions().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ticket, t);
    let error = done[0].result.clone().unwrap_err();
    assert!(!error.is_definite(), "{error}");
}

#[test]
fn requests_time_out_indefinitely_and_the_table_is_bounded() {
    let (mut h, _) = host(|_, _| {});
    let config = HostConfig {
        pending_requests_max: 2,
        request_timeout_ticks: 3,
        ..HostConfig::default()
    };
    h.config = config;
    h.pending = PendingTable::new(2);
    h.propose(Bytes::new()).unwrap();
    h.read(Bytes::new()).unwrap();
    assert_eq!(
        h.propose(Bytes::new()),
        Err(ClientError::Rejected(RejectReason::Busy))
    );
    for _ in 0..3 {
        h.tick().unwrap();
    }
    let done: Vec<_> = h.drain_completions().collect();
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|c| c.result == Err(ClientError::Timeout)));
    assert!(!ClientError::Timeout.is_definite());
}

#[test]
fn reads_are_served_once_applied_through_their_index() {
    let (mut h, _) = host(|input, out| match input {
        Input::Read { req } => out.push(Effect::ReadReady {
            req: *req,
            index: LogIndex(1),
        }),
        Input::Tick => out.push(Effect::Apply {
            entries: vec![command(1, 1)],
        }),
        _ => {}
    });
    let t = h.read(Bytes::from_static(b"k")).unwrap();
    assert_eq!(h.drain_completions().count(), 0, "not applied yet");
    h.tick().unwrap();
    let done: Vec<_> = h.drain_completions().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].ticket, t);
    assert_eq!(
        done[0].result,
        Ok(Reply::Read {
            index: LogIndex(1),
            answer: Some(Bytes::from_static(b"v1"))
        })
    );
}

#[test]
fn rejections_keep_their_definiteness_and_stop_ends_the_rest_unknown() {
    let (mut h, _) = host(|input, out| {
        if let Input::Propose { req, command } = input {
            if command.is_empty() {
                out.push(Effect::Reject {
                    req: *req,
                    reason: RejectReason::NotLeader { hint: None },
                });
            } else {
                out.push(Effect::Reject {
                    req: *req,
                    reason: RejectReason::LeadershipLost { hint: None },
                });
            }
        }
    });
    h.propose(Bytes::new()).unwrap();
    h.propose(Bytes::from_static(b"x")).unwrap();
    let done: Vec<_> = h.drain_completions().collect();
    assert!(done[0].result.clone().unwrap_err().is_definite());
    assert!(!done[1].result.clone().unwrap_err().is_definite());
    h.read(Bytes::new()).unwrap();
    h.stop();
    let done: Vec<_> = h.drain_completions().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].result, Err(ClientError::Shutdown));
    assert_eq!(h.propose(Bytes::new()), Err(ClientError::NotRunning));
}

#[test]
fn an_installed_snapshot_makes_covered_proposals_unknown_and_feeds_applied() {
    let mut store = KvStore::new();
    store.apply(LogIndex(3), &command(3, 1).payload);
    let data = store.snapshot();
    let mut next = 0;
    let (mut h, fed) = host(move |input, out| match input {
        Input::Propose { req, .. } => {
            next += 1;
            out.push(Effect::Proposed {
                req: *req,
                index: LogIndex(next),
                epoch: Epoch(1),
            });
        }
        Input::Tick => out.push(Effect::InstallSnapshot {
            meta: SnapshotMeta {
                index: LogIndex(3),
                epoch: Epoch(1),
                ..SnapshotMeta::default()
            },
            data: data.clone(),
        }),
        _ => {}
    });
    h.propose(Bytes::from_static(b"x")).unwrap();
    h.tick().unwrap();
    let done: Vec<_> = h.drain_completions().collect();
    assert_eq!(
        done[0].result,
        Err(ClientError::OutcomeUnknown { index: LogIndex(1) })
    );
    assert_eq!(h.applied_index(), LogIndex(3));
    assert_eq!(
        fed.borrow().last(),
        Some(&Input::Applied {
            through: LogIndex(3)
        })
    );
    assert_eq!(h.machine().get(b"k"), Some(&Bytes::from_static(b"v3")));
}

#[test]
fn the_shell_cannot_feed_follow_ups_or_unanswerable_requests() {
    let (mut h, _) = host(|_, _| {});
    assert!(matches!(
        h.input(Input::Applied {
            through: LogIndex(1)
        }),
        Err(HostError::Contract(_))
    ));
    let (mut h, _) = host(|_, _| {});
    assert!(matches!(
        h.input(Input::Read { req: RequestId(1) }),
        Err(HostError::Contract(_))
    ));
}

#[test]
fn a_storage_error_stops_the_host_and_acknowledges_nothing() {
    let (mut h, fed) = host(|input, out| {
        if matches!(input, Input::Tick) {
            // A gap: the reference semantics refuse it.
            out.push(persist(
                1,
                Persist::Append {
                    entries: vec![Entry::noop(LogIndex(5), Epoch(1))],
                },
            ));
            out.push(send(2, 1));
        }
    });
    h.read(Bytes::new()).unwrap();
    assert!(matches!(h.tick(), Err(HostError::Write(_))));
    assert!(sends(&mut h).is_empty());
    assert!(
        !fed.borrow()
            .iter()
            .any(|i| matches!(i, Input::Persisted { .. }))
    );
    let done: Vec<_> = h.drain_completions().collect();
    assert_eq!(done[0].result, Err(ClientError::Shutdown));
}

#[test]
fn a_request_that_stops_the_host_reports_the_error_through_check() {
    let (mut h, _) = host(|input, out| {
        if matches!(input, Input::Propose { .. }) {
            // A gap: the reference semantics refuse it.
            out.push(persist(
                1,
                Persist::Append {
                    entries: vec![Entry::noop(LogIndex(5), Epoch(1))],
                },
            ));
        }
    });
    assert!(h.check().is_ok());
    // The request call reports only client errors: the ticket was accepted.
    let ticket = h.propose(Bytes::from_static(b"x")).unwrap();
    assert!(h.is_stopped());
    assert!(matches!(h.check(), Err(HostError::Write(_))));
    assert!(matches!(h.check(), Err(HostError::Stopped)));
    let done: Vec<_> = h.drain_completions().collect();
    assert_eq!(done[0].ticket, ticket);
    assert_eq!(done[0].result, Err(ClientError::Shutdown));
}

#[test]
fn events_record_what_happened_in_order() {
    let (mut h, _) = host(|input, out| {
        if matches!(input, Input::Tick) {
            out.push(persist(1, hard(4)));
            out.push(Effect::RoleChanged {
                role: Role::Leader,
                epoch: Epoch(4),
                leader: Some(NodeId(1)),
            });
        }
    });
    h.tick().unwrap();
    h.sync().unwrap();
    let events: Vec<_> = h.drain_events().collect();
    assert_eq!(
        events,
        vec![
            HostEvent::Persist {
                seq: PersistSeq(1),
                op: hard(4)
            },
            HostEvent::RoleChanged {
                role: Role::Leader,
                epoch: Epoch(4),
                leader: Some(NodeId(1))
            },
            HostEvent::Durable {
                through: PersistSeq(1),
                released: 0
            },
        ]
    );
    assert_eq!(h.role(), (Role::Leader, Some(NodeId(1))));
}

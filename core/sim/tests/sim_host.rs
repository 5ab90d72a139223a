//! The simulator as a host, seen through two small probe replicas: it holds each send
//! until the persists before it are synced, and it drives snapshots, crashes and restarts
//! from durable state (snapshot plus log) the way a production host must.

use std::collections::BTreeMap;

use rsm_core::{
    Durable, Effect, Entry, Epoch, HardState, Input, LogIndex, Membership, NodeId, Persist,
    PersistSeq, Replica, RestoreError, Role, Status,
};
use rsm_sim::{self as sim, SimOptions, Swarm};

/// A single-node log: commits what is durable, snapshots every few entries.
#[derive(Debug)]
struct Solo {
    id: NodeId,
    membership: Membership,
    epoch: Epoch,
    claimed: bool,
    /// Entries after the snapshot.
    log: Vec<Entry>,
    snapshot: LogIndex,
    seq: PersistSeq,
    unsynced: BTreeMap<PersistSeq, LogIndex>,
    durable: LogIndex,
    applied: LogIndex,
}

const SNAPSHOT_EVERY: u64 = 5;

thread_local! {
    /// (snapshots taken, restarts from a durable snapshot) on this test's thread.
    static SEEN: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

fn seen(taken: u64, restored: u64) {
    SEEN.with(|c| {
        let (a, b) = c.get();
        c.set((a + taken, b + restored));
    });
}

impl Solo {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot.0 + self.log.len() as u64)
    }

    fn persist(&mut self, op: Persist, out: &mut Vec<Effect<()>>) {
        self.seq = self.seq.next();
        if let Persist::Append { entries } = &op {
            self.unsynced
                .insert(self.seq, entries[entries.len() - 1].index);
        }
        out.push(Effect::Persist { seq: self.seq, op });
    }

    fn claim(&mut self, out: &mut Vec<Effect<()>>) {
        if !self.claimed {
            self.claimed = true;
            let hs = HardState {
                epoch: self.epoch,
                ..HardState::default()
            };
            self.persist(Persist::HardState(hs), out);
        }
    }
}

impl Replica for Solo {
    type Message = ();
    type Config = (NodeId, Membership);

    fn restore((id, membership): Self::Config, d: Durable) -> Result<Self, RestoreError> {
        let snapshot = d.snapshot_index();
        seen(0, u64::from(d.snapshot.is_some()));
        Ok(Self {
            id,
            membership,
            epoch: d.hard_state.epoch.next(),
            claimed: false,
            durable: d.last_index(),
            log: d.entries,
            snapshot,
            seq: PersistSeq(0),
            unsynced: BTreeMap::new(),
            applied: snapshot,
        })
    }

    fn step(&mut self, input: Input<()>, out: &mut Vec<Effect<()>>) {
        self.claim(out);
        match input {
            Input::Propose { req, command } => {
                let entry = Entry::command(self.last_index().next(), self.epoch, command);
                let index = entry.index;
                self.log.push(entry.clone());
                self.persist(
                    Persist::Append {
                        entries: vec![entry],
                    },
                    out,
                );
                out.push(Effect::Proposed {
                    req,
                    index,
                    epoch: self.epoch,
                });
            }
            Input::Read { req } => out.push(Effect::ReadReady {
                req,
                index: self.last_index(),
            }),
            Input::Persisted { through } => {
                while let Some((&s, &last)) = self.unsynced.first_key_value() {
                    if s > through {
                        break;
                    }
                    self.unsynced.remove(&s);
                    self.durable = self.durable.max(last);
                }
                if self.durable > self.applied {
                    let from = (self.applied.0 - self.snapshot.0) as usize;
                    let to = (self.durable.0 - self.snapshot.0) as usize;
                    out.push(Effect::Apply {
                        entries: self.log[from..to].to_vec(),
                    });
                    self.applied = self.durable;
                    if self.applied.0 - self.snapshot.0 >= SNAPSHOT_EVERY {
                        out.push(Effect::TakeSnapshot {
                            through: self.applied,
                        });
                    }
                }
            }
            Input::Snapshot { meta, data } => {
                assert_eq!(
                    meta.index, self.applied,
                    "the host snapshots what was applied"
                );
                assert_eq!(meta.membership, self.membership);
                seen(1, 0);
                let drop = (meta.index.0 - self.snapshot.0) as usize;
                self.log.drain(..drop);
                self.snapshot = meta.index;
                self.persist(Persist::Snapshot { meta, data }, out);
            }
            _ => {}
        }
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: Role::Leader,
            epoch: self.epoch,
            leader: Some(self.id),
            commit: self.durable,
            applied: self.applied,
            last_index: self.last_index(),
            membership: self.membership.clone(),
        }
    }
}

fn solo_config(id: NodeId, m: &Membership, _seed: u64) -> (NodeId, Membership) {
    (id, m.clone())
}

#[test]
fn snapshots_crashes_and_restarts_keep_a_single_node_linearizable() {
    let swarm = Swarm {
        crash: 0.4,
        torn_writes: true,
        fsync_units_min: 5,
        fsync_units_max: 40,
        ..Swarm::calm(1)
    };
    let opts = SimOptions {
        keep_trace: true,
        ..SimOptions::default()
    };
    let mut crashes = 0;
    for seed in 0..20 {
        let run = sim::run_swarm::<Solo>(seed, swarm.clone(), &opts, &solo_config);
        assert!(run.violation.is_none(), "{}", run.failure_report("solo"));
        assert!(run.stats.ops_ok > 0);
        crashes += run.stats.faults.get(sim::FaultKind::Crash);
        let restarts = run
            .trace
            .iter()
            .filter(|l| l.contains(r#""type":"restart""#))
            .count();
        assert_eq!(
            restarts as u64,
            run.stats.faults.get(sim::FaultKind::Restart)
        );
    }
    assert!(crashes > 0, "the runs crashed the node");
    let (taken, restored) = SEEN.with(|c| c.get());
    assert!(
        taken > 0 && restored > 0,
        "snapshots taken {taken}, restored {restored}"
    );
}

/// Every few ticks: persist a hard state, then send a ping to the next node.
#[derive(Debug)]
struct Pinger {
    id: NodeId,
    peers: u64,
    ticks: u64,
    seq: PersistSeq,
}

impl Replica for Pinger {
    type Message = u64;
    type Config = (NodeId, u64);

    fn restore((id, peers): Self::Config, _d: Durable) -> Result<Self, RestoreError> {
        Ok(Self {
            id,
            peers,
            ticks: 0,
            seq: PersistSeq(0),
        })
    }

    fn step(&mut self, input: Input<u64>, out: &mut Vec<Effect<u64>>) {
        if input != Input::Tick {
            return;
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(3) {
            self.seq = self.seq.next();
            out.push(Effect::Persist {
                seq: self.seq,
                op: Persist::HardState(HardState {
                    epoch: Epoch(self.ticks),
                    ..HardState::default()
                }),
            });
        }
        out.push(Effect::Send {
            to: NodeId(self.id.0 % self.peers + 1),
            msg: self.ticks,
        });
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            ..Status::default()
        }
    }
}

#[test]
fn a_send_after_a_persist_leaves_only_once_it_is_synced() {
    let swarm = Swarm {
        fsync_units_min: 15,
        fsync_units_max: 60,
        clients: 0,
        ..Swarm::calm(3)
    };
    let opts = SimOptions {
        fault_ticks: 100,
        keep_trace: true,
        ..SimOptions::default()
    };
    let run = sim::run_swarm::<Pinger>(7, swarm, &opts, &|id, m: &Membership, _| {
        (id, m.voters.len() as u64)
    });
    assert!(run.violation.is_none(), "{}", run.failure_report("pinger"));
    let (mut persisted, mut synced) = (BTreeMap::new(), BTreeMap::new());
    let (mut sends, mut held) = (0, 0);
    for line in &run.trace {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let node = v["node"].as_u64().unwrap_or(0);
        match v["kind"]["type"].as_str().unwrap() {
            "persist" => {
                persisted.insert(node, v["kind"]["seq"].as_u64().unwrap());
            }
            "synced" => {
                synced.insert(node, v["kind"]["through"].as_u64().unwrap());
            }
            "send" => {
                sends += 1;
                // The ping sent at tick t follows the persist numbered t / 3.
                let barrier = v["kind"]["msg"].as_u64().unwrap() / 3;
                let s = synced.get(&node).copied().unwrap_or(0);
                assert!(
                    s >= barrier,
                    "{line}: persist {barrier} not yet synced ({s})"
                );
                held += u64::from(persisted.get(&node).copied().unwrap_or(0) > s);
            }
            _ => {}
        }
    }
    assert!(sends > 50 && persisted.len() == 3);
    assert!(
        held > 0,
        "some sends left before a later persist synced: not over-held"
    );
}

#[test]
fn the_history_check_runs_at_the_end_and_its_failure_is_a_violation() {
    let opts = SimOptions {
        history_check: Some(|h| Err(format!("refused {} operations", h.len()))),
        ..SimOptions::default()
    };
    let run = sim::run_swarm::<Solo>(3, Swarm::calm(1), &opts, &solo_config);
    let v = run.violation.expect("the check refused");
    assert_eq!(v.invariant, sim::Invariant::Linearizability);
    assert_eq!(
        v.detail,
        format!("refused {} operations", run.history.len())
    );
    assert!(
        run.stats.liveness_ticks.is_some(),
        "it ran after convergence"
    );
}

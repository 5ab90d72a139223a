//! A small in-memory cluster of any protocol: hosts persist at once, deliver messages
//! when asked, and keep a digest of what each replica applied.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rsm_consensus::{Paxos, PaxosConfig, Raft, RaftConfig};
use rsm_core::{
    Bytes, Durable, Effect, EntryKind, Input, LogIndex, Membership, NodeId, Replica, RequestId,
    Role, SnapshotMeta,
};

use super::ids;

/// A configuration that names its node.
pub trait HasId {
    fn id(&self) -> NodeId;
}

impl HasId for RaftConfig {
    fn id(&self) -> NodeId {
        self.id
    }
}

impl HasId for PaxosConfig {
    fn id(&self) -> NodeId {
        self.id
    }
}

/// What one host did: its durable image and its state machine's digest.
pub struct Host<R: Replica = Raft> {
    pub raft: R,
    pub config: R::Config,
    pub durable: Durable,
    pub applied: LogIndex,
    /// Hash chain over applied commands: equal digests at equal indexes mean equal
    /// state machines.
    pub digest: u64,
    pub snapshots_taken: usize,
    pub up: bool,
}

pub struct Cluster<R: Replica = Raft> {
    pub hosts: BTreeMap<NodeId, Host<R>>,
    pub net: VecDeque<(NodeId, NodeId, R::Message)>,
    /// Links that drop every message, as (from, to).
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub effects: BTreeMap<NodeId, Vec<Effect<R::Message>>>,
    pub commits_by_index: BTreeMap<u64, (u64, Bytes)>,
    pub next_req: u64,
}

fn fold(digest: u64, index: LogIndex, payload: &[u8]) -> u64 {
    let mut h = digest ^ index.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in payload {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl<R: Replica> Cluster<R>
where
    R::Config: HasId,
{
    pub fn new(configs: Vec<R::Config>) -> Self {
        let mut hosts = BTreeMap::new();
        for c in configs {
            hosts.insert(
                c.id(),
                Host {
                    raft: R::restore(c.clone(), Durable::default()).expect("valid config"),
                    config: c,
                    durable: Durable::default(),
                    applied: LogIndex(0),
                    digest: 0,
                    snapshots_taken: 0,
                    up: true,
                },
            );
        }
        Self {
            hosts,
            net: VecDeque::new(),
            cut: BTreeSet::new(),
            effects: BTreeMap::new(),
            commits_by_index: BTreeMap::new(),
            next_req: 1,
        }
    }

    pub fn add_host(&mut self, c: R::Config) {
        let id = c.id();
        let mut one = Cluster::<R>::new(vec![c]);
        let host = one.hosts.remove(&id).expect("just built");
        self.hosts.insert(id, host);
    }

    pub fn input(&mut self, id: NodeId, input: Input<R::Message>) {
        let Some(h) = self.hosts.get_mut(&id) else {
            return;
        };
        if !h.up {
            return;
        }
        let mut out = Vec::new();
        h.raft.step(input, &mut out);
        self.execute(id, out);
    }

    /// Execute effects as a host does: persist at once (then report it), send, apply
    /// (then report it), take snapshots when asked.
    fn execute(&mut self, id: NodeId, out: Vec<Effect<R::Message>>) {
        let mut follow_ups: Vec<Input<R::Message>> = Vec::new();
        let mut last_persist = None;
        for e in &out {
            let h = self.hosts.get_mut(&id).expect("host exists");
            match e {
                Effect::Persist { seq, op } => {
                    h.durable
                        .apply(op)
                        .expect("persist follows the reference semantics");
                    last_persist = Some(*seq);
                }
                Effect::Send { to, msg } if !self.cut.contains(&(id, *to)) => {
                    self.net.push_back((id, *to, msg.clone()));
                }
                Effect::Apply { entries } => {
                    for entry in entries {
                        assert_eq!(entry.index, h.applied.next(), "{id} applies in order");
                        h.applied = entry.index;
                        if entry.kind == EntryKind::Command {
                            h.digest = fold(h.digest, entry.index, &entry.payload);
                        }
                        let seen = self
                            .commits_by_index
                            .entry(entry.index.0)
                            .or_insert((entry.epoch.0, entry.payload.clone()));
                        assert_eq!(
                            (seen.0, &seen.1),
                            (entry.epoch.0, &entry.payload),
                            "every replica applies the same entry at {}",
                            entry.index
                        );
                    }
                    let h = self.hosts.get_mut(&id).expect("host exists");
                    follow_ups.push(Input::Applied { through: h.applied });
                }
                Effect::TakeSnapshot { through } => {
                    assert!(*through <= h.applied);
                    h.snapshots_taken += 1;
                    let data =
                        Bytes::from([h.applied.0.to_le_bytes(), h.digest.to_le_bytes()].concat());
                    follow_ups.push(Input::Snapshot {
                        meta: SnapshotMeta {
                            index: h.applied,
                            ..SnapshotMeta::default()
                        },
                        data,
                    });
                }
                Effect::InstallSnapshot { meta, data } => {
                    let idx = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
                    assert_eq!(idx, meta.index.0);
                    h.applied = meta.index;
                    h.digest = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
                }
                _ => {}
            }
        }
        self.effects.entry(id).or_default().extend(out);
        if let Some(through) = last_persist {
            follow_ups.insert(0, Input::Persisted { through });
        }
        for input in follow_ups {
            self.input(id, input);
        }
    }

    /// Deliver queued messages until the network is quiet (or `max` deliveries).
    pub fn deliver_all(&mut self, max: usize) -> usize {
        let mut n = 0;
        while let Some((from, to, msg)) = self.net.pop_front() {
            if n >= max {
                self.net.push_front((from, to, msg));
                break;
            }
            n += 1;
            if !self.cut.contains(&(from, to)) {
                self.input(to, Input::Receive { from, msg });
            }
        }
        n
    }

    pub fn tick_all(&mut self) {
        let ids: Vec<NodeId> = self.hosts.keys().copied().collect();
        for id in ids {
            self.input(id, Input::Tick);
        }
    }

    /// Tick and deliver for `rounds` rounds.
    pub fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.tick_all();
            self.deliver_all(100_000);
        }
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.up && h.raft.status().role == Role::Leader)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Run until exactly one leader exists that every up member believes in.
    pub fn stable_leader(&mut self, rounds: usize) -> Option<NodeId> {
        for _ in 0..rounds {
            self.run(1);
            let leaders = self.leaders();
            if leaders.len() == 1 {
                return Some(leaders[0]);
            }
        }
        None
    }

    pub fn propose(&mut self, at: NodeId, payload: &[u8]) -> RequestId {
        let req = RequestId(self.next_req);
        self.next_req += 1;
        self.input(
            at,
            Input::Propose {
                req,
                command: Bytes::copy_from_slice(payload),
            },
        );
        req
    }

    pub fn isolate(&mut self, id: NodeId) {
        let all: Vec<NodeId> = self.hosts.keys().copied().collect();
        for other in all {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crash `id`: it loses its volatile state and restarts from its durable image.
    pub fn restart(&mut self, id: NodeId) {
        let h = self.hosts.get_mut(&id).expect("host exists");
        h.raft = R::restore(h.config.clone(), h.durable.clone()).expect("restore");
        let (idx, digest) = match &h.durable.snapshot {
            Some((m, data)) => (
                m.index,
                u64::from_le_bytes(data[8..16].try_into().expect("8 bytes")),
            ),
            None => (LogIndex(0), 0),
        };
        h.applied = idx;
        h.digest = digest;
    }

    pub fn take_effects(&mut self, id: NodeId) -> Vec<Effect<R::Message>> {
        self.effects.remove(&id).unwrap_or_default()
    }

    pub fn status(&self, id: NodeId) -> rsm_core::Status {
        self.hosts[&id].raft.status()
    }
}

impl Cluster<Raft> {
    pub fn with_voters(voters: &[u64], tune: impl Fn(&mut RaftConfig)) -> Self {
        let configs = voters
            .iter()
            .map(|&id| {
                let mut c = RaftConfig::new(NodeId(id), Membership::new(ids(voters)), id * 7919);
                tune(&mut c);
                c
            })
            .collect();
        Self::new(configs)
    }
}

impl Cluster<Paxos> {
    pub fn paxos(voters: &[u64], tune: impl Fn(&mut PaxosConfig)) -> Self {
        let configs = voters
            .iter()
            .map(|&id| {
                let mut c = PaxosConfig::new(NodeId(id), Membership::new(ids(voters)), id * 7919);
                tune(&mut c);
                c
            })
            .collect();
        Self::new(configs)
    }
}

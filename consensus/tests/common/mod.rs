//! Test fixtures: one replica driven by explicit inputs, and a small in-memory cluster
//! whose hosts persist at once, deliver messages when asked and keep
//! a digest of what each replica applied.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rsm_consensus::{Raft, RaftConfig, RaftMessage};
use rsm_core::{
    Bytes, Durable, Effect, Entry, EntryKind, Epoch, Input, LogIndex, Membership, NodeId, Persist,
    PersistSeq, Replica, RequestId, Role, SnapshotMeta, Term,
};

pub type Fx = Vec<Effect<RaftMessage>>;

pub fn ids(v: &[u64]) -> Vec<NodeId> {
    v.iter().map(|&i| NodeId(i)).collect()
}

pub fn config(id: u64, voters: &[u64]) -> RaftConfig {
    let mut c = RaftConfig::new(NodeId(id), Membership::new(ids(voters)), id);
    c.pre_vote = false;
    c.check_quorum = false;
    c
}

pub fn replica(c: RaftConfig) -> Raft {
    Raft::restore(c, Durable::default()).expect("valid config")
}

pub fn step(r: &mut Raft, input: Input<RaftMessage>) -> Fx {
    let mut out = Vec::new();
    r.step(input, &mut out);
    out
}

pub fn recv(r: &mut Raft, from: u64, msg: RaftMessage) -> Fx {
    step(
        r,
        Input::Receive {
            from: NodeId(from),
            msg,
        },
    )
}

pub fn sends(fx: &Fx) -> Vec<(NodeId, RaftMessage)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg } => Some((*to, msg.clone())),
            _ => None,
        })
        .collect()
}

pub fn persists(fx: &Fx) -> Vec<(PersistSeq, Persist)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Persist { seq, op } => Some((*seq, op.clone())),
            _ => None,
        })
        .collect()
}

pub fn last_seq(fx: &Fx) -> Option<PersistSeq> {
    persists(fx).last().map(|(s, _)| *s)
}

/// Report every persist in `fx` durable; returns the effects that causes.
pub fn persist_all(r: &mut Raft, fx: &Fx) -> Fx {
    match last_seq(fx) {
        Some(through) => step(r, Input::Persisted { through }),
        None => Vec::new(),
    }
}

/// Report persists durable until the replica emits no more; returns every effect.
pub fn persist_settle(r: &mut Raft, fx: Fx) -> Fx {
    let mut all = fx;
    let mut from = 0;
    while let Some(through) = last_seq(&all[from..].to_vec()) {
        from = all.len();
        all.extend(step(r, Input::Persisted { through }));
    }
    all
}

pub fn tick_n(r: &mut Raft, n: u64) -> Fx {
    let mut all = Vec::new();
    for _ in 0..n {
        all.extend(step(r, Input::Tick));
    }
    all
}

pub fn applied_indexes(fx: &Fx) -> Vec<u64> {
    fx.iter()
        .flat_map(|e| match e {
            Effect::Apply { entries } => entries.iter().map(|e| e.index.0).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// Tick until the replica stands for election; returns the effects of the last tick.
pub fn tick_until_candidate(r: &mut Raft) -> Fx {
    for _ in 0..1000 {
        let fx = step(r, Input::Tick);
        if r.status().role == Role::Candidate {
            return fx;
        }
    }
    panic!("no election timeout fired");
}

/// Tick a lone voter's replica into leadership of a one-node cluster.
pub fn sole_leader(id: u64) -> Raft {
    let mut r = replica(config(id, &[id]));
    for _ in 0..100 {
        let fx = step(&mut r, Input::Tick);
        persist_all(&mut r, &fx);
        if r.status().role == Role::Leader {
            return r;
        }
    }
    panic!("a lone voter must elect itself");
}

/// What one host did: its durable image and its state machine's digest.
pub struct Host {
    pub raft: Raft,
    pub config: RaftConfig,
    pub durable: Durable,
    pub applied: LogIndex,
    /// Hash chain over applied commands: equal digests at equal indexes mean equal
    /// state machines.
    pub digest: u64,
    pub snapshots_taken: usize,
    pub up: bool,
}

pub struct Cluster {
    pub hosts: BTreeMap<NodeId, Host>,
    pub net: VecDeque<(NodeId, NodeId, RaftMessage)>,
    /// Links that drop every message, as (from, to).
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub effects: BTreeMap<NodeId, Fx>,
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

impl Cluster {
    pub fn new(configs: Vec<RaftConfig>) -> Self {
        let mut hosts = BTreeMap::new();
        for c in configs {
            hosts.insert(
                c.id,
                Host {
                    raft: replica(c.clone()),
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

    pub fn add_host(&mut self, c: RaftConfig) {
        let id = c.id;
        let mut one = Cluster::new(vec![c]);
        let host = one.hosts.remove(&id).expect("just built");
        self.hosts.insert(id, host);
    }

    pub fn input(&mut self, id: NodeId, input: Input<RaftMessage>) {
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
    fn execute(&mut self, id: NodeId, out: Fx) {
        let mut follow_ups: Vec<Input<RaftMessage>> = Vec::new();
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
        h.raft = Raft::restore(h.config.clone(), h.durable.clone()).expect("restore");
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

    pub fn take_effects(&mut self, id: NodeId) -> Fx {
        self.effects.remove(&id).unwrap_or_default()
    }

    pub fn status(&self, id: NodeId) -> rsm_core::Status {
        self.hosts[&id].raft.status()
    }
}

pub fn membership(voters: &[u64], learners: &[u64]) -> Membership {
    Membership::with_learners(ids(voters), ids(learners))
}

pub fn vote_req(term: u64, last_index: u64, last_term: u64) -> RaftMessage {
    RaftMessage::RequestVote {
        term: Term(term),
        pre_vote: false,
        last_index: LogIndex(last_index),
        last_term: Term(last_term),
        transfer: false,
        priority: 0,
    }
}

pub fn grant(term: u64) -> RaftMessage {
    RaftMessage::RequestVoteResponse {
        term: Term(term),
        pre_vote: false,
        granted: true,
    }
}

pub fn append(term: u64, prev: (u64, u64), entries: &[(u64, u64)], commit: u64) -> RaftMessage {
    RaftMessage::AppendEntries {
        term: Term(term),
        prev_index: LogIndex(prev.0),
        prev_term: Term(prev.1),
        entries: entries
            .iter()
            .map(|&(i, t)| Entry::command(LogIndex(i), Epoch(t), Bytes::from(vec![i as u8])))
            .collect(),
        commit: LogIndex(commit),
    }
}

pub fn ack(term: u64, index: u64) -> RaftMessage {
    RaftMessage::AppendEntriesResponse {
        term: Term(term),
        success: true,
        index: LogIndex(index),
        hint_index: LogIndex(0),
        hint_term: None,
    }
}

/// Make replica 1 of {1,2,3} leader of term 1 with its no-op durable; returns it and
/// the effects of becoming leader.
pub fn leader_of_three() -> (Raft, Fx) {
    let mut r = replica(config(1, &[1, 2, 3]));
    let fx = tick_n(&mut r, 20);
    persist_all(&mut r, &fx);
    let fx = recv(&mut r, 2, grant(1));
    assert_eq!(r.status().role, Role::Leader);
    let more = persist_all(&mut r, &fx);
    let mut all = fx;
    all.extend(more);
    (r, all)
}

/// Leader of term 1 whose no-op (index 1) is committed by follower 2's ack.
pub fn committed_leader() -> Raft {
    let (mut r, _) = leader_of_three();
    recv(&mut r, 2, ack(1, 1));
    assert_eq!(r.status().commit, LogIndex(1));
    r
}

/// Whether the first message sent is a granted vote.
pub fn first_is_grant(fx: &Fx) -> bool {
    matches!(
        sends(fx).first(),
        Some((_, RaftMessage::RequestVoteResponse { granted: true, .. }))
    )
}

/// Whether the first message sent is a refused vote.
pub fn first_is_refusal(fx: &Fx) -> bool {
    matches!(
        sends(fx).first(),
        Some((_, RaftMessage::RequestVoteResponse { granted: false, .. }))
    )
}

/// Replica 1 built from `c`, leader of term 1 with its no-op durable and acknowledged by
/// follower 2 (so committed, and follower 2 in the pipelined state).
pub fn committed_leader_with(c: RaftConfig) -> Raft {
    let mut r = replica(c);
    let fx = tick_until_candidate(&mut r);
    persist_all(&mut r, &fx);
    let became = recv(&mut r, 2, grant(1));
    persist_all(&mut r, &became);
    recv(&mut r, 2, ack(1, 1));
    r
}

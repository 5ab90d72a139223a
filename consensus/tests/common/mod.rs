//! Test fixtures: one Raft replica driven by explicit inputs, and a small in-memory
//! cluster of any protocol (`cluster`) whose hosts persist at once, deliver messages when
//! asked and keep a digest of what each replica applied.

#![allow(dead_code)]

use rsm_consensus::{Raft, RaftConfig, RaftMessage};
use rsm_core::{
    Bytes, Durable, Effect, Entry, Epoch, Input, LogIndex, Membership, NodeId, Persist, PersistSeq,
    Replica, Role, Term,
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

mod cluster;

#[allow(unused_imports)]
pub use cluster::{Cluster, HasId};

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

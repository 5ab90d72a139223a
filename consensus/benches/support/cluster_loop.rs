//! A 3-node Raft cluster driven in one thread with in-memory mailboxes and no disk: the
//! loop both benchmarks measure. Each round the host tops the leader up to `window`
//! proposals in flight, delivers every queued message, then reports each node's writes
//! durable (one "fsync" per node per round, like group commit).

use std::collections::VecDeque;

use rsm_consensus::{Raft, RaftConfig, RaftMessage};
use rsm_core::{
    Bytes, Durable, Effect, EntryKind, Input, LogIndex, Membership, NodeId, PersistSeq, Replica,
    RequestId, Role, SnapshotMeta,
};

const NODES: usize = 3;

#[derive(Debug)]
pub struct ClusterLoop {
    nodes: Vec<Raft>,
    queue: VecDeque<(usize, NodeId, RaftMessage)>,
    unsynced: [Option<PersistSeq>; NODES],
    out: Vec<Effect<RaftMessage>>,
    follow_ups: Vec<Input<RaftMessage>>,
    leader: usize,
    /// Commands the leader applied.
    pub committed: u64,
    proposed: u64,
    payload: Bytes,
}

impl ClusterLoop {
    pub fn new(payload_bytes: usize) -> Self {
        let ids: Vec<NodeId> = (1..=NODES as u64).map(NodeId).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut c = RaftConfig::new(id, Membership::new(ids.clone()), id.0);
                c.uncommitted_bytes_max = 1 << 30;
                Raft::restore(c, Durable::default()).expect("valid config")
            })
            .collect();
        let mut l = Self {
            nodes,
            queue: VecDeque::new(),
            unsynced: [None; NODES],
            out: Vec::with_capacity(1024),
            follow_ups: Vec::new(),
            leader: 0,
            committed: 0,
            proposed: 0,
            payload: Bytes::from(vec![7u8; payload_bytes]),
        };
        for _ in 0..10_000 {
            l.step(0, Input::Tick);
            l.round();
            if l.nodes[0].status().role == Role::Leader {
                // Let the no-op commit so the pipeline starts in its steady state.
                l.round();
                l.round();
                return l;
            }
        }
        panic!("node 1 never became leader");
    }

    fn step(&mut self, i: usize, input: Input<RaftMessage>) {
        let mut out = std::mem::take(&mut self.out);
        self.nodes[i].step(input, &mut out);
        let from = NodeId(i as u64 + 1);
        for e in out.drain(..) {
            match e {
                Effect::Send { to, msg } => self.queue.push_back((to.0 as usize - 1, from, msg)),
                Effect::Persist { seq, .. } => self.unsynced[i] = Some(seq),
                Effect::Apply { entries } => {
                    if i == self.leader {
                        self.committed += entries
                            .iter()
                            .filter(|e| e.kind == EntryKind::Command)
                            .count() as u64;
                    }
                    if let Some(last) = entries.last() {
                        self.follow_ups.push(Input::Applied {
                            through: last.index,
                        });
                    }
                }
                Effect::TakeSnapshot { through } => self.follow_ups.push(Input::Snapshot {
                    meta: SnapshotMeta {
                        index: through,
                        ..SnapshotMeta::default()
                    },
                    data: Bytes::new(),
                }),
                _ => {}
            }
        }
        self.out = out;
        while let Some(f) = self.follow_ups.pop() {
            self.step(i, f);
        }
    }

    /// Deliver what is queued, then make every node's writes durable.
    fn round(&mut self) {
        for _ in 0..self.queue.len() {
            let Some((to, from, msg)) = self.queue.pop_front() else {
                break;
            };
            self.step(to, Input::Receive { from, msg });
        }
        for i in 0..NODES {
            if let Some(through) = self.unsynced[i].take() {
                self.step(i, Input::Persisted { through });
            }
        }
    }

    /// Run until `entries` more commands are committed, keeping up to `window` in flight.
    pub fn run(&mut self, entries: u64, window: u64) {
        let target = self.committed + entries;
        let mut rounds = 0u64;
        while self.committed < target {
            let in_flight = self.proposed - self.committed;
            let room = window
                .saturating_sub(in_flight)
                .min(target - self.committed);
            for _ in 0..room {
                self.proposed += 1;
                let input = Input::Propose {
                    req: RequestId(self.proposed),
                    command: self.payload.clone(),
                };
                self.step(self.leader, input);
            }
            self.round();
            rounds += 1;
            assert!(rounds < entries * 16 + 1000, "the pipeline stalled");
        }
        debug_assert!(self.nodes[self.leader].status().commit > LogIndex(0));
    }
}

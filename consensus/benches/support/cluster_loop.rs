//! A 3-node cluster (Raft or Multi-Paxos) driven in one thread through the reference host
//! ([`rsm_core::Host`]) with in-memory mailboxes and in-memory storage: the loop both
//! benchmarks measure. Each round the leader is topped up to `window` proposals in flight,
//! every queued message is delivered, then each node makes its writes durable (one "fsync"
//! per node per round, like group commit). The host applies every persist to an in-memory
//! durable image and holds every send that follows a persist until that sync, so the loop
//! runs exactly what a correct host runs.

use std::collections::VecDeque;

use rsm_consensus::{Paxos, PaxosConfig, Raft, RaftConfig};
use rsm_core::{
    Bytes, CodecError, Durable, Host, HostConfig, LogIndex, MemStorage, Membership, NodeId,
    Queryable, Replica, Role, StateMachine,
};

const NODES: usize = 3;

/// A state machine that only counts the commands it applied.
#[derive(Debug, Default)]
pub struct Counter {
    pub commands: u64,
}

impl StateMachine for Counter {
    type Response = ();

    fn apply(&mut self, _index: LogIndex, _command: &Bytes) {
        self.commands += 1;
    }

    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.commands.to_le_bytes())
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), CodecError> {
        let bytes: [u8; 8] = snapshot
            .try_into()
            .map_err(|_| CodecError::Malformed("a counter snapshot is 8 bytes".into()))?;
        self.commands = u64::from_le_bytes(bytes);
        Ok(())
    }
}

impl Queryable for Counter {
    type Query = ();
    type Answer = u64;

    fn query(&self, _: &()) -> u64 {
        self.commands
    }
}

type Node<R> = Host<R, MemStorage, Counter>;

#[derive(Debug)]
pub struct ClusterLoop<R: Replica = Raft> {
    nodes: Vec<Node<R>>,
    queue: VecDeque<(usize, NodeId, R::Message)>,
    leader: usize,
    proposed: u64,
    payload: Bytes,
}

// Each binary that includes this file runs one of the protocols.
#[allow(dead_code)]
impl ClusterLoop<Raft> {
    /// Three Raft nodes with defaults but for the bound on uncommitted bytes.
    pub fn new(payload_bytes: usize) -> Self {
        Self::build(payload_bytes, |id, m| {
            let mut c = RaftConfig::new(id, m, id.0);
            c.uncommitted_bytes_max = 1 << 30;
            c
        })
    }
}

#[allow(dead_code)]
impl ClusterLoop<Paxos> {
    /// Three Multi-Paxos nodes with defaults but for the bound on uncommitted bytes.
    pub fn paxos(payload_bytes: usize) -> Self {
        Self::build(payload_bytes, |id, m| {
            let mut c = PaxosConfig::new(id, m, id.0);
            c.uncommitted_bytes_max = 1 << 30;
            c
        })
    }
}

impl<R: Replica> ClusterLoop<R> {
    fn build(payload_bytes: usize, config_of: fn(NodeId, Membership) -> R::Config) -> Self {
        let ids: Vec<NodeId> = (1..=NODES as u64).map(NodeId).collect();
        let config = HostConfig {
            pending_requests_max: 1 << 20,
            request_timeout_ticks: u64::MAX / 2,
            ..HostConfig::default()
        };
        let nodes = ids
            .iter()
            .map(|&id| {
                let c = config_of(id, Membership::new(ids.clone()));
                let replica = R::restore(c, Durable::default()).expect("valid config");
                Host::new(config, replica, MemStorage::default(), Counter::default())
            })
            .collect();
        let mut l = Self {
            nodes,
            queue: VecDeque::new(),
            leader: 0,
            proposed: 0,
            payload: Bytes::from(vec![7u8; payload_bytes]),
        };
        for _ in 0..10_000 {
            l.nodes[0].tick().expect("the host runs");
            l.collect(0);
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

    /// Commands the leader applied.
    pub fn committed(&self) -> u64 {
        self.nodes[self.leader].machine().commands
    }

    /// Move node `i`'s released sends to the mailboxes and drop its answers (the loop
    /// counts commits at the state machine).
    fn collect(&mut self, i: usize) {
        let from = NodeId(i as u64 + 1);
        let node = &mut self.nodes[i];
        for (to, msg) in node.drain_sends() {
            self.queue.push_back((to.0 as usize - 1, from, msg));
        }
        node.drain_completions().for_each(drop);
    }

    /// Deliver what is queued, then make every node's writes durable.
    fn round(&mut self) {
        for _ in 0..self.queue.len() {
            let Some((to, from, msg)) = self.queue.pop_front() else {
                break;
            };
            self.nodes[to].receive(from, msg).expect("the host runs");
            self.collect(to);
        }
        for i in 0..NODES {
            self.nodes[i].sync().expect("memory storage syncs");
            self.collect(i);
        }
    }

    /// Run until `entries` more commands are committed, keeping up to `window` in flight.
    pub fn run(&mut self, entries: u64, window: u64) {
        let target = self.committed() + entries;
        let mut rounds = 0u64;
        while self.committed() < target {
            let in_flight = self.proposed - self.committed();
            let room = window
                .saturating_sub(in_flight)
                .min(target - self.committed());
            for _ in 0..room {
                self.proposed += 1;
                self.nodes[self.leader]
                    .propose(self.payload.clone())
                    .expect("the leader accepts");
            }
            self.collect(self.leader);
            self.round();
            rounds += 1;
            assert!(rounds < entries * 16 + 1000, "the pipeline stalled");
        }
        debug_assert!(self.nodes[self.leader].status().commit > LogIndex(0));
    }
}

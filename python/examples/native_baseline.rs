//! The native side of `python/bench/bench_steps.py`: the same 3-node replication loop and
//! the same simulator seeds, driven from Rust, so the Python figures have a baseline
//! measured on the same machine in the same run.
//!
//! `cargo run --release -p rsm-python --example native_baseline -- ROUNDS BATCH SEEDS`
//!
//! Both sides run each node through the reference host (`rsm_core::Host` here, `rsm.Host`
//! from Python) with storage in memory and a state machine that counts commands: sends
//! leave only after the write they follow is synced, and the host feeds the follow-up
//! inputs. Prints `key value` lines: inputs the hosts fed their replicas in the loop (the
//! Python bench must count the same), inputs per second with messages encoded to bytes and
//! decoded again (what a Python host, or any networked host, does), inputs per second
//! handing messages over as values, and simulator seeds per second.

use std::collections::VecDeque;
use std::time::Instant;

use rsm_check::check;
use rsm_consensus::registry::{Protocol as _, RaftProtocol};
use rsm_consensus::{Raft, RaftConfig, RaftMessage};
use rsm_core::{
    Bytes, CodecError, Host, HostConfig, LogIndex, MemStorage, Membership, NodeId, Queryable, Role,
    StateMachine, decode_body, encode_body,
};
use rsm_sim::{SimOptions, run};

/// Payload of every proposal, in bytes (the Python bench uses the same).
const PAYLOAD_BYTES: usize = 16;

/// How a message travels between nodes in the loop.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Wire {
    /// Encoded to bytes by the sender and decoded by the receiver.
    Bytes,
    /// Handed over as a value.
    Value,
}

/// A message waiting in a node's queue: it stays encoded until received.
enum Inbound {
    Value(NodeId, RaftMessage),
    Encoded(NodeId, Vec<u8>),
}

/// The state machine: counts the commands applied (the Python bench's does the same).
#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    type Response = u64;

    fn apply(&mut self, _: LogIndex, _: &Bytes) -> u64 {
        self.0 += 1;
        self.0
    }

    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_be_bytes())
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), CodecError> {
        let bytes: [u8; 8] = data
            .try_into()
            .map_err(|_| CodecError::Malformed("a counter is 8 bytes".into()))?;
        self.0 = u64::from_be_bytes(bytes);
        Ok(())
    }
}

impl Queryable for Counter {
    type Query = ();
    type Answer = u64;

    fn query(&self, _: &()) -> u64 {
        self.0
    }
}

type Node = Host<Raft, MemStorage, Counter>;

struct Cluster {
    nodes: Vec<Node>,
    queues: Vec<VecDeque<Inbound>>,
    wire: Wire,
    /// Proposals that ended `Ok`.
    ok: u64,
}

impl Cluster {
    fn new(wire: Wire) -> Self {
        let members = Membership::new((1..=3).map(NodeId));
        let nodes = (1..=3)
            .map(|i| {
                let c: RaftConfig =
                    RaftProtocol::config(NodeId(i), members.clone(), i, &[]).expect("valid");
                let replica = rsm_core::Replica::restore(c, rsm_core::Durable::default())
                    .expect("valid config");
                Host::new(
                    HostConfig::default(),
                    replica,
                    MemStorage::default(),
                    Counter::default(),
                )
            })
            .collect();
        Self {
            nodes,
            queues: (0..3).map(|_| VecDeque::new()).collect(),
            wire,
            ok: 0,
        }
    }

    /// Inputs the hosts have fed their replicas.
    fn steps(&self) -> u64 {
        self.nodes.iter().map(|n| n.stats().steps).sum()
    }

    /// Node `i` receives everything queued for it, syncs, and sends what its host released.
    fn run_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        while let Some(inbound) = self.queues[i].pop_front() {
            let (from, msg) = match inbound {
                Inbound::Value(from, msg) => (from, msg),
                Inbound::Encoded(from, bytes) => {
                    (from, decode_body(&bytes).expect("our own encoding"))
                }
            };
            node.receive(from, msg)
                .expect("in-memory storage never fails");
        }
        node.sync().expect("in-memory storage never fails");
        let from = NodeId(i as u64 + 1);
        for (to, msg) in node.drain_sends() {
            let inbound = match self.wire {
                Wire::Bytes => {
                    let mut buf = Vec::new();
                    encode_body(&msg, &mut buf).expect("encodes");
                    Inbound::Encoded(from, buf)
                }
                Wire::Value => Inbound::Value(from, msg),
            };
            self.queues[to.0 as usize - 1].push_back(inbound);
        }
        self.ok += node
            .drain_completions()
            .filter(|c| c.result.is_ok())
            .count() as u64;
    }

    fn busy(&self) -> bool {
        self.queues.iter().any(|q| !q.is_empty()) || self.nodes.iter().any(|n| n.needs_sync())
    }

    fn settle(&mut self) {
        while self.busy() {
            for i in 0..3 {
                self.run_node(i);
            }
        }
    }

    fn elect(&mut self) -> usize {
        loop {
            for i in 0..3 {
                self.nodes[i].tick().expect("in-memory storage never fails");
                self.run_node(i);
            }
            self.settle();
            if let Some(l) = self
                .nodes
                .iter()
                .position(|n| n.status().role == Role::Leader)
            {
                return l;
            }
        }
    }

    fn replicate(&mut self, leader: usize, rounds: u64, batch: u64) {
        let payload = Bytes::from(vec![7u8; PAYLOAD_BYTES]);
        for _ in 0..rounds {
            for _ in 0..batch {
                self.nodes[leader]
                    .propose(payload.clone())
                    .expect("below the pending limit");
            }
            self.run_node(leader);
            self.settle();
        }
    }
}

fn steps_per_sec(wire: Wire, rounds: u64, batch: u64) -> (u64, f64) {
    let mut c = Cluster::new(wire);
    let leader = c.elect();
    let before = c.steps();
    c.ok = 0;
    let start = Instant::now();
    c.replicate(leader, rounds, batch);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(c.ok, rounds * batch, "every proposal commits");
    let steps = c.steps() - before;
    (steps, steps as f64 / secs)
}

fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let (rounds, batch, seeds) = (arg(1, 2000), arg(2, 16), arg(3, 200));

    let (steps, bytes_rate) = steps_per_sec(Wire::Bytes, rounds, batch);
    let (_, value_rate) = steps_per_sec(Wire::Value, rounds, batch);
    println!("steps {steps}");
    println!("steps_per_sec_bytes {bytes_rate:.0}");
    println!("steps_per_sec_values {value_rate:.0}");

    let opts = SimOptions {
        history_check: Some(|h| {
            let v = check(h);
            if v.is_linearizable() {
                Ok(())
            } else {
                Err(v.to_string())
            }
        }),
        ..SimOptions::default()
    };
    let start = Instant::now();
    let mut violations = 0;
    for seed in 0..seeds {
        let r = run::<Raft>(seed, &opts, &|id, m, s| RaftConfig::new(id, m.clone(), s));
        violations += u64::from(r.violation.is_some());
    }
    let secs = start.elapsed().as_secs_f64();
    println!("seeds {seeds}");
    println!("seeds_per_sec {:.1}", seeds as f64 / secs);
    println!("violations {violations}");
}

//! The native side of `python/bench/bench_steps.py`: the same 3-node replication loop and
//! the same simulator seeds, driven from Rust, so the Python figures have a baseline
//! measured on the same machine in the same run.
//!
//! `cargo run --release -p rsm-python --example native_baseline -- ROUNDS BATCH SEEDS`
//!
//! Prints `key value` lines: steps in the loop, steps per second with messages encoded to
//! bytes and decoded again (what a Python host, or any networked host, does), steps per
//! second handing messages over as values, and simulator seeds per second.

use std::collections::VecDeque;
use std::time::Instant;

use rsm_check::check;
use rsm_consensus::{Raft, RaftConfig, RaftMessage};
use rsm_core::{
    Bytes, Durable, Effect, Input, LogIndex, Membership, NodeId, Replica, RequestId, Role,
    decode_body, encode_body,
};
use rsm_sim::{SimOptions, run};

/// Payload of every proposal, in bytes (the Python bench uses the same).
const PAYLOAD_BYTES: usize = 16;

/// How a message travels between replicas in the loop.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Wire {
    /// Encoded to bytes by the sender and decoded by the receiver.
    Bytes,
    /// Handed over as a value.
    Value,
}

/// An input waiting in a node's queue: messages stay encoded until stepped.
enum Pending {
    Input(Input<RaftMessage>),
    Encoded { from: NodeId, msg: Vec<u8> },
}

struct Cluster {
    nodes: Vec<Raft>,
    queues: Vec<VecDeque<Pending>>,
    wire: Wire,
    steps: u64,
    out: Vec<Effect<RaftMessage>>,
}

impl Cluster {
    fn new(wire: Wire) -> Self {
        let members = Membership::new((1..=3).map(NodeId));
        let nodes = (1..=3)
            .map(|i| {
                let c = RaftConfig::new(NodeId(i), members.clone(), i);
                Raft::restore(c, Durable::default()).expect("valid config")
            })
            .collect();
        Self {
            nodes,
            queues: (0..3).map(|_| VecDeque::new()).collect(),
            wire,
            steps: 0,
            out: Vec::new(),
        }
    }

    /// Step node `i` with every input queued for it now; queue what its effects cause.
    fn run_node(&mut self, i: usize) {
        let n = self.queues[i].len();
        for _ in 0..n {
            let pending = self.queues[i].pop_front().expect("counted");
            let input = match pending {
                Pending::Input(input) => input,
                Pending::Encoded { from, msg } => Input::Receive {
                    from,
                    msg: decode_body(&msg).expect("our own encoding"),
                },
            };
            self.nodes[i].step(input, &mut self.out);
            self.steps += 1;
        }
        let from = NodeId(i as u64 + 1);
        for effect in self.out.drain(..) {
            match effect {
                Effect::Send { to, msg } => {
                    let q = &mut self.queues[to.0 as usize - 1];
                    match self.wire {
                        Wire::Bytes => {
                            let mut buf = Vec::new();
                            encode_body(&msg, &mut buf).expect("encodes");
                            q.push_back(Pending::Encoded { from, msg: buf });
                        }
                        Wire::Value => q.push_back(Pending::Input(Input::Receive { from, msg })),
                    }
                }
                Effect::Persist { seq, .. } => {
                    self.queues[i].push_back(Pending::Input(Input::Persisted { through: seq }))
                }
                Effect::Apply { entries } => {
                    let through = entries.last().map_or(LogIndex(0), |e| e.index);
                    self.queues[i].push_back(Pending::Input(Input::Applied { through }));
                }
                _ => {}
            }
        }
    }

    fn settle(&mut self) {
        while self.queues.iter().any(|q| !q.is_empty()) {
            for i in 0..3 {
                self.run_node(i);
            }
        }
    }

    fn elect(&mut self) -> usize {
        loop {
            for i in 0..3 {
                self.queues[i].push_back(Pending::Input(Input::Tick));
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
        let mut req = 0;
        for _ in 0..rounds {
            for _ in 0..batch {
                req += 1;
                self.queues[leader].push_back(Pending::Input(Input::Propose {
                    req: RequestId(req),
                    command: payload.clone(),
                }));
            }
            self.settle();
        }
    }
}

fn steps_per_sec(wire: Wire, rounds: u64, batch: u64) -> (u64, f64) {
    let mut c = Cluster::new(wire);
    let leader = c.elect();
    let before = c.steps;
    let start = Instant::now();
    c.replicate(leader, rounds, batch);
    let secs = start.elapsed().as_secs_f64();
    let steps = c.steps - before;
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

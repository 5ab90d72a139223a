//! omnipaxos 0.2.4 on the loop `rsm-consensus/benches/support/cluster_loop.rs` measures for
//! Multi-Paxos: three nodes in one thread, in-memory mailboxes, `MemoryStorage` as the disk
//! (its writes are synchronous, so no group commit is waited for), the leader topped up to
//! `window` proposals in flight, the figure being entries the leader decided per second.
//!
//! `cargo run --release --manifest-path consensus/compare-omnipaxos/Cargo.toml [ENTRIES]`

use std::collections::VecDeque;

use bytes::Bytes;
use omnipaxos::messages::Message;
use omnipaxos::storage::{Entry, NoSnapshot};
use omnipaxos::{ClusterConfig, OmniPaxos, OmniPaxosConfig, ServerConfig};
use omnipaxos_storage::memory_storage::MemoryStorage;

#[path = "../../benches/support/measurement.rs"]
mod measurement;

const NODES: u64 = 3;

/// A command: its payload is reference-counted, as rsm's are (never read here: the loop
/// counts decided entries).
#[derive(Clone, Debug)]
struct Command(#[allow(dead_code)] Bytes);

impl Entry for Command {
    type Snapshot = NoSnapshot;
}

type Node = OmniPaxos<Command, MemoryStorage<Command>>;

struct Loop {
    nodes: Vec<Node>,
    queue: VecDeque<Message<Command>>,
    outgoing: Vec<Message<Command>>,
    proposed: u64,
    payload: Bytes,
}

impl Loop {
    fn new(payload_bytes: usize) -> Self {
        let nodes = (1..=NODES)
            .map(|pid| {
                let config = OmniPaxosConfig {
                    cluster_config: ClusterConfig {
                        configuration_id: 1,
                        nodes: (1..=NODES).collect(),
                        ..Default::default()
                    },
                    server_config: ServerConfig {
                        pid,
                        ..Default::default()
                    },
                };
                config
                    .build(MemoryStorage::default())
                    .expect("valid config")
            })
            .collect();
        let mut l = Self {
            nodes,
            queue: VecDeque::new(),
            outgoing: Vec::new(),
            proposed: 0,
            payload: Bytes::from(vec![7u8; payload_bytes]),
        };
        l.nodes[0].try_become_leader();
        for _ in 0..1000 {
            l.round();
            if l.nodes[0].get_current_leader() == Some((1, true)) {
                l.round();
                l.round();
                return l;
            }
        }
        panic!("node 1 never became leader");
    }

    fn committed(&self) -> u64 {
        self.nodes[0].get_decided_idx() as u64
    }

    /// Deliver what is queued, then collect what every node has to send.
    fn round(&mut self) {
        for _ in 0..self.queue.len() {
            let Some(msg) = self.queue.pop_front() else {
                break;
            };
            let to = msg.get_receiver() as usize - 1;
            self.nodes[to].handle_incoming(msg);
        }
        for node in &mut self.nodes {
            node.take_outgoing_messages(&mut self.outgoing);
            self.queue.extend(self.outgoing.drain(..));
        }
    }

    fn run(&mut self, entries: u64, window: u64) {
        let target = self.committed() + entries;
        let mut rounds = 0u64;
        while self.committed() < target {
            let in_flight = self.proposed - self.committed();
            let room = window
                .saturating_sub(in_flight)
                .min(target - self.committed());
            for _ in 0..room {
                self.proposed += 1;
                self.nodes[0]
                    .append(Command(self.payload.clone()))
                    .expect("the leader accepts");
            }
            self.round();
            rounds += 1;
            assert!(rounds < entries * 16 + 1000, "the pipeline stalled");
        }
    }
}

fn main() {
    measurement::print_table(
        measurement::entries_arg(),
        Loop::new,
        |cluster, n, window| cluster.run(n, window),
    );
}

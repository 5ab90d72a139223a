//! raft-rs 0.7 on the loop `rsm-consensus/benches/support/cluster_loop.rs` measures: three
//! nodes in one thread, in-memory mailboxes, `MemStorage` as the disk, one ready-handling
//! pass per node per round (its group commit), the leader topped up to `window` proposals.
//!
//! `cargo run --release --manifest-path consensus/compare-raft-rs/Cargo.toml [ENTRIES]`

use std::collections::VecDeque;

use raft::eraftpb::{ConfState, EntryType, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};
use slog::{Discard, Logger, o};

#[path = "../../benches/support/measurement.rs"]
mod measurement;

const NODES: u64 = 3;

struct Loop {
    nodes: Vec<RawNode<MemStorage>>,
    queue: VecDeque<Message>,
    committed: u64,
    proposed: u64,
    payload: Vec<u8>,
}

impl Loop {
    fn new(payload_bytes: usize) -> Self {
        let logger = Logger::root(Discard, o!());
        let nodes = (1..=NODES)
            .map(|id| {
                let config = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 2,
                    max_size_per_msg: 1 << 20,
                    max_inflight_msgs: 64,
                    ..Default::default()
                };
                let storage = MemStorage::new_with_conf_state(ConfState::from((
                    (1..=NODES).collect::<Vec<_>>(),
                    vec![],
                )));
                RawNode::new(&config, storage, &logger).expect("valid config")
            })
            .collect();
        let mut l = Self {
            nodes,
            queue: VecDeque::new(),
            committed: 0,
            proposed: 0,
            payload: vec![7u8; payload_bytes],
        };
        l.nodes[0].campaign().expect("campaign");
        for _ in 0..100 {
            l.round();
            if l.nodes[0].raft.state == StateRole::Leader {
                l.round();
                l.round();
                return l;
            }
        }
        panic!("node 1 never became leader");
    }

    fn handle_ready(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if !node.has_ready() {
            return;
        }
        let mut ready = node.ready();
        self.queue.extend(ready.take_messages());
        let mut committed = ready.take_committed_entries();
        if !ready.entries().is_empty() {
            node.store().wl().append(ready.entries()).expect("append");
        }
        if let Some(hs) = ready.hs() {
            node.store().wl().set_hardstate(hs.clone());
        }
        self.queue.extend(ready.take_persisted_messages());
        let mut light = node.advance(ready);
        if let Some(commit) = light.commit_index() {
            node.store().wl().mut_hard_state().set_commit(commit);
        }
        self.queue.extend(light.take_messages());
        committed.extend(light.take_committed_entries());
        if i == 0 {
            self.committed += committed
                .iter()
                .filter(|e| {
                    e.get_entry_type() == EntryType::EntryNormal && !e.get_data().is_empty()
                })
                .count() as u64;
        }
        node.advance_apply();
        // Compact like the rsm loop does (its snapshot threshold is 10,000 entries).
        if let Some(last) = committed.last() {
            let applied = last.index;
            if applied % 10_000 < committed.len() as u64 {
                node.store().wl().compact(applied).expect("compact");
            }
        }
    }

    fn round(&mut self) {
        for _ in 0..self.queue.len() {
            let Some(m) = self.queue.pop_front() else {
                break;
            };
            let to = m.to as usize - 1;
            let _ = self.nodes[to].step(m);
        }
        for i in 0..NODES as usize {
            self.handle_ready(i);
        }
    }

    fn run(&mut self, entries: u64, window: u64) {
        let target = self.committed + entries;
        while self.committed < target {
            let in_flight = self.proposed - self.committed;
            let room = window
                .saturating_sub(in_flight)
                .min(target - self.committed);
            for _ in 0..room {
                self.proposed += 1;
                self.nodes[0]
                    .propose(vec![], self.payload.clone())
                    .expect("leader accepts");
            }
            self.round();
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

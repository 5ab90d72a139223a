//! Prints committed entries per second and heap allocations per committed entry for a
//! 3-node Multi-Paxos cluster on the same loop as `raft_bench`.
//!
//! `cargo run --release -p rsm-consensus --example paxos_bench [ENTRIES]`

#[path = "../benches/support/cluster_loop.rs"]
mod cluster_loop;

use cluster_loop::ClusterLoop;

#[path = "../benches/support/measurement.rs"]
mod measurement;

fn main() {
    measurement::print_table(
        measurement::entries_arg(),
        ClusterLoop::paxos,
        |cluster, n, window| cluster.run(n, window),
    );
}

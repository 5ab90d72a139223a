//! Prints committed entries per second and heap allocations per committed entry for a
//! 3-node Raft cluster driven in one thread with in-memory mailboxes and no disk.
//!
//! `cargo run --release -p rsm-consensus --example raft_bench [ENTRIES]`

#[path = "../benches/support/cluster_loop.rs"]
mod cluster_loop;

use cluster_loop::ClusterLoop;

#[path = "../benches/support/measurement.rs"]
mod measurement;

fn main() {
    measurement::print_table(
        measurement::entries_arg(),
        ClusterLoop::new,
        |cluster, n, window| cluster.run(n, window),
    );
}

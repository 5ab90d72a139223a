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
    let entries: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    measurement::print_table(entries, ClusterLoop::new, |cluster, n, window| {
        cluster.run(n, window)
    });
}

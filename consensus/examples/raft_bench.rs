//! Prints committed entries per second and heap allocations per committed entry for a
//! 3-node Raft cluster driven in one thread with in-memory mailboxes and no disk.
//!
//! `cargo run --release -p rsm-consensus --example raft_bench [ENTRIES]`

#[path = "../benches/support/cluster_loop.rs"]
mod cluster_loop;

use std::sync::atomic::Ordering;
use std::time::Instant;

use cluster_loop::ClusterLoop;

#[path = "../benches/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::ALLOCATIONS;

fn main() {
    let entries: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    println!("| payload | in flight | entries/s | allocations per entry |");
    println!("|---|---|---|---|");
    for payload in [16usize, 1024] {
        for window in [1u64, 64, 256] {
            let mut cluster = ClusterLoop::new(payload);
            // Warm up: grow buffers and reach the steady state before measuring.
            cluster.run(entries / 10 + 1, window);
            let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
            let start = Instant::now();
            cluster.run(entries, window);
            let secs = start.elapsed().as_secs_f64();
            let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
            println!(
                "| {payload} B | {window} | {:.0} | {:.2} |",
                entries as f64 / secs,
                allocs as f64 / entries as f64
            );
        }
    }
}

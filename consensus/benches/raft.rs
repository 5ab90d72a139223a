//! Committed entries per second of a 3-node cluster in one thread (see `cluster_loop`).
//! `cargo bench -p rsm-consensus --bench raft`

#[path = "support/cluster_loop.rs"]
mod cluster_loop;

use std::hint::black_box;

use cluster_loop::ClusterLoop;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ENTRIES: u64 = 4096;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("raft_3_nodes");
    g.throughput(Throughput::Elements(ENTRIES));
    for payload in [16usize, 1024] {
        for window in [1u64, 64, 256] {
            let name = format!("payload_{payload}B_window_{window}");
            let mut cluster = ClusterLoop::new(payload);
            g.bench_function(name, |b| {
                b.iter(|| {
                    cluster.run(ENTRIES, window);
                    black_box(cluster.committed())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

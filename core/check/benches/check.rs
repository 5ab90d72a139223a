//! Linearizability checker throughput on a 10,000-operation, 10-client, 10-key history.

use criterion::{Criterion, criterion_group, criterion_main};
use rsm_check::{check, synthetic_history};

fn bench_check(c: &mut Criterion) {
    let history = synthetic_history(42, 10, 10, 10_000);
    assert!(check(&history).is_linearizable());
    let mut g = c.benchmark_group("check");
    g.sample_size(20);
    g.bench_function("10k_ops_10_clients_10_keys", |b| b.iter(|| check(&history)));
    g.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);

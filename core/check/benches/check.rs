//! Linearizability checker time on deterministic synthetic histories: 10,000 operations
//! by 10 clients on 10 keys and on one key, linearizable and with one stale read (late on
//! 10 keys, early on one key). 100,000 operations on one key are left out: that search
//! still ends `Inconclusive` at the default memory budget (see BENCHMARKS.md). Failing histories are timed both for the verdict
//! alone and for the verdict with its shrunk counterexample; the 10-key histories also on
//! one thread, the figure to hold against a single-threaded checker.
//!
//! `cargo bench -p rsm-check --bench check`; the figures are in BENCHMARKS.md.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rsm_check::{
    CheckConfig, CheckMode, History, Verdict, check_with, failing_history, synthetic_history,
};

/// Seed of every history; the same seed gives the same history on every machine.
const SEED: u64 = 42;
const CLIENTS: u64 = 10;
/// Where the stale read of a failing history sits, as a fraction of its span.
const FAULT_AT: f64 = 0.9;
/// The same for the one-key failing history.
const EARLY_FAULT_AT: f64 = 0.02;

fn config(mode: CheckMode, threads_max: usize) -> CheckConfig {
    CheckConfig {
        mode,
        threads_max,
        ..CheckConfig::default()
    }
}

fn bench_one(c: &mut Criterion, group: &str, history: &History, cases: &[(&str, CheckConfig)]) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    for (name, cfg) in cases {
        let verdict = check_with(history, cfg);
        assert!(
            !matches!(
                verdict,
                Verdict::Inconclusive { .. } | Verdict::Malformed { .. }
            ),
            "{group}/{name}: {verdict}"
        );
        g.bench_with_input(BenchmarkId::from_parameter(name), cfg, |b, cfg| {
            b.iter(|| check_with(history, cfg))
        });
    }
    g.finish();
}

fn bench_check(c: &mut Criterion) {
    let all = |mode| config(mode, 0);
    let one = |mode| config(mode, 1);
    for keys in [10u64, 1] {
        let passing = synthetic_history(SEED, CLIENTS, keys, 10_000);
        assert!(check_with(&passing, &all(CheckMode::Verdict)).is_linearizable());
        bench_one(
            c,
            &format!("check_10k_ops_{keys}_keys_linearizable"),
            &passing,
            &[
                ("all_cores", all(CheckMode::Verdict)),
                ("one_thread", one(CheckMode::Verdict)),
            ],
        );
        // On one key a failing search must exhaust every configuration before the fault,
        // which grows with the prefix: the single-key fault sits early.
        let at = if keys == 1 { EARLY_FAULT_AT } else { FAULT_AT };
        let failing = failing_history(SEED, CLIENTS, keys, 10_000, at);
        assert!(matches!(
            check_with(&failing, &all(CheckMode::Verdict)),
            Verdict::NotLinearizable(_)
        ));
        bench_one(
            c,
            &format!("check_10k_ops_{keys}_keys_fault_at_{at}"),
            &failing,
            &[
                ("verdict_all_cores", all(CheckMode::Verdict)),
                ("verdict_one_thread", one(CheckMode::Verdict)),
                ("shrunk_one_thread", one(CheckMode::Shrink)),
            ],
        );
    }
}

criterion_group!(benches, bench_check);
criterion_main!(benches);

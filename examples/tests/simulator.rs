//! The simulator against the reference replica and the deliberately unsafe ones: the safe
//! one passes every seed and converges after heal; each unsafe one is caught within 1,000
//! seeds, and its seed reproduces the same violation.

use rsm_core::{Membership, NodeId};
use rsm_examples::registry::{self, Protocol};
use rsm_examples::sequencer::{Sequencer, SequencerConfig};
use rsm_sim::{self as sim, Invariant, LivenessHeal, SimOptions, Swarm};

/// Seeds the safe replica must pass in the default test run.
const SAFE_SEEDS: u64 = 200;

/// The bound the issue sets for finding a bug.
const SEEDS_TO_CATCH_MAX: u64 = 1_000;

fn protocol(name: &str) -> &'static Protocol {
    registry::find(name).expect("registered")
}

fn first_violation(p: &Protocol, opts: &SimOptions) -> Option<(u64, sim::RunResult)> {
    (0..SEEDS_TO_CATCH_MAX)
        .map(|seed| (seed, (p.run)(seed, opts)))
        .find(|(_, r)| r.violation.is_some())
}

fn passes_every_seed(name: &str, seeds: u64) {
    let p = protocol(name);
    assert!(p.safe);
    let opts = SimOptions::default();
    let mut crashes = 0;
    for seed in 0..seeds {
        let run = (p.run)(seed, &opts);
        assert!(run.violation.is_none(), "{}", run.failure_report(p.name));
        let ticks = run.stats.liveness_ticks.expect("converged");
        assert!(ticks <= opts.liveness_ticks_max);
        assert!(run.stats.ops_ok > 0, "seed {seed} made progress");
        crashes += run.stats.faults.get(sim::FaultKind::Crash);
    }
    assert!(crashes > 0, "the swarm crashed nodes");
}

#[test]
fn sequencer_passes_every_seed_and_converges_after_heal() {
    passes_every_seed("sequencer", SAFE_SEEDS);
}

#[test]
fn raft_passes_every_seed_and_converges_after_heal() {
    passes_every_seed("raft", SAFE_SEEDS / 2);
}

#[test]
fn elected_passes_every_seed_and_converges_after_heal() {
    passes_every_seed("elected", SAFE_SEEDS / 2);
}

fn caught_and_reproduced(name: &str, expected: &[Invariant]) -> sim::RunResult {
    let p = protocol(name);
    assert!(!p.safe);
    let opts = SimOptions::default();
    let (seed, run) = first_violation(p, &opts)
        .unwrap_or_else(|| panic!("{name} survived {SEEDS_TO_CATCH_MAX} seeds"));
    let v = run.violation.clone().expect("violating");
    assert!(
        expected.contains(&v.invariant),
        "{}",
        run.failure_report(name)
    );
    let report = run.failure_report(name);
    assert!(
        report.contains(&format!("--protocol {name} --seed {seed}")),
        "{report}"
    );
    assert!(!run.tail.is_empty());
    let again = (p.run)(seed, &opts);
    assert_eq!(
        again.violation,
        Some(v),
        "seed {seed} reproduces the violation"
    );
    assert_eq!(again.digest, run.digest, "byte for byte");
    run
}

#[test]
fn ack_before_replicate_is_caught_and_its_seed_reproduces() {
    let run = caught_and_reproduced("ack-before-replicate", &[Invariant::LogMatching]);
    assert!(
        run.stats.faults.get(sim::FaultKind::Crash) > 0,
        "only a crash exposes it"
    );
}

#[test]
fn even_quorum_is_caught_on_four_nodes_and_its_seed_reproduces() {
    let run = caught_and_reproduced(
        "even-quorum",
        &[Invariant::LogMatching, Invariant::OneLeaderPerEpoch],
    );
    assert_eq!(
        run.swarm.nodes, 4,
        "the miscount only matters for even sizes"
    );
}

fn sequencer_config(id: NodeId, m: &Membership, _seed: u64) -> SequencerConfig {
    SequencerConfig::new(id, m.clone())
}

#[test]
fn same_seed_same_digest_and_different_seeds_differ() {
    let opts = SimOptions::default();
    let a = sim::run::<Sequencer>(42, &opts, &sequencer_config);
    let b = sim::run::<Sequencer>(42, &opts, &sequencer_config);
    let c = sim::run::<Sequencer>(43, &opts, &sequencer_config);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.history, b.history);
    assert_ne!(a.digest, c.digest);
}

#[test]
fn calm_run_completes_every_operation_ok() {
    let opts = SimOptions {
        fault_ticks: 300,
        ..SimOptions::default()
    };
    let run = sim::run_swarm::<Sequencer>(1, Swarm::calm(3), &opts, &sequencer_config);
    assert!(
        run.violation.is_none(),
        "{}",
        run.failure_report("sequencer")
    );
    assert!(run.stats.ops_ok > 0);
    assert_eq!(run.stats.ops_fail + run.stats.ops_indeterminate, 0);
    assert_eq!(run.stats.faults.total(), 0);
    assert_eq!(run.history.len() as u64, run.stats.ops_ok);
}

#[test]
fn trace_is_written_as_json_lines_and_html() {
    let opts = SimOptions {
        fault_ticks: 100,
        keep_trace: true,
        ..SimOptions::default()
    };
    let run = sim::run::<Sequencer>(5, &opts, &sequencer_config);
    assert_eq!(run.trace.len() as u64, run.stats.events);
    let mut jsonl = Vec::new();
    sim::write_json_lines(&run.trace, &mut jsonl).unwrap();
    let text = String::from_utf8(jsonl).unwrap();
    assert_eq!(text.lines().count(), run.trace.len());
    assert!(text.lines().all(|l| l.starts_with("{\"at\":")));
    let mut html = Vec::new();
    sim::write_html("seed 5", &run.trace, &mut html).unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains(&run.trace[0]), "the events are embedded");
    assert!(
        !html.contains("src=") && !html.contains("href=") && !html.contains("<link"),
        "no external resources"
    );
}

#[test]
fn elected_and_raft_serve_and_converge_with_only_a_quorum_healed() {
    let opts = SimOptions {
        liveness_heal: LivenessHeal::Quorum,
        ..SimOptions::default()
    };
    for p in [protocol("elected"), protocol("raft")] {
        for seed in 0..40 {
            let run = (p.run)(seed, &opts);
            assert!(run.violation.is_none(), "{}", run.failure_report(p.name));
        }
    }
}

#[test]
fn sequencer_stalls_without_every_voter_and_the_liveness_check_says_so() {
    let p = protocol("sequencer");
    let opts = SimOptions {
        liveness_heal: LivenessHeal::Quorum,
        liveness_ticks_max: 300,
        ..SimOptions::default()
    };
    let stalled = (0..40)
        .map(|seed| (p.run)(seed, &opts))
        .find(|r| r.violation.is_some())
        .expect("a seed where a voter stays down");
    let v = stalled.violation.clone().expect("found");
    assert_eq!(v.invariant, Invariant::Liveness, "{v}");
    let report = stalled.failure_report(p.name);
    assert!(
        report.contains(&format!(
            "--seed {} --liveness-heal quorum --liveness-ticks 300 ",
            stalled.seed
        )),
        "{report}"
    );
}

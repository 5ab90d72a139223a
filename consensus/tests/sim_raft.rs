//! Raft under the deterministic simulator: the full fault swarm (3, 4, 5 and 7 nodes,
//! crashes, torn writes, partitions, pauses, skewed clocks, membership changes, snapshots
//! and leader transfers), with every invariant, linearizability and liveness checked.
//!
//! `cargo test -p rsm-consensus --test sim_raft` runs the default seeds in parallel
//! batches. `RAFT_SEEDS=START..END cargo test --release -p rsm-consensus --test sim_raft
//! -- --ignored seeds_from_env` runs any range; a failure prints the seed and a trace tail.

use rsm_consensus::{Raft, RaftConfig};
use rsm_core::check::{History, check};
use rsm_core::sim::{RunResult, SimOptions, run};
use rsm_core::{Membership, NodeId};

/// The configuration a simulated node runs with. The run seed (not the per-node seed)
/// picks the options every node must share: lease reads rely on every voter's stickiness.
pub fn sim_config(run_seed: u64, id: NodeId, membership: &Membership, seed: u64) -> RaftConfig {
    let mut c = RaftConfig::new(id, membership.clone(), seed);
    // Small thresholds so that snapshots, chunked transfers and window limits all happen.
    c.snapshot_entries_threshold = 24 + run_seed % 40;
    c.snapshot_chunk_bytes = 64 + (run_seed % 7) as usize * 96;
    c.msg_entries_max = 8 + (run_seed % 5) as usize * 16;
    c.inflight_msgs_max = 2 + (run_seed % 3) as usize * 6;
    c.batch_entries_max = 16;
    // Most runs use the defaults (pre-vote and check-quorum on); some turn each off, and
    // a quarter read from the leader's lease.
    c.pre_vote = run_seed % 8 != 3;
    c.check_quorum = run_seed % 8 != 5;
    c.lease_reads = run_seed % 4 == 1 && c.check_quorum;
    c
}

fn history_check(h: &History) -> Result<(), String> {
    let verdict = check(h);
    if verdict.is_linearizable() {
        Ok(())
    } else {
        Err(format!("{verdict:?}"))
    }
}

pub fn run_seed(seed: u64) -> RunResult {
    let opts = SimOptions {
        history_check: Some(history_check),
        ..SimOptions::default()
    };
    run::<Raft>(seed, &opts, &|id, m, s| sim_config(seed, id, m, s))
}

fn run_range(seeds: std::ops::Range<u64>) {
    let mut failures = Vec::new();
    for seed in seeds {
        let r = run_seed(seed);
        if r.violation.is_some() {
            failures.push(r.failure_report("raft"));
        } else {
            assert!(
                r.stats.liveness_ticks.is_some(),
                "seed {seed}: liveness not met"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn swarm_seeds_0_to_250() {
    run_range(0..250);
}

#[test]
fn swarm_seeds_250_to_500() {
    run_range(250..500);
}

#[test]
fn swarm_seeds_500_to_750() {
    run_range(500..750);
}

#[test]
fn swarm_seeds_750_to_1000() {
    run_range(750..1000);
}

#[test]
fn a_seed_replays_identically() {
    assert_eq!(run_seed(4242).digest, run_seed(4242).digest);
}

/// Runs the seeds named by `RAFT_SEEDS` (`START..END` or one seed).
#[test]
#[ignore = "run on demand with RAFT_SEEDS=START..END"]
fn seeds_from_env() {
    let spec = std::env::var("RAFT_SEEDS").unwrap_or_else(|_| "0..100".into());
    let range = match spec.split_once("..") {
        Some((a, b)) => a.parse().expect("start")..b.parse().expect("end"),
        None => {
            let s: u64 = spec.parse().expect("seed");
            s..s + 1
        }
    };
    run_range(range);
}

/// Coverage: how many seeds exercised snapshots, installs, reconfigurations and transfers.
#[test]
#[ignore = "diagnostics: prints coverage figures"]
fn coverage() {
    let (mut snaps, mut installs, mut configs, mut transfers, mut elections) = (0, 0, 0, 0, 0);
    let n = 200;
    for seed in 0..n {
        let opts = SimOptions {
            keep_trace: true,
            ..SimOptions::default()
        };
        let r = run::<Raft>(seed, &opts, &|id, m, s| sim_config(seed, id, m, s));
        let has = |needle: &str| r.trace.iter().any(|l| l.contains(needle));
        snaps += has("Snapshot") as u32;
        installs += has("InstallSnapshot") as u32;
        configs += has("Config") as u32;
        transfers += has("TimeoutNow") as u32;
        elections += r.stats.elections;
    }
    println!(
        "{n} seeds: snapshots {snaps}, installs {installs}, config entries {configs}, \
         transfers {transfers}, elections {elections}"
    );
}

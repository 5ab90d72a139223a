//! Viewstamped Replication under the deterministic simulator: the full fault swarm (3, 4,
//! 5 and 7 nodes, crashes, torn writes, partitions, pauses, skewed clocks,
//! reconfigurations, snapshots and handovers), with every invariant, linearizability and
//! liveness checked.
//!
//! `cargo test -p rsm-consensus --test sim_vsr` runs seeds 0..1000 in parallel batches.
//! `make sim PROTOCOL=vsr SEEDS=20000` runs any range with the same configuration mix,
//! [`VsrConfig::swarm`].

use rsm_consensus::{Vsr, VsrConfig};
use rsm_sim::{RunResult, SimOptions};

mod swarm;

pub fn run_seed(seed: u64) -> RunResult {
    swarm::run_seed::<Vsr>(seed, &SimOptions::default(), VsrConfig::swarm)
}

fn run_range(seeds: std::ops::Range<u64>) {
    swarm::run_range::<Vsr>("vsr", seeds, VsrConfig::swarm);
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

/// The swarm really mixes in what the seeds above are meant to exercise: snapshots taken
/// and installed, configuration entries, handovers and view changes.
#[test]
fn swarm_exercises_snapshots_membership_and_handovers() {
    swarm::assert_swarm_mix::<Vsr>(100, "SnapshotReply", "\"handover\":true", VsrConfig::swarm);
}

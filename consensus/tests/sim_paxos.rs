//! Multi-Paxos under the deterministic simulator: the full fault swarm (3, 4, 5 and 7
//! nodes, crashes, torn writes, partitions, pauses, skewed clocks, reconfigurations,
//! snapshots and leader transfers), with every invariant, linearizability and liveness
//! checked.
//!
//! `cargo test -p rsm-consensus --test sim_paxos` runs seeds 0..1000 in parallel batches.
//! `make sim PROTOCOL=paxos SEEDS=20000` runs any range with the same configuration mix,
//! [`PaxosConfig::swarm`].

use rsm_consensus::{Paxos, PaxosConfig};
use rsm_sim::{RunResult, SimOptions};

mod swarm;

pub fn run_seed(seed: u64) -> RunResult {
    swarm::run_seed::<Paxos>(seed, &SimOptions::default(), PaxosConfig::swarm)
}

fn run_range(seeds: std::ops::Range<u64>) {
    swarm::run_range::<Paxos>("paxos", seeds, PaxosConfig::swarm);
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
/// and installed, configuration entries, leadership transfers and elections.
#[test]
fn swarm_exercises_snapshots_membership_and_transfers() {
    swarm::assert_swarm_mix::<Paxos>(100, "SnapshotReply", "TimeoutNow", PaxosConfig::swarm);
}

//! Raft under the deterministic simulator: the full fault swarm (3, 4, 5 and 7 nodes,
//! crashes, torn writes, partitions, pauses, skewed clocks, membership changes, snapshots
//! and leader transfers), with every invariant, linearizability and liveness checked.
//!
//! `cargo test -p rsm-consensus --test sim_raft` runs seeds 0..1000 in parallel batches.
//! `make sim PROTOCOL=raft SEEDS=20000` (the `rsm-sim` command, with the same
//! configuration mix, [`RaftConfig::swarm`]) runs any range and prints the report; a failure
//! prints the seed, a trace tail and the command that reproduces it.

use rsm_check::{CheckConfig, History};
use rsm_consensus::{Raft, RaftConfig};
use rsm_core::{Membership, NodeId};
use rsm_sim::{FaultKind, Invariant, RunResult, SimOptions, Swarm, judge_history, run, run_swarm};

/// The configuration a simulated node of run `run_seed` runs with.
pub fn sim_config(run_seed: u64, id: NodeId, membership: &Membership, seed: u64) -> RaftConfig {
    RaftConfig::swarm(run_seed, id, membership, seed)
}

mod swarm;

pub fn run_seed(seed: u64) -> RunResult {
    swarm::run_seed::<Raft>(seed, &SimOptions::default(), sim_config)
}

fn run_range(seeds: std::ops::Range<u64>) {
    swarm::run_range::<Raft>("raft", seeds, sim_config);
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
/// and installed, configuration entries, leadership transfers, elections, and wiped disks
/// whose nodes rejoin through the safe procedure.
#[test]
fn swarm_exercises_snapshots_membership_and_transfers() {
    swarm::assert_swarm_mix::<Raft>(200, "InstallSnapshot", "TimeoutNow", sim_config);
}

/// A check that cannot finish is not a pass: with a search budget far too small for the
/// history, the seed fails with an inconclusive linearizability verdict, unless the
/// caller opted in.
#[test]
fn a_seed_whose_check_is_inconclusive_fails() {
    fn starved(h: &History) -> Result<(), String> {
        let config = CheckConfig {
            steps_per_key_max: 1,
            ..rsm_sim::linearizability_config()
        };
        judge_history(h, &config, false)
    }
    fn starved_opted_in(h: &History) -> Result<(), String> {
        let config = CheckConfig {
            steps_per_key_max: 1,
            ..rsm_sim::linearizability_config()
        };
        judge_history(h, &config, true)
    }
    let seed = 7;
    let with = |check| SimOptions {
        history_check: Some(check),
        ..SimOptions::default()
    };
    let r = run::<Raft>(seed, &with(starved), &|id, m, s| sim_config(seed, id, m, s));
    assert!(!r.history.is_empty(), "the seed recorded operations");
    let v = r
        .violation
        .as_ref()
        .expect("an inconclusive check fails the seed");
    assert_eq!(v.invariant, Invariant::Linearizability);
    assert!(v.detail.contains("inconclusive"), "{}", v.detail);
    let r = run::<Raft>(seed, &with(starved_opted_in), &|id, m, s| {
        sim_config(seed, id, m, s)
    });
    assert!(r.violation.is_none(), "{}", r.failure_report("raft"));
}

/// Issue 10: a node whose disk is wiped comes back only through the safe procedure
/// (removed, refused a plain restart, started blank to join as a learner, caught up,
/// promoted), here in a 3-node cluster under client load, catching up by entries and, with
/// a small snapshot threshold, by snapshot; no acknowledged write is lost and the history
/// stays linearizable.
#[test]
fn a_wiped_node_rejoins_as_a_learner_catches_up_and_is_promoted() {
    for (seed, threshold, by_snapshot) in [(11, 10_000, false), (12, 8, true)] {
        let swarm = Swarm {
            clients: 4,
            wipe: 1.0,
            ..Swarm::calm(3)
        };
        let opts = SimOptions {
            keep_trace: true,
            ..SimOptions::default()
        };
        let r = run_swarm::<Raft>(seed, swarm, &opts, &|id, m, s| {
            let mut c = RaftConfig::new(id, m.clone(), s);
            c.snapshot_entries_threshold = threshold;
            c
        });
        assert!(r.violation.is_none(), "{}", r.failure_report("raft"));
        assert!(r.stats.ops_ok > 100, "under load: {:?}", r.stats);
        let wipes = r.stats.faults.get(FaultKind::Wipe);
        assert!(wipes >= 2, "seed {seed}: {wipes} wipes");
        let at = |from: usize, needle: &str| {
            r.trace[from..]
                .iter()
                .position(|l| l.contains(needle))
                .map(|k| from + k)
        };
        // Each wiped node: its disk goes, a plain restart is refused, it starts blank to
        // join as a learner, applies what it missed (or installs a snapshot), and only
        // then is promoted.
        let mut from = 0;
        let mut rejoined = 0;
        while let Some(wiped) = at(from, "disk wiped") {
            let node = node_of(&r.trace[wiped]);
            let Some(promoted) = at(wiped, "rejoined as a voter") else {
                break;
            };
            assert_eq!(node_of(&r.trace[promoted]), node);
            let between = &r.trace[wiped..promoted];
            let of_node = |kind: &str| {
                between
                    .iter()
                    .any(|l| node_of(l) == node && l.contains(kind))
            };
            assert!(
                of_node("start refused: the storage is blank"),
                "seed {seed}: n{node} restarted as before is refused"
            );
            assert!(
                of_node("\"type\":\"restart\""),
                "seed {seed}: n{node} restarted"
            );
            assert!(
                of_node("\"type\":\"apply\""),
                "seed {seed}: n{node} caught up"
            );
            rejoined += 1;
            from = promoted;
        }
        assert!(rejoined >= 2, "seed {seed}: {rejoined} of {wipes} rejoined");
        let installed = r.trace.iter().any(|l| l.contains("InstallSnapshot"));
        assert_eq!(installed, by_snapshot, "seed {seed}");
    }
}

/// The node a trace line is about (`"node":N`), or 0.
fn node_of(line: &str) -> u64 {
    line.split("\"node\":")
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(0)
}

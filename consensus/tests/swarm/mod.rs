//! What every protocol's simulator test does with its seeds: run a range and demand zero
//! violations and met liveness, and check that the swarm really mixes in snapshots,
//! configuration entries, leadership transfers and elections.

#![allow(dead_code)]

use rsm_core::{Membership, NodeId, Replica};
use rsm_sim::{FaultKind, RunResult, SimOptions, run};
use serde::Serialize;

/// The configuration of one simulated node of run `run_seed`: `(run_seed, id, membership,
/// node_seed)`.
pub type SwarmConfig<R> = fn(u64, NodeId, &Membership, u64) -> <R as Replica>::Config;

/// Run one seed with the full swarm.
pub fn run_seed<R: Replica>(seed: u64, opts: &SimOptions, config: SwarmConfig<R>) -> RunResult
where
    R::Message: Serialize,
{
    run::<R>(seed, opts, &|id, m, s| config(seed, id, m, s))
}

/// Every seed of `seeds` passes: no violation, liveness met.
pub fn run_range<R: Replica>(name: &str, seeds: std::ops::Range<u64>, config: SwarmConfig<R>)
where
    R::Message: Serialize,
{
    let mut failures = Vec::new();
    for seed in seeds {
        let r = run_seed::<R>(seed, &SimOptions::default(), config);
        if r.violation.is_some() {
            failures.push(r.failure_report(name));
        } else if r.stats.liveness_ticks.is_none() {
            failures.push(format!("seed {seed}: liveness not met"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Over seeds `0..n`: at least a quarter take snapshots, some install one (the message
/// named `install` appears), propose a configuration entry and transfer leadership (the
/// message named `transfer` appears), every seed elects a leader at least once on
/// average, and at least ten disks are wiped, half of whose nodes rejoin as voters
/// through the safe procedure.
pub fn assert_swarm_mix<R: Replica>(n: u64, install: &str, transfer: &str, config: SwarmConfig<R>)
where
    R::Message: Serialize,
{
    let (mut snaps, mut installs, mut configs, mut transfers, mut elections) = (0, 0, 0, 0, 0);
    let (mut wipes, mut rejoins) = (0, 0);
    for seed in 0..n {
        let opts = SimOptions {
            keep_trace: true,
            ..SimOptions::default()
        };
        let r = run_seed::<R>(seed, &opts, config);
        let has = |needle: &str| r.trace.iter().any(|l| l.contains(needle));
        snaps += has("Snapshot") as u32;
        installs += has(install) as u32;
        configs += has("Config") as u32;
        transfers += has(transfer) as u32;
        elections += r.stats.elections;
        wipes += r.stats.faults.get(FaultKind::Wipe);
        rejoins += r
            .trace
            .iter()
            .filter(|l| l.contains("rejoined as a voter"))
            .count() as u64;
    }
    let figures = format!(
        "{n} seeds: snapshots {snaps}, installs {installs}, config entries {configs}, \
         transfers {transfers}, elections {elections}, wipes {wipes}, rejoins {rejoins}"
    );
    eprintln!("{figures}");
    assert!(wipes >= 10 && rejoins >= wipes / 2, "{figures}");
    assert!(snaps >= n as u32 / 4, "{figures}");
    assert!(installs > 0 && configs > 0 && transfers > 0, "{figures}");
    assert!(elections >= n, "{figures}");
}

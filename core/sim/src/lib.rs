//! A deterministic simulator for any [`Replica`].
//!
//! One `u64` seed fixes everything: the cluster size, the fault rates and the client load
//! ([`Swarm::draw`]), and every random choice during the run, so a seed reproduces a run
//! byte for byte ([`RunResult::digest`]). The simulator is the reference host: it executes
//! effects in order, holds each `Send` until the persists before it are synced, applies
//! committed commands to a per-node [`KvStore`](rsm_core::kv::KvStore), and answers snapshot,
//! read and proposal effects the way a production host must.
//!
//! A run has two phases. In the fault phase clients issue reads, writes and
//! compare-and-swaps with retries under exactly-once sessions, while the network delays,
//! reorders, drops, duplicates and partitions messages, and nodes crash (losing unsynced
//! writes, sometimes tearing the last one), restart, pause and tick at skewed rates. Then
//! faults stop, every link heals and every node restarts, and within
//! [`SimOptions::liveness_ticks_max`] every pending operation must complete and the
//! replicas must converge. Invariants ([`Invariant`]) are checked on every step; the
//! first violation stops the run.
//!
//! Plugging a protocol in takes one function that builds a node's configuration from its
//! id, the initial membership and a seed for the automaton's own PRNG:
//!
//! ```
//! # use rsm_core::{Durable, Effect, Input, NodeId, RejectReason, Replica, RestoreError, Status};
//! # /// A replica that refuses every request: enough to show the plumbing.
//! # #[derive(Debug)]
//! # struct Idle(NodeId);
//! # impl Replica for Idle {
//! #     type Message = ();
//! #     type Config = NodeId;
//! #     fn restore(id: NodeId, _: Durable) -> Result<Self, RestoreError> { Ok(Idle(id)) }
//! #     fn step(&mut self, input: Input<()>, out: &mut Vec<Effect<()>>) {
//! #         if let Input::Propose { req, .. } | Input::Read { req } = input {
//! #             out.push(Effect::Reject { req, reason: RejectReason::NotLeader { hint: None } });
//! #         }
//! #     }
//! #     fn status(&self) -> Status { Status { id: self.0, ..Status::default() } }
//! # }
//! use rsm_sim::{self as sim, SimOptions};
//!
//! let opts = SimOptions { ops_per_client: 0, ..SimOptions::default() };
//! let result = sim::run::<Idle>(7, &opts, &|id, _membership, _seed| id);
//! assert!(result.violation.is_none(), "{}", result.failure_report("idle"));
//! assert_eq!(sim::run::<Idle>(7, &opts, &|id, _, _| id).digest, result.digest);
//! ```

#![warn(missing_docs)]

mod client;
mod disk;
mod faults;
mod invariants;
mod network;
mod report;
mod swarm;
mod timeline;
mod trace;
mod world;

use std::fmt::Write as _;

use serde::Serialize;

use rsm_check::{self as check, CheckConfig, History};
use rsm_core::{Membership, NodeId, Replica};

pub use client::{ATTEMPT_TIMEOUT_UNITS, ATTEMPTS_MAX, RETRY_BACKOFF_UNITS};
pub use disk::{CrashDamage, DISK_PENDING_MAX, Disk};
pub use faults::{FaultCounts, FaultKind};
pub use invariants::{Invariant, Violation};
pub use network::{Fate, LinkFaults, Network};
pub use report::{REPORT_VIOLATIONS_SHOWN, Report, RunStats};
pub use swarm::{CLUSTER_SIZES, ReadPath, Swarm, TICK_UNITS};
pub use timeline::write_html;
pub use trace::{Digest, Event, EventKind, write_json_lines};
pub use world::{EVENTS_MAX, HELD_SENDS_MAX, IN_FLIGHT_MAX, TAIL_EVENTS, TRACE_EVENTS_MAX};

/// Builds a node's configuration: its id, the initial membership, and a seed for the
/// automaton's own PRNG (different for every node and every incarnation).
pub type MakeConfig<'a, R> = dyn Fn(NodeId, &Membership, u64) -> <R as Replica>::Config + 'a;

/// A check of the final client history: `Err` carries a printable explanation.
pub type HistoryCheck = fn(&History) -> Result<(), String>;

/// What the liveness phase repairs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum LivenessHeal {
    /// Every link heals and every node restarts and resumes; all members must converge.
    #[default]
    All,
    /// A random majority of the nodes heals among itself and restarts; the rest stay
    /// crashed or cut off. The majority alone must serve every client and converge, as a
    /// protocol that tolerates a minority of failures must.
    Quorum,
}

/// Knobs that are the same for every seed of a batch.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Length of the fault phase, in nominal node ticks.
    pub fault_ticks: u64,
    /// Ticks allowed after faults stop for every pending operation to complete and every
    /// replica to converge.
    pub liveness_ticks_max: u64,
    /// What the liveness phase repairs.
    pub liveness_heal: LivenessHeal,
    /// Operations each client starts during the fault phase, at most.
    pub ops_per_client: u32,
    /// Keep every event as a JSON line in [`RunResult::trace`].
    pub keep_trace: bool,
    /// Checks the client history at the end of a run (the linearizability checker).
    pub history_check: Option<HistoryCheck>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            fault_ticks: 600,
            liveness_ticks_max: 2_000,
            liveness_heal: LivenessHeal::All,
            ops_per_client: 60,
            keep_trace: false,
            history_check: Some(linearizable),
        }
    }
}

impl SimOptions {
    /// The `rsm-sim` flags that set every option differing from the default, each
    /// preceded by a space; empty for the defaults.
    pub fn command_line_flags(&self) -> String {
        let d = SimOptions::default();
        let mut s = String::new();
        if self.liveness_heal == LivenessHeal::Quorum {
            s.push_str(" --liveness-heal quorum");
        }
        if self.fault_ticks != d.fault_ticks {
            let _ = write!(s, " --fault-ticks {}", self.fault_ticks);
        }
        if self.liveness_ticks_max != d.liveness_ticks_max {
            let _ = write!(s, " --liveness-ticks {}", self.liveness_ticks_max);
        }
        if self.ops_per_client != d.ops_per_client {
            let _ = write!(s, " --ops-per-client {}", self.ops_per_client);
        }
        s
    }
}

/// Search steps the end-of-run linearizability check may spend per key.
pub const LINEARIZABILITY_STEPS_PER_KEY_MAX: u64 = 2_000_000;

/// Bytes the end-of-run linearizability check's caches may hold.
pub const LINEARIZABILITY_MEMORY_BYTES_MAX: u64 = 256 << 20;

/// The limits of the end-of-run linearizability check: bounded by steps and bytes but not
/// by time, and on the calling thread (seeds already run in parallel), so a seed's verdict
/// depends on nothing but the seed.
pub fn linearizability_config() -> CheckConfig {
    CheckConfig {
        steps_per_key_max: LINEARIZABILITY_STEPS_PER_KEY_MAX,
        memory_bytes_max: LINEARIZABILITY_MEMORY_BYTES_MAX,
        threads_max: 1,
        ..CheckConfig::default()
    }
}

/// The default [`HistoryCheck`]: the linearizability checker ([`check::check_with`]). An
/// inconclusive check fails the run too: a history nobody could check proves nothing.
pub fn linearizable(history: &History) -> Result<(), String> {
    judge_history(history, &linearizability_config(), false)
}

/// The [`HistoryCheck`] for callers who opted in to counting an inconclusive check (a
/// budget ran out) as a pass; a history that is not linearizable still fails.
pub fn linearizable_or_inconclusive(history: &History) -> Result<(), String> {
    judge_history(history, &linearizability_config(), true)
}

/// How the simulator's client histories read: values as the text the clients wrote
/// (`c1.23`), times in ticks (`173.7`), as in the trace.
pub const HISTORY_LABELS: check::Labels = check::Labels {
    value: client::value_text,
    time: trace::ticks_text,
};

/// Check `history` under `config`: `Ok` if linearizable (or inconclusive, when
/// `inconclusive_passes`), otherwise the verdict for people.
pub fn judge_history(
    history: &History,
    config: &CheckConfig,
    inconclusive_passes: bool,
) -> Result<(), String> {
    let verdict = check::check_with(history, config);
    if verdict.passes(inconclusive_passes) {
        Ok(())
    } else {
        Err(verdict.describe(&HISTORY_LABELS))
    }
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The seed.
    pub seed: u64,
    /// The shape the seed drew.
    pub swarm: Swarm,
    /// The options the run used.
    pub options: SimOptions,
    /// A hash of every event: equal digests mean identical runs.
    pub digest: Digest,
    /// Figures for the report.
    pub stats: RunStats,
    /// The first violated invariant, if any.
    pub violation: Option<Violation>,
    /// The last events before the end of the run (or the violation), rendered for people.
    pub tail: Vec<String>,
    /// The client history.
    pub history: History,
    /// Every event as a JSON object, if [`SimOptions::keep_trace`] was set.
    pub trace: Vec<String>,
}

impl RunResult {
    /// A failure report for people: the seed, the invariant, the last events and the command
    /// that reproduces the run with `rsm-sim`.
    pub fn failure_report(&self, protocol: &str) -> String {
        let mut s = String::new();
        match &self.violation {
            None => {
                let _ = writeln!(s, "seed {}: no violation", self.seed);
            }
            Some(v) => {
                let _ = writeln!(s, "VIOLATION at seed {}: {v}", self.seed);
                let _ = writeln!(
                    s,
                    "swarm: {} nodes, {} clients, {:?}",
                    self.swarm.nodes, self.swarm.clients, self.swarm.link
                );
                let _ = writeln!(s, "last {} events:", self.tail.len());
                for line in &self.tail {
                    let _ = writeln!(s, "  {line}");
                }
                let _ = writeln!(
                    s,
                    "reproduce: cargo run --release -p rsm-examples --bin rsm-sim -- \
                     --protocol {protocol} --seed {}{} --trace-dir target/sim-trace",
                    self.seed,
                    self.options.command_line_flags()
                );
            }
        }
        s
    }
}

/// Run one seed: draw its swarm, simulate, check.
pub fn run<R: Replica>(seed: u64, opts: &SimOptions, make_config: &MakeConfig<'_, R>) -> RunResult
where
    R::Message: Serialize,
{
    run_swarm::<R>(seed, Swarm::draw(seed), opts, make_config)
}

/// Run one seed with a chosen swarm instead of the one the seed draws.
pub fn run_swarm<R: Replica>(
    seed: u64,
    swarm: Swarm,
    opts: &SimOptions,
    make_config: &MakeConfig<'_, R>,
) -> RunResult
where
    R::Message: Serialize,
{
    world::World::<R>::new(seed, swarm, opts, make_config).run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_check::{Call, Operation, Outcome, Ret};

    #[test]
    fn a_history_failure_reads_in_ticks_and_client_values() {
        let written = (1 << 32) | 1;
        let never_written = (1 << 32) | 2;
        let write = Operation {
            client: 1,
            key: 0,
            call: Call::Write(Some(written)),
            invoke: 10,
            complete: 25,
            outcome: Outcome::Ok(Ret::Written),
        };
        let read = Operation {
            client: 2,
            call: Call::Read,
            invoke: 40,
            complete: 57,
            outcome: Outcome::Ok(Ret::Read(Some(never_written))),
            ..write
        };
        let history = History {
            ops: vec![write, read],
        };
        let text = linearizable(&history).unwrap_err();
        assert!(text.contains("write c1.1 ok"), "{text}");
        assert!(text.contains("read = c1.2"), "{text}");
        assert!(text.contains("[   4.0,    5.7]"), "times in ticks: {text}");
    }
}

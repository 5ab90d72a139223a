//! The deterministic simulator from Python: `rsm.simulate` runs many seeds and returns a
//! `Report`; `rsm.run_seed` runs one and returns a `RunResult` with its client history.
//! Both release the GIL while the simulator runs.

use std::collections::BTreeMap;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyRange, PyString, PyTuple};
use rsm_consensus::registry::{self, OptionError, Visitor};
use rsm_core::{Membership, NodeId};
use rsm_sim::{
    FaultKind, HistoryCheck, LinkFaults, LivenessHeal, ReadPath, Report as CoreReport,
    RunResult as CoreRunResult, RunStats as CoreRunStats, SimOptions, Swarm, TICK_UNITS, run_swarm,
};

use crate::args::{
    Options, bool_arg, option_error, options_arg, probability_arg, str_arg, type_name, u64_arg,
};
use crate::check::Operation;
use crate::host::panic_message;
use crate::values::value_methods;

/// Seeds one call may list explicitly (a `range` or `(start, stop)` is never listed).
pub(crate) const SEEDS_LISTED_MAX: usize = 1 << 20;

/// Largest cluster the Python entry points build.
pub(crate) const NODES_MAX: u64 = 15;

/// Which seeds to run.
#[derive(Clone, Debug)]
enum Seeds {
    Range(u64, u64),
    Listed(Vec<u64>),
}

impl Seeds {
    fn for_each(&self, mut f: impl FnMut(u64)) {
        match self {
            Seeds::Range(a, b) => (*a..*b).for_each(&mut f),
            Seeds::Listed(v) => v.iter().copied().for_each(&mut f),
        }
    }
}

fn seeds_arg(seeds: &Bound<'_, PyAny>) -> PyResult<Seeds> {
    if let Ok(r) = seeds.cast::<PyRange>() {
        let step = u64_arg(&r.getattr("step")?, "seeds.step")?;
        let start = u64_arg(&r.getattr("start")?, "seeds.start")?;
        let stop = u64_arg(&r.getattr("stop")?, "seeds.stop")?;
        if step == 1 {
            return Ok(Seeds::Range(start, stop.max(start)));
        }
    }
    if let Ok(t) = seeds.cast::<PyTuple>()
        && t.len() == 2
    {
        let start = u64_arg(&t.get_item(0)?, "seeds[0]")?;
        let stop = u64_arg(&t.get_item(1)?, "seeds[1]")?;
        if stop < start {
            return Err(PyValueError::new_err(format!(
                "seed range ({start}, {stop}) ends before it starts"
            )));
        }
        return Ok(Seeds::Range(start, stop));
    }
    let iter = seeds.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "`seeds` must be a range, a (start, stop) tuple or an iterable of ints, not {}",
            type_name(seeds)
        ))
    })?;
    let mut listed = Vec::new();
    for s in iter {
        if listed.len() == SEEDS_LISTED_MAX {
            return Err(PyValueError::new_err(format!(
                "at most {SEEDS_LISTED_MAX} seeds may be listed; pass a range for more"
            )));
        }
        listed.push(u64_arg(&s?, "seed")?);
    }
    Ok(Seeds::Listed(listed))
}

/// How each run's cluster and faults are chosen.
#[derive(Clone, Debug)]
enum FaultPlan {
    /// Every seed draws its own cluster size and fault mix (swarm testing).
    Swarm,
    /// A fixed plan: a calm cluster with the named faults switched on.
    Fixed(Swarm),
}

impl FaultPlan {
    fn swarm(&self, seed: u64, nodes: Option<usize>) -> Swarm {
        let mut s = match self {
            FaultPlan::Swarm => Swarm::draw(seed),
            FaultPlan::Fixed(s) => s.clone(),
        };
        if let Some(n) = nodes {
            resize(&mut s, n);
        }
        s
    }
}

fn resize(s: &mut Swarm, nodes: usize) {
    let period = s.tick_period_units.first().copied().unwrap_or(TICK_UNITS);
    s.tick_period_units.resize(nodes, period);
    s.nodes = nodes;
}

/// Names `faults=` accepts in a dict, with what each sets.
const FAULT_KEYS: &str = "loss, duplicate, delay_min_units, delay_spread_units, crash, \
    partition, pause, heal, torn_writes, reconfigure, transfer, wipe, clients, keys, reads";

fn fault_plan_arg(faults: &Bound<'_, PyAny>) -> PyResult<FaultPlan> {
    if faults.is_instance_of::<PyString>() {
        return match str_arg(faults, "faults")?.as_str() {
            "swarm" => Ok(FaultPlan::Swarm),
            "none" => Ok(FaultPlan::Fixed(Swarm::calm(3))),
            other => Err(PyValueError::new_err(format!(
                "`faults` must be \"swarm\", \"none\" or a dict of fault settings, got {other:?}"
            ))),
        };
    }
    let Ok(d) = faults.cast::<PyDict>() else {
        return Err(PyTypeError::new_err(format!(
            "`faults` must be \"swarm\", \"none\" or a dict, not {}",
            type_name(faults)
        )));
    };
    let mut s = Swarm::calm(3);
    // Partitions heal now and then unless the dict says otherwise (the liveness phase
    // heals everything in any case).
    s.heal = 0.1;
    let mut link = LinkFaults::default();
    for (k, v) in d.iter() {
        let name = str_arg(&k, "fault name")?;
        match name.as_str() {
            "loss" => link.loss = probability_arg(&v, &name)?,
            "duplicate" => link.duplicate = probability_arg(&v, &name)?,
            "delay_min_units" => link.delay_min_units = u64_arg(&v, &name)?.max(1),
            "delay_spread_units" => link.delay_spread_units = u64_arg(&v, &name)?.max(1),
            "crash" => s.crash = probability_arg(&v, &name)?,
            "partition" => s.partition = probability_arg(&v, &name)?,
            "pause" => s.pause = probability_arg(&v, &name)?,
            "heal" => s.heal = probability_arg(&v, &name)?,
            "torn_writes" => s.torn_writes = bool_arg(&v, &name)?,
            "reconfigure" => s.reconfigure = probability_arg(&v, &name)?,
            "transfer" => s.transfer = probability_arg(&v, &name)?,
            "wipe" => s.wipe = probability_arg(&v, &name)?,
            "clients" => s.clients = bounded(u64_arg(&v, &name)?, 1, 64, &name)? as usize,
            "keys" => s.keys = bounded(u64_arg(&v, &name)?, 1, 1 << 20, &name)?,
            "reads" => {
                s.reads = match str_arg(&v, &name)?.as_str() {
                    "barrier" => ReadPath::Barrier,
                    "log" => ReadPath::Log,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "`reads` must be \"barrier\" or \"log\", got {other:?}"
                        )));
                    }
                }
            }
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "unknown fault setting `{name}`; known: {FAULT_KEYS}"
                )));
            }
        }
    }
    s.link = link;
    Ok(FaultPlan::Fixed(s))
}

fn bounded(v: u64, min: u64, max: u64, name: &str) -> PyResult<u64> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(PyValueError::new_err(format!(
            "`{name}` must be between {min} and {max}, got {v}"
        )))
    }
}

/// `check_linearizability`: `True` (an inconclusive check fails the run), `False`, or
/// `"allow_inconclusive"` (the caller opts in to counting an inconclusive check as a pass).
fn history_check_arg(value: &Bound<'_, PyAny>) -> PyResult<Option<HistoryCheck>> {
    if value.is_instance_of::<PyString>() {
        return match str_arg(value, "check_linearizability")?.as_str() {
            "allow_inconclusive" => Ok(Some(rsm_sim::linearizable_or_inconclusive)),
            other => Err(PyValueError::new_err(format!(
                "`check_linearizability` must be a bool or \"allow_inconclusive\", got {other:?}"
            ))),
        };
    }
    Ok(bool_arg(value, "check_linearizability")?.then_some(rsm_sim::linearizable as HistoryCheck))
}

/// Everything a simulation call needs, as plain data (no Python objects), so it runs
/// without the GIL.
struct Plan {
    protocol: &'static str,
    faults: FaultPlan,
    nodes: Option<usize>,
    opts: SimOptions,
    options: Options,
}

/// Checks options against the protocol picked by name, building one configuration.
struct CheckOptions<'a> {
    options: &'a Options,
    checked: Option<Result<&'static str, OptionError>>,
}

impl Visitor for CheckOptions<'_> {
    fn visit<P: registry::Protocol>(&mut self) {
        let (id, m) = (NodeId(1), Membership::new([NodeId(1)]));
        self.checked = Some(P::config(id, m, 0, self.options).map(|_| P::NAME));
    }
}

/// Runs one seed of the protocol picked by name.
struct RunSeed<'a> {
    plan: &'a Plan,
    seed: u64,
    swarm: Swarm,
    result: Option<Result<CoreRunResult, String>>,
}

impl Visitor for RunSeed<'_> {
    fn visit<P: registry::Protocol>(&mut self) {
        self.result = Some(self.plan.run_with::<P>(self.seed, self.swarm.clone()));
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_arg(
    protocol: &str,
    faults: &Bound<'_, PyAny>,
    nodes: Option<&Bound<'_, PyAny>>,
    fault_ticks: &Bound<'_, PyAny>,
    liveness_ticks_max: &Bound<'_, PyAny>,
    ops_per_client: &Bound<'_, PyAny>,
    check_linearizability: &Bound<'_, PyAny>,
    keep_trace: bool,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Plan> {
    let options = options_arg(options)?;
    // Build one configuration now, so that bad options raise before anything runs.
    let mut check = CheckOptions {
        options: &options,
        checked: None,
    };
    registry::visit(protocol, &mut check).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let protocol = check
        .checked
        .expect("the visitor ran")
        .map_err(option_error)?;
    let nodes = match nodes {
        Some(n) if !n.is_none() => {
            Some(bounded(u64_arg(n, "nodes")?, 1, NODES_MAX, "nodes")? as usize)
        }
        _ => None,
    };
    let opts = SimOptions {
        fault_ticks: u64_arg(fault_ticks, "fault_ticks")?,
        liveness_ticks_max: bounded(
            u64_arg(liveness_ticks_max, "liveness_ticks_max")?,
            1,
            u64::MAX / (4 * TICK_UNITS),
            "liveness_ticks_max",
        )?,
        ops_per_client: bounded(
            u64_arg(ops_per_client, "ops_per_client")?,
            0,
            1 << 20,
            "ops_per_client",
        )? as u32,
        keep_trace,
        liveness_heal: LivenessHeal::default(),
        history_check: history_check_arg(check_linearizability)?,
    };
    Ok(Plan {
        protocol,
        faults: fault_plan_arg(faults)?,
        nodes,
        opts,
        options,
    })
}

impl Plan {
    /// Run one seed. Needs no GIL.
    fn run(&self, seed: u64) -> Result<CoreRunResult, String> {
        let swarm = self.faults.swarm(seed, self.nodes);
        let mut run = RunSeed {
            plan: self,
            seed,
            swarm,
            result: None,
        };
        registry::visit(self.protocol, &mut run).map_err(|e| e.to_string())?;
        run.result.expect("the visitor ran")
    }

    fn run_with<P: registry::Protocol>(
        &self,
        seed: u64,
        swarm: Swarm,
    ) -> Result<CoreRunResult, String> {
        let options = &self.options;
        // Options were validated when the plan was built; they do not depend on identity.
        let make = |id: NodeId, m: &Membership, s: u64| {
            P::config(id, m.clone(), s, options).expect("options validated before the run")
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_swarm::<P::Replica>(seed, swarm, &self.opts, &make)
        }))
        .map_err(|p| {
            format!(
                "the simulator panicked at seed {seed}: {}",
                panic_message(&*p)
            )
        })
    }
}

/// What one run did, or the sums over many runs (`Report.totals`).
#[pyclass(module = "rsm", frozen)]
pub(crate) struct RunStats {
    inner: CoreRunStats,
}

value_methods!(
    RunStats,
    [
        ticks,
        events,
        elections,
        ops_ok,
        ops_fail,
        ops_indeterminate
    ],
    {
        /// Simulated time, in node ticks.
        #[getter]
        fn ticks(&self) -> u64 {
            self.inner.ticks
        }

        /// Events processed (sends, deliveries, persists, applies, faults, client calls).
        #[getter]
        fn events(&self) -> u64 {
            self.inner.events
        }

        /// Faults injected by kind (only kinds that occurred).
        #[getter]
        fn faults(&self) -> BTreeMap<&'static str, u64> {
            FaultKind::ALL
                .iter()
                .map(|&k| (k.name(), self.inner.faults.get(k)))
                .filter(|&(_, n)| n > 0)
                .collect()
        }

        /// Distinct epochs in which some replica led.
        #[getter]
        fn elections(&self) -> u64 {
            self.inner.elections
        }

        /// Client operations that returned ok.
        #[getter]
        fn ops_ok(&self) -> u64 {
            self.inner.ops_ok
        }

        /// Client operations that definitely failed.
        #[getter]
        fn ops_fail(&self) -> u64 {
            self.inner.ops_fail
        }

        /// Client operations whose outcome is unknown.
        #[getter]
        fn ops_indeterminate(&self) -> u64 {
            self.inner.ops_indeterminate
        }

        /// Invariant checks performed.
        #[getter]
        fn checks(&self) -> u64 {
            self.inner.checks
        }
    }
);

/// Figures aggregated over many seeds: totals, violations and convergence times.
#[pyclass(module = "rsm", frozen)]
pub(crate) struct Report {
    inner: CoreReport,
}

value_methods!(Report, [seeds, totals, violations], {
    /// Seeds run.
    #[getter]
    fn seeds(&self) -> u64 {
        self.inner.seeds
    }

    /// Figures summed over every run.
    #[getter]
    fn totals(&self) -> RunStats {
        RunStats {
            inner: self.inner.totals.clone(),
        }
    }

    /// Each violating seed as `(seed, invariant, detail)`.
    #[getter]
    fn violations(&self) -> Vec<(u64, &'static str, String)> {
        self.inner
            .violations
            .iter()
            .map(|(s, v)| (*s, v.invariant.name(), v.to_string()))
            .collect()
    }

    /// Ticks to converge after faults stopped, one per run that converged.
    #[getter]
    fn liveness_ticks(&self) -> Vec<u64> {
        self.inner.liveness_ticks.clone()
    }

    /// The `p`-th percentile (0..=100) of ticks to converge; `None` if no run converged.
    fn liveness_percentile(&self, p: u64) -> Option<u64> {
        self.inner.liveness_percentile(p)
    }

    /// The report as text; `elapsed_secs` is wall time the caller measured (the
    /// simulator never reads a clock), used for the per-second figures. Without it the
    /// report says the time was not measured and leaves the rates out.
    #[pyo3(signature = (elapsed_secs = 0.0))]
    fn render(&self, elapsed_secs: f64) -> String {
        self.inner.render(elapsed_secs)
    }

    fn __str__(&self) -> String {
        self.inner.render(0.0)
    }
});

/// A violated invariant: its name, the node it was seen at (if one) and what was seen.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Violation {
    /// The invariant's name, e.g. `"log-matching"` or `"linearizability"`.
    #[pyo3(get)]
    invariant: &'static str,
    /// The node it was seen at, if one.
    #[pyo3(get)]
    node: Option<u64>,
    /// What was seen, for a person.
    #[pyo3(get)]
    detail: String,
}

value_methods!(Violation, [invariant, node, detail]);

/// Everything one seed produced: its figures, the first violation (if any), the last
/// events, the client history as `Operation`s and, with `keep_trace=True`, every event
/// as a JSON line.
#[pyclass(module = "rsm", frozen)]
pub(crate) struct RunResult {
    inner: CoreRunResult,
    protocol: &'static str,
}

value_methods!(RunResult, [seed, nodes, digest, violation], {
    /// The seed.
    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// Cluster size the run used.
    #[getter]
    fn nodes(&self) -> usize {
        self.inner.swarm.nodes
    }

    /// Concurrent clients the run used.
    #[getter]
    fn clients(&self) -> usize {
        self.inner.swarm.clients
    }

    /// A hash of every event: equal digests mean identical runs.
    #[getter]
    fn digest(&self) -> u64 {
        self.inner.digest.value()
    }

    /// The run's figures.
    #[getter]
    fn stats(&self) -> RunStats {
        RunStats {
            inner: self.inner.stats.clone(),
        }
    }

    /// Ticks to converge after faults stopped; `None` if the run never did.
    #[getter]
    fn liveness_ticks(&self) -> Option<u64> {
        self.inner.stats.liveness_ticks
    }

    /// The first violated invariant, or `None`.
    #[getter]
    fn violation(&self) -> Option<Violation> {
        self.inner.violation.as_ref().map(|v| Violation {
            invariant: v.invariant.name(),
            node: v.node.map(|n| n.0),
            detail: v.detail.clone(),
        })
    }

    /// The last events before the end of the run (or the violation), for people.
    #[getter]
    fn tail(&self) -> Vec<String> {
        self.inner.tail.clone()
    }

    /// The client history, ready for `rsm.check`.
    #[getter]
    fn history(&self) -> Vec<Operation> {
        self.inner
            .history
            .ops
            .iter()
            .map(|&inner| Operation { inner })
            .collect()
    }

    /// Every event as a JSON line (only with `keep_trace=True`).
    #[getter]
    fn trace(&self) -> Vec<String> {
        self.inner.trace.clone()
    }

    /// A report for people: the seed, the violation and the events before it.
    fn failure_report(&self) -> String {
        self.inner.failure_report(self.protocol)
    }
});

/// Run the simulator over many seeds and aggregate a `Report`.
///
/// `seeds` is a `range`, a `(start, stop)` tuple or an iterable of ints. `faults` is
/// `"swarm"` (every seed draws its own cluster size and fault mix), `"none"` (a calm
/// cluster) or a dict switching individual faults on over a calm cluster, e.g.
/// `{"loss": 0.05, "crash": 0.1, "partition": 0.2}`. `nodes` fixes the cluster size.
/// `options` are protocol keyword options (as for `rsm.Raft`) given to every replica.
/// The GIL is released while the seeds run.
#[pyfunction]
#[pyo3(signature = (protocol = "raft", seeds = None, *, faults = None, nodes = None, fault_ticks = None, liveness_ticks_max = None, ops_per_client = None, check_linearizability = None, options = None))]
#[allow(clippy::too_many_arguments)]
fn simulate(
    py: Python<'_>,
    protocol: &str,
    seeds: Option<&Bound<'_, PyAny>>,
    faults: Option<&Bound<'_, PyAny>>,
    nodes: Option<&Bound<'_, PyAny>>,
    fault_ticks: Option<&Bound<'_, PyAny>>,
    liveness_ticks_max: Option<&Bound<'_, PyAny>>,
    ops_per_client: Option<&Bound<'_, PyAny>>,
    check_linearizability: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Report> {
    let seeds = match seeds {
        Some(s) => seeds_arg(s)?,
        None => Seeds::Range(0, 100),
    };
    let plan = plan_from(
        py,
        protocol,
        faults,
        nodes,
        fault_ticks,
        liveness_ticks_max,
        ops_per_client,
        check_linearizability,
        false,
        options,
    )?;
    let report = py.detach(|| {
        let mut report = CoreReport::new();
        let mut failure = None;
        seeds.for_each(|seed| {
            if failure.is_some() {
                return;
            }
            match plan.run(seed) {
                Ok(r) => report.add(seed, &r.stats, r.violation.as_ref()),
                Err(e) => failure = Some(e),
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    });
    report
        .map(|inner| Report { inner })
        .map_err(pyo3::panic::PanicException::new_err)
}

/// Run one seed and return its `RunResult` (history included). Same keywords as
/// `simulate`, plus `keep_trace` to keep every event as a JSON line.
#[pyfunction]
#[pyo3(signature = (seed, protocol = "raft", *, faults = None, nodes = None, fault_ticks = None, liveness_ticks_max = None, ops_per_client = None, check_linearizability = None, keep_trace = None, options = None))]
#[allow(clippy::too_many_arguments)]
fn run_seed(
    py: Python<'_>,
    seed: &Bound<'_, PyAny>,
    protocol: &str,
    faults: Option<&Bound<'_, PyAny>>,
    nodes: Option<&Bound<'_, PyAny>>,
    fault_ticks: Option<&Bound<'_, PyAny>>,
    liveness_ticks_max: Option<&Bound<'_, PyAny>>,
    ops_per_client: Option<&Bound<'_, PyAny>>,
    check_linearizability: Option<&Bound<'_, PyAny>>,
    keep_trace: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<RunResult> {
    let seed = u64_arg(seed, "seed")?;
    let keep_trace = match keep_trace {
        Some(k) => bool_arg(k, "keep_trace")?,
        None => false,
    };
    let plan = plan_from(
        py,
        protocol,
        faults,
        nodes,
        fault_ticks,
        liveness_ticks_max,
        ops_per_client,
        check_linearizability,
        keep_trace,
        options,
    )?;
    let result = py.detach(|| plan.run(seed));
    result
        .map(|inner| RunResult {
            inner,
            protocol: plan.protocol,
        })
        .map_err(pyo3::panic::PanicException::new_err)
}

/// Fill in defaults for omitted keywords, then check everything.
#[allow(clippy::too_many_arguments)]
fn plan_from(
    py: Python<'_>,
    protocol: &str,
    faults: Option<&Bound<'_, PyAny>>,
    nodes: Option<&Bound<'_, PyAny>>,
    fault_ticks: Option<&Bound<'_, PyAny>>,
    liveness_ticks_max: Option<&Bound<'_, PyAny>>,
    ops_per_client: Option<&Bound<'_, PyAny>>,
    check_linearizability: Option<&Bound<'_, PyAny>>,
    keep_trace: bool,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Plan> {
    let d = SimOptions::default();
    let swarm = PyString::new(py, "swarm").into_any();
    let int = |v: u64| v.into_pyobject(py).map(|b| b.into_any());
    let t = pyo3::types::PyBool::new(py, true).to_owned().into_any();
    let fault_ticks_default = int(d.fault_ticks)?;
    let liveness_default = int(d.liveness_ticks_max)?;
    let ops_default = int(u64::from(d.ops_per_client))?;
    plan_arg(
        protocol,
        faults.filter(|f| !f.is_none()).unwrap_or(&swarm),
        nodes,
        fault_ticks.unwrap_or(&fault_ticks_default),
        liveness_ticks_max.unwrap_or(&liveness_default),
        ops_per_client.unwrap_or(&ops_default),
        check_linearizability.unwrap_or(&t),
        keep_trace,
        options,
    )
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RunStats>()?;
    m.add_class::<Report>()?;
    m.add_class::<RunResult>()?;
    m.add_class::<Violation>()?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(run_seed, m)?)?;
    Ok(())
}

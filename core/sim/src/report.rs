//! Per-run figures and the report aggregated over a range of seeds.

use std::fmt::Write as _;

use super::faults::FaultCounts;
use super::invariants::Violation;
use super::swarm::TICK_UNITS;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Cluster size.
    pub nodes: usize,
    /// Simulated time, in nominal node ticks.
    pub ticks: u64,
    /// Events recorded (sends, deliveries, persists, applies, faults, client calls, ...).
    pub events: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// Distinct epochs in which some replica led.
    pub elections: u64,
    /// Client operations that returned ok.
    pub ops_ok: u64,
    /// Client operations that definitely failed.
    pub ops_fail: u64,
    /// Client operations whose outcome is unknown.
    pub ops_indeterminate: u64,
    /// Invariant checks performed.
    pub checks: u64,
    /// Node ticks from the start of the liveness phase until every pending operation
    /// completed and the replicas converged; `None` if they never did.
    pub liveness_ticks: Option<u64>,
}

impl RunStats {
    pub(crate) fn set_time(&mut self, units: u64) {
        self.ticks = units / TICK_UNITS;
    }
}

/// Figures aggregated over many runs.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Seeds run.
    pub seeds: u64,
    /// Sums over all runs (`nodes` and `liveness_ticks` are not summed).
    pub totals: RunStats,
    /// Each violating seed with what it violated.
    pub violations: Vec<(u64, Violation)>,
    /// Ticks to converge after the liveness phase began, one per run that converged.
    pub liveness_ticks: Vec<u64>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one run.
    pub fn add(&mut self, seed: u64, stats: &RunStats, violation: Option<&Violation>) {
        self.seeds += 1;
        let t = &mut self.totals;
        t.ticks += stats.ticks;
        t.events += stats.events;
        t.faults.merge(&stats.faults);
        t.elections += stats.elections;
        t.ops_ok += stats.ops_ok;
        t.ops_fail += stats.ops_fail;
        t.ops_indeterminate += stats.ops_indeterminate;
        t.checks += stats.checks;
        if let Some(t) = stats.liveness_ticks {
            self.liveness_ticks.push(t);
        }
        if let Some(v) = violation {
            self.violations.push((seed, v.clone()));
        }
    }

    /// The `p`-th percentile (0..=100) of ticks to converge, nearest rank.
    pub fn liveness_percentile(&self, p: u64) -> Option<u64> {
        let mut v = self.liveness_ticks.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let rank = ((p.min(100) * v.len() as u64).div_ceil(100)).max(1) as usize;
        Some(v[rank - 1])
    }

    /// The report as text. `elapsed_secs` is the wall-clock time the caller measured
    /// (the simulator itself never reads a clock); without one (zero or less) the report
    /// says so and leaves out the rates instead of printing zeros.
    pub fn render(&self, elapsed_secs: f64) -> String {
        let measured = elapsed_secs > 0.0;
        let t = &self.totals;
        let mut s = String::new();
        let _ = writeln!(s, "seeds run:            {}", self.seeds);
        if measured {
            let _ = writeln!(s, "wall time:            {elapsed_secs:.2} s");
            let seeds_per_sec = self.seeds as f64 / elapsed_secs;
            let _ = writeln!(s, "seeds/s:              {seeds_per_sec:.1}");
        } else {
            let _ = writeln!(s, "wall time:            not measured");
        }
        let _ = writeln!(s, "simulated ticks:      {}", t.ticks);
        let _ = writeln!(s, "events:               {}", t.events);
        if measured {
            let events_per_sec = t.events as f64 / elapsed_secs;
            let _ = writeln!(s, "events/s:             {events_per_sec:.0}");
        }
        let _ = writeln!(s, "faults injected:      {} total", t.faults.total());
        let _ = writeln!(s, "  by kind:            {}", t.faults);
        let _ = writeln!(s, "elections:            {}", t.elections);
        let _ = writeln!(
            s,
            "client ops:           ok {} / fail {} / indeterminate {}",
            t.ops_ok, t.ops_fail, t.ops_indeterminate
        );
        let _ = writeln!(s, "invariant checks:     {}", t.checks);
        let _ = writeln!(s, "violations:           {}", self.violations.len());
        for (seed, v) in self.violations.iter().take(REPORT_VIOLATIONS_SHOWN) {
            let _ = writeln!(s, "  seed {seed}: {v}");
        }
        if self.violations.len() > REPORT_VIOLATIONS_SHOWN {
            let _ = writeln!(
                s,
                "  ... and {} more",
                self.violations.len() - REPORT_VIOLATIONS_SHOWN
            );
        }
        let _ = writeln!(
            s,
            "liveness:             {} of {} runs converged after heal; ticks to converge p50 {} max {}",
            self.liveness_ticks.len(),
            self.seeds,
            self.liveness_percentile(50)
                .map_or("-".into(), |v| v.to_string()),
            self.liveness_ticks
                .iter()
                .max()
                .map_or("-".into(), |v| v.to_string()),
        );
        s
    }
}

/// Violations listed one by one in a report; the rest are counted.
pub const REPORT_VIOLATIONS_SHOWN: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Invariant;

    #[test]
    fn aggregates_and_percentiles() {
        let mut r = Report::new();
        for (seed, t) in [(1, 10), (2, 30), (3, 20)] {
            let stats = RunStats {
                ticks: 100,
                ops_ok: 2,
                liveness_ticks: Some(t),
                ..RunStats::default()
            };
            let v = Violation {
                invariant: Invariant::LogMatching,
                node: None,
                detail: "x".into(),
            };
            r.add(seed, &stats, (seed == 2).then_some(&v));
        }
        assert_eq!(r.seeds, 3);
        assert_eq!(r.totals.ticks, 300);
        assert_eq!(r.liveness_percentile(50), Some(20));
        assert_eq!(r.liveness_percentile(100), Some(30));
        let text = r.render(2.0);
        assert!(text.contains("seeds/s:              1.5"), "{text}");
        assert!(text.contains("seed 2: log-matching: x"), "{text}");
        let unmeasured = r.render(0.0);
        assert!(unmeasured.contains("wall time:            not measured"));
        assert!(
            !unmeasured.contains("/s:"),
            "no rates without a time: {unmeasured}"
        );
        assert!(
            unmeasured.contains("seed 2: log-matching: x"),
            "{unmeasured}"
        );
    }
}

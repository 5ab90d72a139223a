//! Linearizability checking of key-value histories.
//!
//! [`check`] splits a [`History`] by key (linearizability is compositional, so each key can
//! be checked alone), removes operations that definitely failed, and searches each key's
//! operations with the Wing-Gong-Lowe algorithm under a register model (see `model`).
//! Indeterminate operations may take effect at any time after their invocation, or never.
//! When a key's history is not linearizable, the checker shrinks it to a small failing
//! sub-history, using only steps that keep it a faithful witness: cutting the history at
//! an earlier instant (operations still open then become indeterminate) and dropping pure
//! observations (reads, failed compare-and-swaps).

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;

mod history;
mod model;
mod synth;
mod wgl;

pub use history::{Call, History, Operation, Outcome, Ret};
pub use synth::synthetic_history;

use wgl::{Search, search};

/// Limits of one check.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// Search steps allowed per key before the verdict becomes `Inconclusive`.
    pub steps_per_key_max: u64,
    /// Search steps allowed per candidate while shrinking a failure.
    pub shrink_steps_max: u64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            steps_per_key_max: 100_000_000,
            shrink_steps_max: 1_000_000,
        }
    }
}

/// A non-linearizable sub-history of one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The key.
    pub key: u64,
    /// Operations on that key that admit no linearization, by invocation time.
    pub ops: Vec<Operation>,
    /// How many operations on that key the full history had.
    pub key_ops: usize,
}

/// The checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's operations have a linearization.
    Linearizable,
    /// Some key's operations have none; the smallest failing sub-history found.
    NotLinearizable(Failure),
    /// An operation's outcome does not fit its call (for example a write that returned a
    /// read value): the history itself is malformed.
    Malformed {
        /// The offending operation.
        op: Operation,
    },
    /// The search budget ran out on this key before an answer was found.
    Inconclusive {
        /// The key.
        key: u64,
    },
}

impl Verdict {
    /// True only for `Linearizable`.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

/// Check `history` with the default limits.
pub fn check(history: &History) -> Verdict {
    check_with(history, &CheckConfig::default())
}

/// Check `history` with explicit limits.
pub fn check_with(history: &History, config: &CheckConfig) -> Verdict {
    if let Some(op) = history.ops.iter().find(|op| !model::well_formed(op)) {
        return Verdict::Malformed { op: *op };
    }
    let mut by_key: BTreeMap<u64, Vec<&Operation>> = BTreeMap::new();
    for op in &history.ops {
        if op.outcome != Outcome::Fail {
            by_key.entry(op.key).or_default().push(op);
        }
    }
    let mut best: Option<Failure> = None;
    for (&key, ops) in &by_key {
        match search(ops, config.steps_per_key_max) {
            Search::Linearizable => {}
            Search::Exhausted => return Verdict::Inconclusive { key },
            Search::NotLinearizable => {
                let ops = shrink(ops, config.shrink_steps_max);
                if best.as_ref().is_none_or(|b| ops.len() < b.ops.len()) {
                    best = Some(Failure {
                        key,
                        ops,
                        key_ops: by_key[&key].len(),
                    });
                }
            }
        }
    }
    match best {
        Some(f) => Verdict::NotLinearizable(f),
        None => Verdict::Linearizable,
    }
}

/// Whether `ops` certainly admit no linearization within `steps_max`.
fn fails(ops: &[Operation], steps_max: u64) -> bool {
    let refs: Vec<&Operation> = ops.iter().collect();
    search(&refs, steps_max) == Search::NotLinearizable
}

/// The history as it stood at instant `t`: operations invoked by then, with those not yet
/// complete turned indeterminate. Any linearization of the whole restricts to one of this.
fn cut_at(ops: &[Operation], t: u64) -> Vec<Operation> {
    ops.iter()
        .filter(|op| op.invoke <= t)
        .map(|op| {
            let mut op = *op;
            if op.outcome != Outcome::Indeterminate && op.complete > t {
                op.outcome = Outcome::Indeterminate;
            }
            op
        })
        .filter(|op| !(op.call == Call::Read && op.outcome == Outcome::Indeterminate))
        .collect()
}

fn shrink(ops: &[&Operation], steps_max: u64) -> Vec<Operation> {
    let mut current: Vec<Operation> = ops.iter().map(|op| **op).collect();
    current.sort_by_key(|op| (op.invoke, op.complete));

    // 1. The earliest completion instant at which the history already fails.
    let mut times: Vec<u64> = current
        .iter()
        .filter(|op| op.outcome != Outcome::Indeterminate)
        .map(|op| op.complete)
        .collect();
    times.sort_unstable();
    times.dedup();
    let (mut lo, mut hi) = (0usize, times.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(&cut_at(&current, times[mid]), steps_max) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if let Some(&t) = times.get(lo) {
        let cut = cut_at(&current, t);
        if fails(&cut, steps_max) {
            current = cut;
        }
    }

    // 2. Drop observations one by one while the rest still fails.
    let mut i = 0;
    while i < current.len() {
        if model::is_observation(&current[i]) {
            let mut candidate = current.clone();
            candidate.remove(i);
            if fails(&candidate, steps_max) {
                current = candidate;
                continue;
            }
        }
        i += 1;
    }
    current
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |v: Option<u64>| v.map_or_else(|| "nil".to_string(), |v| v.to_string());
        write!(f, "[{:>6}, ", self.invoke)?;
        match self.outcome {
            Outcome::Indeterminate => write!(f, "     ?]")?,
            _ => write!(f, "{:>6}]", self.complete)?,
        }
        write!(f, " client {} key {}: ", self.client, self.key)?;
        match self.call {
            Call::Read => write!(f, "read")?,
            Call::Write(x) => write!(f, "write {}", v(x))?,
            Call::Cas { expected, new } => write!(f, "cas {} -> {}", v(expected), v(new))?,
        }
        match self.outcome {
            Outcome::Ok(Ret::Read(x)) => write!(f, " = {}", v(x)),
            Outcome::Ok(Ret::Written) => write!(f, " ok"),
            Outcome::Ok(Ret::Cas(s)) => write!(f, " {}", if s { "swapped" } else { "refused" }),
            Outcome::Fail => write!(f, " failed"),
            Outcome::Indeterminate => write!(f, " indeterminate"),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::Malformed { op } => write!(f, "malformed history: {op}"),
            Verdict::Inconclusive { key } => {
                write!(f, "inconclusive: search budget exhausted on key {key}")
            }
            Verdict::NotLinearizable(fail) => {
                writeln!(
                    f,
                    "not linearizable: key {} ({} of its {} operations shown)",
                    fail.key,
                    fail.ops.len(),
                    fail.key_ops
                )?;
                for op in &fail.ops {
                    writeln!(f, "  {op}")?;
                }
                Ok(())
            }
        }
    }
}

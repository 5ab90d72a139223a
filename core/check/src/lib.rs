//! Linearizability checking of key-value histories.
//!
//! [`check`] splits a [`History`] by key (linearizability is compositional, so each key can
//! be checked alone, and the keys are searched in parallel on every core), removes
//! operations that definitely failed, and searches each key's operations with the
//! Wing-Gong-Lowe algorithm under a register model. Indeterminate operations may take
//! effect at any time after their invocation, or never. The search never touches a file
//! or a socket; it reads the clock only to honour [`CheckConfig::time_max`].
//!
//! The answer is a [`Verdict`]. A search that runs out of steps, memory
//! ([`CheckConfig::memory_bytes_max`], reserved before it is allocated) or time ends in
//! [`Verdict::Inconclusive`] with what it explored: that is never a pass. When a key's
//! history is not linearizable, the [`Failure`] carries the operation no linearization
//! could complete and the longest partial linearization the search found; in
//! [`CheckMode::Shrink`] the witness is then shrunk, within [`CheckConfig::shrink_time_max`],
//! using only steps that keep it a faithful witness: cutting the history at an earlier
//! instant (operations still open then become indeterminate) and dropping pure
//! observations (reads, refused compare-and-swaps). [`write_html`] draws a failure for a
//! person.
//!
//! Read first: [`check_with`], [`CheckConfig`], [`Verdict`].

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod history;
mod html;
mod model;
mod shrink;
mod synth;
mod wgl;

pub use history::{Call, History, Operation, Outcome, Ret};
pub use html::{escape_html, page_frame, write_html, write_html_labeled};
pub use synth::{failing_history, synthetic_history};
pub use wgl::Budget;

use wgl::{Found, Limits, Memory, Stats, search};

/// How much of a counterexample to build.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum CheckMode {
    /// The verdict only: a failure reports the key's whole history, the operation no
    /// linearization could complete and the longest partial linearization, with no search
    /// beyond the one that decided the verdict.
    Verdict,
    /// Shrink a failure to a small witness, within [`CheckConfig::shrink_time_max`].
    #[default]
    Shrink,
}

/// Limits of one check.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// Search steps allowed per key before the verdict becomes `Inconclusive`.
    pub steps_per_key_max: u64,
    /// Bytes the searches' caches may hold together (all keys, all threads).
    pub memory_bytes_max: u64,
    /// Wall-clock time the search may take before the verdict becomes `Inconclusive`
    /// (`None`: no limit, which keeps the verdict a function of the history alone).
    pub time_max: Option<Duration>,
    /// How much of a counterexample to build.
    pub mode: CheckMode,
    /// Search steps allowed per candidate while shrinking a failure.
    pub shrink_steps_max: u64,
    /// Wall-clock time shrinking may take; the smallest witness found by then is reported.
    pub shrink_time_max: Duration,
    /// Threads searching keys in parallel (0: one per core).
    pub threads_max: usize,
}

/// Histories with fewer operations than this are searched on the calling thread: spawning
/// would cost more than it saves.
pub const PARALLEL_OPS_MIN: usize = 2_000;

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            steps_per_key_max: 1_000_000_000,
            memory_bytes_max: 1 << 30,
            time_max: None,
            mode: CheckMode::Shrink,
            shrink_steps_max: 10_000_000,
            shrink_time_max: Duration::from_secs(2),
            threads_max: 0,
        }
    }
}

/// How far shrinking a failure got.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ShrinkState {
    /// Not attempted ([`CheckMode::Verdict`]).
    Skipped,
    /// No step of the shrinker makes the witness smaller.
    Done,
    /// [`CheckConfig::shrink_time_max`] ran out; the witness is valid but may shrink further.
    TimedOut,
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
    /// The operation (one of `ops`) whose completion no linearization of `ops` reaches:
    /// the latest point the search got to.
    pub stuck: Option<Operation>,
    /// The longest partial linearization of `ops` the search found, in order.
    pub linearized: Vec<Operation>,
    /// How far shrinking got.
    pub shrink: ShrinkState,
}

/// What a search explored before a budget ended it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Explored {
    /// Search steps taken on the key.
    pub steps: u64,
    /// Distinct configurations (linearized set, state) remembered on the key.
    pub states: u64,
    /// Bytes the key's cache held.
    pub memory_bytes: u64,
    /// The longest partial linearization reached on the key, in operations.
    pub linearized_max: usize,
    /// Operations on the key.
    pub key_ops: usize,
    /// Keys whose search finished (all linearizable).
    pub keys_done: usize,
    /// Keys in the history.
    pub keys_total: usize,
    /// Wall-clock time the whole check took.
    pub elapsed: Duration,
}

/// The checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's operations have a linearization.
    Linearizable,
    /// Some key's operations have none; the witness found on the smallest such key.
    NotLinearizable(Failure),
    /// An operation's outcome does not fit its call (for example a write that returned a
    /// read value): the history itself is malformed.
    Malformed {
        /// The offending operation.
        op: Operation,
    },
    /// A budget ran out on this key before an answer was found, and no key failed. Not a
    /// pass: nothing is known about this key.
    Inconclusive {
        /// The key.
        key: u64,
        /// The budget that ran out.
        budget: Budget,
        /// What was explored by then.
        explored: Explored,
    },
}

impl Verdict {
    /// True only for `Linearizable`.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }

    /// True only for `Inconclusive`.
    pub fn is_inconclusive(&self) -> bool {
        matches!(self, Verdict::Inconclusive { .. })
    }

    /// Whether a run should count this verdict as a pass: `Linearizable`, or
    /// `Inconclusive` when the caller opted in with `inconclusive_passes`.
    pub fn passes(&self, inconclusive_passes: bool) -> bool {
        self.is_linearizable() || (inconclusive_passes && self.is_inconclusive())
    }
}

/// Check `history` with the default limits.
pub fn check(history: &History) -> Verdict {
    check_with(history, &CheckConfig::default())
}

/// One key's search result.
enum KeyResult {
    Linearizable,
    Failed(wgl::Stuck),
    Exhausted(Budget, Stats),
    /// Not searched, or stopped: a smaller key already failed.
    Skipped,
}

/// Check `history` with explicit limits.
pub fn check_with(history: &History, config: &CheckConfig) -> Verdict {
    let started = Instant::now();
    if let Some(op) = history.ops.iter().find(|op| !model::well_formed(op)) {
        return Verdict::Malformed { op: *op };
    }
    let mut by_key: BTreeMap<u64, Vec<Operation>> = BTreeMap::new();
    for op in &history.ops {
        // Failed operations did not happen; unfinished reads constrain nothing.
        let unfinished_read = op.call == Call::Read && op.outcome == Outcome::Indeterminate;
        if op.outcome != Outcome::Fail && !unfinished_read {
            by_key.entry(op.key).or_default().push(*op);
        }
    }
    let keys: Vec<(u64, Vec<Operation>)> = by_key
        .into_iter()
        .map(|(k, mut ops)| {
            ops.sort_by_key(|op| (op.invoke, op.complete));
            (k, ops)
        })
        .collect();
    let memory = Memory::new(config.memory_bytes_max);
    let deadline = config.time_max.map(|t| started + t);
    // The smallest key found failing: larger keys stop, smaller ones finish, so the
    // reported key does not depend on scheduling.
    let failed_min = AtomicU64::new(u64::MAX);
    let results: Vec<Mutex<KeyResult>> = keys
        .iter()
        .map(|_| Mutex::new(KeyResult::Skipped))
        .collect();
    // Largest keys first, so no thread is left with a big key at the end.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(keys[i].1.len()));
    let cursor = AtomicUsize::new(0);
    let work = || {
        while let Some(&i) = order.get(cursor.fetch_add(1, Ordering::Relaxed)) {
            let (key, ops) = (&keys[i].0, &keys[i].1);
            if failed_min.load(Ordering::Relaxed) < *key {
                continue;
            }
            let cancelled = || failed_min.load(Ordering::Relaxed) < *key;
            let limits = Limits {
                steps_max: config.steps_per_key_max,
                deadline,
                memory: &memory,
                cancelled: &cancelled,
            };
            let result = match search(ops, &limits) {
                (Found::Linearizable, _) => KeyResult::Linearizable,
                (Found::NotLinearizable(stuck), _) => {
                    failed_min.fetch_min(*key, Ordering::Relaxed);
                    KeyResult::Failed(stuck)
                }
                (Found::Exhausted(budget), stats) => KeyResult::Exhausted(budget, stats),
                (Found::Cancelled, _) => KeyResult::Skipped,
            };
            *results[i].lock().unwrap_or_else(|e| e.into_inner()) = result;
        }
    };
    let threads = match config.threads_max {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(keys.len());
    if threads <= 1 || history.len() < PARALLEL_OPS_MIN {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let results: Vec<KeyResult> = results
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect();

    let mut inconclusive = None;
    let mut keys_done = 0;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            KeyResult::Linearizable => keys_done += 1,
            KeyResult::Failed(stuck) if keys[i].0 == failed_min.load(Ordering::Relaxed) => {
                let (key, ops) = (keys[i].0, keys[i].1.clone());
                let failure = shrink::counterexample(key, ops, stuck, config, &memory);
                return Verdict::NotLinearizable(failure);
            }
            KeyResult::Failed(_) | KeyResult::Skipped => {}
            KeyResult::Exhausted(budget, stats) => {
                if inconclusive.is_none() {
                    inconclusive = Some((i, budget, stats));
                }
            }
        }
    }
    match inconclusive {
        None => Verdict::Linearizable,
        Some((i, budget, stats)) => Verdict::Inconclusive {
            key: keys[i].0,
            budget,
            explored: Explored {
                steps: stats.steps,
                states: stats.states,
                memory_bytes: stats.memory_bytes,
                linearized_max: stats.linearized_max,
                key_ops: keys[i].1.len(),
                keys_done,
                keys_total: keys.len(),
                elapsed: started.elapsed(),
            },
        },
    }
}

/// How a report prints the numbers of a history: values and times are plain numbers to
/// the checker, but a recorder may know them as something a person reads better (the
/// text a client wrote, a time in ticks).
#[derive(Copy, Clone, Debug)]
pub struct Labels {
    /// A value as printed.
    pub value: fn(u64) -> String,
    /// A time (invocation or completion) as printed. The counterexample page draws its time
    /// axis in the same unit when this text reads as a number (`173.7`), and in the raw
    /// numbers otherwise.
    pub time: fn(u64) -> String,
}

impl Labels {
    /// Values and times as the numbers they are.
    pub const PLAIN: Labels = Labels {
        value: |v| v.to_string(),
        time: |t| t.to_string(),
    };

    fn value_or_nil(&self, v: Option<u64>) -> String {
        v.map_or_else(|| "nil".to_string(), self.value)
    }
}

impl Operation {
    /// One line for a person: `[invoke, complete] client C key K: call outcome`, with
    /// values and times printed through `labels`.
    pub fn describe(&self, labels: &Labels) -> String {
        let complete = match self.outcome {
            Outcome::Indeterminate => "?".to_string(),
            _ => (labels.time)(self.complete),
        };
        format!(
            "[{:>6}, {complete:>6}] client {} key {}: {}",
            (labels.time)(self.invoke),
            self.client,
            self.key,
            self.what(labels, " indeterminate")
        )
    }

    /// The call and how it ended (`write 3 ok`, `read = nil`), an indeterminate end
    /// written as `indeterminate`.
    pub(crate) fn what(&self, labels: &Labels, indeterminate: &str) -> String {
        let v = |x: Option<u64>| labels.value_or_nil(x);
        let call = match self.call {
            Call::Read => "read".to_string(),
            Call::Write(x) => format!("write {}", v(x)),
            Call::Cas { expected, new } => format!("cas {} -> {}", v(expected), v(new)),
        };
        let outcome = match self.outcome {
            Outcome::Ok(Ret::Read(x)) => format!(" = {}", v(x)),
            Outcome::Ok(Ret::Written) => " ok".to_string(),
            Outcome::Ok(Ret::Cas(s)) => format!(" {}", if s { "swapped" } else { "refused" }),
            Outcome::Fail => " failed".to_string(),
            Outcome::Indeterminate => indeterminate.to_string(),
        };
        call + &outcome
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(&Labels::PLAIN))
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Budget::Steps => "step",
            Budget::Memory => "memory",
            Budget::Time => "time",
        })
    }
}

impl Verdict {
    /// The verdict for a person, with values and times printed through `labels`.
    pub fn describe(&self, labels: &Labels) -> String {
        match self {
            Verdict::Malformed { op } => format!("malformed history: {}", op.describe(labels)),
            Verdict::NotLinearizable(fail) => fail.describe(labels),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::Malformed { op } => write!(f, "malformed history: {op}"),
            Verdict::Inconclusive {
                key,
                budget,
                explored: e,
            } => write!(
                f,
                "inconclusive (not checked): the {budget} budget ran out on key {key} \
                 ({} operations) after {} steps, {} states in {} bytes, the longest partial \
                 linearization {} operations; {} of {} keys linearizable; {:.3} s",
                e.key_ops,
                e.steps,
                e.states,
                e.memory_bytes,
                e.linearized_max,
                e.keys_done,
                e.keys_total,
                e.elapsed.as_secs_f64()
            ),
            Verdict::NotLinearizable(fail) => write!(f, "{fail}"),
        }
    }
}

impl Failure {
    /// The failure for a person, with values and times printed through `labels`.
    pub fn describe(&self, labels: &Labels) -> String {
        let shrink = match self.shrink {
            ShrinkState::Skipped => ", not shrunk",
            ShrinkState::Done => "",
            ShrinkState::TimedOut => ", shrinking timed out",
        };
        let mut s = format!(
            "not linearizable: key {} ({} of its {} operations shown{shrink})\n  no \
             linearization completes the operation marked !; the longest partial \
             linearization found ({} operations) is numbered #\n",
            self.key,
            self.ops.len(),
            self.key_ops,
            self.linearized.len()
        );
        for op in &self.ops {
            let mark = if self.stuck.as_ref() == Some(op) {
                "!".to_string()
            } else {
                match self.linearized.iter().position(|l| l == op) {
                    Some(k) => format!("#{}", k + 1),
                    None => String::new(),
                }
            };
            s.push_str(&format!("  {mark:>5} {}\n", op.describe(labels)));
        }
        s
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(&Labels::PLAIN))
    }
}

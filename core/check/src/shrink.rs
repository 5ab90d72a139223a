//! Turning a failed search into a counterexample a person can read, within a time box.
//!
//! Only steps that keep a faithful witness are used (a history whose every linearization
//! restricts to one of the witness, so the witness failing proves the history fails):
//! cutting the history at an instant (operations still open then become indeterminate) and
//! dropping observations (reads, refused compare-and-swaps). The first cut is at the
//! latest return the search got stuck at, which usually fails at once: a small witness
//! comes in about the time of the verdict, and smaller ones follow while time allows.

use std::time::Instant;

use super::history::{Call, Operation, Outcome, Ret};
use super::wgl::{Found, Limits, Memory, Stuck, search};
use super::{CheckConfig, Failure, ShrinkState};

/// The history as it stood at instant `t`: operations invoked by then, with those not yet
/// complete turned indeterminate. Any linearization of the whole restricts to one of this.
pub(crate) fn cut_at(ops: &[Operation], t: u64) -> Vec<Operation> {
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

/// Whether the operation only observes: removing it can only remove constraints.
fn is_observation(op: &Operation) -> bool {
    matches!(
        (op.call, op.outcome),
        (Call::Read, _) | (Call::Cas { .. }, Outcome::Ok(Ret::Cas(false)))
    )
}

/// A witness under construction: operations, and where its own search got stuck.
struct Witness {
    ops: Vec<Operation>,
    stuck: Stuck,
}

impl Witness {
    fn stuck_at(&self) -> u64 {
        self.ops[self.stuck.op].complete
    }

    fn into_failure(self, key: u64, key_ops: usize, shrink: ShrinkState) -> Failure {
        Failure {
            key,
            stuck: Some(self.ops[self.stuck.op]),
            linearized: self.stuck.linearized.iter().map(|&i| self.ops[i]).collect(),
            ops: self.ops,
            key_ops,
            shrink,
        }
    }
}

struct Shrinker<'a> {
    config: &'a CheckConfig,
    memory: &'a Memory,
    deadline: Instant,
}

impl Shrinker<'_> {
    /// The candidate as a witness, if it certainly admits no linearization.
    fn fails(&self, mut ops: Vec<Operation>) -> Option<Witness> {
        ops.sort_by_key(|op| (op.invoke, op.complete));
        let limits = Limits {
            steps_max: self.config.shrink_steps_max,
            deadline: Some(self.deadline),
            memory: self.memory,
            cancelled: &|| false,
        };
        match search(&ops, &limits).0 {
            Found::NotLinearizable(stuck) => Some(Witness { ops, stuck }),
            _ => None,
        }
    }

    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Cut at the instant the witness's own search got stuck, while that helps.
    fn cut(&self, mut w: Witness) -> Witness {
        while !self.out_of_time() {
            let cut = cut_at(&w.ops, w.stuck_at());
            if cut.len() >= w.ops.len() && cut == w.ops {
                break;
            }
            match self.fails(cut) {
                Some(smaller) if smaller.ops.len() <= w.ops.len() => w = smaller,
                _ => return self.cut_later(w),
            }
        }
        w
    }

    /// When the cut at the stuck instant admits a linearization (an operation open then
    /// may, as indeterminate, do what its real outcome forbids), the earliest later
    /// completion instant at which the cut fails, by bisection.
    fn cut_later(&self, w: Witness) -> Witness {
        let at = w.stuck_at();
        let mut times: Vec<u64> = w
            .ops
            .iter()
            .filter(|op| op.outcome != Outcome::Indeterminate && op.complete > at)
            .map(|op| op.complete)
            .collect();
        times.sort_unstable();
        times.dedup();
        let (mut lo, mut hi) = (0usize, times.len());
        let mut found = None;
        while lo < hi && !self.out_of_time() {
            let mid = (lo + hi) / 2;
            match self.fails(cut_at(&w.ops, times[mid])) {
                Some(smaller) => {
                    found = Some(smaller);
                    hi = mid;
                }
                None => lo = mid + 1,
            }
        }
        found.filter(|f| f.ops.len() < w.ops.len()).unwrap_or(w)
    }

    /// Drop observations in halving chunks (delta debugging), cutting again after each win.
    fn drop_observations(&self, mut w: Witness) -> (Witness, bool) {
        let mut chunk = w
            .ops
            .iter()
            .filter(|o| is_observation(o))
            .count()
            .div_ceil(2);
        while chunk >= 1 {
            let observations: Vec<usize> = (0..w.ops.len())
                .filter(|&i| is_observation(&w.ops[i]))
                .collect();
            let mut improved = false;
            for part in observations.chunks(chunk).rev() {
                if self.out_of_time() {
                    return (w, false);
                }
                let candidate: Vec<Operation> = w
                    .ops
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| part.binary_search(i).is_err())
                    .map(|(_, o)| *o)
                    .collect();
                if let Some(smaller) = self.fails(candidate) {
                    w = self.cut(smaller);
                    improved = true;
                    break;
                }
            }
            if !improved {
                chunk /= 2;
            }
        }
        (w, true)
    }
}

/// The counterexample for `key`, whose operations `ops` (sorted by invocation) failed with
/// `stuck`.
pub(crate) fn counterexample(
    key: u64,
    ops: Vec<Operation>,
    stuck: Stuck,
    config: &CheckConfig,
    memory: &Memory,
) -> Failure {
    let key_ops = ops.len();
    let whole = Witness { ops, stuck };
    if config.mode == super::CheckMode::Verdict {
        return whole.into_failure(key, key_ops, ShrinkState::Skipped);
    }
    let shrinker = Shrinker {
        config,
        memory,
        deadline: Instant::now() + config.shrink_time_max,
    };
    let w = shrinker.cut(whole);
    let (w, done) = shrinker.drop_observations(w);
    let state = if done {
        ShrinkState::Done
    } else {
        ShrinkState::TimedOut
    };
    w.into_failure(key, key_ops, state)
}

//! Synthetic linearizable histories, for benchmarks and tests of the checker.

use std::collections::BTreeMap;

use super::history::{Call, History, Operation, Outcome, Ret};
use rsm_core::Prng;

/// A linearizable history of `ops` operations by `clients` concurrent clients on `keys`
/// keys, fixed by `seed`.
///
/// Each client runs one operation at a time; every operation takes effect at a random
/// instant inside its interval, so intervals overlap heavily. About one operation in fifty
/// is indeterminate (and then took effect or not at random), and written values are unique.
pub fn synthetic_history(seed: u64, clients: u64, keys: u64, ops: usize) -> History {
    let mut rng = Prng::new(seed);
    let clients = clients.max(1);
    let keys = keys.max(1);
    let mut next_free = vec![0u64; clients as usize];
    let mut planned: Vec<(u64, Operation, bool)> = Vec::with_capacity(ops);
    let mut next_value = 1u64;
    for _ in 0..ops {
        let client = rng.range(0, clients);
        let invoke = next_free[client as usize] + rng.range(0, 5);
        let complete = invoke + rng.range(1, 40);
        next_free[client as usize] = complete + 1;
        let call = match rng.range(0, 10) {
            0..=3 => Call::Read,
            4..=7 => {
                next_value += 1;
                Call::Write(Some(next_value))
            }
            _ => {
                next_value += 1;
                Call::Cas {
                    expected: Some(next_value.saturating_sub(1 + rng.range(0, 3))),
                    new: Some(next_value),
                }
            }
        };
        let indeterminate = rng.chance(0.02);
        let op = Operation {
            client,
            key: rng.range(0, keys),
            call,
            invoke,
            complete,
            outcome: if indeterminate {
                Outcome::Indeterminate
            } else {
                Outcome::Fail
            },
        };
        // Linearization point strictly inside the interval (times doubled to make room).
        let at = rng.range(invoke * 2 + 1, complete * 2);
        let happens = !indeterminate || rng.chance(0.5);
        planned.push((at, op, happens));
    }
    planned.sort_by_key(|(at, _, _)| *at);
    let mut state: BTreeMap<u64, Option<u64>> = BTreeMap::new();
    let mut history = History::new();
    for (_, mut op, happens) in planned {
        if happens {
            let s = state.get(&op.key).copied().flatten();
            let (ret, after) = op.call.execute(s);
            state.insert(op.key, after);
            if op.outcome != Outcome::Indeterminate {
                op.outcome = Outcome::Ok(ret);
            }
        }
        history.push(op);
    }
    history
}

/// [`synthetic_history`] with one late fault: a completed read, invoked at about `at`
/// (0.0 to 1.0) of the history's span, returns the key's first written value long after
/// a later write replaced it. The history is not linearizable, and a search has to get
/// through everything before the stale read to find out.
pub fn failing_history(seed: u64, clients: u64, keys: u64, ops: usize, at: f64) -> History {
    let mut history = synthetic_history(seed, clients, keys, ops);
    let end = history.ops.iter().map(|o| o.complete).max().unwrap_or(0);
    let target = (end as f64 * at.clamp(0.0, 1.0)) as u64;
    let written = |o: &Operation| match (o.call, o.outcome) {
        (Call::Write(Some(v)), Outcome::Ok(_)) => Some(v),
        _ => None,
    };
    let mut reads: Vec<usize> = (0..history.ops.len())
        .filter(|&i| matches!(history.ops[i].outcome, Outcome::Ok(Ret::Read(_))))
        .collect();
    reads.sort_by_key(|&i| history.ops[i].invoke.abs_diff(target));
    for i in reads {
        let read = history.ops[i];
        let same_key = || history.ops.iter().filter(|o| o.key == read.key);
        let Some(first) = same_key()
            .filter(|o| written(o).is_some())
            .min_by_key(|o| (o.invoke, o.complete))
        else {
            continue;
        };
        // A write that certainly came after the first one and before the read.
        let replaced = same_key()
            .any(|o| written(o).is_some() && o.invoke > first.complete && o.complete < read.invoke);
        if replaced {
            history.ops[i].outcome = Outcome::Ok(Ret::Read(written(first)));
            return history;
        }
    }
    history
}

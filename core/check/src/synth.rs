//! Synthetic linearizable histories, for benchmarks and tests of the checker.

use std::collections::BTreeMap;

use super::history::{Call, History, Operation, Outcome};
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

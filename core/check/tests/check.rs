//! The linearizability checker against hand-written histories and a brute-force oracle.

use std::collections::BTreeMap;

use rsm_check::{
    Budget, Call, CheckConfig, CheckMode, Failure, History, Operation, Outcome, Ret, ShrinkState,
    Verdict, check, check_with, failing_history, synthetic_history,
};
use rsm_core::Prng;

fn op(
    client: u64,
    key: u64,
    call: Call,
    invoke: u64,
    complete: u64,
    outcome: Outcome,
) -> Operation {
    Operation {
        client,
        key,
        call,
        invoke,
        complete,
        outcome,
    }
}

fn read(c: u64, k: u64, t0: u64, t1: u64, v: Option<u64>) -> Operation {
    op(c, k, Call::Read, t0, t1, Outcome::Ok(Ret::Read(v)))
}

fn write(c: u64, k: u64, t0: u64, t1: u64, v: u64) -> Operation {
    op(
        c,
        k,
        Call::Write(Some(v)),
        t0,
        t1,
        Outcome::Ok(Ret::Written),
    )
}

fn cas(c: u64, k: u64, t0: u64, t1: u64, from: Option<u64>, to: u64, swapped: bool) -> Operation {
    op(
        c,
        k,
        Call::Cas {
            expected: from,
            new: Some(to),
        },
        t0,
        t1,
        Outcome::Ok(Ret::Cas(swapped)),
    )
}

fn history(ops: Vec<Operation>) -> History {
    History { ops }
}

// ---- hand-written histories ----

#[test]
fn stale_read_after_partition_is_caught() {
    // Client 1 writes 2 after 1 completed; client 2, talking to a partitioned old leader,
    // later reads 1.
    let h = history(vec![
        write(1, 0, 0, 10, 1),
        write(1, 0, 20, 30, 2),
        read(2, 0, 40, 50, Some(1)),
    ]);
    let v = check(&h);
    let Verdict::NotLinearizable(f) = &v else {
        panic!("expected a violation, got {v}")
    };
    assert_eq!(f.key, 0);
    assert!(
        f.ops.iter().any(|o| o.call == Call::Read),
        "the stale read is part of the witness"
    );
    assert!(v.to_string().contains("not linearizable"));
}

#[test]
fn lost_write_is_caught() {
    // The write of 7 was acknowledged, yet a later read sees the key absent.
    let h = history(vec![write(1, 3, 0, 5, 7), read(2, 3, 10, 12, None)]);
    assert!(!check(&h).is_linearizable());
}

#[test]
fn lost_cas_is_caught() {
    // Both CAS from 1 succeeded: one swap must have been lost.
    let h = history(vec![
        write(1, 0, 0, 1, 1),
        cas(1, 0, 2, 10, Some(1), 2, true),
        cas(2, 0, 3, 11, Some(1), 3, true),
    ]);
    assert!(!check(&h).is_linearizable());
}

#[test]
fn heavy_overlap_is_linearizable() {
    // Ten overlapping writes and reads that each saw some written value, in an order that
    // fits a single linearization.
    let mut ops = Vec::new();
    for c in 0..10 {
        ops.push(write(c, 0, c, 100 + c, c + 1));
    }
    ops.push(read(20, 0, 50, 150, Some(4)));
    ops.push(read(21, 0, 60, 160, Some(9)));
    ops.push(read(22, 0, 200, 210, Some(9)));
    assert_eq!(check(&history(ops)), Verdict::Linearizable);
}

#[test]
fn indeterminate_write_may_or_may_not_happen() {
    let maybe = op(1, 0, Call::Write(Some(5)), 0, 0, Outcome::Indeterminate);
    // Seen...
    assert!(check(&history(vec![maybe, read(2, 0, 100, 101, Some(5))])).is_linearizable());
    // ...or not seen...
    assert!(check(&history(vec![maybe, read(2, 0, 100, 101, None)])).is_linearizable());
    // ...even long after its invocation, but never before it.
    let late = op(1, 0, Call::Write(Some(5)), 10, 0, Outcome::Indeterminate);
    assert!(!check(&history(vec![read(2, 0, 0, 5, Some(5)), late])).is_linearizable());
}

#[test]
fn failed_operations_did_not_happen() {
    let failed = op(1, 0, Call::Write(Some(5)), 0, 3, Outcome::Fail);
    assert!(check(&history(vec![failed, read(2, 0, 10, 11, None)])).is_linearizable());
    assert!(!check(&history(vec![failed, read(2, 0, 10, 11, Some(5))])).is_linearizable());
}

#[test]
fn keys_are_independent_and_smallest_failure_is_reported() {
    let mut ops = vec![
        // Key 1 fails with a long history around it.
        write(1, 1, 0, 1, 1),
        write(1, 1, 2, 3, 2),
        read(1, 1, 4, 5, Some(2)),
        write(1, 1, 6, 7, 3),
        read(2, 1, 8, 9, Some(1)),
    ];
    for i in 0..20 {
        ops.push(write(3, 2, 10 * i, 10 * i + 5, i + 1));
        ops.push(read(4, 2, 10 * i + 6, 10 * i + 7, Some(i + 1)));
    }
    let Verdict::NotLinearizable(f) = check(&history(ops)) else {
        panic!()
    };
    assert_eq!(f.key, 1);
    assert_eq!(f.key_ops, 5);
    // The shrunk witness drops the read of 2 that is irrelevant to the violation.
    assert!(f.ops.len() < 5, "{:?}", f.ops);
    assert!(
        oracle(&f.ops).is_none(),
        "the witness itself is not linearizable"
    );
}

#[test]
fn malformed_outcome_is_reported() {
    let bad = op(
        1,
        0,
        Call::Write(Some(1)),
        0,
        1,
        Outcome::Ok(Ret::Read(None)),
    );
    assert!(matches!(
        check(&history(vec![bad])),
        Verdict::Malformed { .. }
    ));
}

#[test]
fn tiny_budget_is_inconclusive_not_wrong() {
    let ops: Vec<_> = (0..30).map(|c| write(c, 0, 0, 100, c)).collect();
    let cfg = CheckConfig {
        steps_per_key_max: 3,
        shrink_steps_max: 3,
        ..CheckConfig::default()
    };
    let verdict = check_with(&history(ops), &cfg);
    let Verdict::Inconclusive {
        key: 0,
        budget: Budget::Steps,
        explored,
    } = verdict
    else {
        panic!("expected inconclusive on steps, got {verdict}")
    };
    assert_eq!(
        explored.steps, 4,
        "the step that broke the budget is counted"
    );
    assert_eq!((explored.key_ops, explored.keys_total), (30, 1));
    assert!(!verdict.is_linearizable() && !verdict.passes(false));
    assert!(verdict.passes(true), "only when the caller opted in");
    assert!(verdict.to_string().starts_with("inconclusive"));
}

/// The failure's stuck operation is one of its operations, and its partial linearization
/// is a sequence of them that the register accepts in that order without breaking
/// real-time order.
fn assert_partial_linearization(f: &Failure) {
    let stuck = f.stuck.expect("a failure names where it got stuck");
    assert!(f.ops.contains(&stuck), "{f:?}");
    assert!(!f.linearized.contains(&stuck), "{f:?}");
    let mut state = None;
    for (i, op) in f.linearized.iter().enumerate() {
        assert!(f.ops.contains(op), "{f:?}");
        state = apply(state, op).unwrap_or_else(|| panic!("step {i} does not fit: {f:?}"));
        let later_finished_first = f.linearized[i + 1..]
            .iter()
            .any(|l| l.outcome != Outcome::Indeterminate && l.complete < op.invoke);
        assert!(
            !later_finished_first,
            "real-time order broken at {i}: {f:?}"
        );
    }
}

// ---- budgets ----

/// `n` concurrent writes whose values are all read, then a read of a value nobody wrote:
/// every subset of the writes is a distinct configuration, so a search has to visit about
/// `n * 2^n` of them to find that none leads anywhere.
fn every_subset_history(n: u64) -> History {
    let mut ops = Vec::new();
    for c in 0..n {
        ops.push(write(c, 0, 0, 100, c + 1));
        ops.push(read(100 + c, 0, 0, 100, Some(c + 1)));
    }
    ops.push(read(200, 0, 200, 210, Some(999)));
    history(ops)
}

#[test]
fn pathological_history_ends_inconclusive_within_its_memory_budget() {
    let budget = 4 << 20;
    let cfg = CheckConfig {
        memory_bytes_max: budget,
        ..CheckConfig::default()
    };
    let verdict = check_with(&every_subset_history(20), &cfg);
    let Verdict::Inconclusive {
        key: 0,
        budget: Budget::Memory,
        explored,
    } = verdict
    else {
        panic!("expected inconclusive on memory, got {verdict}")
    };
    assert!(explored.memory_bytes <= budget, "{explored:?}");
    assert!(explored.memory_bytes >= budget / 4, "{explored:?}");
    assert!(
        explored.states > 10_000 && explored.linearized_max > 0,
        "{explored:?}"
    );
    assert!(
        verdict
            .to_string()
            .contains("memory budget ran out on key 0")
    );
}

#[test]
fn a_deadline_ends_the_search_inconclusive() {
    let cfg = CheckConfig {
        time_max: Some(std::time::Duration::from_millis(50)),
        ..CheckConfig::default()
    };
    let verdict = check_with(&every_subset_history(24), &cfg);
    assert!(
        matches!(
            verdict,
            Verdict::Inconclusive {
                budget: Budget::Time,
                ..
            }
        ),
        "{verdict}"
    );
}

// ---- counterexamples ----

#[test]
fn a_late_fault_gives_a_small_witness_and_the_modes_differ() {
    let h = failing_history(3, 10, 10, 4_000, 0.9);
    let verdict_only = CheckConfig {
        mode: CheckMode::Verdict,
        ..CheckConfig::default()
    };
    let Verdict::NotLinearizable(whole) = check_with(&h, &verdict_only) else {
        panic!("the stale read is caught")
    };
    assert_eq!(whole.shrink, ShrinkState::Skipped);
    assert_eq!(
        whole.ops.len(),
        whole.key_ops,
        "verdict mode reports the key's history"
    );
    assert_partial_linearization(&whole);
    let Verdict::NotLinearizable(small) = check(&h) else {
        panic!("the stale read is caught")
    };
    assert_eq!(small.key, whole.key, "the smallest failing key either way");
    assert_eq!(small.shrink, ShrinkState::Done);
    assert!(small.ops.len() < whole.ops.len() / 2, "{}", small.ops.len());
    assert_partial_linearization(&small);
    // The same key fails whatever the number of threads.
    for threads_max in [1, 2, 4] {
        let cfg = CheckConfig {
            threads_max,
            ..verdict_only
        };
        let Verdict::NotLinearizable(f) = check_with(&h, &cfg) else {
            panic!()
        };
        assert_eq!(f, whole, "{threads_max} threads");
    }
}

#[test]
fn a_zero_shrink_budget_still_gives_a_valid_witness() {
    let h = history(vec![
        write(1, 0, 0, 10, 1),
        write(1, 0, 20, 30, 2),
        read(2, 0, 40, 50, Some(1)),
        read(3, 0, 41, 52, Some(2)),
    ]);
    let cfg = CheckConfig {
        shrink_time_max: std::time::Duration::ZERO,
        ..CheckConfig::default()
    };
    let Verdict::NotLinearizable(f) = check_with(&h, &cfg) else {
        panic!()
    };
    assert_eq!(f.shrink, ShrinkState::TimedOut);
    assert!(oracle(&f.ops).is_none());
}

// ---- brute-force oracle ----

fn apply(state: Option<u64>, o: &Operation) -> Option<Option<u64>> {
    match (o.call, o.outcome) {
        (Call::Read, Outcome::Ok(Ret::Read(v))) => (state == v).then_some(state),
        (Call::Read, _) => Some(state),
        (Call::Write(v), _) => Some(v),
        (Call::Cas { expected, new }, Outcome::Ok(Ret::Cas(true))) => {
            (state == expected).then_some(new)
        }
        (Call::Cas { expected, .. }, Outcome::Ok(Ret::Cas(false))) => {
            (state != expected).then_some(state)
        }
        (Call::Cas { expected, new }, _) => Some(if state == expected { new } else { state }),
    }
}

/// Some order in which the history could have happened, found by trying every order:
/// `Some(order)` if linearizable, `None` if not.
fn oracle(ops: &[Operation]) -> Option<Vec<usize>> {
    let ops: Vec<&Operation> = ops.iter().filter(|o| o.outcome != Outcome::Fail).collect();
    fn dfs(
        ops: &[&Operation],
        placed: &mut Vec<bool>,
        state: &mut BTreeMap<u64, Option<u64>>,
        order: &mut Vec<usize>,
    ) -> bool {
        let must_remain = ops
            .iter()
            .enumerate()
            .any(|(i, o)| !placed[i] && o.outcome != Outcome::Indeterminate);
        if !must_remain {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // i may go next only if no unplaced completed operation finished before it began.
            let blocked = ops.iter().enumerate().any(|(j, o)| {
                j != i
                    && !placed[j]
                    && o.outcome != Outcome::Indeterminate
                    && o.complete < ops[i].invoke
            });
            if blocked {
                continue;
            }
            let before = state.get(&ops[i].key).copied().flatten();
            if let Some(after) = apply(before, ops[i]) {
                placed[i] = true;
                state.insert(ops[i].key, after);
                order.push(i);
                if dfs(ops, placed, state, order) {
                    return true;
                }
                order.pop();
                state.insert(ops[i].key, before);
                placed[i] = false;
            }
        }
        false
    }
    let mut order = Vec::new();
    dfs(
        &ops,
        &mut vec![false; ops.len()],
        &mut BTreeMap::new(),
        &mut order,
    )
    .then_some(order)
}

fn random_value(rng: &mut Prng) -> Option<u64> {
    match rng.range(0, 4) {
        0 => None,
        v => Some(v),
    }
}

/// A random small history: either fully random outcomes, or outcomes taken from a real
/// register executed at random linearization points (mostly linearizable), sometimes
/// corrupted.
fn random_history(rng: &mut Prng) -> Vec<Operation> {
    let n = rng.range(1, 8) as usize;
    let keys = rng.range(1, 3);
    let truthful = rng.chance(0.6);
    let mut ops: Vec<Operation> = (0..n)
        .map(|c| {
            let invoke = rng.range(0, 20);
            let complete = invoke + rng.range(0, 10);
            let call = match rng.range(0, 3) {
                0 => Call::Read,
                1 => Call::Write(random_value(rng)),
                _ => Call::Cas {
                    expected: random_value(rng),
                    new: random_value(rng),
                },
            };
            let ret = match call {
                Call::Read => Ret::Read(random_value(rng)),
                Call::Write(_) => Ret::Written,
                Call::Cas { .. } => Ret::Cas(rng.chance(0.5)),
            };
            let outcome = match rng.range(0, 10) {
                0 => Outcome::Fail,
                1 | 2 => Outcome::Indeterminate,
                _ => Outcome::Ok(ret),
            };
            Operation {
                client: c as u64,
                key: rng.range(0, keys),
                call,
                invoke,
                complete,
                outcome,
            }
        })
        .collect();
    if truthful {
        // Execute at a random point inside each interval, in time order.
        let mut points: Vec<(u64, usize)> = ops
            .iter()
            .enumerate()
            .map(|(i, o)| (rng.range(o.invoke * 2, o.complete * 2 + 1), i))
            .collect();
        points.sort_unstable();
        let mut state: BTreeMap<u64, Option<u64>> = BTreeMap::new();
        for (_, i) in points {
            let o = &mut ops[i];
            if o.outcome == Outcome::Fail
                || (o.outcome == Outcome::Indeterminate && rng.chance(0.5))
            {
                continue;
            }
            let s = state.get(&o.key).copied().flatten();
            let (ret, after) = o.call.execute(s);
            state.insert(o.key, after);
            if o.outcome != Outcome::Indeterminate {
                o.outcome = Outcome::Ok(ret);
            }
        }
        if rng.chance(0.3) {
            let i = rng.range(0, n as u64) as usize;
            if let Outcome::Ok(Ret::Read(_)) = ops[i].outcome {
                ops[i].outcome = Outcome::Ok(Ret::Read(random_value(rng)));
            }
        }
    }
    ops
}

#[test]
fn agrees_with_brute_force_on_random_histories() {
    let mut rng = Prng::new(0x5eed);
    let (mut yes, mut no) = (0, 0);
    for case in 0..12_000 {
        let ops = random_history(&mut rng);
        let expected = oracle(&ops).is_some();
        let verdict = check(&History { ops: ops.clone() });
        assert_eq!(
            verdict.is_linearizable(),
            expected,
            "case {case}: checker says {verdict}, oracle says {expected}\n{ops:#?}"
        );
        if let Verdict::NotLinearizable(f) = &verdict {
            assert!(
                oracle(&f.ops).is_none(),
                "case {case}: shrunk witness is linearizable: {f:?}"
            );
            assert_partial_linearization(f);
            no += 1;
        } else {
            yes += 1;
        }
    }
    // Both answers must be well represented for the comparison to mean anything.
    assert!(yes > 3_000 && no > 3_000, "linearizable {yes}, not {no}");
}

#[test]
fn synthetic_histories_are_linearizable_and_a_corruption_is_not() {
    let h = synthetic_history(7, 10, 10, 2_000);
    assert_eq!(h.len(), 2_000);
    assert_eq!(check(&h), Verdict::Linearizable);
    // Make one completed read return a value nobody wrote.
    let mut bad = h.clone();
    let i = bad
        .ops
        .iter()
        .position(|o| matches!(o.outcome, Outcome::Ok(Ret::Read(_))))
        .unwrap();
    bad.ops[i].outcome = Outcome::Ok(Ret::Read(Some(u64::MAX)));
    let Verdict::NotLinearizable(f) = check(&bad) else {
        panic!("corruption not caught")
    };
    assert_eq!(f.key, bad.ops[i].key);
    assert!(
        f.ops.len() <= 3,
        "witness should shrink to the bad read: {:?}",
        f.ops
    );
}

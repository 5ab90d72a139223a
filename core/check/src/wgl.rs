//! The Wing-Gong search with Lowe's memoization, for the operations on one key.
//!
//! Calls and returns are laid out in time order in a doubly linked list. The search walks
//! the list: at a call it tries to linearize that operation now (it must be consistent with
//! the model, and the pair (set of linearized operations, state) must be new); on success it
//! unlinks the operation and restarts from the head. Reaching a return means that operation
//! should already have been linearized: backtrack. Indeterminate operations have no return,
//! so they may be linearized at any point after their call, or never.

use std::collections::HashSet;

use super::history::{Operation, Outcome};
use super::model::{State, step};

/// The result of searching one key's operations.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Search {
    Linearizable,
    NotLinearizable,
    /// The step budget ran out first.
    Exhausted,
}

const HEAD: usize = 0;

/// Search `ops` (already restricted to one key, failed operations removed) for a
/// linearization, giving up after `steps_max` search steps.
pub(crate) fn search(ops: &[&Operation], steps_max: u64) -> Search {
    let n_ops = ops.len();
    // Events: (time, is_return, op). At equal times calls sort before returns, so
    // operations that touch at one instant count as concurrent.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n_ops);
    let mut determinate = 0usize;
    for (i, op) in ops.iter().enumerate() {
        events.push((op.invoke, false, i));
        if op.outcome != Outcome::Indeterminate {
            debug_assert!(op.complete >= op.invoke, "completion before invocation");
            events.push((op.complete.max(op.invoke), true, i));
            determinate += 1;
        }
    }
    events.sort_unstable();

    // Node k (1..=len) is events[k-1]; node 0 is the head and node len+1 the tail.
    let len = events.len();
    let tail = len + 1;
    let mut next: Vec<usize> = (1..=len + 1).chain([tail]).collect();
    let mut prev: Vec<usize> = std::iter::once(HEAD).chain(0..=len).collect();
    let mut call_node = vec![0usize; n_ops];
    let mut ret_node = vec![None::<usize>; n_ops];
    for (k, &(_, is_ret, op)) in events.iter().enumerate() {
        if is_ret {
            ret_node[op] = Some(k + 1);
        } else {
            call_node[op] = k + 1;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, x: usize| {
        let (p, nx) = (prev[x], next[x]);
        next[p] = nx;
        prev[nx] = p;
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, x: usize| {
        let (p, nx) = (prev[x], next[x]);
        next[p] = x;
        prev[nx] = x;
    };

    let words = n_ops.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut seen: HashSet<(Box<[u64]>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::with_capacity(n_ops);
    let mut state: State = None;
    let mut remaining = determinate;
    let mut entry = next[HEAD];
    let mut steps = 0u64;

    loop {
        if remaining == 0 {
            return Search::Linearizable;
        }
        steps += 1;
        if steps > steps_max {
            return Search::Exhausted;
        }
        let at_return = entry == tail || events[entry - 1].1;
        if !at_return {
            let op = events[entry - 1].2;
            if let Some(after) = step(state, ops[op]) {
                linearized[op / 64] |= 1 << (op % 64);
                if seen.insert((linearized.clone().into_boxed_slice(), after)) {
                    stack.push((op, state));
                    state = after;
                    unlink(&mut next, &mut prev, call_node[op]);
                    if let Some(r) = ret_node[op] {
                        unlink(&mut next, &mut prev, r);
                        remaining -= 1;
                    }
                    entry = next[HEAD];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = next[entry];
        } else {
            // An operation's return was reached before it was linearized: undo the last choice.
            let Some((op, before)) = stack.pop() else {
                return Search::NotLinearizable;
            };
            linearized[op / 64] &= !(1 << (op % 64));
            state = before;
            if let Some(r) = ret_node[op] {
                relink(&mut next, &mut prev, r);
                remaining += 1;
            }
            relink(&mut next, &mut prev, call_node[op]);
            entry = next[call_node[op]];
        }
    }
}

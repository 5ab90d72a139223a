//! The Wing-Gong search with Lowe's memoization, for the operations on one key.
//!
//! Calls and returns are laid out in time order in a doubly linked list. The search walks
//! the list: at a call it tries to linearize that operation now (it must be consistent with
//! the model, and the configuration (set of linearized operations, state) must be new); on
//! success it unlinks the operation and restarts from the head. Reaching a return means that
//! operation should already have been linearized: backtrack. Indeterminate operations have
//! no return, so they may be linearized at any point after their call, or never.
//!
//! What makes it fast and bounded:
//! - Configurations are remembered in a compact, exact encoding: the linearized set is
//!   "every determinate operation before return rank `p`" plus the few linearized ones past
//!   it (at most the concurrency) plus a bitset over the indeterminate operations only. The
//!   encodings live in one arena of `u32`s, hashed incrementally (Zobrist), so a step costs
//!   the concurrency, not the history length.
//! - Values nobody observes (no read returned them, no compare-and-swap expected them) are
//!   one state: they cannot be told apart, so configurations that differ only in which
//!   unobserved write came last are one configuration.
//! - An indeterminate operation is linearized only when an enabled operation (one whose
//!   call comes before the first pending return) needs the value it writes or refuses the
//!   value it replaces. Otherwise the next operation of any completion either overwrites
//!   it (so leaving it out, as it may never have happened, does as well), or could go
//!   first: the configurations where it goes in now are not explored.
//! - Observations (reads, refused compare-and-swaps) never change the state, so linearizing
//!   one as soon as it fits is never worse than waiting: the search takes it without
//!   branching, and a configuration whose observation leads to a known dead end is itself
//!   a dead end.
//! - The cache's bytes are reserved from a shared [`Memory`] budget before they are
//!   allocated; steps, a deadline and a cancellation flag bound the rest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hashbrown::HashTable;

use super::history::{Call, Operation, Outcome, Ret};

/// A shared byte budget for the searches' caches.
#[derive(Debug)]
pub(crate) struct Memory {
    max: u64,
    used: AtomicU64,
}

impl Memory {
    pub(crate) fn new(max: u64) -> Self {
        Self {
            max,
            used: AtomicU64::new(0),
        }
    }

    /// Take `bytes` from the budget, or nothing if they do not fit.
    fn reserve(&self, bytes: u64) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(after) = used.checked_add(bytes).filter(|&a| a <= self.max) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, after, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Which limit ended a search early.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    /// The step limit ([`CheckConfig::steps_per_key_max`](crate::CheckConfig)).
    Steps,
    /// The cache would have outgrown [`CheckConfig::memory_bytes_max`](crate::CheckConfig).
    Memory,
    /// The deadline ([`CheckConfig::time_max`](crate::CheckConfig)) passed.
    Time,
}

/// The limits one search runs under.
pub(crate) struct Limits<'a> {
    pub(crate) steps_max: u64,
    pub(crate) deadline: Option<Instant>,
    pub(crate) memory: &'a Memory,
    /// True once the answer no longer matters (another key already decided the verdict).
    pub(crate) cancelled: &'a (dyn Fn() -> bool + Sync),
}

/// Where a failing search got stuck, as indices into the searched operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Stuck {
    /// The operation whose return the search reached, at the latest time it ever reached
    /// one, without having linearized it.
    pub(crate) op: usize,
    /// The longest sequence of operations linearized on the way there, in order.
    pub(crate) linearized: Vec<usize>,
}

/// The result of searching one key's operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    Linearizable,
    NotLinearizable(Stuck),
    /// A budget ran out first.
    Exhausted(Budget),
    /// The search was cancelled.
    Cancelled,
}

/// What one search did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) steps: u64,
    pub(crate) states: u64,
    pub(crate) memory_bytes: u64,
    pub(crate) linearized_max: usize,
}

/// The sequential specification of a register, on encoded values: 0 is absent, 1 is any
/// value nobody observes, 2.. are the observed values.
#[derive(Copy, Clone, Debug)]
enum Step {
    Read(u32),
    Write(u32),
    CasSwapped(u32, u32),
    CasRefused(u32),
    CasMaybe(u32, u32),
}

impl Step {
    fn apply(self, s: u32) -> Option<u32> {
        match self {
            Step::Read(v) => (s == v).then_some(s),
            Step::Write(v) => Some(v),
            Step::CasSwapped(e, n) => (s == e).then_some(n),
            Step::CasRefused(e) => (s != e).then_some(s),
            Step::CasMaybe(e, n) => Some(if s == e { n } else { s }),
        }
    }

    /// Whether the step leaves every state it accepts unchanged.
    fn observes(self) -> bool {
        matches!(self, Step::Read(_) | Step::CasRefused(_))
    }

    /// The value this step may need the register to hold (to return it, or to swap).
    fn needs(self) -> Option<u32> {
        match self {
            Step::Read(v) | Step::CasSwapped(v, _) | Step::CasMaybe(v, _) => Some(v),
            Step::Write(_) | Step::CasRefused(_) => None,
        }
    }

    /// The value this step needs the register not to hold.
    fn refuses(self) -> Option<u32> {
        match self {
            Step::CasRefused(v) => Some(v),
            _ => None,
        }
    }
}

const ABSENT: u32 = 0;
const UNOBSERVED: u32 = 1;

/// Encode the operations' calls. `None` for an operation that constrains nothing and is
/// left out (an indeterminate read).
fn encode(ops: &[Operation]) -> Vec<Option<Step>> {
    let mut observed: hashbrown::HashMap<u64, u32> = hashbrown::HashMap::new();
    let mut observe = |v: Option<u64>| {
        if let Some(v) = v {
            let next = observed.len() as u32 + 2;
            observed.entry(v).or_insert(next);
        }
    };
    for op in ops {
        match (op.call, op.outcome) {
            (Call::Read, Outcome::Ok(Ret::Read(v))) => observe(v),
            (Call::Cas { expected, .. }, _) => observe(expected),
            _ => {}
        }
    }
    let code = |v: Option<u64>| match v {
        None => ABSENT,
        Some(v) => observed.get(&v).copied().unwrap_or(UNOBSERVED),
    };
    ops.iter()
        .map(|op| match (op.call, op.outcome) {
            (Call::Read, Outcome::Ok(Ret::Read(v))) => Some(Step::Read(code(v))),
            (Call::Write(v), _) => Some(Step::Write(code(v))),
            (Call::Cas { expected, new }, Outcome::Ok(Ret::Cas(true))) => {
                Some(Step::CasSwapped(code(expected), code(new)))
            }
            (Call::Cas { expected, .. }, Outcome::Ok(Ret::Cas(false))) => {
                Some(Step::CasRefused(code(expected)))
            }
            (Call::Cas { expected, new }, _) => Some(Step::CasMaybe(code(expected), code(new))),
            _ => None,
        })
        .collect()
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const HEAD: usize = 0;
/// Marks the rank of an indeterminate operation; the rest is its bit index.
const INDETERMINATE: u32 = 1 << 31;
/// Steps between two looks at the clock and the cancellation flag.
const CLOCK_STEPS: u64 = 1 << 10;
/// Bytes a cache slot costs: the (hash, offset) pair and hashbrown's control byte.
const SLOT_BYTES: u64 = 17;

/// The remembered configurations: exact encodings in one arena, found through a table of
/// (hash, offset) pairs.
struct Cache<'a> {
    table: HashTable<(u64, u32)>,
    arena: Vec<u32>,
    memory: &'a Memory,
    reserved: u64,
}

impl Cache<'_> {
    fn bytes(&self) -> u64 {
        self.table.capacity() as u64 * SLOT_BYTES + self.arena.capacity() as u64 * 4
    }

    /// Remember `key` under `hash`: `Ok(true)` if it is new, `Ok(false)` if seen before,
    /// `Err` if remembering it would exceed the memory budget.
    fn insert(&mut self, hash: u64, key: &[u32]) -> Result<bool, Budget> {
        let arena = &self.arena;
        let same = |&(h, off): &(u64, u32)| {
            let off = off as usize;
            h == hash && arena[off + 2] == key[2] && arena[off..off + key.len()] == *key
        };
        if self.table.find(hash, same).is_some() {
            return Ok(false);
        }
        let offset = u32::try_from(self.arena.len()).map_err(|_| Budget::Memory)?;
        // Grow explicitly, after reserving the bytes, so the budget is never overdrawn.
        if self.table.len() == self.table.capacity() {
            let grown = (self.table.capacity().max(8) as u64 * 2) * SLOT_BYTES;
            self.grow(grown, |c| {
                c.table.reserve(c.table.capacity().max(8), |e| e.0)
            })?;
        }
        if self.arena.len() + key.len() > self.arena.capacity() {
            let extra = (self.arena.capacity() / 2).max(key.len()).max(1 << 12);
            self.grow(extra as u64 * 4, |c| c.arena.reserve_exact(extra))?;
        }
        self.table.insert_unique(hash, (hash, offset), |e| e.0);
        self.arena.extend_from_slice(key);
        Ok(true)
    }

    fn grow(&mut self, bytes: u64, grow: impl FnOnce(&mut Self)) -> Result<(), Budget> {
        if !self.memory.reserve(bytes) {
            return Err(Budget::Memory);
        }
        self.reserved += bytes;
        grow(self);
        // Settle the reservation to what the allocation really took.
        let actual = self.bytes();
        if actual > self.reserved {
            if !self.memory.reserve(actual - self.reserved) {
                return Err(Budget::Memory);
            }
        } else {
            self.memory.release(self.reserved - actual);
        }
        self.reserved = actual;
        Ok(())
    }
}

impl Drop for Cache<'_> {
    fn drop(&mut self) {
        self.memory.release(self.reserved);
    }
}

/// A stack entry: the operation linearized, the state and prefix rank before it, and
/// whether it was taken without branching (an observation).
#[derive(Copy, Clone)]
struct Frame {
    op: u32,
    state: u32,
    prefix: u32,
    forced: bool,
}

/// Search `ops` (already restricted to one key, failed operations removed) for a
/// linearization.
pub(crate) fn search(ops: &[Operation], limits: &Limits<'_>) -> (Found, Stats) {
    let steps_of = encode(ops);
    let n_ops = ops.len();
    // Events: (time, is_return, op). At equal times calls sort before returns, so
    // operations that touch at one instant count as concurrent.
    let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n_ops);
    let mut determinate = 0usize;
    for (i, op) in ops.iter().enumerate() {
        if steps_of[i].is_none() {
            continue;
        }
        events.push((op.invoke, false, i as u32));
        if op.outcome != Outcome::Indeterminate {
            events.push((op.complete.max(op.invoke), true, i as u32));
            determinate += 1;
        }
    }
    events.sort_unstable();

    // Node k (1..=len) is events[k-1]; node 0 is the head and node len+1 the tail.
    let len = events.len();
    let tail = len + 1;
    let mut next: Vec<u32> = (1..=len as u32 + 1).chain([tail as u32]).collect();
    let mut prev: Vec<u32> = std::iter::once(HEAD as u32).chain(0..=len as u32).collect();
    let mut call_node = vec![0u32; n_ops];
    let mut ret_node = vec![u32::MAX; n_ops];
    // Determinate operations are ranked by return; indeterminate ones get a bit each.
    let mut rank = vec![0u32; n_ops];
    let (mut returns, mut indeterminate) = (0u32, 0u32);
    for (k, &(_, is_ret, op)) in events.iter().enumerate() {
        let op = op as usize;
        if is_ret {
            ret_node[op] = k as u32 + 1;
            rank[op] = returns;
            returns += 1;
        } else {
            call_node[op] = k as u32 + 1;
            if ops[op].outcome == Outcome::Indeterminate {
                rank[op] = INDETERMINATE | indeterminate;
                indeterminate += 1;
            }
        }
    }
    let zobrist: Vec<u64> = (0..n_ops as u64)
        .map(|i| mix(i.wrapping_add(0x9e37_79b9_7f4a_7c15)))
        .collect();
    let unlink = |next: &mut [u32], prev: &mut [u32], x: u32| {
        let (p, nx) = (prev[x as usize], next[x as usize]);
        next[p as usize] = nx;
        prev[nx as usize] = p;
    };
    let relink = |next: &mut [u32], prev: &mut [u32], x: u32| {
        let (p, nx) = (prev[x as usize], next[x as usize]);
        next[p as usize] = x;
        prev[nx as usize] = x;
    };

    let mut cache = Cache {
        table: HashTable::new(),
        arena: Vec::new(),
        memory: limits.memory,
        reserved: 0,
    };
    // The linearized set: determinate ranks below `prefix`, ranks in `extras` (descending,
    // so the smallest is last), and `indet_bits` over indeterminate operations.
    let mut prefix = 0u32;
    let mut extras: Vec<u32> = Vec::new();
    let mut indet_bits = vec![0u64; (indeterminate as usize).div_ceil(64)];
    let mut zob = 0u64;
    let mut key: Vec<u32> = Vec::new();

    // What the enabled operations need and refuse, recomputed when the configuration
    // changes and an indeterminate operation is considered.
    let mut enabled_needs: Vec<u32> = Vec::new();
    let mut enabled_refuses_state = false;
    let mut enabled_valid = false;
    let mut stack: Vec<Frame> = Vec::with_capacity(n_ops);
    let mut state = ABSENT;
    let mut remaining = determinate;
    let mut entry = next[HEAD] as usize;
    let mut stats = Stats::default();
    // The longest partial linearization, kept at the latest return the search got stuck at.
    let mut best: Vec<u32> = Vec::new();
    let mut best_at: Option<(u64, usize)> = None;
    let mut stuck_op = 0usize;
    let mut synced = 0usize;

    let found = 'search: loop {
        if remaining == 0 {
            break Found::Linearizable;
        }
        stats.steps += 1;
        if stats.steps > limits.steps_max {
            break Found::Exhausted(Budget::Steps);
        }
        if stats.steps % CLOCK_STEPS == 0 {
            if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                break Found::Exhausted(Budget::Time);
            }
            if (limits.cancelled)() {
                break Found::Cancelled;
            }
        }
        let mut dead_end = false;
        if entry != tail && !events[entry - 1].1 {
            let op = events[entry - 1].2 as usize;
            let step = steps_of[op].expect("only encoded operations have events");
            if rank[op] & INDETERMINATE != 0 && !enabled_valid {
                // What the enabled operations (calls before the first pending return)
                // need and refuse, in this configuration.
                enabled_needs.clear();
                enabled_refuses_state = false;
                let mut x = next[HEAD] as usize;
                while x != tail && !events[x - 1].1 {
                    let s = steps_of[events[x - 1].2 as usize].expect("listed ops are encoded");
                    enabled_needs.extend(s.needs());
                    enabled_refuses_state |= s.refuses() == Some(state);
                    x = next[x] as usize;
                }
                enabled_valid = true;
            }
            let after = step.apply(state).filter(|&after| {
                rank[op] & INDETERMINATE == 0
                    || (after != state && (enabled_refuses_state || enabled_needs.contains(&after)))
            });
            if let Some(after) = after {
                // Linearize `op` tentatively.
                let before = prefix;
                zob ^= zobrist[op];
                let r = rank[op];
                if r & INDETERMINATE != 0 {
                    let b = (r & !INDETERMINATE) as usize;
                    indet_bits[b / 64] |= 1 << (b % 64);
                } else if r == prefix {
                    prefix += 1;
                    while extras.last() == Some(&prefix) {
                        extras.pop();
                        prefix += 1;
                    }
                } else {
                    let at = extras.partition_point(|&x| x > r);
                    extras.insert(at, r);
                }
                key.clear();
                key.extend([after, prefix, extras.len() as u32]);
                key.extend_from_slice(&extras);
                for w in &indet_bits {
                    key.extend([*w as u32, (*w >> 32) as u32]);
                }
                let hash = mix(zob ^ mix(u64::from(after) + 1));
                match cache.insert(hash, &key) {
                    Err(budget) => break 'search Found::Exhausted(budget),
                    Ok(true) => {
                        stats.states += 1;
                        stack.push(Frame {
                            op: op as u32,
                            state,
                            prefix: before,
                            forced: step.observes(),
                        });
                        stats.linearized_max = stats.linearized_max.max(stack.len());
                        enabled_valid = false;
                        state = after;
                        unlink(&mut next, &mut prev, call_node[op]);
                        if ret_node[op] != u32::MAX {
                            unlink(&mut next, &mut prev, ret_node[op]);
                            remaining -= 1;
                        }
                        entry = next[HEAD] as usize;
                        continue;
                    }
                    Ok(false) => {
                        undo(op, before, &rank, &mut prefix, &mut extras, &mut indet_bits);
                        zob ^= zobrist[op];
                        // An observation that leads to a known dead end makes this
                        // configuration one too: it could have been taken first.
                        dead_end = step.observes();
                    }
                }
            }
            if !dead_end {
                entry = next[entry] as usize;
                continue;
            }
        } else {
            // An operation's return was reached before it was linearized.
            let at = if entry == tail {
                u64::MAX
            } else {
                events[entry - 1].0
            };
            if best_at.is_none_or(|b| (at, stack.len()) > b) {
                best_at = Some((at, stack.len()));
                best.truncate(synced);
                best.extend(stack[synced..].iter().map(|f| f.op));
                synced = stack.len();
                stuck_op = if entry == tail {
                    0
                } else {
                    events[entry - 1].2 as usize
                };
            }
        }
        // Undo choices until one that had alternatives.
        loop {
            let Some(f) = stack.pop() else {
                break 'search Found::NotLinearizable(Stuck {
                    op: stuck_op,
                    linearized: best.iter().map(|&o| o as usize).collect(),
                });
            };
            synced = synced.min(stack.len());
            let op = f.op as usize;
            undo(
                op,
                f.prefix,
                &rank,
                &mut prefix,
                &mut extras,
                &mut indet_bits,
            );
            zob ^= zobrist[op];
            enabled_valid = false;
            state = f.state;
            if ret_node[op] != u32::MAX {
                relink(&mut next, &mut prev, ret_node[op]);
                remaining += 1;
            }
            relink(&mut next, &mut prev, call_node[op]);
            if !f.forced {
                entry = next[call_node[op] as usize] as usize;
                break;
            }
        }
    };
    stats.memory_bytes = cache.bytes();
    (found, stats)
}

/// Take `op` back out of the linearized set; `before` is the prefix rank before it went in.
fn undo(
    op: usize,
    before: u32,
    rank: &[u32],
    prefix: &mut u32,
    extras: &mut Vec<u32>,
    indet_bits: &mut [u64],
) {
    let r = rank[op];
    if r & INDETERMINATE != 0 {
        let b = (r & !INDETERMINATE) as usize;
        indet_bits[b / 64] &= !(1 << (b % 64));
    } else if r == before {
        // It advanced the prefix over ranks that were extras: they are extras again.
        extras.extend((before + 1..*prefix).rev());
        *prefix = before;
    } else {
        let at = extras.partition_point(|&x| x > r);
        debug_assert_eq!(extras.get(at), Some(&r));
        extras.remove(at);
    }
}

//! The timer wheel: every timer of every automaton one worker hosts, in one structure that the
//! worker owns (no thread per timer, no lock).
//!
//! A hashed wheel of [`SLOTS`] slots, one per tick, each a doubly linked list threaded
//! through a slab of nodes; a timer due in more than `SLOTS` ticks waits in its slot for later
//! turns. Schedule and cancel are O(1) (a map lookup and a link change); expiry visits one
//! slot per elapsed tick. Timers that expire together are delivered in deadline order, then
//! in the order they were scheduled, so expiry is deterministic.

use crate::automaton::TimerId;
use std::collections::HashMap;

/// Slots in the wheel, one per tick of a turn.
pub(crate) const SLOTS: u64 = 256;

const NIL: u32 = u32::MAX;

/// A timer's owner within a worker (its local index) and its name.
pub(crate) type TimerKey = (u32, TimerId);

#[derive(Debug)]
struct Node {
    deadline: u64,
    /// Order of scheduling, to break ties between timers with the same deadline.
    order: u64,
    key: TimerKey,
    prev: u32,
    next: u32,
}

/// Timers keyed by (owner, name), expiring in ticks.
#[derive(Debug)]
pub(crate) struct Wheel {
    heads: Vec<u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    index: HashMap<TimerKey, u32>,
    /// The first tick not yet expired: every pending deadline is at or after it.
    cursor: u64,
    scheduled: u64,
}

impl Wheel {
    pub(crate) fn new() -> Wheel {
        Wheel {
            heads: vec![NIL; SLOTS as usize],
            nodes: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            cursor: 0,
            scheduled: 0,
        }
    }

    /// How many timers are pending.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Schedules `key` to expire at tick `deadline` (or at the first tick not yet expired, if
    /// that is later), replacing a pending timer with the same key.
    pub(crate) fn schedule(&mut self, key: TimerKey, deadline: u64) {
        self.cancel(key);
        let deadline = deadline.max(self.cursor);
        let node = Node {
            deadline,
            order: self.scheduled,
            key,
            prev: NIL,
            next: NIL,
        };
        self.scheduled += 1;
        let at = match self.free.pop() {
            Some(at) => {
                self.nodes[at as usize] = node;
                at
            }
            None => {
                let at = u32::try_from(self.nodes.len()).expect("fewer than 2^32 pending timers");
                self.nodes.push(node);
                at
            }
        };
        let slot = (deadline % SLOTS) as usize;
        let head = self.heads[slot];
        self.nodes[at as usize].next = head;
        if head != NIL {
            self.nodes[head as usize].prev = at;
        }
        self.heads[slot] = at;
        self.index.insert(key, at);
    }

    /// Cancels `key`; returns whether it was pending.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> bool {
        match self.index.remove(&key) {
            Some(at) => {
                self.unlink(at);
                self.free.push(at);
                true
            }
            None => false,
        }
    }

    /// Cancels every timer of `owner`.
    pub(crate) fn cancel_owner(&mut self, owner: u32) {
        let keys: Vec<TimerKey> = self
            .index
            .keys()
            .filter(|k| k.0 == owner)
            .copied()
            .collect();
        for key in keys {
            self.cancel(key);
        }
    }

    fn unlink(&mut self, at: u32) {
        let (prev, next, deadline) = {
            let n = &self.nodes[at as usize];
            (n.prev, n.next, n.deadline)
        };
        if prev == NIL {
            self.heads[(deadline % SLOTS) as usize] = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    /// Expires every timer due at or before `now`, appending their keys to `due` in deadline
    /// order, then scheduling order.
    pub(crate) fn expire(&mut self, now: u64, due: &mut Vec<TimerKey>) {
        if now < self.cursor {
            return;
        }
        if self.index.is_empty() {
            self.cursor = now + 1;
            return;
        }
        let mut expired: Vec<(u64, u64, u32)> = Vec::new();
        // A jump of a whole turn or more visits every slot once.
        let ticks = (now - self.cursor + 1).min(SLOTS);
        for tick in self.cursor..self.cursor + ticks {
            let mut at = self.heads[(tick % SLOTS) as usize];
            while at != NIL {
                let node = &self.nodes[at as usize];
                let next = node.next;
                if node.deadline <= now {
                    expired.push((node.deadline, node.order, at));
                }
                at = next;
            }
        }
        self.cursor = now + 1;
        expired.sort_unstable();
        for (_, _, at) in expired {
            self.unlink(at);
            self.free.push(at);
            let key = self.nodes[at as usize].key;
            self.index.remove(&key);
            due.push(key);
        }
    }

    /// The earliest tick at which a timer may expire, or `None` when none is pending. A timer
    /// more than a turn away is reported one turn from now (the worker wakes, finds nothing
    /// due and looks again): that keeps this a bounded scan.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.index.is_empty() {
            return None;
        }
        for tick in self.cursor..self.cursor + SLOTS {
            let mut at = self.heads[(tick % SLOTS) as usize];
            while at != NIL {
                let node = &self.nodes[at as usize];
                if node.deadline == tick {
                    return Some(tick);
                }
                at = node.next;
            }
        }
        Some(self.cursor + SLOTS)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{SLOTS, TimerKey, Wheel};
    use crate::automaton::TimerId;

    fn key(owner: u32, timer: u64) -> TimerKey {
        (owner, TimerId(timer))
    }

    fn expire(wheel: &mut Wheel, now: u64) -> Vec<TimerKey> {
        let mut due = Vec::new();
        wheel.expire(now, &mut due);
        due
    }

    #[test]
    fn timers_expire_in_deadline_then_scheduling_order() {
        let mut wheel = Wheel::new();
        wheel.schedule(key(0, 1), 5);
        wheel.schedule(key(1, 1), 3);
        wheel.schedule(key(0, 2), 5);
        assert_eq!(expire(&mut wheel, 2), vec![]);
        assert_eq!(wheel.next_deadline(), Some(3));
        assert_eq!(
            expire(&mut wheel, 10),
            vec![key(1, 1), key(0, 1), key(0, 2)]
        );
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn a_cancelled_or_replaced_timer_does_not_fire() {
        let mut wheel = Wheel::new();
        wheel.schedule(key(0, 1), 4);
        wheel.schedule(key(0, 2), 4);
        assert!(wheel.cancel(key(0, 1)));
        assert!(!wheel.cancel(key(0, 1)));
        wheel.schedule(key(0, 2), 9);
        assert_eq!(expire(&mut wheel, 8), vec![]);
        assert_eq!(expire(&mut wheel, 9), vec![key(0, 2)]);
    }

    #[test]
    fn timers_beyond_one_turn_wait_for_their_turn() {
        let mut wheel = Wheel::new();
        wheel.schedule(key(0, 1), SLOTS + 7);
        wheel.schedule(key(0, 2), 7);
        assert_eq!(expire(&mut wheel, 7), vec![key(0, 2)]);
        assert_eq!(wheel.next_deadline(), Some(SLOTS + 7));
        assert_eq!(expire(&mut wheel, SLOTS + 6), vec![]);
        assert_eq!(expire(&mut wheel, 5 * SLOTS), vec![key(0, 1)]);
    }

    #[test]
    fn a_deadline_in_the_past_fires_at_the_next_expiry() {
        let mut wheel = Wheel::new();
        assert_eq!(expire(&mut wheel, 10), vec![]);
        wheel.schedule(key(3, 3), 4);
        assert_eq!(wheel.next_deadline(), Some(11));
        assert_eq!(expire(&mut wheel, 11), vec![key(3, 3)]);
    }

    #[test]
    fn cancelling_an_owner_removes_only_its_timers() {
        let mut wheel = Wheel::new();
        for t in 0..10 {
            wheel.schedule(key(t as u32 % 2, t), t + 1);
        }
        wheel.cancel_owner(0);
        let due = expire(&mut wheel, 100);
        assert_eq!(due.len(), 5);
        assert!(due.iter().all(|k| k.0 == 1));
    }

    /// The wheel against the obvious model (a sorted list), on a long pseudo-random sequence.
    #[test]
    fn the_wheel_agrees_with_a_sorted_list() {
        let mut wheel = Wheel::new();
        let mut model: Vec<(u64, u64, TimerKey)> = Vec::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut now, mut order) = (0_u64, 0_u64);
        for _ in 0..20_000 {
            let k = key((next() % 4) as u32, next() % 16);
            match next() % 4 {
                0 | 1 => {
                    let deadline = (now + 1 + next() % (3 * SLOTS)).max(now + 1);
                    model.retain(|e| e.2 != k);
                    model.push((deadline, order, k));
                    order += 1;
                    wheel.schedule(k, deadline);
                }
                2 => {
                    let was = model.iter().any(|e| e.2 == k);
                    model.retain(|e| e.2 != k);
                    assert_eq!(wheel.cancel(k), was);
                }
                _ => {
                    now += next() % 40;
                    let mut expected: Vec<_> =
                        model.iter().filter(|e| e.0 <= now).copied().collect();
                    expected.sort_unstable();
                    model.retain(|e| e.0 > now);
                    let expected: Vec<TimerKey> = expected.into_iter().map(|e| e.2).collect();
                    assert_eq!(expire(&mut wheel, now), expected);
                    if let Some(first) = model.iter().map(|e| e.0).min() {
                        let hint = wheel.next_deadline().expect("timers are pending");
                        assert!(
                            hint <= first,
                            "next_deadline {hint} after the first deadline {first}"
                        );
                    }
                }
            }
            assert_eq!(wheel.len(), model.len());
        }
    }
}

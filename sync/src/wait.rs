//! How a thread waits: a bounded spin, then sleep on the word, with an optional deadline.
//!
//! Two loops serve every primitive. [`Word::acquire_slow`] takes something that only one
//! waiter can have (a lock, a permit, an auto-reset signal); [`Word::wait_until`] waits for a
//! condition that releases every waiter at once (an open gate, a finished latch).
//!
//! Both keep one *waiters bit* in the word: a sleeper sets it before sleeping, and whoever
//! changes the word in a way sleepers wait for clears it and wakes them. For take-style
//! primitives the release clears the bit and wakes one sleeper, so the other sleepers are no
//! longer represented in the word. The thread that consumed the wake carries them: it takes
//! with the bit set again, so its own release wakes the next sleeper, or it sets the bit and
//! sleeps again. A thread that gives up at its deadline after consuming a wake either takes
//! after all or makes sure the bit is set while the thing is taken, which guarantees the
//! holder's release wakes the next sleeper. No wake-up is ever lost.
//!
//! Only a consumed wake creates that duty. A sleep that returns because the word had already
//! changed (the common case under contention: the holder released while the waiter was
//! entering the kernel), or that timed out unwoken, consumed nothing ([`Word::sleep`] says
//! which), so the thread waits on as if it had never tried to sleep: it may spin again, and
//! it takes without re-setting the bit, which spares its own release a wake that would reach
//! nobody.

use crate::word::{Ordering, Queue, Word};
use std::time::{Duration, Instant};

/// When a wait gives up; `Deadline::NEVER` waits as long as it takes.
#[derive(Clone, Debug)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    /// Under loom there is no clock: a deadline passes once its owner has slept with it.
    #[cfg(loom)]
    slept: std::cell::Cell<bool>,
}

impl Deadline {
    /// No deadline.
    pub(crate) const NEVER: Deadline = Deadline::new(None);

    const fn new(at: Option<Instant>) -> Deadline {
        Deadline {
            at,
            #[cfg(loom)]
            slept: std::cell::Cell::new(false),
        }
    }

    /// A deadline `timeout` from now; a timeout too large to represent never expires.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Deadline::new(Instant::now().checked_add(timeout))
    }

    /// A deadline at `instant`.
    pub(crate) fn at(instant: Instant) -> Deadline {
        Deadline::new(Some(instant))
    }

    /// Whether there is a deadline at all.
    #[cfg(loom)]
    pub(crate) fn is_timed(&self) -> bool {
        self.at.is_some()
    }

    /// Records, under loom, that a timed sleep has ended: the deadline has now passed.
    #[cfg(loom)]
    pub(crate) fn note_timed_sleep(&self) {
        self.slept.set(true);
    }

    /// Whether the deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        #[cfg(loom)]
        return self.at.is_some() && self.slept.get();
        #[cfg(not(loom))]
        match self.at {
            None => false,
            Some(at) => Instant::now() >= at,
        }
    }

    /// Time left before the deadline (`None` without one, zero once it has passed).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

/// The spin budget before sleeping: a few rounds of exponentially growing CPU pauses, then a
/// few rounds of yielding the processor (which lets a descheduled holder run on a busy
/// machine). Bounded: after `SPIN_ROUNDS` rounds the caller sleeps.
#[derive(Debug)]
pub(crate) struct Spin {
    round: u32,
}

#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 10;
#[cfg(not(loom))]
const PAUSE_ROUNDS: u32 = 4;
/// Under loom one round (a yield) keeps the spin path explored and the state space small.
#[cfg(loom)]
const SPIN_ROUNDS: u32 = 1;

impl Spin {
    pub(crate) fn new() -> Spin {
        Spin { round: 0 }
    }

    /// Spends one round of the budget; false once it is spent.
    pub(crate) fn spin(&mut self) -> bool {
        if self.round >= SPIN_ROUNDS {
            return false;
        }
        self.round += 1;
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        if self.round <= PAUSE_ROUNDS {
            for _ in 0..(1u32 << self.round) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        true
    }
}

impl Word {
    /// Takes from the word: `take(state, woken)` returns the state after taking, or `None` if
    /// `state` cannot be taken from. A thread that may have consumed a wake (`woken`) must
    /// return a state with `waiters` set (see the module comment). Sleepers set every bit of
    /// `waiters` and sleep on `queue`. Returns false if `deadline` passed first.
    #[inline(never)]
    pub(crate) fn acquire_slow(
        &self,
        waiters: u32,
        queue: Queue,
        deadline: Deadline,
        take: impl Fn(u32, bool) -> Option<u32>,
    ) -> bool {
        let mut spin = Spin::new();
        let mut woken = false;
        let mut state = self.load(Ordering::Relaxed);
        loop {
            if let Some(next) = take(state, woken) {
                match self.compare_exchange_weak(state, next, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => return true,
                    Err(now) => {
                        state = now;
                        continue;
                    }
                }
            }
            // Spin only while nobody sleeps: behind a sleeper, queueing is cheaper and fairer.
            // A thread carrying a consumed wake may spin too: until it takes or sleeps again,
            // it is the one still awake on behalf of the others.
            if state & waiters == 0 && spin.spin() {
                state = self.load(Ordering::Relaxed);
                continue;
            }
            let marked = state & waiters == waiters;
            if deadline.expired() && (!woken || marked) {
                // Either this thread consumed no wake, or the bit is set while the word
                // cannot be taken, so the next release wakes a sleeper.
                return false;
            }
            if !marked {
                if let Err(now) = self.compare_exchange_weak(
                    state,
                    state | waiters,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    state = now;
                    continue;
                }
                state |= waiters;
                if deadline.expired() {
                    return false;
                }
            }
            woken |= self.sleep(state, queue, &deadline);
            // A fresh spin budget: the holder may have released while this thread entered the
            // kernel, and a woken thread competes with spinning newcomers on equal terms.
            spin = Spin::new();
            state = self.load(Ordering::Relaxed);
        }
    }

    /// Waits until `ready(state)` holds, setting `waiters` before sleeping on `queue`. The
    /// state change a waiter waits for must clear `waiters` and wake the whole queue. Returns
    /// the ready state (read with acquire ordering), or `None` if `deadline` passed first.
    #[inline(never)]
    pub(crate) fn wait_until(
        &self,
        waiters: u32,
        queue: Queue,
        deadline: Deadline,
        ready: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let mut spin = Spin::new();
        loop {
            let state = self.load(Ordering::Acquire);
            if ready(state) {
                return Some(state);
            }
            if state & waiters == 0 && spin.spin() {
                continue;
            }
            if deadline.expired() {
                return None;
            }
            if state & waiters != waiters
                && self
                    .compare_exchange_weak(
                        state,
                        state | waiters,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue;
            }
            self.sleep(state | waiters, queue, &deadline);
        }
    }
}

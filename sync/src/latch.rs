//! `Latch`: a one-shot count-down.

use crate::wait::Deadline;
use crate::word::{Ordering, Queue, WAKE_ALL, Word, const_fn};
use std::fmt;
use std::time::{Duration, Instant};

/// The low 31 bits hold the count.
const COUNT: u32 = (1 << 31) - 1;
/// Set while a thread may be asleep waiting for zero.
const WAITERS: u32 = 1 << 31;

/// A count-down latch: threads wait until the count reaches zero; once there it stays there.
///
/// The state is one `u32` (the count and a waiter bit). Everything a thread did before its
/// [`count_down`](Latch::count_down) happens before every [`wait`](Latch::wait) that returns.
///
/// ```
/// use rsm_sync::Latch;
///
/// let started = Latch::new(3);
/// std::thread::scope(|s| {
///     for _ in 0..3 {
///         s.spawn(|| started.count_down());
///     }
///     started.wait();
/// });
/// assert_eq!(started.count(), 0);
/// ```
pub struct Latch {
    state: Word,
}

impl Latch {
    /// The largest initial count.
    pub const MAX_COUNT: u32 = COUNT;

    const_fn! {
        /// A latch that opens after `count` count-downs. Panics above [`Latch::MAX_COUNT`].
        pub fn new(count: u32) -> Latch {
            assert!(count <= COUNT, "Latch: count too large");
            Latch { state: Word::new(count) }
        }
    }

    /// Decrements the count by one. Panics if it is already zero.
    pub fn count_down(&self) {
        self.count_down_by(1);
    }

    /// Decrements the count by `n`. Panics if that would take it below zero.
    pub fn count_down_by(&self, n: u32) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let count = (state & COUNT)
                .checked_sub(n)
                .expect("Latch: counted down below zero");
            // At zero the waiter bit is cleared together with the last decrement.
            let next = if count == 0 { 0 } else { state - n };
            match self.state.compare_exchange_weak(
                state,
                next,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) if next == 0 && state & WAITERS != 0 => {
                    return self.state.wake(Queue::Primary, WAKE_ALL);
                }
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }

    /// Counts down by one, then waits for zero.
    pub fn arrive_and_wait(&self) {
        self.count_down();
        self.wait();
    }

    /// The count right now.
    pub fn count(&self) -> u32 {
        self.state.load(Ordering::Relaxed) & COUNT
    }

    /// Whether the count is zero; never sleeps.
    pub fn try_wait(&self) -> bool {
        self.state.load(Ordering::Acquire) & COUNT == 0
    }

    /// Sleeps until the count is zero.
    pub fn wait(&self) {
        self.wait_deadline(Deadline::NEVER);
    }

    /// Sleeps until the count is zero, at most `timeout`; returns whether it is.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Deadline::after(timeout))
    }

    /// Sleeps until the count is zero, until `deadline` at the latest.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        self.wait_deadline(Deadline::at(deadline))
    }

    fn wait_deadline(&self, deadline: Deadline) -> bool {
        self.try_wait()
            || self
                .state
                .wait_until(WAITERS, Queue::Primary, deadline, |s| s & COUNT == 0)
                .is_some()
    }
}

impl fmt::Debug for Latch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latch")
            .field("count", &self.count())
            .finish()
    }
}

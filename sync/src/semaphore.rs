//! `Semaphore`: a counting semaphore on one atomic word.

use crate::wait::Deadline;
use crate::word::{Ordering, Queue, WAKE_ALL, Word, const_fn};
use std::fmt;
use std::time::{Duration, Instant};

/// The low 30 bits count the available permits.
const PERMITS: u32 = (1 << 30) - 1;
/// Set while a thread that wants more than one permit may be asleep.
const MULTI_WAITERS: u32 = 1 << 30;
/// Set while any thread may be asleep.
const WAITERS: u32 = 1 << 31;

/// A counting semaphore: a pool of permits that threads take and give back.
///
/// The state is one `u32`: the number of available permits plus two waiter bits. Taking and
/// returning a permit are one atomic operation each when nobody sleeps. A release of `n`
/// permits wakes at most `n` sleepers, or all of them when one of them wants several permits
/// (only it knows whether the new permits are enough). Permits are not handed to sleepers in
/// arrival order: an arriving thread can take a released permit first.
///
/// Acquisition returns a [`Permit`] that gives the permits back when dropped;
/// [`Permit::forget`] keeps them taken, and [`Semaphore::release`] adds permits. There is no
/// poisoning: a panic while a permit is held returns it during unwinding.
///
/// ```
/// use rsm_sync::Semaphore;
/// use std::time::Duration;
///
/// let slots = Semaphore::new(2);
/// let a = slots.acquire();
/// let b = slots.try_acquire().expect("a second permit is free");
/// assert!(slots.try_acquire().is_none());
/// assert!(slots.acquire_timeout(Duration::from_millis(1)).is_none());
/// drop(a);
/// assert_eq!(slots.available(), 1);
/// drop(b);
/// ```
pub struct Semaphore {
    state: Word,
}

/// Permits taken from a [`Semaphore`]; they go back when this is dropped.
#[must_use = "the permits are returned as soon as this is dropped"]
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
    count: u32,
}

impl Semaphore {
    /// The largest number of permits a semaphore can hold.
    pub const MAX_PERMITS: u32 = PERMITS;

    const_fn! {
        /// A semaphore holding `permits` permits. Panics above [`Semaphore::MAX_PERMITS`].
        pub fn new(permits: u32) -> Semaphore {
            assert!(permits <= PERMITS, "Semaphore: too many permits");
            Semaphore { state: Word::new(permits) }
        }
    }

    /// Takes one permit, sleeping until one is available.
    #[inline]
    pub fn acquire(&self) -> Permit<'_> {
        self.acquire_many(1)
    }

    /// Takes `count` permits at once, sleeping until that many are available.
    #[inline]
    pub fn acquire_many(&self, count: u32) -> Permit<'_> {
        if !self.try_take(count) {
            self.acquire_slow(count, Deadline::NEVER);
        }
        self.permit(count)
    }

    /// Takes one permit if one is available right now.
    #[inline]
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `count` permits if that many are available right now.
    #[inline]
    pub fn try_acquire_many(&self, count: u32) -> Option<Permit<'_>> {
        self.try_take(count).then(|| self.permit(count))
    }

    /// Takes one permit, waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
        self.acquire_many_timeout(1, timeout)
    }

    /// Takes `count` permits, waiting at most `timeout`.
    pub fn acquire_many_timeout(&self, count: u32, timeout: Duration) -> Option<Permit<'_>> {
        (self.try_take(count) || self.acquire_slow(count, Deadline::after(timeout)))
            .then(|| self.permit(count))
    }

    /// Takes `count` permits, waiting until `deadline` at the latest.
    pub fn acquire_many_until(&self, count: u32, deadline: Instant) -> Option<Permit<'_>> {
        (self.try_take(count) || self.acquire_slow(count, Deadline::at(deadline)))
            .then(|| self.permit(count))
    }

    /// Adds `count` permits (for example, ones taken by a forgotten [`Permit`]) and wakes
    /// sleepers that may use them. Panics if the total would exceed
    /// [`Semaphore::MAX_PERMITS`].
    pub fn release(&self, count: u32) {
        if count == 0 {
            return;
        }
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let permits = (state & PERMITS)
                .checked_add(count)
                .filter(|&p| p <= PERMITS)
                .expect("Semaphore: too many permits");
            // The waiter bits are cleared: every sleeper that may use the new permits is woken
            // and re-announces itself if it has to sleep again.
            match self.state.compare_exchange_weak(
                state,
                permits,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        if state & WAITERS != 0 {
            let wake = if state & MULTI_WAITERS != 0 {
                WAKE_ALL
            } else {
                count
            };
            self.state.wake(Queue::Primary, wake);
        }
    }

    /// The number of permits available right now (a hint: it may change at once).
    pub fn available(&self) -> u32 {
        self.state.load(Ordering::Relaxed) & PERMITS
    }

    #[inline]
    fn try_take(&self, count: u32) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & PERMITS >= count {
            match self.state.compare_exchange_weak(
                state,
                state - count,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
        false
    }

    #[cold]
    fn acquire_slow(&self, count: u32, deadline: Deadline) -> bool {
        assert!(
            count <= PERMITS,
            "Semaphore: asked for more than MAX_PERMITS"
        );
        let waiters = if count > 1 {
            WAITERS | MULTI_WAITERS
        } else {
            WAITERS
        };
        self.state
            .acquire_slow(waiters, Queue::Primary, deadline, |state, woken| {
                (state & PERMITS >= count)
                    .then(|| (state - count) | if woken { WAITERS } else { 0 })
            })
    }

    fn permit(&self, count: u32) -> Permit<'_> {
        Permit {
            semaphore: self,
            count,
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish()
    }
}

impl Permit<'_> {
    /// How many permits this holds.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Keeps the permits taken: they are not returned when this is dropped.
    pub fn forget(mut self) {
        self.count = 0;
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.semaphore.release(self.count);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("count", &self.count)
            .finish()
    }
}

//! `Semaphore`: a counting semaphore on one atomic word.

use crate::wait::Deadline;
use crate::wakers::{Slot, Wakers};
use crate::word::{Ordering, Queue, WAKE_ALL, Word, const_fn};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The low 29 bits count the available permits.
const PERMITS: u32 = (1 << 29) - 1;
/// Set while a future may be waiting in the semaphore's waker list.
const ASYNC_WAITERS: u32 = 1 << 29;
/// Set while a thread that wants more than one permit may be asleep.
const MULTI_WAITERS: u32 = 1 << 30;
/// Set while any thread may be asleep.
const WAITERS: u32 = 1 << 31;

/// A counting semaphore: a pool of permits that threads take and give back.
///
/// The state is one `u32`: the number of available permits plus three waiter bits. Taking and
/// returning a permit are one atomic operation each when nobody sleeps. A release of `n`
/// permits wakes at most `n` sleepers, or all of them when one of them wants several permits
/// (only it knows whether the new permits are enough). Permits are not handed to sleepers in
/// arrival order: an arriving thread can take a released permit first.
///
/// Acquisition returns a [`Permit`] that gives the permits back when dropped;
/// [`Permit::forget`] keeps them taken, and [`Semaphore::release`] adds permits. There is no
/// poisoning: a panic while a permit is held returns it during unwinding.
///
/// Async code can wait too: [`Semaphore::acquire_async`] returns a future that resolves to a
/// [`Permit`], with no dependency on any runtime (waiting futures are kept in a list of
/// wakers beside the word, touched only when a future has to wait). Dropping the future
/// before it resolves takes nothing and passes on any wake it received.
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
    wakers: Wakers,
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
            Semaphore { state: Word::new(permits), wakers: Wakers::new() }
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

    /// Takes `count` permits, as a future that resolves once it has them. Dropping the future
    /// before then takes nothing. Panics if `count` exceeds [`Semaphore::MAX_PERMITS`].
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #     }
    /// # }
    /// use rsm_sync::Semaphore;
    ///
    /// let slots = Semaphore::new(3);
    /// let permit = block_on(slots.acquire_async(2));
    /// assert_eq!((permit.count(), slots.available()), (2, 1));
    /// ```
    pub fn acquire_async(&self, count: u32) -> Acquire<'_> {
        assert!(
            count <= PERMITS,
            "Semaphore: asked for more than MAX_PERMITS"
        );
        Acquire {
            semaphore: self,
            count,
            slot: None,
            done: false,
        }
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
            // The thread waiter bits are cleared: every sleeper that may use the new permits is
            // woken and re-announces itself if it has to sleep again. The async bit belongs to
            // the waker list, which clears it once empty.
            match self.state.compare_exchange_weak(
                state,
                permits | (state & ASYNC_WAITERS),
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
        if state & ASYNC_WAITERS != 0 {
            self.wakers.wake(&self.state, ASYNC_WAITERS, count);
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

/// The future returned by [`Semaphore::acquire_async`].
#[must_use = "a future does nothing unless polled"]
pub struct Acquire<'a> {
    semaphore: &'a Semaphore,
    count: u32,
    slot: Slot,
    done: bool,
}

impl<'a> Future for Acquire<'a> {
    type Output = Permit<'a>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit<'a>> {
        let this = self.get_mut();
        assert!(!this.done, "Acquire polled after it resolved");
        let semaphore = this.semaphore;
        let count = this.count;
        let taken = semaphore.wakers.poll(
            &semaphore.state,
            ASYNC_WAITERS,
            &mut this.slot,
            count,
            cx.waker(),
            || semaphore.try_take(count),
        );
        if !taken {
            return Poll::Pending;
        }
        this.done = true;
        Poll::Ready(semaphore.permit(count))
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if !self.done {
            let semaphore = self.semaphore;
            semaphore
                .wakers
                .cancel(&semaphore.state, ASYNC_WAITERS, &mut self.slot, true);
        }
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("count", &self.count)
            .field("done", &self.done)
            .finish()
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("count", &self.count)
            .finish()
    }
}

//! `Event`: a signal that threads wait for, manual-reset or auto-reset.

use crate::wait::Deadline;
use crate::wakers::{self, Slot, Wakers};
use crate::word::{Ordering, Queue, WAKE_ALL, Word, const_fn};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Set while the event is signalled.
const SET: u32 = 1;
/// Set while a thread may be asleep waiting for the signal.
const WAITERS: u32 = 2;
/// Set while a future may be waiting in the waker list.
const ASYNC_WAITERS: u32 = 4;
/// The bits above count how often a manual-reset flag was raised (modulo 2^29), so that a
/// waiter released by a raise passes even if the flag is lowered before the waiter runs.
const RAISES_ONE: u32 = 8;
/// The raise counter.
const RAISES: u32 = !(SET | WAITERS | ASYNC_WAITERS);

/// How an [`Event`] behaves once signalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reset {
    /// The signal stays up until [`Event::reset`]: it releases every waiter, present and
    /// future.
    Manual,
    /// The signal releases exactly one waiter and goes down again. Signalling an event that
    /// is already signalled does nothing (signals do not accumulate; use a
    /// [`Semaphore`](crate::Semaphore) to count them).
    Auto,
}

/// A signalled/not-signalled flag with broadcast wake-up: the state machine behind a
/// manual-reset [`Event`] and a [`Gate`](crate::Gate).
pub(crate) struct Flag {
    state: Word,
    wakers: Wakers,
}

impl Flag {
    const_fn! {
        pub(crate) fn new(set: bool) -> Flag {
            Flag { state: Word::new(if set { SET } else { 0 }), wakers: Wakers::new() }
        }
    }

    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Raises the flag and wakes every waiter.
    #[inline]
    pub(crate) fn set(&self) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & (SET | WAITERS) == SET {
                // Already raised and nobody sleeps: a later waiter passes without a new raise.
                // The release ordering of this call is still owed to waiters, so publish it.
                if self
                    .state
                    .compare_exchange_weak(state, state, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                state = self.state.load(Ordering::Relaxed);
                continue;
            }
            // The async bit belongs to the waker list, which clears it once empty.
            let raised =
                (state & RAISES).wrapping_add(RAISES_ONE) & RAISES | SET | (state & ASYNC_WAITERS);
            match self.state.compare_exchange_weak(
                state,
                raised,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        if state & WAITERS != 0 {
            self.state.wake(Queue::Primary, WAKE_ALL);
        }
        if state & ASYNC_WAITERS != 0 {
            self.wakers
                .wake(&self.state, ASYNC_WAITERS, wakers::WAKE_ALL);
        }
    }

    /// Lowers the flag; later waiters sleep.
    #[inline]
    pub(crate) fn reset(&self) {
        self.state.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Waits until the flag is raised, or was raised at least once since this call began;
    /// false if `deadline` passed first.
    #[inline]
    pub(crate) fn wait(&self, deadline: Deadline) -> bool {
        let start = self.state.load(Ordering::Acquire);
        if start & SET != 0 {
            return true;
        }
        let raises = start & RAISES;
        self.state
            .wait_until(WAITERS, Queue::Primary, deadline, |s| {
                s & SET != 0 || s & RAISES != raises
            })
            .is_some()
    }

    /// The raise count now, for [`Flag::poll_raised`].
    fn raises(&self) -> u32 {
        self.state.load(Ordering::Relaxed) & RAISES
    }

    /// One poll of a future waiting until the flag is raised, or was raised since the raise
    /// count was `raises`.
    fn poll_raised(&self, raises: u32, slot: &mut Slot, cx: &mut Context<'_>) -> Poll<()> {
        let raised = || {
            let s = self.state.load(Ordering::Acquire);
            s & SET != 0 || s & RAISES != raises
        };
        match self
            .wakers
            .poll(&self.state, ASYNC_WAITERS, slot, 1, cx.waker(), raised)
        {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }

    /// A future waiting for a raise goes away unfinished. Raises wake every future, so no
    /// wake is owed to another.
    fn cancel(&self, slot: &mut Slot) {
        self.wakers.cancel(&self.state, ASYNC_WAITERS, slot, false);
    }

    /// A future that waits until the flag is raised, or was raised since this call.
    pub(crate) fn wait_async(&self) -> Raised<'_> {
        Raised {
            flag: self,
            raises: self.raises(),
            slot: None,
        }
    }
}

/// A future that resolves once a [`Flag`] is raised, or was raised since the future was made.
pub(crate) struct Raised<'a> {
    flag: &'a Flag,
    raises: u32,
    slot: Slot,
}

impl Future for Raised<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.flag.poll_raised(this.raises, &mut this.slot, cx)
    }
}

impl Drop for Raised<'_> {
    fn drop(&mut self) {
        self.flag.cancel(&mut self.slot);
    }
}

impl fmt::Debug for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flag").field("set", &self.is_set()).finish()
    }
}

/// A signal that threads wait for: manual-reset (a broadcast that stays up) or auto-reset
/// (each signal releases one waiter).
///
/// The state is one `u32` (signalled, plus a waiter bit). Signalling costs one atomic
/// operation, plus one wake-up call only when a thread sleeps. An auto-reset event hands each
/// signal to one waiter; a signal raised while nobody waits is kept for the next waiter.
///
/// ```
/// use rsm_sync::{Event, Reset};
/// use std::sync::Arc;
///
/// let ready = Arc::new(Event::new(Reset::Auto));
/// let worker = {
///     let ready = Arc::clone(&ready);
///     std::thread::spawn(move || ready.wait())
/// };
/// ready.set();
/// worker.join().unwrap();
/// assert!(!ready.is_set(), "the waiter consumed the signal");
/// ```
pub struct Event {
    mode: Reset,
    flag: Flag,
}

impl Event {
    const_fn! {
        /// An event, not signalled, with the given reset behaviour.
        pub fn new(mode: Reset) -> Event {
            Event { mode, flag: Flag::new(false) }
        }
    }

    /// How this event resets.
    pub fn mode(&self) -> Reset {
        self.mode
    }

    /// Raises the signal: a manual-reset event releases every waiter; an auto-reset event
    /// releases one (now or when one arrives).
    #[inline]
    pub fn set(&self) {
        match self.mode {
            Reset::Manual => self.flag.set(),
            Reset::Auto => {
                let state = &self.flag.state;
                // The thread waiter bit is cleared (the woken sleeper re-announces the others);
                // the async bit belongs to the waker list.
                let mut now = state.load(Ordering::Relaxed);
                while let Err(changed) = state.compare_exchange_weak(
                    now,
                    SET | (now & ASYNC_WAITERS),
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    now = changed;
                }
                if now & WAITERS != 0 {
                    state.wake(Queue::Primary, 1);
                }
                if now & ASYNC_WAITERS != 0 {
                    self.flag.wakers.wake(state, ASYNC_WAITERS, 1);
                }
            }
        }
    }

    /// Lowers the signal.
    #[inline]
    pub fn reset(&self) {
        self.flag.reset();
    }

    /// Whether the event is signalled right now.
    pub fn is_set(&self) -> bool {
        self.flag.is_set()
    }

    /// Sleeps until the event is signalled (consuming the signal if auto-reset).
    #[inline]
    pub fn wait(&self) {
        self.wait_deadline(Deadline::NEVER);
    }

    /// Sleeps until the event is signalled, at most `timeout`; returns whether it was.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Deadline::after(timeout))
    }

    /// Waits for the signal as a future (consuming the signal if auto-reset), with no
    /// dependency on any runtime. A manual-reset event resolves the future once the event is
    /// signalled, or was signalled at least once since this call. Dropping the future before
    /// it resolves consumes nothing and passes on any wake it received.
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
    /// use rsm_sync::{Event, Reset};
    ///
    /// let ready = Event::new(Reset::Auto);
    /// ready.set();
    /// block_on(ready.wait_async());
    /// assert!(!ready.is_set(), "the future consumed the signal");
    /// ```
    pub fn wait_async(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            raised: match self.mode {
                Reset::Manual => Some(self.flag.wait_async()),
                Reset::Auto => None,
            },
            slot: None,
            done: false,
        }
    }

    /// Whether the event is signalled, consuming the signal if auto-reset; never sleeps.
    pub fn try_wait(&self) -> bool {
        match self.mode {
            Reset::Manual => self.flag.is_set(),
            Reset::Auto => self.try_consume(),
        }
    }

    fn wait_deadline(&self, deadline: Deadline) -> bool {
        match self.mode {
            Reset::Manual => self.flag.wait(deadline),
            Reset::Auto => {
                self.try_consume()
                    || self.flag.state.acquire_slow(
                        WAITERS,
                        Queue::Primary,
                        deadline,
                        |state, woken| {
                            (state & SET != 0)
                                .then_some(state & !SET | if woken { WAITERS } else { 0 })
                        },
                    )
            }
        }
    }

    #[inline]
    fn try_consume(&self) -> bool {
        let state = &self.flag.state;
        let now = state.load(Ordering::Relaxed);
        now & SET != 0
            && state
                .compare_exchange(now, now & !SET, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }
}

/// The future returned by [`Event::wait_async`].
#[must_use = "a future does nothing unless polled"]
pub struct EventWait<'a> {
    event: &'a Event,
    /// A manual-reset event waits for a raise of its flag.
    raised: Option<Raised<'a>>,
    /// An auto-reset event's place in the waker list.
    slot: Slot,
    done: bool,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let Some(raised) = &mut this.raised {
            return Pin::new(raised).poll(cx);
        }
        assert!(!this.done, "EventWait polled after it resolved");
        let event = this.event;
        let flag = &event.flag;
        if flag.wakers.poll(
            &flag.state,
            ASYNC_WAITERS,
            &mut this.slot,
            1,
            cx.waker(),
            || event.try_consume(),
        ) {
            this.done = true;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        if self.raised.is_none() && !self.done {
            // An auto-reset signal wakes one future: a wake this one received goes on.
            let flag = &self.event.flag;
            flag.wakers
                .cancel(&flag.state, ASYNC_WAITERS, &mut self.slot, true);
        }
    }
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("mode", &self.event.mode)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("mode", &self.mode)
            .field("set", &self.is_set())
            .finish()
    }
}

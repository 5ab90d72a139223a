//! `Event`: a signal that threads wait for, manual-reset or auto-reset.

use crate::wait::Deadline;
use crate::word::{Ordering, Queue, WAKE_ALL, Word, const_fn};
use std::fmt;
use std::time::Duration;

/// Set while the event is signalled.
const SET: u32 = 1;
/// Set while a thread may be asleep waiting for the signal.
const WAITERS: u32 = 2;
/// The bits above count how often a manual-reset flag was raised (modulo 2^30), so that a
/// waiter released by a raise passes even if the flag is lowered before the waiter runs.
const RAISES_ONE: u32 = 4;

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
}

impl Flag {
    const_fn! {
        pub(crate) fn new(set: bool) -> Flag {
            Flag { state: Word::new(if set { SET } else { 0 }) }
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
            let raised = (state & !(SET | WAITERS)).wrapping_add(RAISES_ONE) | SET;
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
        let raises = start & !(SET | WAITERS);
        self.state
            .wait_until(WAITERS, Queue::Primary, deadline, |s| {
                s & SET != 0 || s & !(SET | WAITERS) != raises
            })
            .is_some()
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
                if state.swap(SET, Ordering::Release) & WAITERS != 0 {
                    state.wake(Queue::Primary, 1);
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

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("mode", &self.mode)
            .field("set", &self.is_set())
            .finish()
    }
}

//! `Once` and `OnceCell<T>`: one-time initialization.

use crate::wait::Deadline;
use crate::word::{Ordering, Queue, WAKE_ALL, Word, const_fn};
use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::time::Duration;

/// The low two bits hold the phase.
const PHASE: u32 = 3;
const INCOMPLETE: u32 = 0;
const RUNNING: u32 = 1;
const COMPLETE: u32 = 2;
/// Set while a thread may be asleep waiting for the running initializer.
const WAITERS: u32 = 4;

/// Runs an initializer exactly once, however many threads ask at the same time.
///
/// One thread runs the closure; the others sleep until it finishes. **No poisoning**: if the
/// initializer panics (or, in [`OnceCell::get_or_try_init`], fails), the `Once` goes back to
/// incomplete and wakes the waiters, and the next caller runs its own initializer. So "exactly
/// once" means exactly one *successful* run.
///
/// ```
/// use rsm_sync::Once;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// static INIT: Once = Once::new();
/// static RUNS: AtomicU32 = AtomicU32::new(0);
///
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| INIT.call_once(|| { RUNS.fetch_add(1, Ordering::Relaxed); }));
///     }
/// });
/// assert_eq!(RUNS.load(Ordering::Relaxed), 1);
/// assert!(INIT.is_completed());
/// ```
pub struct Once {
    state: Word,
}

/// Puts the `Once` back to incomplete unless disarmed: runs when an initializer panics.
struct Rollback<'a> {
    once: &'a Once,
    armed: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.once.finish(INCOMPLETE);
        }
    }
}

impl Once {
    const_fn! {
        /// A `Once` whose initializer has not run.
        pub fn new() -> Once {
            Once { state: Word::new(INCOMPLETE) }
        }
    }

    /// Runs `f` if no initializer has completed yet; returns once one has (this call's or
    /// another thread's).
    #[inline]
    pub fn call_once(&self, f: impl FnOnce()) {
        if !self.is_completed() {
            let _ = self.initialize(|| {
                f();
                Ok::<(), std::convert::Infallible>(())
            });
        }
    }

    /// Whether an initializer has completed. When true, its effects are visible to the caller.
    #[inline]
    pub fn is_completed(&self) -> bool {
        self.state.load(Ordering::Acquire) == COMPLETE
    }

    /// Sleeps until an initializer has completed (run by some other thread).
    pub fn wait(&self) {
        self.wait_deadline(Deadline::NEVER);
    }

    /// Sleeps until an initializer has completed, at most `timeout`; returns whether it has.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Deadline::after(timeout))
    }

    fn wait_deadline(&self, deadline: Deadline) -> bool {
        self.is_completed()
            || self
                .state
                .wait_until(WAITERS, Queue::Primary, deadline, |s| s == COMPLETE)
                .is_some()
    }

    /// Runs `f` unless complete; an `Err` from `f` leaves the `Once` incomplete.
    #[cold]
    fn initialize<E>(&self, f: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        loop {
            let state = self.state.load(Ordering::Acquire);
            match state & PHASE {
                COMPLETE => return Ok(()),
                INCOMPLETE => {
                    if self
                        .state
                        .compare_exchange(
                            state,
                            RUNNING | (state & WAITERS),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_err()
                    {
                        continue;
                    }
                    let mut rollback = Rollback {
                        once: self,
                        armed: true,
                    };
                    let result = f();
                    rollback.armed = false;
                    self.finish(if result.is_ok() { COMPLETE } else { INCOMPLETE });
                    return result;
                }
                _ => {
                    // Another thread runs its initializer: wait until it leaves RUNNING.
                    self.state
                        .wait_until(WAITERS, Queue::Primary, Deadline::NEVER, |s| {
                            s & PHASE != RUNNING
                        });
                }
            }
        }
    }

    /// Leaves RUNNING for `phase` and wakes every waiter.
    fn finish(&self, phase: u32) {
        if self.state.swap(phase, Ordering::Release) & WAITERS != 0 {
            self.state.wake(Queue::Primary, WAKE_ALL);
        }
    }
}

impl Default for Once {
    fn default() -> Self {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish()
    }
}

/// A cell written at most once, then read by reference from any thread.
///
/// Initialization follows [`Once`]: concurrent `get_or_init` calls run one initializer, the
/// rest wait and then see its value. A panicking or failing initializer leaves the cell empty.
///
/// ```
/// use rsm_sync::OnceCell;
///
/// static CONFIG: OnceCell<String> = OnceCell::new();
/// assert!(CONFIG.get().is_none());
/// assert_eq!(CONFIG.get_or_init(|| "ready".to_string()), "ready");
/// assert_eq!(CONFIG.set("late".to_string()), Err("late".to_string()));
/// assert_eq!(CONFIG.get().map(String::as_str), Some("ready"));
/// ```
pub struct OnceCell<T> {
    once: Once,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, by the thread that won the `Once`, before COMPLETE is
// released; afterwards it is only read through `&T`, from any thread (needs `T: Sync`), and
// the writer may be any thread (needs `T: Send`).
unsafe impl<T: Send + Sync> Sync for OnceCell<T> {}
// SAFETY: moving the cell moves the value with it; nothing in it is tied to a thread.
unsafe impl<T: Send> Send for OnceCell<T> {}

impl<T> OnceCell<T> {
    const_fn! {
        /// An empty cell.
        pub fn new() -> OnceCell<T> {
            OnceCell {
                once: Once::new(),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }
        }
    }

    /// The value, if the cell has been initialized.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        // SAFETY: `is_completed` read COMPLETE with acquire ordering, so the write of the
        // value happened before this read, and the value is never written again.
        self.once
            .is_completed()
            .then(|| unsafe { (*self.value.get()).assume_init_ref() })
    }

    /// The value, initializing it with `f` if the cell is empty.
    #[inline]
    pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        match self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(f())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// The value, initializing it with `f` if the cell is empty; an error from `f` is
    /// returned and leaves the cell empty.
    pub fn get_or_try_init<E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        if let Some(value) = self.get() {
            return Ok(value);
        }
        self.once.initialize(|| {
            let value = f()?;
            // SAFETY: this closure runs only in the thread that moved the `Once` to RUNNING;
            // no reader looks at the value before COMPLETE, and no other writer exists.
            unsafe { (*self.value.get()).write(value) };
            Ok(())
        })?;
        // SAFETY: `initialize` returned Ok, so the `Once` is COMPLETE (read with acquire
        // ordering, or set by this thread) and the value is initialized.
        Ok(unsafe { (*self.value.get()).assume_init_ref() })
    }

    /// Stores `value` if the cell is empty; otherwise hands it back.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut slot = Some(value);
        self.get_or_init(|| slot.take().expect("the initializer runs at most once"));
        match slot {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// Sleeps until the cell is initialized, then returns the value.
    pub fn wait(&self) -> &T {
        self.once.wait();
        // SAFETY: `wait` returned, so the `Once` is COMPLETE (read with acquire ordering).
        unsafe { (*self.value.get()).assume_init_ref() }
    }

    /// Sleeps until the cell is initialized, at most `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<&T> {
        if self.once.wait_timeout(timeout) {
            self.get()
        } else {
            None
        }
    }

    /// The value through a unique borrow.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        // SAFETY: COMPLETE means initialized; the unique borrow excludes every other access.
        self.once
            .is_completed()
            .then(|| unsafe { (*self.value.get()).assume_init_mut() })
    }

    /// Empties the cell, returning the value it held.
    pub fn take(&mut self) -> Option<T> {
        std::mem::take(self).into_inner()
    }

    /// Consumes the cell, returning the value it held.
    pub fn into_inner(self) -> Option<T> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: COMPLETE means initialized; `this` is never dropped, so the value is moved
        // out exactly once.
        this.once
            .is_completed()
            .then(|| unsafe { (*this.value.get()).assume_init_read() })
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> Self {
        OnceCell::new()
    }
}

impl<T> From<T> for OnceCell<T> {
    fn from(value: T) -> Self {
        let cell = OnceCell::new();
        let _ = cell.set(value);
        cell
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OnceCell").field(&self.get()).finish()
    }
}

impl<T> Drop for OnceCell<T> {
    fn drop(&mut self) {
        if self.once.is_completed() {
            // SAFETY: COMPLETE means initialized, and `drop` runs once.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

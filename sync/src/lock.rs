//! `Lock<T>`: a mutual-exclusion lock on one atomic word.

use crate::wait::Deadline;
use crate::word::{Ordering, Queue, Word, const_fn};
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// Set while a thread holds the lock.
const LOCKED: u32 = 1;
/// Set while a thread may be asleep waiting for the lock.
const WAITERS: u32 = 2;

/// A mutual-exclusion lock protecting a `T`, with an RAII guard.
///
/// The state is one `u32`: unlocked, locked, or locked with sleepers. Locking is one
/// compare-and-swap when uncontended; a contended locker spins briefly, then sleeps on the
/// word (a futex on Linux). Unlocking is one swap, plus one wake-up call only when a thread
/// sleeps. The lock is not fair: an arriving thread may take the lock before a woken sleeper,
/// which keeps throughput high under contention.
///
/// **No poisoning.** A panic while a guard is held releases the lock as the guard is dropped
/// during unwinding; the next holder sees the data as the panicking thread left it. Code whose
/// invariants a panic could break should restore them (or record the breakage in `T`).
///
/// ```
/// use rsm_sync::Lock;
/// use std::sync::Arc;
///
/// let counter = Arc::new(Lock::new(0_u64));
/// let handles: Vec<_> = (0..4)
///     .map(|_| {
///         let counter = Arc::clone(&counter);
///         std::thread::spawn(move || {
///             for _ in 0..1000 {
///                 *counter.lock() += 1;
///             }
///         })
///     })
///     .collect();
/// for handle in handles {
///     handle.join().unwrap();
/// }
/// assert_eq!(*counter.lock(), 4000);
/// ```
pub struct Lock<T: ?Sized> {
    state: Word,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `T` to one thread at a time (a guard exists only while
// LOCKED is held by its creator), so sharing the lock between threads only ever moves access
// to `T` from one thread to another, which `T: Send` permits.
unsafe impl<T: ?Sized + Send> Sync for Lock<T> {}

/// Proof that a thread holds a [`Lock`]; gives access to the data and unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, T: ?Sized> {
    lock: &'a Lock<T>,
    /// Makes the guard `Send`/`Sync` exactly when `&mut T` is.
    _marker: PhantomData<&'a mut T>,
}

impl<T> Lock<T> {
    const_fn! {
        /// An unlocked lock protecting `value`.
        pub fn new(value: T) -> Lock<T> {
            Lock {
                state: Word::new(0),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock and returns the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Lock<T> {
    /// Locks, sleeping as long as another thread holds the lock.
    #[inline]
    pub fn lock(&self) -> LockGuard<'_, T> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(Deadline::NEVER);
        }
        self.guard()
    }

    /// Locks if the lock is free right now.
    #[inline]
    pub fn try_lock(&self) -> Option<LockGuard<'_, T>> {
        let state = self.state.load(Ordering::Relaxed);
        if state & LOCKED != 0 {
            return None;
        }
        self.state
            .compare_exchange(state, state | LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| self.guard())
    }

    /// Locks, waiting at most `timeout`; `None` if the lock stayed held.
    pub fn try_lock_for(&self, timeout: Duration) -> Option<LockGuard<'_, T>> {
        self.try_lock().or_else(|| {
            self.lock_slow(Deadline::after(timeout))
                .then(|| self.guard())
        })
    }

    /// Locks, waiting until `deadline` at the latest; `None` if the lock stayed held.
    pub fn try_lock_until(&self, deadline: Instant) -> Option<LockGuard<'_, T>> {
        self.try_lock()
            .or_else(|| self.lock_slow(Deadline::at(deadline)).then(|| self.guard()))
    }

    /// Whether some thread holds the lock right now (a hint: it may change at once).
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Access to the data through a unique borrow; no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    #[cold]
    fn lock_slow(&self, deadline: Deadline) -> bool {
        self.state
            .acquire_slow(WAITERS, Queue::Primary, deadline, |state, woken| {
                (state & LOCKED == 0).then_some(LOCKED | state | if woken { WAITERS } else { 0 })
            })
    }

    /// Builds the guard; the caller has just taken LOCKED.
    fn guard(&self) -> LockGuard<'_, T> {
        LockGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    #[inline]
    fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) & WAITERS != 0 {
            self.state.wake(Queue::Primary, 1);
        }
    }
}

impl<T: Default> Default for Lock<T> {
    fn default() -> Self {
        Lock::new(T::default())
    }
}

impl<T> From<T> for Lock<T> {
    fn from(value: T) -> Self {
        Lock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Lock");
        match self.try_lock() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> LockGuard<'_, T> {
    /// Releases the lock, runs `f`, and takes the lock again (for example to let another
    /// thread in during a long operation that does not need the data).
    pub fn unlocked<R>(guard: &mut Self, f: impl FnOnce() -> R) -> R {
        guard.lock.unlock();
        let result = f();
        if guard
            .lock
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            guard.lock.lock_slow(Deadline::NEVER);
        }
        result
    }
}

impl<T: ?Sized> Deref for LockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its thread holds LOCKED, so no other reference
        // to the data exists; the shared borrow lives no longer than the guard.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and the unique borrow of the guard makes this the only
        // reference derived from it.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for LockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

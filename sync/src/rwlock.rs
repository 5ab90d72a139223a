//! `RwLock<T>`: a writer-preferring reader-writer lock on one atomic word.

use crate::wait::Deadline;
use crate::word::{Ordering, Queue, WAKE_ALL, Word, const_fn};
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// The low 30 bits count readers; all ones means a writer holds the lock.
const MASK: u32 = (1 << 30) - 1;
const WRITE_LOCKED: u32 = MASK;
const READERS_MAX: u32 = MASK - 1;
/// Set while a reader may be asleep (readers sleep on the secondary queue).
const READERS_WAITING: u32 = 1 << 30;
/// Set while a writer may be asleep (writers sleep on the primary queue). While it is set, new
/// readers wait: this is what makes the lock writer-preferring.
const WRITERS_WAITING: u32 = 1 << 31;

/// A reader-writer lock protecting a `T`: many readers or one writer.
///
/// **Policy: writer-preferring.** Once a writer is waiting, arriving readers wait behind it, so
/// a steady stream of readers cannot starve writers (the usual failure of reader-preferring
/// locks in event loops, where configuration updates must not wait for a quiet moment). The
/// price: a thread that already holds a read lock and asks for another may deadlock if a
/// writer arrives in between, so read locks must not be taken recursively. When a writer
/// releases with both readers and writers asleep it wakes one writer and all readers, and lets
/// them race; the woken writer re-announces itself, so readers that lose go back to sleep.
///
/// The state is one `u32` (reader count or write-locked, plus two waiter bits); an
/// uncontended read or write lock is one compare-and-swap. **No poisoning**: a panic while a
/// guard is held releases the lock during unwinding, leaving the data as it was.
///
/// ```
/// use rsm_sync::RwLock;
///
/// let config = RwLock::new(vec![1, 2, 3]);
/// {
///     let a = config.read();
///     let b = config.read(); // readers share
///     assert_eq!(a.len() + b.len(), 6);
/// }
/// config.write().push(4);
/// assert_eq!(*config.read(), [1, 2, 3, 4]);
/// ```
pub struct RwLock<T: ?Sized> {
    state: Word,
    data: UnsafeCell<T>,
}

// SAFETY: a writer gets `&mut T` on one thread at a time (needs `T: Send`); readers on several
// threads share `&T` at once (needs `T: Sync`). The state word enforces exactly these modes.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to the data of an [`RwLock`]; releases the read lock when dropped.
#[must_use = "the read lock is released as soon as the guard is dropped"]
pub struct ReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _marker: PhantomData<&'a T>,
}

/// Exclusive access to the data of an [`RwLock`]; releases the write lock when dropped.
#[must_use = "the write lock is released as soon as the guard is dropped"]
pub struct WriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _marker: PhantomData<&'a mut T>,
}

/// Whether a state admits one more reader; panics if the reader count would overflow.
fn can_read(state: u32) -> bool {
    let readers = state & MASK;
    if readers == WRITE_LOCKED || state & WRITERS_WAITING != 0 {
        return false;
    }
    assert!(readers < READERS_MAX, "RwLock: too many readers");
    true
}

impl<T> RwLock<T> {
    const_fn! {
        /// An unlocked lock protecting `value`.
        pub fn new(value: T) -> RwLock<T> {
            RwLock {
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

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, sleeping while a writer holds or waits for the lock.
    #[inline]
    pub fn read(&self) -> ReadGuard<'_, T> {
        if !self.try_read_fast() {
            self.read_slow(Deadline::NEVER);
        }
        self.read_guard()
    }

    /// Locks for reading if that is possible right now.
    #[inline]
    pub fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        let mut state = self.state.load(Ordering::Relaxed);
        while can_read(state) {
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(self.read_guard()),
                Err(now) => state = now,
            }
        }
        None
    }

    /// Locks for reading, waiting at most `timeout`.
    pub fn try_read_for(&self, timeout: Duration) -> Option<ReadGuard<'_, T>> {
        self.try_read().or_else(|| {
            self.read_slow(Deadline::after(timeout))
                .then(|| self.read_guard())
        })
    }

    /// Locks for reading, waiting until `deadline` at the latest.
    pub fn try_read_until(&self, deadline: Instant) -> Option<ReadGuard<'_, T>> {
        self.try_read().or_else(|| {
            self.read_slow(Deadline::at(deadline))
                .then(|| self.read_guard())
        })
    }

    /// Locks for writing, sleeping while any other thread holds the lock.
    #[inline]
    pub fn write(&self) -> WriteGuard<'_, T> {
        if self
            .state
            .compare_exchange(0, WRITE_LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.write_slow(Deadline::NEVER);
        }
        self.write_guard()
    }

    /// Locks for writing if the lock is free right now.
    #[inline]
    pub fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & MASK == 0 {
            match self.state.compare_exchange_weak(
                state,
                state | WRITE_LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(self.write_guard()),
                Err(now) => state = now,
            }
        }
        None
    }

    /// Locks for writing, waiting at most `timeout`.
    pub fn try_write_for(&self, timeout: Duration) -> Option<WriteGuard<'_, T>> {
        self.try_write().or_else(|| {
            self.write_slow(Deadline::after(timeout))
                .then(|| self.write_guard())
        })
    }

    /// Locks for writing, waiting until `deadline` at the latest.
    pub fn try_write_until(&self, deadline: Instant) -> Option<WriteGuard<'_, T>> {
        self.try_write().or_else(|| {
            self.write_slow(Deadline::at(deadline))
                .then(|| self.write_guard())
        })
    }

    /// Access to the data through a unique borrow; no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The common case in one comparison: below READERS_MAX with no bit above the count set
    /// means no writer holds or waits, nobody sleeps, and the count cannot overflow.
    #[inline]
    fn try_read_fast(&self) -> bool {
        let state = self.state.load(Ordering::Relaxed);
        state < READERS_MAX
            && self
                .state
                .compare_exchange_weak(state, state + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    #[cold]
    fn read_slow(&self, deadline: Deadline) -> bool {
        // Readers are woken all at once, so a woken reader need not re-announce itself.
        self.state
            .acquire_slow(READERS_WAITING, Queue::Secondary, deadline, |state, _| {
                can_read(state).then(|| state + 1)
            })
    }

    #[cold]
    fn write_slow(&self, deadline: Deadline) -> bool {
        self.state
            .acquire_slow(WRITERS_WAITING, Queue::Primary, deadline, |state, woken| {
                (state & MASK == 0)
                    .then_some(state | WRITE_LOCKED | if woken { WRITERS_WAITING } else { 0 })
            })
    }

    fn read_guard(&self) -> ReadGuard<'_, T> {
        ReadGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    fn write_guard(&self) -> WriteGuard<'_, T> {
        WriteGuard {
            lock: self,
            _marker: PhantomData,
        }
    }

    #[inline]
    fn read_unlock(&self) {
        let before = self.state.fetch_sub(1, Ordering::Release);
        debug_assert!(before & MASK != 0 && before & MASK != WRITE_LOCKED);
        if before & MASK == 1 && before & (READERS_WAITING | WRITERS_WAITING) != 0 {
            self.wake_after_last_reader();
        }
    }

    /// The last reader left while someone sleeps: clear the waiter bits and wake them, unless
    /// another thread took the lock meanwhile (its release will do it).
    #[cold]
    fn wake_after_last_reader(&self) {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & MASK == 0 && state & (READERS_WAITING | WRITERS_WAITING) != 0 {
            match self
                .state
                .compare_exchange_weak(state, 0, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return self.wake(state),
                Err(now) => state = now,
            }
        }
    }

    #[inline]
    fn write_unlock(&self) {
        let before = self.state.swap(0, Ordering::Release);
        debug_assert_eq!(before & MASK, WRITE_LOCKED);
        if before & (READERS_WAITING | WRITERS_WAITING) != 0 {
            self.wake(before);
        }
    }

    /// Wakes the sleepers announced in `before`, a state whose waiter bits were just cleared.
    #[cold]
    fn wake(&self, before: u32) {
        if before & WRITERS_WAITING != 0 {
            self.state.wake(Queue::Primary, 1);
        }
        if before & READERS_WAITING != 0 {
            self.state.wake(Queue::Secondary, WAKE_ALL);
        }
    }
}

impl<'a, T: ?Sized> WriteGuard<'a, T> {
    /// Turns exclusive access into shared access without letting a writer in between.
    pub fn downgrade(guard: Self) -> ReadGuard<'a, T> {
        let lock = guard.lock;
        std::mem::forget(guard);
        // One reader, and the waiter bits cleared: readers asleep may now share the lock.
        // Writers asleep are woken too; they find a reader and sleep again, re-announcing
        // themselves so that the last reader's release wakes one of them.
        let before = lock.state.swap(1, Ordering::Release);
        if before & (READERS_WAITING | WRITERS_WAITING) != 0 {
            lock.wake(before);
        }
        lock.read_guard()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its thread is counted as a reader, so no writer
        // (and no `&mut T`) exists until it is dropped.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for ReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its thread holds WRITE_LOCKED: no other
        // reference to the data exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the unique borrow of the guard makes this reference unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for WriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for WriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

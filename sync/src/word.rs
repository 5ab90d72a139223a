//! The atomic word every primitive is built on, and the way a thread sleeps on it.
//!
//! A [`Word`] is an `AtomicU32` plus the ability to sleep until it changes (a futex). On Linux
//! the sleep is the `futex` system call on the word itself, so a primitive is exactly one word
//! in memory. Elsewhere a small global table of mutex and condition variable pairs, hashed by
//! the word's address, plays the kernel's part. Under `--cfg loom` the word carries its own
//! loom mutex and condition variables, so the model checker explores the same primitive logic
//! with a faithful model of futex semantics: a sleep whose expected value is stale returns at
//! once, and a wake that follows a store reaches every sleeper that saw the old value.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering};

use crate::wait::Deadline;

/// Declares a function `const` in normal builds and non-`const` under loom, whose atomics
/// cannot be built in a constant context.
macro_rules! const_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$meta])*
        #[cfg(not(loom))]
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        $(#[$meta])*
        #[cfg(loom)]
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use const_fn;

/// Which sleepers a wake is meant for. A word has two queues so that a reader-writer lock can
/// wake one writer without waking every reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Queue {
    /// The queue every primitive uses; writers of an `RwLock`.
    Primary = 0,
    /// Readers of an `RwLock`.
    Secondary = 1,
}

/// Wake every sleeper of a queue.
pub(crate) const WAKE_ALL: u32 = u32::MAX;

/// An atomic word a thread can sleep on.
pub(crate) struct Word {
    value: AtomicU32,
    #[cfg(loom)]
    sleepers: model::Sleepers,
}

impl Word {
    const_fn! {
        pub(crate) fn new(value: u32) -> Word {
            Word {
                value: AtomicU32::new(value),
                #[cfg(loom)]
                sleepers: model::Sleepers::new(),
            }
        }
    }

    /// Sleeps on `queue` while the word holds `expected`, until woken, until `deadline`, or
    /// spuriously. Callers always re-check the word afterwards.
    ///
    /// Returns whether this sleep may have consumed a wake meant for the queue. False means it
    /// certainly did not: the word no longer held `expected`, or the sleep timed out or was
    /// interrupted without being woken. A thread that consumed no wake owes nothing to the
    /// other sleepers (see `Word::acquire_slow`).
    pub(crate) fn sleep(&self, expected: u32, queue: Queue, deadline: &Deadline) -> bool {
        #[cfg(loom)]
        return self.sleepers.sleep(&self.value, expected, queue, deadline);
        #[cfg(all(not(loom), target_os = "linux"))]
        return linux::sleep(&self.value, expected, queue, deadline);
        #[cfg(all(not(loom), not(target_os = "linux")))]
        return table::sleep(&self.value, expected, queue, deadline);
    }

    /// Wakes up to `count` sleepers of `queue` ([`WAKE_ALL`] for all). Called after the store
    /// that the sleepers are waiting for.
    pub(crate) fn wake(&self, queue: Queue, count: u32) {
        #[cfg(loom)]
        self.sleepers.wake(queue, count);
        #[cfg(all(not(loom), target_os = "linux"))]
        linux::wake(&self.value, queue, count);
        #[cfg(all(not(loom), not(target_os = "linux")))]
        table::wake(&self.value, queue, count);
    }
}

impl std::ops::Deref for Word {
    type Target = AtomicU32;

    fn deref(&self) -> &AtomicU32 {
        &self.value
    }
}

impl std::fmt::Debug for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.value.load(Ordering::Relaxed))
    }
}

#[cfg(all(not(loom), target_os = "linux"))]
mod linux {
    use super::{AtomicU32, Queue};
    use crate::wait::Deadline;

    /// The futex bitset of a queue: a wake with bitset `b` reaches sleepers whose bitset
    /// shares a bit with `b`.
    fn bitset(queue: Queue) -> u32 {
        1 << queue as u32
    }

    pub(super) fn sleep(
        word: &AtomicU32,
        expected: u32,
        queue: Queue,
        deadline: &Deadline,
    ) -> bool {
        let mut timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let timeout_ptr: *const libc::timespec = match deadline.remaining() {
            None => std::ptr::null(),
            Some(left) if left.is_zero() => return false,
            Some(left) => {
                // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, the clock that
                // `Instant` reads on Linux.
                // SAFETY: `timeout` is a valid, writable timespec for the duration of the call.
                unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut timeout) };
                let nanos = timeout.tv_nsec as u64 + u64::from(left.subsec_nanos());
                let secs = (timeout.tv_sec as u64)
                    .checked_add(left.as_secs())
                    .and_then(|s| s.checked_add(nanos / 1_000_000_000))
                    .and_then(|s| libc::time_t::try_from(s).ok());
                match secs {
                    Some(secs) => {
                        timeout.tv_sec = secs;
                        timeout.tv_nsec = (nanos % 1_000_000_000) as libc::c_long;
                        &timeout
                    }
                    // A deadline beyond the clock's range is no deadline.
                    None => std::ptr::null(),
                }
            }
        };
        // SAFETY: `word.as_ptr()` points to a live, aligned u32 for the duration of the call
        // (the caller borrows the word); the kernel only reads it. `timeout_ptr` is null or
        // points to `timeout`, alive until the call returns.
        let result = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG,
                expected,
                timeout_ptr,
                std::ptr::null::<u32>(),
                bitset(queue),
            )
        };
        // Zero means woken (or, rarely, a spurious return the kernel cannot tell apart). The
        // errors EAGAIN (the word had changed), ETIMEDOUT and EINTR are reported only when the
        // kernel removed the sleeper from its queue itself, so no wake was consumed.
        result == 0
    }

    pub(super) fn wake(word: &AtomicU32, queue: Queue, count: u32) {
        let count = i32::try_from(count).unwrap_or(i32::MAX);
        // SAFETY: `word.as_ptr()` points to a live, aligned u32; FUTEX_WAKE_BITSET does not
        // dereference the timeout or second-address arguments, which are null.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE_BITSET | libc::FUTEX_PRIVATE_FLAG,
                count,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                bitset(queue),
            );
        }
    }
}

/// The portable stand-in for a futex: a fixed table of mutex and condition variable pairs.
/// A sleeper checks the word while holding its bucket's mutex, and a waker takes the same
/// mutex after its store, so a wake can never slip between the check and the sleep. Buckets
/// are shared by unrelated words and queues, so a wake notifies the whole bucket; sleepers
/// treat the extra wake-ups as spurious.
#[cfg(all(not(loom), not(target_os = "linux")))]
mod table {
    use super::{AtomicU32, Ordering, Queue};
    use crate::wait::Deadline;
    use std::sync::{Condvar, Mutex, PoisonError};

    const BUCKETS: usize = 64;

    struct Bucket {
        lock: Mutex<()>,
        cond: Condvar,
    }

    static TABLE: [Bucket; BUCKETS] = [const {
        Bucket {
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }; BUCKETS];

    fn bucket(word: &AtomicU32) -> &'static Bucket {
        let addr = word.as_ptr() as usize;
        &TABLE[(addr >> 2).wrapping_mul(0x9e37_79b9) % BUCKETS]
    }

    /// A wake notifies the whole bucket, so any sleep that reached the condition variable may
    /// have consumed one.
    pub(super) fn sleep(
        word: &AtomicU32,
        expected: u32,
        _queue: Queue,
        deadline: &Deadline,
    ) -> bool {
        let bucket = bucket(word);
        let guard = bucket.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if word.load(Ordering::Relaxed) != expected {
            return false;
        }
        match deadline.remaining() {
            None => drop(bucket.cond.wait(guard)),
            Some(left) if left.is_zero() => return false,
            Some(left) => drop(bucket.cond.wait_timeout(guard, left)),
        }
        true
    }

    pub(super) fn wake(word: &AtomicU32, _queue: Queue, _count: u32) {
        let bucket = bucket(word);
        let _guard = bucket.lock.lock().unwrap_or_else(PoisonError::into_inner);
        bucket.cond.notify_all();
    }
}

/// The loom model of a futex: one mutex and one condition variable per queue. A timed sleep
/// registers itself, yields, and then times out; a wake prefers a registered timed sleeper
/// over a real one. That is the adversarial schedule for timeouts: the wake is consumed by a
/// thread that then gives up, and the model checker explores every interleaving around it.
#[cfg(loom)]
mod model {
    use super::{AtomicU32, Ordering, Queue, WAKE_ALL};
    use crate::wait::Deadline;
    use loom::sync::{Condvar, Mutex};

    pub(super) struct Sleepers {
        /// Timed sleepers registered on each queue.
        timed: Mutex<[u32; 2]>,
        queues: [Condvar; 2],
    }

    impl Sleepers {
        pub(super) fn new() -> Sleepers {
            Sleepers {
                timed: Mutex::new([0; 2]),
                queues: [Condvar::new(), Condvar::new()],
            }
        }

        pub(super) fn sleep(
            &self,
            word: &AtomicU32,
            expected: u32,
            queue: Queue,
            deadline: &Deadline,
        ) -> bool {
            let q = queue as usize;
            let mut timed = self
                .timed
                .lock()
                .expect("the model's mutex is never poisoned");
            if word.load(Ordering::Relaxed) != expected {
                return false;
            }
            if !deadline.is_timed() {
                drop(self.queues[q].wait(timed));
                return true;
            }
            timed[q] += 1;
            drop(timed);
            loom::thread::yield_now();
            let mut timed = self
                .timed
                .lock()
                .expect("the model's mutex is never poisoned");
            deadline.note_timed_sleep();
            // Unless a wake already consumed the registration, withdraw it. Registrations are
            // counted, not named: when several timed sleepers share a queue, the last ones to
            // withdraw report the consumed wakes, so exactly as many sleeps report a consumed
            // wake as there were wakes.
            if timed[q] > 0 {
                timed[q] -= 1;
                false
            } else {
                true
            }
        }

        pub(super) fn wake(&self, queue: Queue, count: u32) {
            let q = queue as usize;
            let mut timed = self
                .timed
                .lock()
                .expect("the model's mutex is never poisoned");
            let cond = &self.queues[q];
            if count == WAKE_ALL {
                timed[q] = 0;
                cond.notify_all();
                return;
            }
            for _ in 0..count {
                if timed[q] > 0 {
                    timed[q] -= 1;
                } else {
                    cond.notify_one();
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Ordering, Queue, WAKE_ALL, Word};
    use crate::wait::Deadline;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn a_sleep_on_a_stale_value_consumes_no_wake() {
        let word = Word::new(1);
        assert!(!word.sleep(0, Queue::Primary, &Deadline::NEVER));
    }

    /// The portable table cannot tell a timeout from a wake at the deadline, so it reports a
    /// possible wake; the futex can.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_sleep_that_times_out_unwoken_consumes_no_wake() {
        let word = Word::new(0);
        let deadline = Deadline::after(Duration::from_millis(1));
        while !deadline.expired() {
            assert!(!word.sleep(0, Queue::Primary, &deadline));
        }
    }

    #[test]
    fn a_woken_sleep_reports_the_wake() {
        let word = Word::new(0);
        let returned = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                // Nothing but a wake ends an untimed sleep on the current value.
                assert!(word.sleep(0, Queue::Primary, &Deadline::NEVER));
                returned.store(true, Ordering::Release);
            });
            while !returned.load(Ordering::Acquire) {
                word.wake(Queue::Primary, WAKE_ALL);
                std::thread::yield_now();
            }
        });
    }
}

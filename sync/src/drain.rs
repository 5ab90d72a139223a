//! `Drain`: orderly shutdown of a set of worker threads.

use crate::wait::Deadline;
use crate::word::{Ordering, Queue, WAKE_ALL, Word, const_fn};
use std::fmt;
use std::time::{Duration, Instant};

/// The low 30 bits count the registered workers.
const ACTIVE: u32 = (1 << 30) - 1;
/// Set once a drain has been requested; no worker may register while it is set.
const DRAINING: u32 = 1 << 30;
/// Set while a drainer may be asleep waiting for the workers to leave.
const WAITERS: u32 = 1 << 31;

/// Coordinates the shutdown of a set of workers: workers register, a coordinator asks them to
/// drain, and the coordinator waits until every registered worker has finished its current
/// work and left.
///
/// A worker holds a [`Worker`] token while it is inside (registered) and checks
/// [`Worker::is_draining`] between units of work; when it sees the request it finishes the
/// unit in hand and drops the token. [`Drain::drain`] sets the request, refuses new
/// registrations from then on, and returns only once no worker is inside. Everything a worker
/// did before leaving happens before `drain` returns. A worker that panics leaves as its
/// token is dropped during unwinding.
///
/// The state is one `u32`: the number of workers inside, the drain request, a waiter bit.
///
/// ```
/// use rsm_sync::Drain;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// let drain = Drain::new();
/// let done = AtomicU64::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..2 {
///         let worker = drain.register().expect("not draining yet");
///         let done = &done;
///         s.spawn(move || {
///             while !worker.is_draining() {
///                 done.fetch_add(1, Ordering::Relaxed); // one unit of work
///                 std::thread::yield_now();
///             }
///             // dropping `worker` leaves
///         });
///     }
///     drain.drain();
///     assert_eq!(drain.active(), 0);
///     assert!(drain.register().is_err());
/// });
/// ```
pub struct Drain {
    state: Word,
}

/// A worker's registration with a [`Drain`]; dropping it leaves.
#[must_use = "the worker leaves as soon as this is dropped"]
pub struct Worker<'a> {
    drain: &'a Drain,
}

/// Returned by [`Drain::register`] once a drain has been requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draining;

impl fmt::Display for Draining {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a drain has been requested: no new workers may register")
    }
}

impl std::error::Error for Draining {}

impl Drain {
    const_fn! {
        /// A drain with no workers and no drain requested.
        pub fn new() -> Drain {
            Drain { state: Word::new(0) }
        }
    }

    /// Registers a worker; fails once a drain has been requested.
    pub fn register(&self) -> Result<Worker<'_>, Draining> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & DRAINING != 0 {
                return Err(Draining);
            }
            assert!(state & ACTIVE < ACTIVE, "Drain: too many workers");
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(Worker { drain: self }),
                Err(now) => state = now,
            }
        }
    }

    /// Whether a drain has been requested.
    pub fn is_draining(&self) -> bool {
        self.state.load(Ordering::Relaxed) & DRAINING != 0
    }

    /// The number of workers inside right now.
    pub fn active(&self) -> u32 {
        self.state.load(Ordering::Relaxed) & ACTIVE
    }

    /// Requests a drain without waiting for it.
    pub fn request(&self) {
        self.state.fetch_or(DRAINING, Ordering::Relaxed);
    }

    /// Requests a drain and sleeps until every worker has left.
    pub fn drain(&self) {
        self.drain_deadline(Deadline::NEVER);
    }

    /// Requests a drain and sleeps until every worker has left, at most `timeout`; returns
    /// whether they all left. The request stays in force either way.
    pub fn drain_timeout(&self, timeout: Duration) -> bool {
        self.drain_deadline(Deadline::after(timeout))
    }

    /// Requests a drain and sleeps until every worker has left, until `deadline` at the
    /// latest.
    pub fn drain_until(&self, deadline: Instant) -> bool {
        self.drain_deadline(Deadline::at(deadline))
    }

    /// Withdraws the drain request so that workers may register again (for example, after a
    /// restart). Workers still inside stay registered.
    pub fn reopen(&self) {
        self.state.fetch_and(!DRAINING, Ordering::Relaxed);
    }

    fn drain_deadline(&self, deadline: Deadline) -> bool {
        self.request();
        self.state
            .wait_until(WAITERS, Queue::Primary, deadline, |s| s & ACTIVE == 0)
            .is_some()
    }

    fn leave(&self) {
        let before = self.state.fetch_sub(1, Ordering::Release);
        debug_assert!(before & ACTIVE != 0);
        if before & ACTIVE == 1 && before & WAITERS != 0 {
            // The last worker left while a drainer sleeps. Drainers wait only while DRAINING
            // is set, so no worker can register again until the bit is cleared below.
            self.state.fetch_and(!WAITERS, Ordering::Relaxed);
            self.state.wake(Queue::Primary, WAKE_ALL);
        }
    }
}

impl Default for Drain {
    fn default() -> Self {
        Drain::new()
    }
}

impl fmt::Debug for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("active", &self.active())
            .field("draining", &self.is_draining())
            .finish()
    }
}

impl Worker<'_> {
    /// Whether the coordinator has asked the workers to drain: finish the current unit of
    /// work and drop this token.
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.drain.is_draining()
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        self.drain.leave();
    }
}

impl fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("draining", &self.is_draining())
            .finish()
    }
}

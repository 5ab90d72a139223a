//! rsm-sync: user-space synchronization primitives for the threads that drive rsm's automata.
//!
//! Each primitive is a small state machine over one atomic `u32`. The uncontended path is one
//! or two atomic instructions; a contended thread spins for a short, bounded time and then
//! sleeps on the word itself (the `futex` system call on Linux, a small table of condition
//! variables elsewhere). Every wait can be bounded by a timeout or deadline. The crate never
//! allocates on a thread's lock path, never spins without bound, never depends on an async
//! runtime, and never poisons: a panic releases whatever its guards hold, as documented on
//! each type.
//!
//! [`Semaphore`], [`Event`] and [`Gate`] can also be waited for by a `Future`
//! ([`Semaphore::acquire_async`], [`Event::wait_async`], [`Gate::pass_async`]) under any
//! executor: a future that has to wait records its waker in a list beside the word (which
//! grows to the number of futures waiting at once), and a release looks at that list only
//! when a bit in the word says a future waits.
//!
//! Read first: [`Lock`] (the mutex, and the pattern every other type follows), [`Drain`]
//! (the orderly shutdown of an event loop's workers) and [`Semaphore`]. The rest:
//! [`RwLock`] (writer-preferring), [`Once`] and [`OnceCell`], [`Event`] (manual- or
//! auto-reset), [`Gate`], [`Latch`] and [`Barrier`].
//!
//! The same code is model-checked with loom: built with `--cfg loom`, the word's atomics and
//! its sleep and wake come from loom (see `make loom`).

#![warn(missing_docs)]

mod barrier;
mod drain;
mod event;
mod gate;
mod latch;
mod lock;
mod once;
mod rwlock;
mod semaphore;
mod wait;
mod wakers;
mod word;

pub use barrier::{Barrier, BarrierWaitResult};
pub use drain::{Drain, Draining, Worker};
pub use event::{Event, EventWait, Reset};
pub use gate::{Gate, Pass};
pub use latch::Latch;
pub use lock::{Lock, LockGuard};
pub use once::{Once, OnceCell};
pub use rwlock::{ReadGuard, RwLock, WriteGuard};
pub use semaphore::{Acquire, Permit, Semaphore};

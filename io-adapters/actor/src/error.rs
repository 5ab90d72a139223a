//! The errors a user of the runner can meet, each naming what it is about.

use crate::automaton::{ActorId, Refused};
use std::fmt;

/// A post the system did not accept; the message comes back in `msg`.
#[derive(thiserror::Error)]
#[error("post to {to} refused: {reason}")]
pub struct PostError<M> {
    /// The addressee.
    pub to: ActorId,
    /// Why the post was refused.
    pub reason: Refused,
    /// The message, returned to the caller.
    pub msg: M,
}

impl<M> fmt::Debug for PostError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostError")
            .field("to", &self.to)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

/// A system that could not be built as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// An inbox or outbox capacity outside `1..=INBOX_CAPACITY_MAX`.
    #[error("{what} capacity {capacity} is outside 1..={max} messages")]
    Capacity {
        /// Which queue: `"inbox of actor N"` or `"outbox"`.
        what: String,
        /// The capacity asked for.
        capacity: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A thread executor with no worker threads, or more than it can count.
    #[error("worker count {workers} is outside 1..={max}")]
    Workers {
        /// The number asked for.
        workers: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A real-time clock with a zero tick.
    #[error("the clock's tick must be longer than zero")]
    ZeroTick,
    /// More automata than addresses.
    #[error("more than {max} automata in one system")]
    TooManyActors {
        /// The largest number allowed.
        max: usize,
    },
    /// The operating system refused to start a worker thread.
    #[error("could not start worker thread {worker}: {message}")]
    Spawn {
        /// The worker's index.
        worker: usize,
        /// The operating system's reason.
        message: String,
    },
}

/// A drain that did not finish in time. The system keeps draining; call `drain` again to
/// wait longer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    /// Posts from outside were still waiting for inbox space when the time ran out.
    #[error("posts from outside were still in progress after {waited_ms} ms")]
    PostsInProgress {
        /// How long the drain waited, in milliseconds.
        waited_ms: u128,
    },
    /// Some workers still had work (for example, automata that keep posting to each other).
    #[error("{workers_running} worker(s) still running after {waited_ms} ms")]
    Timeout {
        /// How many workers had not finished.
        workers_running: u32,
        /// How long the drain waited, in milliseconds.
        waited_ms: u128,
    },
    /// The simulated system was still busy after this many passes at one tick.
    #[error("the simulated system was still busy after {passes} passes")]
    Busy {
        /// The passes made.
        passes: u64,
    },
}

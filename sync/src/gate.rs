//! `Gate`: threads wait while it is closed.

use crate::event::Flag;
use crate::wait::Deadline;
use crate::word::const_fn;
use std::fmt;
use std::time::{Duration, Instant};

/// A gate that threads pass when it is open and wait at while it is closed. It can be opened
/// and closed any number of times.
///
/// Opening releases every thread waiting at the gate; closing makes later arrivals wait. A
/// thread that was released by an `open` passes even if the gate is closed again before it
/// runs. The state is one `u32` (open, plus a waiter bit); passing an open gate is one atomic
/// load. Typical use: pausing the worker threads of an event loop while its configuration is
/// swapped, then letting them go.
///
/// ```
/// use rsm_sync::Gate;
/// use std::time::Duration;
///
/// let gate = Gate::new(false);
/// assert!(!gate.pass_timeout(Duration::from_millis(1)), "closed");
/// gate.open();
/// gate.pass(); // returns at once
/// gate.close();
/// assert!(!gate.is_open());
/// ```
pub struct Gate {
    flag: Flag,
}

impl Gate {
    const_fn! {
        /// A gate, open or closed.
        pub fn new(open: bool) -> Gate {
            Gate { flag: Flag::new(open) }
        }
    }

    /// Opens the gate, releasing every waiting thread.
    pub fn open(&self) {
        self.flag.set();
    }

    /// Closes the gate; threads arriving from now on wait.
    pub fn close(&self) {
        self.flag.reset();
    }

    /// Whether the gate is open right now.
    pub fn is_open(&self) -> bool {
        self.flag.is_set()
    }

    /// Passes the gate, sleeping while it is closed.
    #[inline]
    pub fn pass(&self) {
        self.flag.wait(Deadline::NEVER);
    }

    /// Passes the gate, waiting at most `timeout`; returns whether it passed.
    pub fn pass_timeout(&self, timeout: Duration) -> bool {
        self.flag.wait(Deadline::after(timeout))
    }

    /// Passes the gate, waiting until `deadline` at the latest; returns whether it passed.
    pub fn pass_until(&self, deadline: Instant) -> bool {
        self.flag.wait(Deadline::at(deadline))
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("open", &self.is_open())
            .finish()
    }
}

//! `Gate`: threads wait while it is closed.

use crate::event::{Flag, Raised};
use crate::wait::Deadline;
use crate::word::const_fn;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
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

    /// Passes the gate as a future, with no dependency on any runtime: it resolves once the
    /// gate is open, or was opened at least once since this call.
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
    /// use rsm_sync::Gate;
    ///
    /// let gate = Gate::new(false);
    /// let pass = gate.pass_async();
    /// gate.open();
    /// gate.close();
    /// block_on(pass); // the gate was opened after the future was made
    /// ```
    pub fn pass_async(&self) -> Pass<'_> {
        Pass {
            raised: self.flag.wait_async(),
        }
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

/// The future returned by [`Gate::pass_async`].
#[must_use = "a future does nothing unless polled"]
pub struct Pass<'a> {
    raised: Raised<'a>,
}

impl Future for Pass<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.raised).poll(cx)
    }
}

impl fmt::Debug for Pass<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pass").finish_non_exhaustive()
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("open", &self.is_open())
            .finish()
    }
}

//! A node loop on a thread of its own, with no async runtime: its fsyncs block only that
//! thread, and it ticks from a timer thread.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use rsm_core::{Queryable, Replica, Storage, Transport};

use crate::clock::Ticker;
use crate::runner::Stopped;

/// Run `future` to completion on this thread, parking the thread between wake-ups.
/// Never call it from async code.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        // A wake-up that came before the park leaves a token, so none is lost.
        thread::park();
    }
}

/// Ticks every `period` of the system's monotonic clock, from a timer thread that ends
/// within one period of the ticker being dropped. A tick the loop has not taken by the
/// next one is not doubled: a busy loop gets one late tick, never a burst.
#[derive(Debug)]
pub struct IntervalTicker {
    ticks: async_channel::Receiver<()>,
}

impl IntervalTicker {
    /// Start the timer thread. A zero period is refused (`InvalidInput`): it would spin.
    pub fn new(period: Duration) -> io::Result<Self> {
        if period.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the tick period must be positive",
            ));
        }
        // One tick waits at most: a tick that finds it full is dropped.
        let (tx, ticks) = async_channel::bounded(1);
        thread::Builder::new()
            .name("rsm-ticker".to_string())
            .spawn(move || {
                let mut next = Instant::now();
                loop {
                    // A period too long for the clock never ends: no tick is due.
                    let Some(due) = next.checked_add(period) else {
                        return;
                    };
                    thread::sleep(due.saturating_duration_since(Instant::now()));
                    if let Err(async_channel::TrySendError::Closed(())) = tx.try_send(()) {
                        return;
                    }
                    // Count the next period from now when the sleep overran: late, never
                    // early and never in a burst.
                    next = due.max(Instant::now());
                }
            })?;
        Ok(Self { ticks })
    }
}

impl Ticker for IntervalTicker {
    async fn next_tick(&mut self) {
        if self.ticks.recv().await.is_err() {
            // The timer thread ended (a period too long to count): no tick is ever due.
            std::future::pending::<()>().await;
        }
    }
}

/// A node loop running on its own thread; [`NodeThread::join`] returns the stopped node.
pub struct NodeThread<R: Replica, S: Storage, T: Transport, M: Queryable> {
    join: JoinHandle<Stopped<R, S, T, M>>,
}

impl<R: Replica, S: Storage, T: Transport, M: Queryable> fmt::Debug for NodeThread<R, S, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeThread")
            .field("thread", self.join.thread())
            .finish()
    }
}

impl<R: Replica, S: Storage, T: Transport, M: Queryable> NodeThread<R, S, T, M> {
    /// Wait for the loop to end (after `Shutdown::shutdown` or a fatal error) and take
    /// the stopped node. A panic on the node's thread is resumed on this one.
    pub fn join(self) -> Stopped<R, S, T, M> {
        match self.join.join() {
            Ok(stopped) => stopped,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// True once the loop has ended, so that `join` will not wait.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}

/// Run `future` on a new thread called `name`.
pub(crate) fn spawn<F>(name: String, future: F) -> io::Result<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    thread::Builder::new()
        .name(name)
        .spawn(move || block_on(future))
}

impl<R: Replica, S: Storage, T: Transport, M: Queryable> From<JoinHandle<Stopped<R, S, T, M>>>
    for NodeThread<R, S, T, M>
{
    fn from(join: JoinHandle<Stopped<R, S, T, M>>) -> Self {
        Self { join }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_waits_for_a_wake_from_another_thread() {
        let (tx, rx) = async_channel::bounded(1);
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            tx.send_blocking(7).unwrap();
        });
        assert_eq!(block_on(rx.recv()), Ok(7));
        sender.join().unwrap();
    }

    #[test]
    fn an_interval_ticks_and_refuses_a_zero_period() {
        let error = IntervalTicker::new(Duration::ZERO).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        let start = Instant::now();
        let mut ticker = IntervalTicker::new(Duration::from_millis(1)).unwrap();
        for _ in 0..3 {
            block_on(ticker.next_tick());
        }
        // A sleep never ends early, so three ticks take at least three periods.
        assert!(start.elapsed() >= Duration::from_millis(3));
    }

    #[test]
    fn a_busy_loop_gets_one_late_tick_not_a_burst() {
        let ticker = IntervalTicker::new(Duration::from_millis(1)).unwrap();
        thread::sleep(Duration::from_millis(20));
        assert_eq!(ticker.ticks.len(), 1);
    }
}

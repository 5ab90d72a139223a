//! Where the node loop's ticks come from: a real clock in production, a hand-driven one
//! in tests.

use std::future::Future;

/// A source of ticks for the node loop. Every protocol timeout is counted in ticks, so
/// the tick period sets the real length of election and heartbeat timeouts.
pub trait Ticker {
    /// Resolve at the next tick. Dropping the future before it resolves must lose no tick
    /// that a later call would have seen late (the loop polls it beside its queues).
    fn next_tick(&mut self) -> impl Future<Output = ()> + Send;
}

/// A clock that ticks only when a test says so, through its [`ManualClockHandle`].
#[derive(Debug)]
pub struct ManualClock {
    ticks: async_channel::Receiver<()>,
}

/// Advances a [`ManualClock`].
#[derive(Clone, Debug)]
pub struct ManualClockHandle {
    ticks: async_channel::Sender<()>,
}

impl ManualClock {
    /// A manual clock holding at most `ticks_queued_max` ticks the loop has not taken yet;
    /// `advance` waits while that many are queued.
    pub fn new(ticks_queued_max: usize) -> (ManualClock, ManualClockHandle) {
        let (tx, rx) = async_channel::bounded(ticks_queued_max.max(1));
        (ManualClock { ticks: rx }, ManualClockHandle { ticks: tx })
    }
}

impl ManualClockHandle {
    /// Queue `n` ticks, waiting for room when the loop is behind. Returns false if the
    /// clock was dropped (the loop has ended).
    pub async fn advance(&self, n: u64) -> bool {
        for _ in 0..n {
            if self.ticks.send(()).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Queue `n` ticks from synchronous code, blocking the thread while the loop is
    /// behind. Returns false if the clock was dropped. Never call it from async code.
    pub fn advance_blocking(&self, n: u64) -> bool {
        (0..n).all(|_| self.ticks.send_blocking(()).is_ok())
    }
}

impl Ticker for ManualClock {
    async fn next_tick(&mut self) {
        if self.ticks.recv().await.is_err() {
            // Every handle is gone: time has stopped for good.
            std::future::pending::<()>().await;
        }
    }
}

//! The tokio binding: ticks from `tokio::time::interval` and the loop spawned as a task.

use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};

use crate::clock::Ticker;
use crate::runner::Stopped;

/// Ticks every `period` of tokio's clock. A tick missed while the loop was busy is taken
/// late, never in a burst, so a stalled node does not fire many timeouts at once.
#[derive(Debug)]
pub struct TokioTicker {
    interval: Interval,
}

impl TokioTicker {
    /// A ticker with the given period. Must be called inside a tokio runtime with the time
    /// driver enabled.
    pub fn new(period: Duration) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { interval }
    }
}

impl Ticker for TokioTicker {
    async fn next_tick(&mut self) {
        self.interval.tick().await;
    }
}

/// The spawned loop; it resolves to the stopped node.
pub type NodeTask<R, S, T, M> = tokio::task::JoinHandle<Stopped<R, S, T, M>>;

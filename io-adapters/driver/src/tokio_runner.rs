//! The tokio binding: ticks from `tokio::time::interval` and the loop spawned as a task.

use std::time::Duration;

use rsm_core::{Replica, Storage, Transport};
use tokio::time::{Interval, MissedTickBehavior};

use crate::clock::Ticker;
use crate::node_core::NodeCore;
use crate::runner::{NodeHandles, NodeRunner, Stopped};
use rsm_core::Queryable;

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

/// Spawn the node loop around `core` on the current tokio runtime, ticking every
/// `tick_period`. The task ends with the stopped core when the node shuts down or fails.
pub fn spawn<R, S, T, M>(
    core: NodeCore<R, S, T, M>,
    tick_period: Duration,
) -> (NodeTask<R, S, T, M>, NodeHandles<M>)
where
    R: Replica + Send + 'static,
    R::Message: Send,
    S: Storage + Send + 'static,
    T: Transport + Send + 'static,
    M: Queryable + Send + 'static,
    M::Query: Send,
    M::Answer: Send,
    M::Response: Send,
{
    let (runner, handles) = NodeRunner::new(core);
    let task = tokio::spawn(async move { runner.run(TokioTicker::new(tick_period)).await });
    (task, handles)
}

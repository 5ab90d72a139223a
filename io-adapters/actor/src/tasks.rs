//! The tokio executor: each worker is a task that awaits the rsm-sync `Event` it would sleep
//! on as a thread, or tokio's timer for its next deadline.

use crate::clock::{Clock, ManualClock};
use crate::shared::Shared;
use crate::threads::Exited;
use crate::worker::{Turn, Worker};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Where a task's ticks come from: tokio's clock (so paused time works) or a manual clock.
#[derive(Clone)]
enum TaskTicks {
    Real { epoch: Instant, tick: Duration },
    Manual(ManualClock),
}

impl TaskTicks {
    fn now(&self) -> u64 {
        match self {
            TaskTicks::Real { epoch, tick } => {
                (epoch.elapsed().as_nanos() / tick.as_nanos()).min(u128::from(u64::MAX)) as u64
            }
            TaskTicks::Manual(manual) => manual.now(),
        }
    }

    fn instant_of(&self, deadline: Option<u64>) -> Option<Instant> {
        match (self, deadline) {
            (TaskTicks::Real { epoch, tick }, Some(deadline)) => tick
                .checked_mul(u32::try_from(deadline).unwrap_or(u32::MAX))
                .and_then(|offset| epoch.checked_add(offset)),
            _ => None,
        }
    }
}

/// Spawns one task per worker on `runtime`.
pub(crate) fn spawn<M: Send + 'static>(
    shared: &Arc<Shared<M>>,
    workers: Vec<Worker<M>>,
    clock: &Clock,
    runtime: &tokio::runtime::Handle,
) -> Vec<tokio::task::JoinHandle<()>> {
    let ticks = match clock {
        Clock::Real { tick } => TaskTicks::Real {
            // Read inside the runtime, so a runtime with paused time gives its own clock.
            epoch: {
                let _inside = runtime.enter();
                Instant::now()
            },
            tick: *tick,
        },
        Clock::Manual(manual) => TaskTicks::Manual(manual.clone()),
    };
    workers
        .into_iter()
        .map(|worker| {
            let shared = Arc::clone(shared);
            let ticks = ticks.clone();
            runtime.spawn(async move { run(&shared, worker, &ticks).await })
        })
        .collect()
}

async fn run<M: Send + 'static>(shared: &Shared<M>, mut worker: Worker<M>, ticks: &TaskTicks) {
    let _exited = Exited(shared);
    loop {
        match worker.turn(shared, || ticks.now()) {
            // A busy worker still lets the other tasks of its runtime thread run.
            Turn::Busy => tokio::task::yield_now().await,
            Turn::Sleep(deadline) => {
                let notify = &shared.notifies[worker.index];
                let woken = notify.event().wait_async();
                match ticks.instant_of(deadline) {
                    Some(at) => {
                        let _ = tokio::time::timeout_at(at, woken).await;
                    }
                    None => woken.await,
                }
                notify.unpark();
            }
            Turn::Finished => break,
        }
    }
    worker.finish(shared);
}

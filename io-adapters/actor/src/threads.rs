//! The thread executor: each worker is a plain thread that sleeps on an rsm-sync `Event`
//! when it has nothing to do.

use crate::clock::Ticks;
use crate::primitives::thread;
use crate::shared::Shared;
use crate::worker::{Turn, Worker};
use std::sync::Arc;

/// Starts one worker thread; the error is the operating system's reason.
pub(crate) fn spawn<M: Send + 'static>(
    shared: Arc<Shared<M>>,
    worker: Worker<M>,
    ticks: Ticks,
) -> Result<thread::JoinHandle<()>, String> {
    let body = move || run(&shared, worker, &ticks);
    #[cfg(not(loom))]
    return thread::Builder::new()
        .name("rsm-actor".to_owned())
        .spawn(body)
        .map_err(|e| e.to_string());
    #[cfg(loom)]
    return Ok(thread::spawn(body));
}

/// Counts its worker out of the system when dropped, even by a panic in the runner itself.
pub(crate) struct Exited<'a, M>(pub(crate) &'a Shared<M>);

impl<M> Drop for Exited<'_, M> {
    fn drop(&mut self) {
        self.0.exited.count_down();
    }
}

fn run<M: Send + 'static>(shared: &Shared<M>, mut worker: Worker<M>, ticks: &Ticks) {
    let _exited = Exited(shared);
    loop {
        match worker.turn(shared, || ticks.now()) {
            Turn::Busy => {}
            Turn::Sleep(deadline) => shared.notifies[worker.index].park(ticks.sleep_for(deadline)),
            Turn::Finished => break,
        }
    }
    worker.finish(shared);
}

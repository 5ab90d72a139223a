//! The deterministic executor: every automaton on one worker, driven by the caller on a
//! simulated clock. The same calls give the same inputs in the same order, every run.

use crate::automaton::{ActorId, Exit, Lifecycle};
use crate::error::{DrainError, PostError};
use crate::inbox::Wait;
use crate::shared::Shared;
use crate::system::Report;
use crate::worker::Worker;
use std::fmt;
use std::sync::Arc;

/// The most passes [`Sim::run`] makes before it reports the system still busy (automata
/// that keep posting to each other never go idle).
pub const SIM_PASSES_MAX: u64 = 1_000_000;

/// A system on the simulated clock (see [`Builder::simulate`](crate::Builder::simulate)).
/// Nothing happens between calls: [`run`](Sim::run) delivers everything deliverable at the
/// current tick, [`advance`](Sim::advance) moves the clock and fires due timers.
pub struct Sim<M> {
    shared: Arc<Shared<M>>,
    worker: Worker<M>,
    now: u64,
}

impl<M: Send + 'static> Sim<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>, worker: Worker<M>) -> Sim<M> {
        Sim {
            shared,
            worker,
            now: 0,
        }
    }

    /// The current tick.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Posts `msg` to `to` from outside; a full inbox refuses (nothing would empty it while
    /// the caller waits). Delivered by the next [`run`](Sim::run).
    pub fn post(&mut self, to: ActorId, msg: M) -> Result<(), PostError<M>> {
        self.shared.post_external(to, msg, Wait::No)
    }

    /// Delivers inputs until none is left at the current tick; returns false if the system
    /// was still busy after [`SIM_PASSES_MAX`] passes.
    pub fn run(&mut self) -> bool {
        for _ in 0..SIM_PASSES_MAX {
            let progress = self.worker.run_once(&self.shared, self.now);
            if !progress || self.worker.is_finished(&self.shared) {
                return true;
            }
        }
        false
    }

    /// Moves the clock `ticks` ahead, stopping at every tick where a timer is due to run
    /// the system there; returns false if it was busy at some tick (see [`run`](Sim::run)).
    pub fn advance(&mut self, ticks: u64) -> bool {
        let target = self.now.saturating_add(ticks);
        let mut idle = self.run();
        while self.now < target {
            self.now = match self.worker.next_deadline() {
                Some(at) if at > self.now && at < target => at,
                _ => target,
            };
            idle &= self.run();
        }
        idle
    }

    /// Takes the oldest output, if any.
    pub fn recv(&mut self) -> Option<M> {
        // SAFETY: `&mut self`, and a simulation's outbox is read only here.
        unsafe { self.shared.take_output() }
    }

    /// Every output so far, oldest first.
    pub fn outputs(&mut self) -> Vec<M> {
        std::iter::from_fn(|| self.recv()).collect()
    }

    /// The phase of `to`'s life, or `None` if no automaton has that address.
    pub fn lifecycle(&self, to: ActorId) -> Option<Lifecycle> {
        self.shared.lifecycle(to)
    }

    /// Why `to` stopped, once it has.
    pub fn exit(&self, to: ActorId) -> Option<Exit> {
        self.shared.exit(to)
    }

    /// Drains the system at the current tick (see [`System::drain`](crate::System::drain)).
    pub fn drain(&mut self) -> Result<Report, DrainError> {
        self.shared.begin_drain(std::time::Duration::ZERO);
        if !self.run() || !self.worker.is_finished(&self.shared) {
            return Err(DrainError::Busy {
                passes: SIM_PASSES_MAX,
            });
        }
        self.worker.finish(&self.shared);
        Ok(Report::collect(&self.shared))
    }
}

impl<M> fmt::Debug for Sim<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("actors", &self.shared.actors.len())
            .finish_non_exhaustive()
    }
}

//! The worker: hosts a set of automata, hands them their inputs one at a time and executes
//! their effects. It is the only place the runner's rules live; the executors (threads,
//! tokio, the simulated clock) differ only in how they wait and where the time comes from.
//!
//! One pass ([`Worker::run_once`]) delivers, in this order: the `Start` of every automaton
//! (first pass only), the `Drain` notices (once the system drains), the timers due at `now`,
//! the `Undelivered` inputs left from a previous pass, and up to `batch_max` queued messages
//! per automaton, automata in spawn order. The order within a pass is fixed, so one worker
//! driven by one clock is deterministic.

use crate::automaton::{ActorId, Automaton, Effect, Exit, Input, Lifecycle, TimerId};
use crate::shared::{Envelope, Shared};
use crate::wheel::{TimerKey, Wheel};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// An automaton as its worker holds it.
struct Hosted<M> {
    id: ActorId,
    automaton: Box<dyn Automaton<Message = M>>,
    stopped: bool,
    /// `Undelivered` inputs waiting for the next pass (refusals met while handling one).
    bounced: Vec<Input<M>>,
}

/// What an executor does after a [`Worker::turn`].
pub(crate) enum Turn {
    /// Take another turn (an async executor first lets its other tasks run).
    Busy,
    /// Sleep on the worker's `Notify` until woken, or until the tick given.
    Sleep(Option<u64>),
    /// The drain is over: call [`Worker::finish`] and exit.
    Finished,
}

/// A worker's private state (see the module comment).
pub(crate) struct Worker<M> {
    pub(crate) index: usize,
    hosted: Vec<Hosted<M>>,
    wheel: Wheel,
    effects: Vec<Effect<M>>,
    due: Vec<TimerKey>,
    /// The workers this step posted to, to wake once it is done (`to_wake` marks them).
    waking: Vec<usize>,
    to_wake: Vec<bool>,
    started: bool,
    drain_noticed: bool,
    batch_max: u32,
}

impl<M: Send + 'static> Worker<M> {
    pub(crate) fn new(index: usize, workers: usize, batch_max: u32) -> Worker<M> {
        Worker {
            index,
            hosted: Vec::new(),
            wheel: Wheel::new(),
            effects: Vec::new(),
            due: Vec::new(),
            waking: Vec::new(),
            to_wake: vec![false; workers],
            started: false,
            drain_noticed: false,
            batch_max: batch_max.max(1),
        }
    }

    pub(crate) fn host(&mut self, id: ActorId, automaton: Box<dyn Automaton<Message = M>>) {
        self.hosted.push(Hosted {
            id,
            automaton,
            stopped: false,
            bounced: Vec::new(),
        });
    }

    /// One pass over everything this worker hosts at tick `now`; returns whether it
    /// delivered anything.
    pub(crate) fn run_once(&mut self, shared: &Shared<M>, now: u64) -> bool {
        let mut progress = false;
        if !self.started {
            self.started = true;
            for local in 0..self.hosted.len() {
                shared.actors[self.hosted[local].id.0 as usize].set_lifecycle(Lifecycle::Running);
                self.deliver(shared, local, Input::Start, now);
            }
            shared.finish(self.hosted.len() as u64);
            progress = true;
        }
        if !self.drain_noticed && shared.drain_started() {
            self.drain_noticed = true;
            for local in 0..self.hosted.len() {
                if !self.hosted[local].stopped {
                    shared.actors[self.hosted[local].id.0 as usize]
                        .set_lifecycle(Lifecycle::Draining);
                    self.wheel.cancel_owner(local as u32);
                    self.deliver(shared, local, Input::Drain, now);
                }
            }
            shared.finish(self.hosted.len() as u64);
            progress = true;
        }
        if !self.drain_noticed {
            let mut due = std::mem::take(&mut self.due);
            self.wheel.expire(now, &mut due);
            progress |= !due.is_empty();
            for &(local, timer) in &due {
                self.deliver(shared, local as usize, Input::Timer(timer), now);
            }
            due.clear();
            self.due = due;
        }
        for local in 0..self.hosted.len() {
            progress |= self.deliver_bounced(shared, local, now);
            progress |= self.deliver_messages(shared, local, now);
        }
        progress
    }

    /// One turn of an executor's loop: a pass, then, if it found nothing to do, the
    /// announcement that the worker sleeps and one more look for work (`now` is read
    /// afresh for it). The executor does what the answer says.
    pub(crate) fn turn(&mut self, shared: &Shared<M>, now: impl Fn() -> u64) -> Turn {
        let progress = self.run_once(shared, now());
        if self.is_finished(shared) {
            return Turn::Finished;
        }
        if progress {
            return Turn::Busy;
        }
        let notify = &shared.notifies[self.index];
        notify.prepare_park();
        if self.has_work(shared, now()) {
            notify.unpark();
            return Turn::Busy;
        }
        Turn::Sleep(self.next_deadline())
    }

    /// Whether a pass at tick `now` would find something to do. Called after the worker has
    /// announced that it is about to sleep.
    fn has_work(&self, shared: &Shared<M>, now: u64) -> bool {
        !self.started
            || (!self.drain_noticed && shared.drain_started())
            || self.is_finished(shared)
            || self.next_deadline().is_some_and(|at| at <= now)
            || self.hosted.iter().any(|h| {
                !h.bounced.is_empty() || shared.actors[h.id.0 as usize].inbox.has_message()
            })
    }

    /// The tick at which a timer may next fire, if any may.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.drain_noticed {
            None
        } else {
            self.wheel.next_deadline()
        }
    }

    /// Whether the drain is over for this worker: nothing is in flight anywhere.
    pub(crate) fn is_finished(&self, shared: &Shared<M>) -> bool {
        self.drain_noticed && shared.is_quiet()
    }

    /// Marks every automaton still running as drained; the worker is done.
    pub(crate) fn finish(&mut self, shared: &Shared<M>) {
        for hosted in &mut self.hosted {
            if !hosted.stopped {
                hosted.stopped = true;
                shared.actors[hosted.id.0 as usize].stop(Exit::Drained);
            }
        }
    }

    fn deliver_messages(&mut self, shared: &Shared<M>, local: usize, now: u64) -> bool {
        let slot = &shared.actors[self.hosted[local].id.0 as usize];
        let mut taken = 0;
        while taken < self.batch_max {
            // SAFETY: this worker is the only one that takes from the inboxes it hosts.
            let Some(Envelope { from, msg }) = (unsafe { slot.inbox.pop() }) else {
                break;
            };
            taken += 1;
            self.deliver(shared, local, Input::Message { from, msg }, now);
        }
        if taken == 0 {
            return false;
        }
        slot.inbox.release(taken);
        shared.finish(u64::from(taken));
        true
    }

    fn deliver_bounced(&mut self, shared: &Shared<M>, local: usize, now: u64) -> bool {
        let bounced = std::mem::take(&mut self.hosted[local].bounced);
        if bounced.is_empty() {
            return false;
        }
        let count = bounced.len() as u64;
        for input in bounced {
            self.step(shared, local, input, now);
        }
        shared.finish(count);
        true
    }

    /// Steps one input, then hands back right away what that step's effects had refused.
    /// Refusals met while handling those wait for the next pass, so an automaton that retries
    /// at once cannot keep its worker from the others.
    fn deliver(&mut self, shared: &Shared<M>, local: usize, input: Input<M>, now: u64) {
        self.step(shared, local, input, now);
        self.deliver_bounced(shared, local, now);
    }

    fn step(&mut self, shared: &Shared<M>, local: usize, input: Input<M>, now: u64) {
        let hosted = &mut self.hosted[local];
        if hosted.stopped {
            return;
        }
        let mut effects = std::mem::take(&mut self.effects);
        debug_assert!(effects.is_empty());
        let automaton = &mut hosted.automaton;
        // A panic leaves the automaton in an unknown state: it is stopped and never stepped
        // again, which is why asserting unwind safety is sound here.
        let stepped = catch_unwind(AssertUnwindSafe(|| automaton.step(input, &mut effects)));
        if let Err(panic) = stepped {
            effects.clear();
            self.effects = effects;
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a non-string payload".to_owned());
            self.stop(shared, local, Exit::Panicked { message });
            return;
        }
        for effect in effects.drain(..) {
            if !self.execute(shared, local, effect, now) {
                break;
            }
        }
        // Effects after a Stop are dropped with the rest of the drain.
        effects.clear();
        self.effects = effects;
        // One wake per worker posted to, after all of the step's posts are published.
        for worker in self.waking.drain(..) {
            self.to_wake[worker] = false;
            shared.notifies[worker].wake();
        }
    }

    /// Executes one effect; returns false when the automaton stopped.
    fn execute(&mut self, shared: &Shared<M>, local: usize, effect: Effect<M>, now: u64) -> bool {
        let id = self.hosted[local].id;
        match effect {
            Effect::Post { to, msg } => match shared.post_internal(id, to, msg) {
                Ok(worker) => {
                    if !self.to_wake[worker] {
                        self.to_wake[worker] = true;
                        self.waking.push(worker);
                    }
                }
                Err((reason, msg)) => self.bounce(shared, local, Some(to), msg, reason),
            },
            Effect::Output(msg) => {
                if let Err((reason, msg)) = shared.output(msg) {
                    self.bounce(shared, local, None, msg, reason);
                }
            }
            Effect::Schedule { timer, after_ticks } => {
                // A draining system fires no timers, so none are kept.
                if !self.drain_noticed {
                    // Zero counts as one: a timer never fires in the tick that set it.
                    self.wheel
                        .schedule(key(local, timer), now.saturating_add(after_ticks.max(1)));
                }
            }
            Effect::Cancel(timer) => {
                self.wheel.cancel(key(local, timer));
            }
            Effect::Stop => {
                self.stop(shared, local, Exit::Stopped);
                return false;
            }
        }
        true
    }

    fn bounce(
        &mut self,
        shared: &Shared<M>,
        local: usize,
        to: Option<ActorId>,
        msg: M,
        reason: crate::automaton::Refused,
    ) {
        shared.add_in_flight(1);
        self.hosted[local]
            .bounced
            .push(Input::Undelivered { to, msg, reason });
    }

    fn stop(&mut self, shared: &Shared<M>, local: usize, exit: Exit) {
        let hosted = &mut self.hosted[local];
        hosted.stopped = true;
        let dropped = hosted.bounced.len() as u64;
        hosted.bounced.clear();
        shared.finish(dropped);
        self.wheel.cancel_owner(local as u32);
        shared.actors[hosted.id.0 as usize].stop(exit);
    }
}

fn key(local: usize, timer: TimerId) -> TimerKey {
    (local as u32, timer)
}

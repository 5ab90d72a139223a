//! What every worker and every poster of one system share: the inboxes, the outbox, the
//! admission of posts from outside, and the count of work in flight that tells a drain when
//! it is over.
//!
//! A drain must finish every message accepted before it began, and every message those
//! produce, and then stop. `in_flight` counts the inputs that may still cause posts: messages
//! accepted but not yet handled, `Undelivered` inputs not yet handed back, and the `Start`
//! and `Drain` notices each worker still has to deliver. A worker subtracts only after the
//! step an input caused has posted everything it posts (each post adds first), so once the
//! system is draining, zero means no input is left anywhere and none can appear.
//!
//! Posts from outside enter through an rsm-sync [`Drain`]: each holds a registration while it
//! adds to `in_flight` and publishes. The coordinator's `Drain::drain` refuses new ones and
//! waits for those in progress, so every message accepted from outside is counted before the
//! workers can see the count reach zero.

use crate::automaton::{ActorId, Exit, Lifecycle, Refused};
use crate::error::PostError;
use crate::inbox::{Inbox, Notify, Wait};
use crate::primitives::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use rsm_sync::{Drain, Latch, Lock};
use std::sync::Arc;
use std::time::Duration;

/// A message in an inbox, with its sender.
pub(crate) struct Envelope<M> {
    pub(crate) from: Option<ActorId>,
    pub(crate) msg: M,
}

/// One automaton's place in the system, seen by everyone.
pub(crate) struct ActorSlot<M> {
    pub(crate) inbox: Inbox<Envelope<M>>,
    /// The worker that takes from the inbox.
    pub(crate) worker: usize,
    lifecycle: AtomicU8,
    exit: Lock<Option<Exit>>,
}

impl<M> ActorSlot<M> {
    pub(crate) fn new(capacity: usize, worker: usize) -> ActorSlot<M> {
        ActorSlot {
            inbox: Inbox::new(capacity),
            worker,
            lifecycle: AtomicU8::new(Lifecycle::Starting as u8),
            exit: Lock::new(None),
        }
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        match self.lifecycle.load(Ordering::Acquire) {
            0 => Lifecycle::Starting,
            1 => Lifecycle::Running,
            2 => Lifecycle::Draining,
            _ => Lifecycle::Stopped,
        }
    }

    pub(crate) fn set_lifecycle(&self, phase: Lifecycle) {
        self.lifecycle.store(phase as u8, Ordering::Release);
    }

    pub(crate) fn exit(&self) -> Option<Exit> {
        self.exit.lock().clone()
    }

    /// Records why the automaton stopped (the first reason wins) and closes its inbox.
    pub(crate) fn stop(&self, exit: Exit) {
        let drained = exit == Exit::Drained;
        {
            let mut slot = self.exit.lock();
            if slot.is_none() {
                *slot = Some(exit);
            }
        }
        self.set_lifecycle(Lifecycle::Stopped);
        self.inbox.close(drained);
    }
}

/// The state shared by a system's workers, its handle and its posters.
pub(crate) struct Shared<M> {
    pub(crate) actors: Box<[ActorSlot<M>]>,
    /// One per worker: how posters wake it.
    pub(crate) notifies: Box<[Arc<Notify>]>,
    pub(crate) outbox: Inbox<M>,
    pub(crate) outbox_notify: Notify,
    in_flight: AtomicU64,
    /// Admission of posts from outside (see the module comment).
    admission: Drain,
    /// Set by the one coordinator that tells the workers.
    drain_begun: AtomicBool,
    /// Set once the workers' Drain notices are counted in `in_flight`.
    drain_started: AtomicBool,
    /// Counted down by each worker as it finishes.
    pub(crate) exited: Latch,
}

impl<M> Shared<M> {
    pub(crate) fn new(
        actors: Box<[ActorSlot<M>]>,
        workers: usize,
        outbox_capacity: usize,
    ) -> Shared<M> {
        let starts = actors.len() as u64;
        Shared {
            actors,
            notifies: (0..workers).map(|_| Arc::new(Notify::new())).collect(),
            outbox: Inbox::new(outbox_capacity),
            outbox_notify: Notify::new(),
            // Every automaton's Start is pending.
            in_flight: AtomicU64::new(starts),
            admission: Drain::new(),
            drain_begun: AtomicBool::new(false),
            drain_started: AtomicBool::new(false),
            exited: Latch::new(u32::try_from(workers).expect("fewer than 2^31 workers")),
        }
    }

    fn slot(&self, to: ActorId) -> Option<&ActorSlot<M>> {
        self.actors.get(to.0 as usize)
    }

    /// The phase of `to`'s life, or `None` if no automaton has that address.
    pub(crate) fn lifecycle(&self, to: ActorId) -> Option<Lifecycle> {
        self.slot(to).map(ActorSlot::lifecycle)
    }

    /// Why `to` stopped, once it has.
    pub(crate) fn exit(&self, to: ActorId) -> Option<Exit> {
        self.slot(to).and_then(ActorSlot::exit)
    }

    /// Admits a post from outside: the addressee's slot and the registration that keeps a
    /// drain from beginning until the post is published or refused.
    fn admit(&self, to: ActorId) -> Result<(&ActorSlot<M>, rsm_sync::Worker<'_>), Refused> {
        let slot = self.slot(to).ok_or(Refused::Unknown)?;
        let admitted = self.admission.register().map_err(|_| Refused::Draining)?;
        Ok((slot, admitted))
    }

    /// A post from outside the system, waiting for space as `wait` allows.
    pub(crate) fn post_external(
        &self,
        to: ActorId,
        msg: M,
        wait: Wait,
    ) -> Result<(), PostError<M>> {
        let (slot, admitted) = match self.admit(to) {
            Ok(admitted) => admitted,
            Err(reason) => return Err(PostError { to, reason, msg }),
        };
        let reserved = slot.inbox.reserve(wait);
        self.complete_external(to, slot, admitted, reserved, msg)
    }

    /// [`post_external`](Self::post_external) as a future that waits for space.
    pub(crate) async fn post_external_async(
        &self,
        to: ActorId,
        msg: M,
    ) -> Result<(), PostError<M>> {
        let (slot, admitted) = match self.admit(to) {
            Ok(admitted) => admitted,
            Err(reason) => return Err(PostError { to, reason, msg }),
        };
        let reserved = slot.inbox.reserve_async().await;
        self.complete_external(to, slot, admitted, reserved, msg)
    }

    /// Publishes an admitted post that got its place, or returns the message; the admission
    /// ends (is dropped) only after that.
    fn complete_external(
        &self,
        to: ActorId,
        slot: &ActorSlot<M>,
        _admitted: rsm_sync::Worker<'_>,
        reserved: Result<(), Refused>,
        msg: M,
    ) -> Result<(), PostError<M>> {
        match reserved {
            Ok(()) => {
                self.publish(slot, None, msg);
                Ok(())
            }
            Err(reason) => Err(PostError { to, reason, msg }),
        }
    }

    /// A post by an automaton (from a worker, inside a step that is itself counted in
    /// flight): never waits, and is accepted while draining. Returns the worker to wake,
    /// which the caller does once per step rather than once per message.
    pub(crate) fn post_internal(
        &self,
        from: ActorId,
        to: ActorId,
        msg: M,
    ) -> Result<usize, (Refused, M)> {
        let Some(slot) = self.slot(to) else {
            return Err((Refused::Unknown, msg));
        };
        if let Err(reason) = slot.inbox.reserve(Wait::No) {
            return Err((reason, msg));
        }
        self.enqueue(slot, Some(from), msg);
        Ok(slot.worker)
    }

    fn publish(&self, slot: &ActorSlot<M>, from: Option<ActorId>, msg: M) {
        self.enqueue(slot, from, msg);
        self.notifies[slot.worker].wake();
    }

    fn enqueue(&self, slot: &ActorSlot<M>, from: Option<ActorId>, msg: M) {
        // Counted before it can be taken, so the count never reads zero while it waits.
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        slot.inbox.push(Envelope { from, msg });
    }

    /// An `Output` effect: into the outbox, never waiting.
    pub(crate) fn output(&self, msg: M) -> Result<(), (Refused, M)> {
        if let Err(reason) = self.outbox.reserve(Wait::No) {
            return Err((reason, msg));
        }
        self.outbox.push(msg);
        self.outbox_notify.wake();
        Ok(())
    }

    /// Takes the oldest output.
    ///
    /// # Safety
    /// Only one thread may take outputs at a time.
    pub(crate) unsafe fn take_output(&self) -> Option<M> {
        // SAFETY: the caller is the only consumer of the outbox.
        let msg = unsafe { self.outbox.pop() }?;
        self.outbox.release(1);
        Some(msg)
    }

    /// Counts `count` more inputs in flight (an `Undelivered` about to be handed back).
    pub(crate) fn add_in_flight(&self, count: u64) {
        self.in_flight.fetch_add(count, Ordering::Relaxed);
    }

    /// `count` inputs have been handled, with everything they posted already counted. The
    /// worker whose subtraction ends a drain wakes the others.
    pub(crate) fn finish(&self, count: u64) {
        if count == 0 {
            return;
        }
        let before = self.in_flight.fetch_sub(count, Ordering::AcqRel);
        debug_assert!(before >= count, "in_flight went below zero");
        if before == count && self.drain_started.load(Ordering::Acquire) {
            self.wake_workers();
        }
    }

    /// Whether nothing is in flight (meaningful once the drain has started).
    pub(crate) fn is_quiet(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    pub(crate) fn drain_started(&self) -> bool {
        self.drain_started.load(Ordering::Acquire)
    }

    /// Begins a drain: refuses posts from outside, waits (at most `timeout`) for those in
    /// progress, then tells every worker. Returns false, and tells no worker yet, if posts in
    /// progress outlasted the timeout; a later call tries again.
    pub(crate) fn begin_drain(&self, timeout: Duration) -> bool {
        if self.drain_started.load(Ordering::Acquire) {
            return true;
        }
        if !self.admission.drain_timeout(timeout) {
            return false;
        }
        if self
            .drain_begun
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // Each worker subtracts its automata's Drain notices once it has delivered them.
            self.in_flight
                .fetch_add(self.actors.len() as u64, Ordering::AcqRel);
            self.drain_started.store(true, Ordering::Release);
            self.wake_workers();
        }
        true
    }

    pub(crate) fn wake_workers(&self) {
        for notify in self.notifies.iter() {
            notify.wake_always();
        }
    }

    /// A worker that will never run (its thread could not start), once the drain has begun:
    /// its automata stop as drained and their Start and Drain notices are counted out, so
    /// the other workers can finish.
    pub(crate) fn abandon_worker(&self, worker: usize) {
        debug_assert!(self.drain_started());
        let mut notices = 0;
        for slot in self.actors.iter().filter(|slot| slot.worker == worker) {
            slot.stop(Exit::Drained);
            notices += 2;
        }
        self.finish(notices);
        self.exited.count_down();
    }

    pub(crate) fn is_closed_to_outside(&self) -> bool {
        self.admission.is_draining()
    }
}

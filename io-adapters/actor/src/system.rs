//! Building a system of automata and holding it while it runs: posting in, reading outputs,
//! watching lifecycles, draining.

use crate::automaton::{ActorId, Automaton, Exit, Lifecycle};
use crate::clock::{Clock, Ticks};
use crate::error::{BuildError, DrainError, PostError};
use crate::inbox::{INBOX_CAPACITY_MAX, Wait};
use crate::shared::{ActorSlot, Shared};
use crate::worker::Worker;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most worker threads (or tasks) one system may have.
pub const WORKERS_MAX: usize = 1024;
/// The most automata one system may host.
pub const ACTORS_MAX: usize = 1 << 20;

/// A system's shared state and its workers, before an executor runs them.
type Assembled<M> = (Arc<Shared<M>>, Vec<Worker<M>>);

/// Collects the automata of a system, then starts it on an executor: threads
/// ([`start_threads`](Builder::start_threads)), tokio tasks (`start_tokio`, behind the
/// `tokio` feature) or the simulated clock ([`simulate`](Builder::simulate)). The same
/// automata run unchanged on each.
pub struct Builder<M> {
    actors: Vec<(Box<dyn Automaton<Message = M>>, usize)>,
    outbox_capacity: usize,
    batch_max: u32,
}

impl<M: Send + 'static> Builder<M> {
    /// An empty system: outbox of 1024 messages, batches of up to 64 messages per automaton.
    pub fn new() -> Builder<M> {
        Builder {
            actors: Vec::new(),
            outbox_capacity: 1024,
            batch_max: 64,
        }
    }

    /// Adds an automaton with an inbox of `inbox_capacity` messages; returns its address.
    pub fn spawn<A: Automaton<Message = M>>(
        &mut self,
        automaton: A,
        inbox_capacity: usize,
    ) -> Result<ActorId, BuildError> {
        if self.actors.len() >= ACTORS_MAX {
            return Err(BuildError::TooManyActors { max: ACTORS_MAX });
        }
        let id = ActorId(self.actors.len() as u32);
        check_capacity(|| format!("inbox of {id}"), inbox_capacity)?;
        self.actors.push((Box::new(automaton), inbox_capacity));
        Ok(id)
    }

    /// The capacity of the outbox that `Output` effects fill and `recv` empties.
    pub fn outbox_capacity(&mut self, capacity: usize) -> Result<&mut Self, BuildError> {
        check_capacity(|| "outbox".to_owned(), capacity)?;
        self.outbox_capacity = capacity;
        Ok(self)
    }

    /// The most messages a worker takes from one inbox before visiting the next (at least
    /// 1). Larger batches cost fewer wake-ups; smaller ones share a worker more evenly.
    pub fn batch_max(&mut self, messages: u32) -> &mut Self {
        self.batch_max = messages.max(1);
        self
    }

    /// The shared state and the workers, automaton `i` on worker `i % workers`.
    fn assemble(self, workers: usize) -> Assembled<M> {
        let slots = self
            .actors
            .iter()
            .enumerate()
            .map(|(i, (_, capacity))| ActorSlot::new(*capacity, i % workers))
            .collect();
        let shared = Arc::new(Shared::new(slots, workers, self.outbox_capacity));
        let mut hosts: Vec<Worker<M>> = (0..workers)
            .map(|w| Worker::new(w, workers, self.batch_max))
            .collect();
        for (i, (automaton, _)) in self.actors.into_iter().enumerate() {
            hosts[i % workers].host(ActorId(i as u32), automaton);
        }
        (shared, hosts)
    }

    /// Checks the executor's settings, then assembles the system and lets a manual clock
    /// wake its workers.
    fn prepare(self, workers: usize, clock: &Clock) -> Result<Assembled<M>, BuildError> {
        if !(1..=WORKERS_MAX).contains(&workers) {
            return Err(BuildError::Workers {
                workers,
                max: WORKERS_MAX,
            });
        }
        if let Clock::Real { tick } = clock
            && tick.is_zero()
        {
            return Err(BuildError::ZeroTick);
        }
        let (shared, hosts) = self.assemble(workers);
        if let Clock::Manual(manual) = clock {
            for notify in shared.notifies.iter() {
                manual.listen(Arc::clone(notify));
            }
        }
        Ok((shared, hosts))
    }

    /// Starts the system on `workers` threads (automaton `i` runs on thread
    /// `i % workers`), with ticks from `clock`.
    pub fn start_threads(self, workers: usize, clock: Clock) -> Result<System<M>, BuildError> {
        let (shared, hosts) = self.prepare(workers, &clock)?;
        let ticks = Ticks::start(&clock);
        let mut threads = Vec::with_capacity(workers);
        for worker in hosts {
            let index = worker.index;
            if let Err(message) = crate::threads::spawn(Arc::clone(&shared), worker, ticks.clone())
                .map(|handle| threads.push(handle))
            {
                // Nobody can post yet, so the drain begins at once; the threads already
                // started finish it, the others are counted out.
                shared.begin_drain(Duration::ZERO);
                (index..workers).for_each(|w| shared.abandon_worker(w));
                return Err(BuildError::Spawn {
                    worker: index,
                    message,
                });
            }
        }
        Ok(System {
            poster: Poster { shared },
            executor: Executor::Threads(threads),
        })
    }

    /// Starts the system as `workers` tokio tasks on `runtime` (automaton `i` on task
    /// `i % workers`). A [`Clock::Real`] counts ticks on tokio's clock, so a runtime with
    /// paused time runs it in virtual time.
    #[cfg(feature = "tokio")]
    pub fn start_tokio(
        self,
        workers: usize,
        clock: Clock,
        runtime: &tokio::runtime::Handle,
    ) -> Result<System<M>, BuildError> {
        let (shared, hosts) = self.prepare(workers, &clock)?;
        let tasks = crate::tasks::spawn(&shared, hosts, &clock, runtime);
        Ok(System {
            poster: Poster { shared },
            executor: Executor::Tokio(tasks),
        })
    }

    /// The system on the simulated clock: one worker, driven by the caller, deterministic.
    pub fn simulate(self) -> crate::sim::Sim<M> {
        let (shared, mut hosts) = self.assemble(1);
        crate::sim::Sim::new(shared, hosts.remove(0))
    }
}

impl<M: Send + 'static> Default for Builder<M> {
    fn default() -> Self {
        Builder::new()
    }
}

impl<M> fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("actors", &self.actors.len())
            .field("outbox_capacity", &self.outbox_capacity)
            .field("batch_max", &self.batch_max)
            .finish()
    }
}

fn check_capacity(what: impl FnOnce() -> String, capacity: usize) -> Result<(), BuildError> {
    if (1..=INBOX_CAPACITY_MAX).contains(&capacity) {
        Ok(())
    } else {
        Err(BuildError::Capacity {
            what: what(),
            capacity,
            max: INBOX_CAPACITY_MAX,
        })
    }
}

/// Posts messages into a running system from any thread or task; cheap to clone.
pub struct Poster<M> {
    pub(crate) shared: Arc<Shared<M>>,
}

impl<M: Send + 'static> Poster<M> {
    /// Posts `msg` to `to` if its inbox has room now; a full inbox refuses
    /// ([`Refused::Full`](crate::Refused::Full)) and the message comes back in the error.
    pub fn try_post(&self, to: ActorId, msg: M) -> Result<(), PostError<M>> {
        self.shared.post_external(to, msg, Wait::No)
    }

    /// Posts `msg` to `to`, sleeping while its inbox is full.
    pub fn post(&self, to: ActorId, msg: M) -> Result<(), PostError<M>> {
        self.shared.post_external(to, msg, Wait::Forever)
    }

    /// Posts `msg` to `to`, sleeping at most `timeout` while its inbox is full.
    pub fn post_timeout(&self, to: ActorId, msg: M, timeout: Duration) -> Result<(), PostError<M>> {
        let wait = Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until);
        self.shared.post_external(to, msg, wait)
    }

    /// Posts `msg` to `to`, as a future that waits (under any executor) while its inbox is
    /// full.
    pub async fn post_async(&self, to: ActorId, msg: M) -> Result<(), PostError<M>> {
        self.shared.post_external_async(to, msg).await
    }

    /// The phase of `to`'s life, or `None` if no automaton has that address.
    pub fn lifecycle(&self, to: ActorId) -> Option<Lifecycle> {
        self.shared.lifecycle(to)
    }

    /// Why `to` stopped, once it has.
    pub fn exit(&self, to: ActorId) -> Option<Exit> {
        self.shared.exit(to)
    }

    /// How many automata the system hosts.
    pub fn actors(&self) -> usize {
        self.shared.actors.len()
    }

    /// Whether the system has begun to drain (posts from outside are refused).
    pub fn is_draining(&self) -> bool {
        self.shared.is_closed_to_outside()
    }
}

impl<M> Clone for Poster<M> {
    fn clone(&self) -> Self {
        Poster {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M> fmt::Debug for Poster<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poster")
            .field("actors", &self.shared.actors.len())
            .finish_non_exhaustive()
    }
}

/// How every automaton of a drained system ended, in address order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Each automaton's address and exit.
    pub exits: Vec<(ActorId, Exit)>,
}

impl Report {
    pub(crate) fn collect<M>(shared: &Shared<M>) -> Report {
        Report {
            exits: shared
                .actors
                .iter()
                .enumerate()
                .map(|(i, slot)| (ActorId(i as u32), slot.exit().unwrap_or(Exit::Drained)))
                .collect(),
        }
    }
}

enum Executor {
    Threads(Vec<crate::primitives::thread::JoinHandle<()>>),
    #[cfg(feature = "tokio")]
    Tokio(Vec<tokio::task::JoinHandle<()>>),
}

/// A running system of automata. It posts like a [`Poster`] (it dereferences to one), reads
/// what the automata output, and drains the system: no new posts from outside, every queued
/// message handled, then every automaton stopped.
///
/// Dropping a system that was not drained begins a drain and does not wait for it.
pub struct System<M> {
    poster: Poster<M>,
    executor: Executor,
}

impl<M: Send + 'static> System<M> {
    /// A poster for other threads.
    pub fn poster(&self) -> Poster<M> {
        self.poster.clone()
    }

    /// Takes the oldest output if there is one.
    pub fn try_recv(&mut self) -> Option<M> {
        // SAFETY: `&mut self`, and a system's outbox is read only through its `System`.
        unsafe { self.poster.shared.take_output() }
    }

    /// Takes the oldest output, sleeping at most `timeout` for one.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<M> {
        let deadline = Instant::now().checked_add(timeout);
        let shared = Arc::clone(&self.poster.shared);
        let notify = &shared.outbox_notify;
        loop {
            if let Some(msg) = self.try_recv() {
                return Some(msg);
            }
            let left = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return None,
                },
                None => None,
            };
            notify.prepare_park();
            if shared.outbox.has_message() {
                notify.unpark();
                continue;
            }
            notify.park(left);
        }
    }

    /// Takes the oldest output, as a future that waits (under any executor) for one.
    pub async fn recv_async(&mut self) -> M {
        loop {
            if let Some(msg) = self.try_recv() {
                return msg;
            }
            let notify = &self.poster.shared.outbox_notify;
            notify.prepare_park();
            if self.poster.shared.outbox.has_message() {
                notify.unpark();
                continue;
            }
            notify.event().wait_async().await;
            notify.unpark();
        }
    }

    /// Drains the system, waiting at most `timeout`: posts from outside are refused from now
    /// on, the automata get [`Input::Drain`](crate::Input::Drain), every message already
    /// queued (and every message those cause) is handled, timers stop firing, and then every
    /// automaton stops. Outputs stay readable afterwards. Calling it again after a timeout
    /// waits again.
    ///
    /// Blocks the calling thread; from async code use `drain_async` (feature `tokio`).
    pub fn drain(&mut self, timeout: Duration) -> Result<Report, DrainError> {
        let started = Instant::now();
        let shared = &self.poster.shared;
        if !shared.begin_drain(timeout) {
            return Err(DrainError::PostsInProgress {
                waited_ms: started.elapsed().as_millis(),
            });
        }
        let left = timeout.saturating_sub(started.elapsed());
        if !shared.exited.wait_timeout(left) {
            return Err(DrainError::Timeout {
                workers_running: shared.exited.count(),
                waited_ms: started.elapsed().as_millis(),
            });
        }
        match &mut self.executor {
            Executor::Threads(threads) => {
                for thread in threads.drain(..) {
                    // A worker's own panics are caught per step; a join error would be a bug
                    // in the runner, and the worker has counted itself out either way.
                    let _ = thread.join();
                }
            }
            #[cfg(feature = "tokio")]
            Executor::Tokio(_) => {}
        }
        Ok(Report::collect(shared))
    }

    /// [`drain`](Self::drain) as a future, for systems started on tokio.
    #[cfg(feature = "tokio")]
    pub async fn drain_async(&mut self, timeout: Duration) -> Result<Report, DrainError> {
        let started = Instant::now();
        let shared = Arc::clone(&self.poster.shared);
        // Waiting for posts in progress blocks, so it runs beside the runtime's workers.
        let settled = tokio::task::spawn_blocking(move || shared.begin_drain(timeout))
            .await
            .unwrap_or(false);
        if !settled {
            return Err(DrainError::PostsInProgress {
                waited_ms: started.elapsed().as_millis(),
            });
        }
        let shared = &self.poster.shared;
        let deadline = tokio::time::Instant::now() + timeout.saturating_sub(started.elapsed());
        if let Executor::Tokio(tasks) = &mut self.executor {
            // A finished task leaves the list at once: its handle must not be awaited twice.
            while let Some(task) = tasks.last_mut() {
                if tokio::time::timeout_at(deadline, task).await.is_err() {
                    return Err(DrainError::Timeout {
                        workers_running: shared.exited.count(),
                        waited_ms: started.elapsed().as_millis(),
                    });
                }
                tasks.pop();
            }
        } else if !shared
            .exited
            .wait_timeout(timeout.saturating_sub(started.elapsed()))
        {
            return Err(DrainError::Timeout {
                workers_running: shared.exited.count(),
                waited_ms: started.elapsed().as_millis(),
            });
        }
        Ok(Report::collect(shared))
    }
}

impl<M> Deref for System<M> {
    type Target = Poster<M>;

    fn deref(&self) -> &Poster<M> {
        &self.poster
    }
}

impl<M> Drop for System<M> {
    fn drop(&mut self) {
        self.poster.shared.begin_drain(Duration::ZERO);
    }
}

impl<M> fmt::Debug for System<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("System")
            .field("actors", &self.poster.shared.actors.len())
            .field("draining", &self.poster.shared.is_closed_to_outside())
            .finish_non_exhaustive()
    }
}

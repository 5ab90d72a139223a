//! rsm-actor: run your own deterministic state machines as actors.
//!
//! A user automaton is a pure [`Automaton`]: it takes one [`Input`] at a time (a message, a
//! timer, a lifecycle notice) and answers with [`Effect`]s (post to another automaton by its
//! [`ActorId`], output to the world, schedule or cancel a timer counted in ticks, stop). It
//! never blocks, reads a clock or touches I/O, exactly like rsm's consensus replicas, but with
//! no consensus vocabulary. This crate hosts any number of them: each has a bounded inbox, its
//! own timers on its worker's timer wheel (no thread per timer), and a [`Lifecycle`] of
//! starting, running, draining and stopped. A panic in one automaton stops that one with
//! [`Exit::Panicked`]; the others keep running.
//!
//! Read first: [`Automaton`] (the contract), [`Builder`] (spawn automata, then pick an
//! executor) and [`System`] (post in, read outputs, drain). The executors:
//!
//! - threads ([`Builder::start_threads`]): plain threads on rsm-sync's primitives: a
//!   [`Semaphore`](rsm_sync::Semaphore) bounds each lock-free inbox, an
//!   [`Event`](rsm_sync::Event) puts an idle worker to sleep, a [`Drain`](rsm_sync::Drain)
//!   admits posts from outside until a drain begins, a [`Latch`](rsm_sync::Latch) counts the
//!   workers out;
//! - tokio tasks (`Builder::start_tokio`, feature `tokio`), awaiting the same event;
//! - the simulated clock ([`Builder::simulate`] gives a [`Sim`]): one worker the caller drives,
//!   deterministic, for tests.
//!
//! Posting into a full inbox is the caller's choice: [`Poster::try_post`] refuses at once,
//! [`Poster::post`] waits, [`Poster::post_timeout`] and [`Poster::post_async`] wait with a
//! bound or as a future. An automaton's own posts never wait: a refused one comes back to it
//! as [`Input::Undelivered`], so backpressure is something the automaton decides about.
//!
//! The inbox and the worker's sleep and wake are model-checked with loom (`make loom`).
//!
//! ```
//! use rsm_actor::{Automaton, Builder, Effect, Input, TimerId};
//!
//! /// Counts the messages it gets and reports the count every 10 ticks.
//! struct Counter { seen: u64 }
//!
//! impl Automaton for Counter {
//!     type Message = u64;
//!     fn step(&mut self, input: Input<u64>, out: &mut Vec<Effect<u64>>) {
//!         match input {
//!             Input::Start => out.push(Effect::Schedule { timer: TimerId(0), after_ticks: 10 }),
//!             Input::Message { msg, .. } => self.seen += msg,
//!             Input::Timer(_) => out.push(Effect::Output(self.seen)),
//!             _ => {}
//!         }
//!     }
//! }
//!
//! let mut builder = Builder::new();
//! let counter = builder.spawn(Counter { seen: 0 }, 16).unwrap();
//! let mut sim = builder.simulate();
//! sim.post(counter, 3).unwrap();
//! sim.post(counter, 4).unwrap();
//! sim.advance(10);
//! assert_eq!(sim.outputs(), vec![7]);
//! ```

#![warn(missing_docs)]

mod automaton;
mod clock;
mod error;
mod inbox;
mod primitives;
mod shared;
mod sim;
mod system;
#[cfg(feature = "tokio")]
mod tasks;
mod threads;
mod wheel;
mod worker;

pub use automaton::{ActorId, Automaton, Effect, Exit, Input, Lifecycle, Refused, TimerId};
pub use clock::{Clock, ManualClock};
pub use error::{BuildError, DrainError, PostError};
pub use inbox::INBOX_CAPACITY_MAX;
pub use sim::{SIM_PASSES_MAX, Sim};
pub use system::{ACTORS_MAX, Builder, Poster, Report, System, WORKERS_MAX};

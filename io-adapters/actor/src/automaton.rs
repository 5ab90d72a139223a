//! The contract between a user's automaton and the runner: inputs in, effects out.

use std::fmt;

/// The address of an automaton within one system: its position in spawn order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId(pub u32);

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "actor {}", self.0)
    }
}

/// A timer's name, chosen by the automaton that owns it. Names are private to each automaton:
/// two automata may both use `TimerId(0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// Why a message was not accepted by an inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refused {
    /// The inbox holds as many messages as its capacity allows.
    Full,
    /// The addressee has stopped (by its own `Stop`, a panic, or the end of a drain).
    Stopped,
    /// No automaton has this address in this system.
    Unknown,
    /// The system is draining: it takes no new messages from outside.
    Draining,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::Full => "the inbox is full",
            Refused::Stopped => "the automaton has stopped",
            Refused::Unknown => "no automaton has this address",
            Refused::Draining => "the system is draining",
        })
    }
}

/// Everything that can happen to an automaton, delivered one at a time by [`Automaton::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<M> {
    /// The first input, exactly once, before any other.
    Start,
    /// A message posted to this automaton; `from` is `None` for a post from outside the
    /// system.
    Message {
        /// The sender, if it is an automaton of the same system.
        from: Option<ActorId>,
        /// The message.
        msg: M,
    },
    /// A timer this automaton scheduled has expired. It arrives at most once per `Schedule`,
    /// and never after a `Cancel` of the same timer or a later `Schedule` replacing it.
    Timer(TimerId),
    /// A `Post` or `Output` effect of this automaton's previous step could not be delivered;
    /// the message comes back. Delivered before any other input.
    Undelivered {
        /// The addressee, or `None` for an `Output`.
        to: Option<ActorId>,
        /// The message, returned.
        msg: M,
        /// Why it was refused.
        reason: Refused,
    },
    /// The system is draining: after this, the automaton receives only the messages already
    /// queued for it and those other automata post while finishing theirs. Timers no longer
    /// fire. Delivered once.
    Drain,
}

/// What an automaton asks the runner to do, executed in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<M> {
    /// Post `msg` to the automaton at `to`. This never waits: if the inbox is full or the
    /// addressee gone, the message comes back as [`Input::Undelivered`].
    Post {
        /// The addressee.
        to: ActorId,
        /// The message.
        msg: M,
    },
    /// Hand `msg` to the world outside the system (read with `recv` on the system). If the
    /// outbox is full the message comes back as [`Input::Undelivered`] with `to: None`.
    Output(M),
    /// Fire [`Input::Timer`] after `after_ticks` ticks (0 counts as 1: a timer never fires
    /// in the tick that set it). Scheduling a timer that is already pending replaces it.
    Schedule {
        /// The timer's name.
        timer: TimerId,
        /// How many ticks from now.
        after_ticks: u64,
    },
    /// Cancel a pending timer; its `Timer` input will not arrive. Cancelling a timer that is
    /// not pending does nothing.
    Cancel(TimerId),
    /// Stop this automaton now: the effects after this one are dropped, its inbox closes and
    /// its timers are cancelled.
    Stop,
}

/// A deterministic state machine the runner hosts: it takes one [`Input`] at a time and
/// appends [`Effect`]s to `out`. It never blocks, sleeps, reads a clock or touches I/O; time
/// reaches it only as timers counted in ticks. Given the same inputs it must produce the
/// same effects, which is what lets the simulated executor replay it exactly.
///
/// All automata of one system share the message type `Message` (use an enum when they speak
/// different protocols).
pub trait Automaton: Send + 'static {
    /// The messages automata of this system post to each other.
    type Message: Send + 'static;

    /// Takes one input and appends the effects it causes to `out` (which is empty on entry).
    fn step(&mut self, input: Input<Self::Message>, out: &mut Vec<Effect<Self::Message>>);
}

/// The phase of an automaton's life, as the runner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// Spawned; `Start` has not been delivered yet.
    Starting,
    /// Taking inputs.
    Running,
    /// The system is draining: it finishes the messages queued for it, takes no new ones
    /// from outside and fires no timers.
    Draining,
    /// It takes no more inputs; see [`Exit`] for why.
    Stopped,
}

/// Why an automaton stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The automaton asked to stop (`Effect::Stop`).
    Stopped,
    /// The system drained and the automaton finished all its work.
    Drained,
    /// A step panicked; the automaton was stopped and the others kept running.
    Panicked {
        /// The panic's message, when it was a string.
        message: String,
    },
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Stopped => f.write_str("stopped itself"),
            Exit::Drained => f.write_str("drained"),
            Exit::Panicked { message } => write!(f, "panicked: {message}"),
        }
    }
}

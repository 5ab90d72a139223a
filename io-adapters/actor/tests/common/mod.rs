//! Automata shared by the integration tests.

#![allow(dead_code)]

use rsm_actor::{ActorId, Automaton, Effect, Input};

/// An automaton made of a closure, for tests that need a one-off behaviour.
pub struct Script<F>(pub F);

impl<F> Automaton for Script<F>
where
    F: FnMut(Input<Msg>, &mut Vec<Effect<Msg>>) + Send + 'static,
{
    type Message = Msg;

    fn step(&mut self, input: Input<Msg>, out: &mut Vec<Effect<Msg>>) {
        (self.0)(input, out)
    }
}

/// The messages of the test systems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// A number to count or forward.
    Value(u64),
    /// A report to the outside: who saw what.
    Seen { by: ActorId, what: String },
    /// A command for the automaton under test.
    Command(&'static str),
}

/// Records every input as an output line `"<by> <input>"`, and does nothing else.
pub fn recorder(by: ActorId) -> impl Automaton<Message = Msg> {
    Script(move |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| {
        out.push(Effect::Output(Msg::Seen {
            by,
            what: describe(&input),
        }))
    })
}

/// A short, stable text for an input.
pub fn describe(input: &Input<Msg>) -> String {
    match input {
        Input::Start => "start".to_owned(),
        Input::Drain => "drain".to_owned(),
        Input::Timer(t) => format!("timer {}", t.0),
        Input::Message { from, msg } => format!("message {msg:?} from {from:?}"),
        Input::Undelivered { to, msg, reason } => {
            format!("undelivered {msg:?} to {to:?}: {reason:?}")
        }
    }
}

/// The `what` of every `Seen` output by `by`.
pub fn seen_by(outputs: &[Msg], by: ActorId) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|m| match m {
            Msg::Seen { by: b, what } if *b == by => Some(what.clone()),
            _ => None,
        })
        .collect()
}

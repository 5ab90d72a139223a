//! Automata shared by the integration tests.

#![allow(dead_code)]

use rsm_actor::{ActorId, Automaton, Builder, Effect, Exit, Input, System};
use std::time::Duration;

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

/// Spawns an automaton that panics with `message` at its first message, then a recorder.
pub fn fragile_and_sturdy(builder: &mut Builder<Msg>, message: &'static str) -> (ActorId, ActorId) {
    let fragile = builder
        .spawn(
            Script(move |input: Input<Msg>, _out: &mut Vec<Effect<Msg>>| {
                if let Input::Message { .. } = input {
                    panic!("{message}");
                }
            }),
            4,
        )
        .unwrap();
    let sturdy = builder.spawn(recorder(ActorId(1)), 4).unwrap();
    (fragile, sturdy)
}

/// Breaks the fragile automaton of [`fragile_and_sturdy`], checks that the sturdy one still
/// works, drains and checks how each ended.
pub fn check_panic_isolation(
    system: &mut System<Msg>,
    (fragile, sturdy): (ActorId, ActorId),
    message: &str,
) {
    let patience = Duration::from_secs(60);
    system.post(fragile, Msg::Value(1)).unwrap();
    while system.exit(fragile).is_none() {
        std::thread::yield_now();
    }
    system.post(sturdy, Msg::Value(2)).unwrap();
    let seen: Vec<Msg> = (0..2)
        .map(|_| system.recv_timeout(patience).expect("sturdy reports"))
        .collect();
    assert_eq!(
        seen_by(&seen, sturdy),
        vec!["start", "message Value(2) from None"]
    );
    let report = system.drain(patience).unwrap();
    let panicked = Exit::Panicked {
        message: message.to_owned(),
    };
    assert_eq!(
        report.exits,
        vec![(fragile, panicked), (sturdy, Exit::Drained)]
    );
}

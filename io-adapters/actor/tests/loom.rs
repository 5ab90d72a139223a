//! Model checking of the runner's lock-free parts with loom: the inbox (post, take, the
//! waiting post and the close), the worker's sleep and wake, the drain's count of work in
//! flight, and timer expiry racing a cancel. Every interleaving (up to the preemption bound
//! set by `make loom`: one, to keep it quick) of small systems on the thread executor with a
//! manual clock. Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=1 cargo test -p
//! rsm-actor --release --target-dir target/loom --test loom`; add `-- --include-ignored` for
//! the two-worker model too (minutes), and raise the bound for a longer search.
//!
//! A lost wake-up shows up as a deadlock, which loom reports. Waits here have no timeout
//! (`Duration::MAX`), so nothing passes by giving up.

#![cfg(loom)]

use loom::thread;
use rsm_actor::{
    ActorId, Automaton, Builder, Clock, Effect, Exit, Input, ManualClock, Refused, TimerId,
};
use std::time::Duration;

const FOREVER: Duration = Duration::MAX;

/// Outputs 50 when it starts (and schedules timer 1 a tick later), every message it gets,
/// and 100 when timer 1 fires; message 0 cancels timer 1.
struct Probe;

const STARTED: u64 = 50;
const FIRED: u64 = 100;

impl Automaton for Probe {
    type Message = u64;

    fn step(&mut self, input: Input<u64>, out: &mut Vec<Effect<u64>>) {
        match input {
            Input::Start => {
                out.push(Effect::Schedule {
                    timer: TimerId(1),
                    after_ticks: 1,
                });
                out.push(Effect::Output(STARTED));
            }
            Input::Message { msg: 0, .. } => {
                out.push(Effect::Cancel(TimerId(1)));
                out.push(Effect::Output(0));
            }
            Input::Message { msg, .. } => out.push(Effect::Output(msg)),
            Input::Timer(TimerId(1)) => out.push(Effect::Output(FIRED)),
            _ => {}
        }
    }
}

/// Forwards every message to the automaton at `to`.
struct Relay {
    to: ActorId,
}

impl Automaton for Relay {
    type Message = u64;

    fn step(&mut self, input: Input<u64>, out: &mut Vec<Effect<u64>>) {
        if let Input::Message { msg, .. } = input {
            out.push(Effect::Post { to: self.to, msg });
        }
    }
}

/// Drains the system; returns its outputs left unread, without the `STARTED` marks.
fn drained_outputs(system: &mut rsm_actor::System<u64>) -> Vec<u64> {
    let report = system.drain(FOREVER).expect("an untimed drain finishes");
    assert!(report.exits.iter().all(|(_, exit)| *exit == Exit::Drained));
    std::iter::from_fn(|| system.try_recv())
        .filter(|&m| m != STARTED)
        .collect()
}

/// A post racing the start of a drain is either refused or handled: never accepted and lost.
#[test]
fn a_post_racing_a_drain_is_refused_or_handled() {
    loom::model(|| {
        let mut builder = Builder::new();
        let probe = builder.spawn(Probe, 2).unwrap();
        let mut system = builder
            .start_threads(1, Clock::Manual(ManualClock::new()))
            .unwrap();
        let poster = system.poster();
        let racer = thread::spawn(move || poster.try_post(probe, 7).map_err(|e| e.reason));
        let outputs = drained_outputs(&mut system);
        match racer.join().unwrap() {
            Ok(()) => assert_eq!(outputs, vec![7]),
            Err(reason) => {
                assert_eq!(reason, Refused::Draining);
                assert!(outputs.is_empty());
            }
        }
    });
}

/// Two posters fill a one-message inbox; the one that waits is woken by the worker taking
/// the other's message. Both messages arrive, once each.
#[test]
fn a_waiting_post_is_woken_when_the_worker_makes_room() {
    loom::model(|| {
        let mut builder = Builder::new();
        let probe = builder.spawn(Probe, 1).unwrap();
        let mut system = builder
            .start_threads(1, Clock::Manual(ManualClock::new()))
            .unwrap();
        let poster = system.poster();
        let other = thread::spawn(move || poster.post(probe, 5).unwrap());
        system.post(probe, 6).unwrap();
        other.join().unwrap();
        let mut outputs = drained_outputs(&mut system);
        outputs.sort_unstable();
        assert_eq!(outputs, vec![5, 6]);
    });
}

/// A message posted from one worker to an automaton on another wakes that worker (the
/// sleep/wake handshake), and the drain waits for it: the relayed message is never lost.
/// Two workers make this model about ten times the size of the others.
#[test]
#[ignore = "slow (minutes): run with `-- --ignored`"]
fn a_message_between_workers_is_delivered_before_the_drain_ends() {
    loom::model(|| {
        let mut builder = Builder::new();
        let relay = builder.spawn(Relay { to: ActorId(1) }, 1).unwrap();
        builder.spawn(Probe, 1).unwrap();
        let mut system = builder
            .start_threads(2, Clock::Manual(ManualClock::new()))
            .unwrap();
        system.post(relay, 9).unwrap();
        assert_eq!(drained_outputs(&mut system), vec![9]);
    });
}

/// The clock reaching a timer wakes the sleeping worker: the timer fires.
#[test]
fn a_clock_advance_wakes_the_worker_to_fire_a_timer() {
    loom::model(|| {
        let clock = ManualClock::new();
        let mut builder = Builder::new();
        builder.spawn(Probe, 1).unwrap();
        let mut system = builder
            .start_threads(1, Clock::Manual(clock.clone()))
            .unwrap();
        // Started at tick 0, so the timer is due at tick 1.
        assert_eq!(system.recv_timeout(FOREVER), Some(STARTED));
        let ticker = thread::spawn(move || clock.advance(1));
        assert_eq!(system.recv_timeout(FOREVER), Some(FIRED));
        ticker.join().unwrap();
        assert!(drained_outputs(&mut system).is_empty());
    });
}

/// A cancel racing the timer's expiry: the timer fires before the cancel is handled or not
/// at all, never after.
#[test]
fn a_cancelled_timer_never_fires_after_the_cancel() {
    loom::model(|| {
        let clock = ManualClock::new();
        let mut builder = Builder::new();
        let probe = builder.spawn(Probe, 1).unwrap();
        let mut system = builder
            .start_threads(1, Clock::Manual(clock.clone()))
            .unwrap();
        assert_eq!(system.recv_timeout(FOREVER), Some(STARTED));
        let ticker = thread::spawn(move || clock.advance(1));
        system.post(probe, 0).unwrap();
        let first = system.recv_timeout(FOREVER);
        ticker.join().unwrap();
        let rest = drained_outputs(&mut system);
        match first {
            Some(FIRED) => assert_eq!(rest, vec![0]),
            Some(0) => assert!(
                rest.is_empty(),
                "the timer fired after its cancel: {rest:?}"
            ),
            other => panic!("unexpected first output {other:?}"),
        }
    });
}

/// A poster waiting on a full inbox when its automaton stops is woken and refused.
#[test]
fn a_post_waiting_on_a_stopping_automaton_is_woken_and_refused() {
    struct StopAtOnce;
    impl Automaton for StopAtOnce {
        type Message = u64;
        fn step(&mut self, input: Input<u64>, out: &mut Vec<Effect<u64>>) {
            if let Input::Message { .. } = input {
                out.push(Effect::Stop);
            }
        }
    }
    loom::model(|| {
        let mut builder = Builder::new();
        let stopper = builder.spawn(StopAtOnce, 1).unwrap();
        let mut system = builder
            .start_threads(1, Clock::Manual(ManualClock::new()))
            .unwrap();
        let poster = system.poster();
        let other = thread::spawn(move || poster.post(stopper, 1).map_err(|e| e.reason));
        let mine = system.post(stopper, 2).map_err(|e| e.reason);
        let theirs = other.join().unwrap();
        // The first message taken stops the automaton; a later one is refused or dropped.
        assert!(mine.is_ok() || theirs.is_ok());
        for result in [mine, theirs] {
            assert!(
                matches!(result, Ok(()) | Err(Refused::Stopped)),
                "{result:?}"
            );
        }
        let report = system.drain(FOREVER).unwrap();
        assert_eq!(report.exits, vec![(stopper, Exit::Stopped)]);
    });
}

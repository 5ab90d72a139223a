//! The thread executor: the same rules as on the simulated clock, now with real threads
//! racing: drain under load, full inboxes with waiting posters, panics, timers on both clocks.
//! No test asserts a wall-clock duration; timeouts only bound a hang.

mod common;

use common::{Msg, Script, check_panic_isolation, fragile_and_sturdy};
use rsm_actor::{
    ActorId, Automaton, Builder, Clock, Effect, Exit, Input, Lifecycle, ManualClock, Refused,
    TimerId,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bounds a wait that only a bug could make long.
const PATIENCE: Duration = Duration::from_secs(60);

/// Adds every value it gets to `total`; forwards it to `next` (if any) with one less, until 0.
fn adder(total: Arc<AtomicU64>, next: Option<ActorId>) -> impl Automaton<Message = Msg> {
    Script(
        move |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| match input {
            Input::Message {
                msg: Msg::Value(n), ..
            } => {
                total.fetch_add(n, Ordering::Relaxed);
                if let (Some(next), true) = (next, n > 0) {
                    out.push(Effect::Post {
                        to: next,
                        msg: Msg::Value(n - 1),
                    });
                }
            }
            // An automaton that meets a full inbox retries at its next input; here it keeps the
            // value by counting it as if forwarded, so the test's total stays exact.
            Input::Undelivered {
                msg: Msg::Value(n), ..
            } => {
                fn sum_down(n: u64) -> u64 {
                    n * (n + 1) / 2
                }
                total.fetch_add(sum_down(n), Ordering::Relaxed);
            }
            _ => {}
        },
    )
}

#[test]
fn a_drain_under_load_handles_every_accepted_message_and_what_it_causes() {
    let total = Arc::new(AtomicU64::new(0));
    let mut builder = Builder::new();
    let a = builder
        .spawn(adder(total.clone(), Some(ActorId(1))), 16)
        .unwrap();
    let b = builder
        .spawn(adder(total.clone(), Some(ActorId(2))), 16)
        .unwrap();
    let c = builder.spawn(adder(total.clone(), None), 16).unwrap();
    let mut system = builder
        .start_threads(
            2,
            Clock::Real {
                tick: Duration::from_millis(1),
            },
        )
        .unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..4_u64 {
            let poster = system.poster();
            let accepted = accepted.clone();
            s.spawn(move || {
                for i in 0.. {
                    let to = [a, b, c][(i % 3) as usize];
                    match poster.post(to, Msg::Value(2)) {
                        // Value 2 at a: 2 + 1 + 0 = 3 in all; at b: 2 + 1 = 3; at c: 2.
                        Ok(()) => {
                            accepted.fetch_add(if to == c { 2 } else { 3 }, Ordering::Relaxed);
                        }
                        Err(e) => {
                            assert_eq!(e.reason, Refused::Draining, "poster {t}");
                            break;
                        }
                    }
                }
            });
        }
        // Let the posters fill the inboxes, then drain while they are still posting.
        while accepted.load(Ordering::Relaxed) < 30_000 {
            std::thread::yield_now();
        }
        let report = system.drain(PATIENCE).expect("the drain finishes");
        assert!(report.exits.iter().all(|(_, exit)| *exit == Exit::Drained));
    });
    assert_eq!(
        total.load(Ordering::Relaxed),
        accepted.load(Ordering::Relaxed)
    );
    assert_eq!(system.lifecycle(a), Some(Lifecycle::Stopped));
    assert_eq!(
        system.try_post(a, Msg::Value(1)).unwrap_err().reason,
        Refused::Draining
    );
}

#[test]
fn a_full_inbox_refuses_try_post_and_makes_post_wait_for_room() {
    let mut builder = Builder::new();
    let gate = Arc::new(rsm_sync::Gate::new(false));
    let slow = {
        let gate = gate.clone();
        builder
            .spawn(
                Script(move |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| {
                    if let Input::Message { msg, .. } = input {
                        // Holds the worker (and so the inbox's contents) until the test opens.
                        gate.pass();
                        out.push(Effect::Output(msg));
                    }
                }),
                2,
            )
            .unwrap()
    };
    let mut system = builder
        .start_threads(1, Clock::Manual(ManualClock::new()))
        .unwrap();
    // The worker takes at most one message and waits at the gate: the inbox fills.
    let mut next = 1;
    let refused = loop {
        match system.try_post(slow, Msg::Value(next)) {
            Ok(()) => next += 1,
            Err(e) => break e,
        }
        assert!(next <= 4, "a two-message inbox took {next} messages");
    };
    assert_eq!(
        (refused.reason, refused.msg),
        (Refused::Full, Msg::Value(next))
    );
    std::thread::scope(|s| {
        let poster = system.poster();
        let waiting = s.spawn(move || poster.post(slow, Msg::Value(next)));
        gate.open();
        waiting
            .join()
            .unwrap()
            .expect("the waiting post goes through");
    });
    let got: Vec<Msg> = (1..=next)
        .map(|_| system.recv_timeout(PATIENCE).expect("an output"))
        .collect();
    assert_eq!(got, (1..=next).map(Msg::Value).collect::<Vec<_>>());
    system.drain(PATIENCE).unwrap();
}

#[test]
fn a_poster_waiting_on_a_stopped_automaton_is_refused() {
    let mut builder = Builder::new();
    let gate = Arc::new(rsm_sync::Gate::new(false));
    let stopper = {
        let gate = gate.clone();
        builder
            .spawn(
                Script(move |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| {
                    if let Input::Message { .. } = input {
                        // Keeps the inbox full until the test has a poster waiting.
                        gate.pass();
                        out.push(Effect::Stop);
                    }
                }),
                1,
            )
            .unwrap()
    };
    let mut system = builder
        .start_threads(1, Clock::Manual(ManualClock::new()))
        .unwrap();
    system.post(stopper, Msg::Value(1)).unwrap();
    // The first message is taken (the worker waits at the gate) or still queued; either way
    // the inbox fills with at most one more.
    while system.try_post(stopper, Msg::Value(2)).is_ok() {}
    std::thread::scope(|s| {
        let poster = system.poster();
        let waiting = s.spawn(move || poster.post(stopper, Msg::Value(3)));
        gate.open();
        let refused = waiting.join().unwrap().unwrap_err();
        assert_eq!(refused.reason, Refused::Stopped);
    });
    assert_eq!(system.exit(stopper), Some(Exit::Stopped));
    system.drain(PATIENCE).unwrap();
}

#[test]
fn a_panic_on_one_thread_stops_only_that_automaton() {
    let mut builder = Builder::new();
    let actors = fragile_and_sturdy(&mut builder, "fragile broke");
    // Both on one worker: the panic must not take the worker down with it.
    let tick = Duration::from_millis(1);
    let mut system = builder.start_threads(1, Clock::Real { tick }).unwrap();
    check_panic_isolation(&mut system, actors, "fragile broke");
}

/// Reports its start and each timer, and cancels timer 1 when told.
fn timed() -> impl Automaton<Message = Msg> {
    Script(
        |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| match input {
            Input::Start => {
                out.push(Effect::Output(Msg::Command("started")));
                out.push(Effect::Schedule {
                    timer: TimerId(1),
                    after_ticks: 3,
                });
                out.push(Effect::Schedule {
                    timer: TimerId(2),
                    after_ticks: 5,
                });
            }
            Input::Message {
                msg: Msg::Command("cancel"),
                ..
            } => {
                out.push(Effect::Cancel(TimerId(1)));
                out.push(Effect::Output(Msg::Command("cancelled")));
            }
            Input::Timer(t) => out.push(Effect::Output(Msg::Value(t.0))),
            _ => {}
        },
    )
}

#[test]
fn timers_on_a_manual_clock_fire_only_when_it_reaches_them() {
    let clock = ManualClock::new();
    let mut builder = Builder::new();
    let a = builder.spawn(timed(), 4).unwrap();
    let mut system = builder
        .start_threads(1, Clock::Manual(clock.clone()))
        .unwrap();
    // Started at tick 0: timer 1 is due at 3, timer 2 at 5.
    assert_eq!(system.recv_timeout(PATIENCE), Some(Msg::Command("started")));
    clock.advance(2);
    system.post(a, Msg::Command("cancel")).unwrap();
    assert_eq!(
        system.recv_timeout(PATIENCE),
        Some(Msg::Command("cancelled"))
    );
    clock.advance(2);
    assert_eq!(system.try_recv(), None, "timer 1 was cancelled");
    clock.advance(1);
    assert_eq!(system.recv_timeout(PATIENCE), Some(Msg::Value(2)));
    system.drain(PATIENCE).unwrap();
    assert_eq!(system.try_recv(), None);
}

#[test]
fn timers_on_the_real_clock_fire() {
    let mut builder = Builder::new();
    builder.spawn(timed(), 4).unwrap();
    let mut system = builder
        .start_threads(
            1,
            Clock::Real {
                tick: Duration::from_millis(1),
            },
        )
        .unwrap();
    assert_eq!(system.recv_timeout(PATIENCE), Some(Msg::Command("started")));
    assert_eq!(system.recv_timeout(PATIENCE), Some(Msg::Value(1)));
    assert_eq!(system.recv_timeout(PATIENCE), Some(Msg::Value(2)));
    system.drain(PATIENCE).unwrap();
}

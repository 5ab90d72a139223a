//! The runner's rules, checked on the simulated clock where every step is reproducible:
//! lifecycle, addressing, timers, bounded inboxes, panics, stop and drain.

mod common;

use common::{Msg, Script, describe, recorder, seen_by};
use rsm_actor::{
    ActorId, Automaton, BuildError, Builder, DrainError, Effect, Exit, INBOX_CAPACITY_MAX, Input,
    Lifecycle, Refused, TimerId,
};

fn ping_pong(limit: u64, peer: ActorId) -> impl Automaton<Message = Msg> {
    Script(move |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| {
        if let Input::Message {
            msg: Msg::Value(n), ..
        } = input
        {
            if n >= limit {
                out.push(Effect::Output(Msg::Value(n)));
            } else {
                out.push(Effect::Post {
                    to: peer,
                    msg: Msg::Value(n + 1),
                });
            }
        }
    })
}

#[test]
fn start_comes_first_then_messages_in_order_with_their_sender() {
    let mut builder = Builder::new();
    let a = builder.spawn(recorder(ActorId(0)), 8).unwrap();
    let mut sim = builder.simulate();
    assert_eq!(sim.lifecycle(a), Some(Lifecycle::Starting));
    sim.post(a, Msg::Value(1)).unwrap();
    sim.post(a, Msg::Value(2)).unwrap();
    assert!(sim.run());
    assert_eq!(sim.lifecycle(a), Some(Lifecycle::Running));
    assert_eq!(
        seen_by(&sim.outputs(), a),
        vec![
            "start",
            "message Value(1) from None",
            "message Value(2) from None"
        ]
    );
}

#[test]
fn automata_post_to_each_other_by_address() {
    let mut builder = Builder::new();
    let a = builder.spawn(ping_pong(10, ActorId(1)), 4).unwrap();
    let b = builder.spawn(ping_pong(10, ActorId(0)), 4).unwrap();
    assert_eq!((a, b), (ActorId(0), ActorId(1)));
    let mut sim = builder.simulate();
    sim.post(a, Msg::Value(0)).unwrap();
    assert!(sim.run());
    assert_eq!(sim.outputs(), vec![Msg::Value(10)]);
}

#[test]
fn the_same_calls_give_the_same_run() {
    /// Four automata in a ring: each starts a timer, and forwards what it gets, one hop
    /// further, until 300 hops; every input is reported.
    fn run() -> Vec<Msg> {
        let mut builder = Builder::new();
        builder.outbox_capacity(100_000).unwrap();
        let actors: Vec<ActorId> = (0..4)
            .map(|i| {
                let (me, next) = (ActorId(i), ActorId((i + 1) % 4));
                let ring = Script(move |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| {
                    out.push(Effect::Output(Msg::Seen {
                        by: me,
                        what: describe(&input),
                    }));
                    let hops = match input {
                        Input::Start => {
                            out.push(Effect::Schedule {
                                timer: TimerId(u64::from(i)),
                                after_ticks: u64::from(i) + 1,
                            });
                            return;
                        }
                        Input::Timer(_) => 0,
                        Input::Message {
                            msg: Msg::Value(hops),
                            ..
                        } => hops + 1,
                        _ => return,
                    };
                    if hops < 300 {
                        out.push(Effect::Post {
                            to: next,
                            msg: Msg::Value(hops),
                        });
                    }
                });
                builder.spawn(ring, 2).unwrap()
            })
            .collect();
        let mut sim = builder.simulate();
        sim.post(actors[2], Msg::Value(0)).unwrap();
        assert!(sim.advance(5));
        sim.outputs()
    }
    let first = run();
    assert!(
        first.len() > 1_000,
        "the ring ran ({} outputs)",
        first.len()
    );
    assert_eq!(first, run());
}

#[test]
fn timers_fire_after_their_ticks_and_not_after_cancel_or_replace() {
    let mut builder = Builder::new();
    let a = builder
        .spawn(
            Script(|input: Input<Msg>, out: &mut Vec<Effect<Msg>>| {
                out.push(Effect::Output(Msg::Seen {
                    by: ActorId(0),
                    what: describe(&input),
                }));
                match input {
                    Input::Start => {
                        out.push(Effect::Schedule {
                            timer: TimerId(1),
                            after_ticks: 5,
                        });
                        out.push(Effect::Schedule {
                            timer: TimerId(2),
                            after_ticks: 5,
                        });
                        out.push(Effect::Schedule {
                            timer: TimerId(3),
                            after_ticks: 3,
                        });
                    }
                    Input::Message {
                        msg: Msg::Command("cancel 1"),
                        ..
                    } => out.push(Effect::Cancel(TimerId(1))),
                    Input::Message {
                        msg: Msg::Command("replace 2"),
                        ..
                    } => out.push(Effect::Schedule {
                        timer: TimerId(2),
                        after_ticks: 10,
                    }),
                    _ => {}
                }
            }),
            8,
        )
        .unwrap();
    let mut sim = builder.simulate();
    assert!(sim.run());
    assert!(sim.advance(2));
    sim.post(a, Msg::Command("cancel 1")).unwrap();
    sim.post(a, Msg::Command("replace 2")).unwrap();
    assert!(sim.advance(1));
    assert_eq!(sim.now(), 3);
    let seen = seen_by(&sim.outputs(), a);
    assert_eq!(seen.last().map(String::as_str), Some("timer 3"));
    // Replaced at tick 2, when the messages were handled: due at 12.
    assert!(sim.advance(8));
    assert_eq!(seen_by(&sim.outputs(), a), Vec::<String>::new());
    assert!(sim.advance(1));
    assert_eq!(sim.now(), 12);
    assert_eq!(seen_by(&sim.outputs(), a), vec!["timer 2"]);
    assert!(sim.advance(1000));
    assert!(sim.outputs().is_empty(), "cancelled timer 1 never fires");
}

#[test]
fn a_zero_tick_timer_fires_at_the_next_tick() {
    let mut builder = Builder::new();
    builder
        .spawn(
            Script(
                |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| match input {
                    Input::Start => out.push(Effect::Schedule {
                        timer: TimerId(7),
                        after_ticks: 0,
                    }),
                    Input::Timer(t) => out.push(Effect::Output(Msg::Value(t.0))),
                    _ => {}
                },
            ),
            1,
        )
        .unwrap();
    let mut sim = builder.simulate();
    assert!(sim.run());
    assert!(sim.outputs().is_empty());
    assert!(sim.advance(1));
    assert_eq!(sim.outputs(), vec![Msg::Value(7)]);
}

#[test]
fn a_full_inbox_refuses_posts_from_outside_and_bounces_posts_from_automata() {
    let mut builder = Builder::new();
    // The sender comes first, so in a pass it posts before the sink empties its inbox.
    let sink = ActorId(1);
    let sender = builder
        .spawn(
            Script(
                move |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| match input {
                    Input::Message { msg, .. } => out.push(Effect::Post { to: sink, msg }),
                    Input::Undelivered { to, msg, reason } => out.push(Effect::Output(Msg::Seen {
                        by: ActorId(0),
                        what: format!("{msg:?} to {to:?} refused: {reason:?}"),
                    })),
                    _ => {}
                },
            ),
            8,
        )
        .unwrap();
    assert_eq!(builder.spawn(recorder(sink), 2).unwrap(), sink);
    let mut sim = builder.simulate();
    sim.post(sink, Msg::Value(1)).unwrap();
    sim.post(sink, Msg::Value(2)).unwrap();
    let refused = sim.post(sink, Msg::Value(3)).unwrap_err();
    assert_eq!((refused.to, refused.reason), (sink, Refused::Full));
    assert_eq!(refused.msg, Msg::Value(3), "the message comes back");
    sim.post(sender, Msg::Value(6)).unwrap();
    assert!(sim.run());
    let outputs = sim.outputs();
    assert_eq!(
        seen_by(&outputs, sender),
        vec!["Value(6) to Some(ActorId(1)) refused: Full"]
    );
    assert_eq!(
        seen_by(&outputs, sink),
        vec![
            "start",
            "message Value(1) from None",
            "message Value(2) from None"
        ]
    );
    // Once the sink has emptied its inbox, the same post goes through.
    sim.post(sender, Msg::Value(7)).unwrap();
    assert!(sim.run());
    assert_eq!(
        seen_by(&sim.outputs(), sink),
        vec!["message Value(7) from Some(ActorId(0))"]
    );
}

#[test]
fn posts_to_an_unknown_address_are_refused() {
    let mut builder = Builder::new();
    let a = builder
        .spawn(
            Script(
                |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| match input {
                    Input::Start => out.push(Effect::Post {
                        to: ActorId(42),
                        msg: Msg::Value(1),
                    }),
                    Input::Undelivered { reason, .. } => {
                        out.push(Effect::Output(Msg::Command(match reason {
                            Refused::Unknown => "unknown",
                            _ => "other",
                        })))
                    }
                    _ => {}
                },
            ),
            1,
        )
        .unwrap();
    let mut sim = builder.simulate();
    assert_eq!(
        sim.post(ActorId(9), Msg::Value(0)).unwrap_err().reason,
        Refused::Unknown
    );
    assert!(sim.run());
    assert_eq!(sim.outputs(), vec![Msg::Command("unknown")]);
    assert_eq!(sim.lifecycle(a), Some(Lifecycle::Running));
    assert_eq!(sim.lifecycle(ActorId(9)), None);
}

#[test]
fn a_panicking_automaton_stops_with_its_message_and_the_others_keep_running() {
    let mut builder = Builder::new();
    let fragile = builder
        .spawn(
            Script(|input: Input<Msg>, out: &mut Vec<Effect<Msg>>| {
                if let Input::Message {
                    msg: Msg::Command("panic"),
                    ..
                } = input
                {
                    out.push(Effect::Output(Msg::Command("never executed")));
                    panic!("asked to panic");
                }
                if let Input::Start = input {
                    out.push(Effect::Schedule {
                        timer: TimerId(0),
                        after_ticks: 5,
                    });
                }
                if let Input::Timer(_) = input {
                    out.push(Effect::Output(Msg::Command("fragile timer")));
                }
            }),
            4,
        )
        .unwrap();
    let sturdy = builder.spawn(recorder(ActorId(1)), 4).unwrap();
    let mut sim = builder.simulate();
    sim.post(fragile, Msg::Command("panic")).unwrap();
    sim.post(fragile, Msg::Value(1)).unwrap();
    sim.post(sturdy, Msg::Value(2)).unwrap();
    assert!(sim.advance(10));
    assert_eq!(sim.lifecycle(fragile), Some(Lifecycle::Stopped));
    assert_eq!(
        sim.exit(fragile),
        Some(Exit::Panicked {
            message: "asked to panic".to_owned()
        })
    );
    let outputs = sim.outputs();
    assert!(
        !outputs.contains(&Msg::Command("never executed"))
            && !outputs.contains(&Msg::Command("fragile timer")),
        "the panicking step's effects and the stopped automaton's timers are dropped: {outputs:?}"
    );
    assert_eq!(seen_by(&outputs, sturdy).len(), 2);
    assert_eq!(
        sim.post(fragile, Msg::Value(3)).unwrap_err().reason,
        Refused::Stopped
    );
    sim.post(sturdy, Msg::Value(4)).unwrap();
    assert!(sim.run());
    assert_eq!(seen_by(&sim.outputs(), sturdy).len(), 1);
    let report = sim.drain().unwrap();
    assert_eq!(
        report.exits,
        vec![
            (
                fragile,
                Exit::Panicked {
                    message: "asked to panic".to_owned()
                }
            ),
            (sturdy, Exit::Drained)
        ]
    );
}

#[test]
fn stop_drops_the_effects_after_it_and_closes_the_inbox() {
    let mut builder = Builder::new();
    let a = builder
        .spawn(
            Script(|input: Input<Msg>, out: &mut Vec<Effect<Msg>>| {
                if let Input::Message { msg, .. } = input {
                    out.push(Effect::Output(msg));
                    out.push(Effect::Stop);
                    out.push(Effect::Output(Msg::Command("after stop")));
                }
            }),
            4,
        )
        .unwrap();
    let mut sim = builder.simulate();
    sim.post(a, Msg::Value(1)).unwrap();
    sim.post(a, Msg::Value(2)).unwrap();
    assert!(sim.run());
    assert_eq!(
        sim.outputs(),
        vec![Msg::Value(1)],
        "the queued Value(2) is dropped"
    );
    assert_eq!(sim.exit(a), Some(Exit::Stopped));
    assert_eq!(
        sim.post(a, Msg::Value(3)).unwrap_err().reason,
        Refused::Stopped
    );
}

#[test]
fn a_drain_finishes_queued_work_and_the_work_it_causes_then_stops_everyone() {
    let mut builder = Builder::new();
    let sink = builder.spawn(recorder(ActorId(0)), 64).unwrap();
    let relay = builder
        .spawn(
            Script(
                move |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| match input {
                    Input::Start => out.push(Effect::Schedule {
                        timer: TimerId(0),
                        after_ticks: 1,
                    }),
                    Input::Message { msg, .. } => out.push(Effect::Post { to: sink, msg }),
                    Input::Timer(_) => out.push(Effect::Output(Msg::Command("relay timer"))),
                    Input::Drain => {
                        out.push(Effect::Post {
                            to: sink,
                            msg: Msg::Command("relay drained"),
                        });
                        // Ignored: a draining system keeps no timers.
                        out.push(Effect::Schedule {
                            timer: TimerId(1),
                            after_ticks: 1,
                        });
                    }
                    _ => {}
                },
            ),
            64,
        )
        .unwrap();
    let mut sim = builder.simulate();
    for i in 0..10 {
        sim.post(relay, Msg::Value(i)).unwrap();
    }
    let report = sim.drain().unwrap();
    assert!(sim.advance(100));
    let outputs = sim.outputs();
    assert!(!outputs.contains(&Msg::Command("relay timer")));
    let seen = seen_by(&outputs, sink);
    assert_eq!(seen.first().map(String::as_str), Some("start"));
    assert_eq!(
        seen.iter()
            .filter(|s| s.starts_with("message Value"))
            .count(),
        10
    );
    assert!(seen.contains(&"message Command(\"relay drained\") from Some(ActorId(1))".to_owned()));
    assert_eq!(seen.iter().filter(|s| *s == "drain").count(), 1);
    assert_eq!(
        report.exits,
        vec![(sink, Exit::Drained), (relay, Exit::Drained)]
    );
    assert_eq!(sim.lifecycle(relay), Some(Lifecycle::Stopped));
    assert_eq!(
        sim.post(sink, Msg::Value(0)).unwrap_err().reason,
        Refused::Draining
    );
}

#[test]
fn automata_that_never_go_idle_make_run_and_drain_report_busy() {
    let mut builder = Builder::new();
    let a = builder.spawn(ping_pong(u64::MAX, ActorId(1)), 2).unwrap();
    builder.spawn(ping_pong(u64::MAX, ActorId(0)), 2).unwrap();
    let mut sim = builder.simulate();
    sim.post(a, Msg::Value(0)).unwrap();
    assert!(!sim.run());
    assert!(matches!(sim.drain(), Err(DrainError::Busy { .. })));
}

#[test]
fn bad_configurations_are_refused_with_what_was_wrong() {
    let mut builder: Builder<Msg> = Builder::new();
    let err = builder.spawn(recorder(ActorId(0)), 0).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("inbox of actor 0 capacity 0 is outside 1..={INBOX_CAPACITY_MAX} messages")
    );
    assert!(matches!(
        builder.spawn(recorder(ActorId(0)), INBOX_CAPACITY_MAX + 1),
        Err(BuildError::Capacity { .. })
    ));
    assert!(builder.outbox_capacity(0).is_err());
    assert!(matches!(
        Builder::<Msg>::new().start_threads(0, rsm_actor::Clock::Manual(Default::default())),
        Err(BuildError::Workers { workers: 0, .. })
    ));
    assert!(matches!(
        Builder::<Msg>::new().start_threads(
            1,
            rsm_actor::Clock::Real {
                tick: std::time::Duration::ZERO
            }
        ),
        Err(BuildError::ZeroTick)
    ));
}

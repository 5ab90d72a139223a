//! The tokio executor runs the same automata unchanged: messages, timers on tokio's (paused)
//! clock, waiting posts, panics and drain.

#![cfg(feature = "tokio")]

mod common;

use common::{Msg, Script, check_panic_isolation, fragile_and_sturdy, recorder, seen_by};
use rsm_actor::{ActorId, Builder, Clock, Effect, Exit, Input, Refused, TimerId};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn automata_run_on_tokio_tasks_with_timers_on_tokio_time() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let mut builder = Builder::new();
    let ticker = builder
        .spawn(
            Script(
                |input: Input<Msg>, out: &mut Vec<Effect<Msg>>| match input {
                    Input::Start => out.push(Effect::Schedule {
                        timer: TimerId(0),
                        after_ticks: 1000,
                    }),
                    Input::Timer(t) => out.push(Effect::Output(Msg::Value(t.0 + 1))),
                    Input::Message { msg, .. } => out.push(Effect::Post {
                        to: ActorId(1),
                        msg,
                    }),
                    _ => {}
                },
            ),
            4,
        )
        .unwrap();
    let sink = builder.spawn(recorder(ActorId(1)), 4).unwrap();
    let mut system = builder
        .start_tokio(
            2,
            Clock::Real {
                tick: Duration::from_secs(1),
            },
            runtime.handle(),
        )
        .unwrap();
    runtime.block_on(async {
        for i in 0..10 {
            system.post_async(ticker, Msg::Value(i)).await.unwrap();
        }
        let mut outputs = Vec::new();
        // 1000 ticks of one second each pass in an instant of paused time.
        while !outputs.contains(&Msg::Value(1)) {
            outputs.push(system.recv_async().await);
        }
        let seen = seen_by(&outputs, sink);
        assert_eq!(seen.len(), 11, "start and ten messages: {seen:?}");
        assert_eq!(seen[10], "message Value(9) from Some(ActorId(0))");
        let report = system.drain_async(PATIENCE).await.unwrap();
        assert_eq!(
            report.exits,
            vec![(ticker, Exit::Drained), (sink, Exit::Drained)]
        );
        assert_eq!(
            system
                .post_async(sink, Msg::Value(0))
                .await
                .unwrap_err()
                .reason,
            Refused::Draining
        );
    });
}

#[test]
fn a_panicking_task_automaton_stops_alone_and_a_blocking_drain_works() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let mut builder = Builder::new();
    let actors = fragile_and_sturdy(&mut builder, "fragile broke on tokio");
    let tick = Duration::from_millis(1);
    let mut system = builder
        .start_tokio(1, Clock::Real { tick }, runtime.handle())
        .unwrap();
    check_panic_isolation(&mut system, actors, "fragile broke on tokio");
}

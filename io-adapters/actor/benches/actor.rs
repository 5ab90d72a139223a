//! rsm-actor side by side with the same programs on `std::sync::mpsc` and `tokio::sync::mpsc`.
//!
//! Run: `cargo bench -p rsm-actor --bench actor -- --warm-up-time 1 --measurement-time 3`.
//!
//! - `stream`: a producer on one thread sends `STREAM_MESSAGES` numbers through a queue of
//!   `QUEUE_CAPACITY` places to a consumer on another thread, which adds them up and says when
//!   it has them all. rsm-actor: two automata on two worker threads; the consumer returns
//!   credit every half queue, so the producer never overfills the inbox. std: a
//!   `sync_channel` and two threads. tokio: a `channel` and two tasks on a runtime with two
//!   worker threads. Figures are messages per second.
//! - `timers`: schedule `TIMERS` timers a second (or 1000 ticks) ahead, then cancel them all.
//!   rsm-actor: one automaton's effects on the simulated executor (so the cost is the worker's
//!   wheel, not a thread hop). std: the usual binary heap with cancellation by a map of live
//!   timers (cancelled entries are skipped when they come up, which the iteration also pays).
//!   tokio: a `tokio::time::sleep` polled once (registered in tokio's wheel), then dropped.
//!   Figures are schedule/cancel pairs per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rsm_actor::{ActorId, Automaton, Builder, Clock, Effect, Input, ManualClock, TimerId};
use std::collections::{BinaryHeap, HashMap};
use std::hint::black_box;
use std::time::Duration;

const STREAM_MESSAGES: u64 = 100_000;
const QUEUE_CAPACITY: usize = 1024;
const TIMERS: u64 = 1_000;

#[derive(Debug)]
enum Stream {
    /// From outside to the producer: send this many.
    Go(u64),
    /// Producer to consumer.
    Item(u64),
    /// Consumer to producer: this many more may be sent.
    Credit(u64),
    /// Consumer to outside: the sum of a run.
    Sum(u64),
}

const PRODUCER: ActorId = ActorId(0);
const CONSUMER: ActorId = ActorId(1);

struct Producer {
    left: u64,
    credit: u64,
    next: u64,
}

impl Producer {
    fn send(&mut self, out: &mut Vec<Effect<Stream>>) {
        while self.left > 0 && self.credit > 0 {
            out.push(Effect::Post {
                to: CONSUMER,
                msg: Stream::Item(self.next),
            });
            self.next += 1;
            self.left -= 1;
            self.credit -= 1;
        }
    }
}

impl Automaton for Producer {
    type Message = Stream;

    fn step(&mut self, input: Input<Stream>, out: &mut Vec<Effect<Stream>>) {
        match input {
            Input::Message {
                msg: Stream::Go(n), ..
            } => {
                self.left = n;
                self.next = 0;
            }
            Input::Message {
                msg: Stream::Credit(n),
                ..
            } => self.credit += n,
            // Credit can run ahead of the places the consumer's worker has given back (it
            // returns them after its batch): a refused item is simply sent again.
            Input::Undelivered { msg, .. } => out.push(Effect::Post { to: CONSUMER, msg }),
            _ => {}
        }
        self.send(out);
    }
}

struct Consumer {
    expect: u64,
    seen: u64,
    sum: u64,
    uncredited: u64,
}

impl Automaton for Consumer {
    type Message = Stream;

    fn step(&mut self, input: Input<Stream>, out: &mut Vec<Effect<Stream>>) {
        if let Input::Message {
            msg: Stream::Item(n),
            ..
        } = input
        {
            self.sum = self.sum.wrapping_add(n);
            self.seen += 1;
            // Credit is counted across runs, so none is lost when a run ends mid-way.
            self.uncredited += 1;
            if self.uncredited == QUEUE_CAPACITY as u64 / 2 {
                self.uncredited = 0;
                out.push(Effect::Post {
                    to: PRODUCER,
                    msg: Stream::Credit(QUEUE_CAPACITY as u64 / 2),
                });
            }
            if self.seen == self.expect {
                out.push(Effect::Output(Stream::Sum(self.sum)));
                self.seen = 0;
                self.sum = 0;
            }
        }
    }
}

fn expected_sum(n: u64) -> u64 {
    n * (n - 1) / 2
}

fn stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(STREAM_MESSAGES));

    // rsm-actor: two automata, two worker threads.
    {
        let mut builder = Builder::new();
        builder
            .spawn(
                Producer {
                    left: 0,
                    credit: QUEUE_CAPACITY as u64,
                    next: 0,
                },
                16,
            )
            .unwrap();
        builder
            .spawn(
                Consumer {
                    expect: STREAM_MESSAGES,
                    seen: 0,
                    sum: 0,
                    uncredited: 0,
                },
                QUEUE_CAPACITY,
            )
            .unwrap();
        let mut system = builder
            .start_threads(2, Clock::Manual(ManualClock::new()))
            .unwrap();
        group.bench_function("rsm-actor", |b| {
            b.iter(|| {
                system.post(PRODUCER, Stream::Go(STREAM_MESSAGES)).unwrap();
                match system.recv_timeout(Duration::from_secs(60)) {
                    Some(Stream::Sum(sum)) => assert_eq!(sum, expected_sum(STREAM_MESSAGES)),
                    other => panic!("unexpected {other:?}"),
                }
            })
        });
        system.drain(Duration::from_secs(60)).unwrap();
    }

    // std::sync::mpsc: the same program on two threads.
    {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<u64>();
        let (item_tx, item_rx) = std::sync::mpsc::sync_channel::<u64>(QUEUE_CAPACITY);
        let (sum_tx, sum_rx) = std::sync::mpsc::channel::<u64>();
        let producer = std::thread::spawn(move || {
            for n in go_rx {
                for i in 0..n {
                    item_tx.send(i).unwrap();
                }
            }
        });
        let consumer = std::thread::spawn(move || {
            let (mut seen, mut sum) = (0, 0_u64);
            for n in item_rx {
                sum = sum.wrapping_add(n);
                seen += 1;
                if seen == STREAM_MESSAGES {
                    sum_tx.send(sum).unwrap();
                    (seen, sum) = (0, 0);
                }
            }
        });
        group.bench_function("std-mpsc", |b| {
            b.iter(|| {
                go_tx.send(STREAM_MESSAGES).unwrap();
                assert_eq!(sum_rx.recv().unwrap(), expected_sum(STREAM_MESSAGES));
            })
        });
        drop(go_tx);
        producer.join().unwrap();
        consumer.join().unwrap();
    }

    // tokio::sync::mpsc: the same program as two tasks on two runtime threads.
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let (go_tx, mut go_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let (item_tx, mut item_rx) = tokio::sync::mpsc::channel::<u64>(QUEUE_CAPACITY);
        let (sum_tx, sum_rx) = std::sync::mpsc::channel::<u64>();
        runtime.spawn(async move {
            while let Some(n) = go_rx.recv().await {
                for i in 0..n {
                    item_tx.send(i).await.unwrap();
                }
            }
        });
        runtime.spawn(async move {
            let (mut seen, mut sum) = (0, 0_u64);
            while let Some(n) = item_rx.recv().await {
                sum = sum.wrapping_add(n);
                seen += 1;
                if seen == STREAM_MESSAGES {
                    sum_tx.send(sum).unwrap();
                    (seen, sum) = (0, 0);
                }
            }
        });
        group.bench_function("tokio-mpsc", |b| {
            b.iter(|| {
                go_tx.send(STREAM_MESSAGES).unwrap();
                assert_eq!(sum_rx.recv().unwrap(), expected_sum(STREAM_MESSAGES));
            })
        });
        drop(go_tx);
        runtime.shutdown_timeout(Duration::from_secs(10));
    }
    group.finish();
}

/// On `Go(n)`: schedules timers 0..n, 1000 ticks and more ahead, then cancels them all.
struct TimerChurn;

impl Automaton for TimerChurn {
    type Message = Stream;

    fn step(&mut self, input: Input<Stream>, out: &mut Vec<Effect<Stream>>) {
        if let Input::Message {
            msg: Stream::Go(n), ..
        } = input
        {
            for i in 0..n {
                out.push(Effect::Schedule {
                    timer: TimerId(i),
                    after_ticks: 1000 + i % 64,
                });
            }
            for i in 0..n {
                out.push(Effect::Cancel(TimerId(i)));
            }
        }
    }
}

fn timers(c: &mut Criterion) {
    let mut group = c.benchmark_group("timers");
    group.throughput(Throughput::Elements(TIMERS));

    let mut builder = Builder::new();
    let churn = builder.spawn(TimerChurn, 4).unwrap();
    let mut sim = builder.simulate();
    group.bench_function("rsm-actor", |b| {
        b.iter(|| {
            sim.post(churn, Stream::Go(TIMERS)).unwrap();
            assert!(sim.run());
        })
    });

    // std: a binary heap of (deadline, id), a map of live timers; the clock then moves past
    // every deadline, popping (and skipping) the cancelled entries.
    {
        let mut heap: BinaryHeap<std::cmp::Reverse<(u64, u64)>> = BinaryHeap::new();
        let mut live: HashMap<u64, u64> = HashMap::new();
        let mut now = 0_u64;
        group.bench_function("std-heap", |b| {
            b.iter(|| {
                for i in 0..TIMERS {
                    let deadline = now + 1000 + i % 64;
                    heap.push(std::cmp::Reverse((deadline, i)));
                    live.insert(i, deadline);
                }
                for i in 0..TIMERS {
                    live.remove(&i);
                }
                now += 2000;
                while let Some(std::cmp::Reverse((deadline, id))) = heap.peek().copied() {
                    if deadline > now {
                        break;
                    }
                    heap.pop();
                    black_box(live.get(&id) == Some(&deadline));
                }
            })
        });
    }

    // tokio: a sleep registered in tokio's timer wheel by one poll, then dropped (cancelled).
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let waker = std::task::Waker::noop();
        group.bench_function("tokio-sleep", |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut sleeps = Vec::with_capacity(TIMERS as usize);
                    for i in 0..TIMERS {
                        let mut sleep =
                            Box::pin(tokio::time::sleep(Duration::from_millis(1000 + i % 64)));
                        let mut cx = std::task::Context::from_waker(waker);
                        assert!(sleep.as_mut().poll(&mut cx).is_pending());
                        sleeps.push(sleep);
                    }
                    drop(black_box(sleeps));
                })
            })
        });
    }
    group.finish();
}

use std::future::Future;

criterion_group!(actor_benches, stream, timers);
criterion_main!(actor_benches);

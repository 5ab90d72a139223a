//! A rate-limited work queue of three automata on the thread executor.
//!
//! - `Intake` takes jobs from outside and passes them on; when the limiter's inbox is full the
//!   job comes back to it (`Undelivered`), and it keeps it in a bounded backlog that it offers
//!   again every tick (it reports a job rejected only when the backlog is full).
//! - `Limiter` keeps a bounded queue and a token bucket refilled by a timer every tick: it
//!   hands the worker at most `jobs_per_tick` jobs per tick. When the system drains, it hands
//!   over everything still queued, since no timer will fire again.
//! - `Cruncher` does the work (a small computation) and outputs the result with the tick the
//!   job was released at.
//!
//! Run with `cargo run -p rsm-actor --example work_queue`. The test at the bottom runs the
//! same three automata on the simulated clock and checks the rate limit tick by tick.

use rsm_actor::{ActorId, Automaton, Builder, Clock, Effect, Input, TimerId};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The messages of the work queue.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Work {
    /// A job from outside.
    Job(u64),
    /// A job released by the limiter at its tick `tick`.
    Run { job: u64, tick: u64 },
    /// Output: a job's result.
    Done { job: u64, result: u64, tick: u64 },
    /// Output: a job the queue had no room for.
    Rejected(u64),
}

const INTAKE: ActorId = ActorId(0);
const LIMITER: ActorId = ActorId(1);
const CRUNCHER: ActorId = ActorId(2);

/// Holds jobs the limiter had no room for and offers them again every tick, oldest first.
struct Intake {
    backlog: VecDeque<u64>,
    backlog_jobs_max: usize,
    retrying: bool,
    draining: bool,
}

const RETRY: TimerId = TimerId(0);

impl Intake {
    fn new(backlog_jobs_max: usize) -> Intake {
        Intake {
            backlog: VecDeque::new(),
            backlog_jobs_max,
            retrying: false,
            draining: false,
        }
    }

    fn offer(&mut self, job: u64, out: &mut Vec<Effect<Work>>) {
        out.push(Effect::Post {
            to: LIMITER,
            msg: Work::Job(job),
        });
    }
}

impl Automaton for Intake {
    type Message = Work;

    fn step(&mut self, input: Input<Work>, out: &mut Vec<Effect<Work>>) {
        match input {
            // Behind a backlog, a new job waits its turn.
            Input::Message {
                msg: Work::Job(job),
                ..
            } if self.backlog.is_empty() => self.offer(job, out),
            Input::Message {
                msg: Work::Job(job),
                ..
            } => {
                if self.backlog.len() < self.backlog_jobs_max {
                    self.backlog.push_back(job);
                } else {
                    out.push(Effect::Output(Work::Rejected(job)));
                }
            }
            // The limiter's inbox was full: while draining (no timers) offer it again at
            // once; otherwise keep it, in order (refusals come back in the order of the
            // posts, before any new job), and try again next tick.
            Input::Undelivered {
                msg: Work::Job(job),
                ..
            } if self.draining => self.offer(job, out),
            Input::Undelivered {
                msg: Work::Job(job),
                ..
            } => {
                self.backlog.push_back(job);
                if !self.retrying {
                    self.retrying = true;
                    out.push(Effect::Schedule {
                        timer: RETRY,
                        after_ticks: 1,
                    });
                }
            }
            Input::Timer(RETRY) => {
                self.retrying = false;
                for job in std::mem::take(&mut self.backlog) {
                    self.offer(job, out);
                }
            }
            Input::Drain => {
                self.draining = true;
                for job in std::mem::take(&mut self.backlog) {
                    self.offer(job, out);
                }
            }
            _ => {}
        }
    }
}

const REFILL: TimerId = TimerId(1);

struct Limiter {
    jobs_per_tick: u64,
    queue_jobs_max: usize,
    queue: VecDeque<u64>,
    tokens: u64,
    tick: u64,
    draining: bool,
}

impl Limiter {
    fn new(jobs_per_tick: u64, queue_jobs_max: usize) -> Limiter {
        Limiter {
            jobs_per_tick,
            queue_jobs_max,
            queue: VecDeque::new(),
            tokens: jobs_per_tick,
            tick: 0,
            draining: false,
        }
    }

    /// Releases queued jobs while tokens last (all of them once draining).
    fn release(&mut self, out: &mut Vec<Effect<Work>>) {
        while self.draining || self.tokens > 0 {
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            self.tokens = self.tokens.saturating_sub(1);
            out.push(Effect::Post {
                to: CRUNCHER,
                msg: Work::Run {
                    job,
                    tick: self.tick,
                },
            });
        }
    }
}

impl Automaton for Limiter {
    type Message = Work;

    fn step(&mut self, input: Input<Work>, out: &mut Vec<Effect<Work>>) {
        match input {
            Input::Start => out.push(Effect::Schedule {
                timer: REFILL,
                after_ticks: 1,
            }),
            Input::Timer(REFILL) => {
                self.tick += 1;
                self.tokens = self.jobs_per_tick;
                out.push(Effect::Schedule {
                    timer: REFILL,
                    after_ticks: 1,
                });
            }
            Input::Message {
                msg: Work::Job(job),
                ..
            } => {
                if self.queue.len() < self.queue_jobs_max {
                    self.queue.push_back(job);
                } else {
                    out.push(Effect::Output(Work::Rejected(job)));
                }
            }
            // The cruncher's inbox was full: the job goes back to the front, its token too.
            Input::Undelivered {
                msg: Work::Run { job, .. },
                ..
            } => {
                self.queue.push_front(job);
                self.tokens += 1;
            }
            Input::Drain => self.draining = true,
            _ => {}
        }
        self.release(out);
    }
}

struct Cruncher;

impl Automaton for Cruncher {
    type Message = Work;

    fn step(&mut self, input: Input<Work>, out: &mut Vec<Effect<Work>>) {
        if let Input::Message {
            msg: Work::Run { job, tick },
            ..
        } = input
        {
            // The work: the number of Collatz steps from the job's number down to 1.
            let (mut n, mut steps) = (job.max(1), 0);
            while n != 1 {
                n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
                steps += 1;
            }
            out.push(Effect::Output(Work::Done {
                job,
                result: steps,
                tick,
            }));
        }
    }
}

/// The three automata, in address order.
fn work_queue(jobs_per_tick: u64, queue_jobs_max: usize) -> Builder<Work> {
    let mut builder = Builder::new();
    let spawned = [
        builder.spawn(Intake::new(1_000), 64),
        builder.spawn(Limiter::new(jobs_per_tick, queue_jobs_max), 64),
        builder.spawn(Cruncher, 2 * jobs_per_tick as usize),
    ];
    let ids: Vec<ActorId> = spawned
        .into_iter()
        .map(|s| s.expect("valid capacities"))
        .collect();
    assert_eq!(ids, vec![INTAKE, LIMITER, CRUNCHER]);
    builder
}

fn main() {
    const JOBS: u64 = 2_000;
    let tick = Duration::from_millis(1);
    let mut builder = work_queue(50, 500);
    builder
        .outbox_capacity(2 * JOBS as usize)
        .expect("a valid capacity");
    let mut system = builder
        .start_threads(3, Clock::Real { tick })
        .expect("the threads start");
    let started = Instant::now();
    let (mut done, mut rejected, mut last_tick) = (0, 0, 0);
    for job in 1..=JOBS {
        // Waits while the intake's inbox is full: the caller's choice of backpressure.
        system
            .post(INTAKE, Work::Job(job))
            .expect("the system is running");
        while let Some(output) = system.try_recv() {
            match output {
                Work::Done { tick, .. } => {
                    done += 1;
                    last_tick = last_tick.max(tick);
                }
                Work::Rejected(_) => rejected += 1,
                _ => {}
            }
        }
    }
    while done + rejected < JOBS {
        match system.recv_timeout(Duration::from_secs(10)) {
            Some(Work::Done { tick, .. }) => {
                done += 1;
                last_tick = last_tick.max(tick);
            }
            Some(Work::Rejected(_)) => rejected += 1,
            Some(_) => {}
            None => break,
        }
    }
    let report = system
        .drain(Duration::from_secs(10))
        .expect("the queue drains");
    println!(
        "{done} jobs done, {rejected} rejected, released over {last_tick} limiter ticks \
         (50 per tick of {tick:?}) in {:.1?}",
        started.elapsed()
    );
    for (id, exit) in report.exits {
        println!("{id}: {exit}");
    }
}

#[cfg(test)]
mod tests {
    use super::{CRUNCHER, INTAKE, LIMITER, Work, work_queue};
    use rsm_actor::Exit;
    use std::collections::BTreeMap;

    fn done_per_tick(outputs: &[Work]) -> BTreeMap<u64, u64> {
        let mut per_tick = BTreeMap::new();
        for output in outputs {
            if let Work::Done { tick, .. } = output {
                *per_tick.entry(*tick).or_default() += 1;
            }
        }
        per_tick
    }

    #[test]
    fn the_limiter_releases_at_most_its_rate_per_tick_and_rejects_beyond_its_queue() {
        let mut sim = work_queue(5, 20).simulate();
        // 60 jobs at tick 0: the intake's inbox (64) takes them all; the limiter releases 5
        // at once (its first tokens), queues the next 20 and rejects the other 35.
        for job in 1..=60 {
            sim.post(INTAKE, Work::Job(job)).unwrap();
        }
        assert!(sim.advance(10));
        let outputs = sim.outputs();
        let rejected: Vec<u64> = outputs
            .iter()
            .filter_map(|o| match o {
                Work::Rejected(job) => Some(*job),
                _ => None,
            })
            .collect();
        assert_eq!(rejected, (26..=60).collect::<Vec<_>>());
        let per_tick = done_per_tick(&outputs);
        assert_eq!(per_tick, (0..5).map(|tick| (tick, 5)).collect());
        // Jobs are released in order, five per tick; 7 takes 16 steps down to 1.
        assert!(outputs.contains(&Work::Done {
            job: 7,
            result: 16,
            tick: 1
        }));
    }

    #[test]
    fn a_drain_releases_the_queued_jobs_at_once() {
        let mut sim = work_queue(2, 100).simulate();
        for job in 1..=30 {
            sim.post(INTAKE, Work::Job(job)).unwrap();
        }
        assert!(sim.advance(3));
        let report = sim.drain().unwrap();
        assert_eq!(
            report.exits,
            vec![
                (INTAKE, Exit::Drained),
                (LIMITER, Exit::Drained),
                (CRUNCHER, Exit::Drained)
            ]
        );
        let outputs = sim.outputs();
        let per_tick = done_per_tick(&outputs);
        assert_eq!(
            per_tick.values().sum::<u64>(),
            30,
            "every job is done: {per_tick:?}"
        );
        // Ticks 0 to 3 released 2 each; the drain released the other 22 at tick 3.
        assert_eq!(per_tick.get(&3), Some(&(2 + 22)));
    }

    #[test]
    fn the_example_runs_on_threads() {
        super::main();
    }
}

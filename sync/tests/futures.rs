//! The async acquisitions (`Semaphore::acquire_async`, `Event::wait_async`,
//! `Gate::pass_async`) driven by a hand-written executor: no runtime, just `poll` and wakers
//! that either count their wakes or unpark a thread.

use rsm_sync::{Event, Gate, Reset, Semaphore};
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread, parking between polls.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// Counts its wakes.
#[derive(Default)]
struct Counter(AtomicU32);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A future with a counting waker, polled by hand.
struct Probe<F> {
    future: Pin<Box<F>>,
    wakes: Arc<Counter>,
}

impl<F: Future> Probe<F> {
    fn new(future: F) -> Probe<F> {
        Probe {
            future: Box::pin(future),
            wakes: Arc::default(),
        }
    }

    fn poll(&mut self) -> Poll<F::Output> {
        let waker = Waker::from(Arc::clone(&self.wakes));
        self.future.as_mut().poll(&mut Context::from_waker(&waker))
    }

    fn wakes(&self) -> u32 {
        self.wakes.0.load(Ordering::Relaxed)
    }
}

#[test]
fn semaphore_future_resolves_at_once_when_permits_are_free() {
    let sem = Semaphore::new(3);
    let permit = block_on(sem.acquire_async(2));
    assert_eq!((permit.count(), sem.available()), (2, 1));
    drop(permit);
    assert_eq!(sem.available(), 3);
}

#[test]
fn semaphore_release_wakes_a_pending_future() {
    let sem = Semaphore::new(0);
    let mut probe = Probe::new(sem.acquire_async(1));
    assert!(probe.poll().is_pending());
    assert_eq!(probe.wakes(), 0);
    sem.release(1);
    assert_eq!(probe.wakes(), 1);
    let Poll::Ready(permit) = probe.poll() else {
        panic!("a released permit must resolve the woken future")
    };
    assert_eq!((permit.count(), sem.available()), (1, 0));
}

#[test]
fn dropping_a_pending_semaphore_future_takes_nothing() {
    let sem = Semaphore::new(1);
    let held = sem.acquire();
    let mut probe = Probe::new(sem.acquire_async(1));
    assert!(probe.poll().is_pending());
    drop(probe);
    drop(held);
    assert_eq!(sem.available(), 1);
    assert!(sem.try_acquire().is_some());
}

/// Two futures wait for something one release hands to one of them; the woken one is dropped
/// before it is polled again, and its wake must reach the other.
fn a_woken_future_dropped_unpolled_passes_its_wake_on<F: Future>(
    wait: impl Fn() -> F,
    release_one: impl Fn(),
) {
    let mut first = Probe::new(wait());
    let mut second = Probe::new(wait());
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    release_one();
    assert_eq!(
        (first.wakes(), second.wakes()),
        (1, 0),
        "one release, one wake"
    );
    drop(first);
    assert_eq!(second.wakes(), 1, "the dropped future's wake went on");
    assert!(second.poll().is_ready());
}

#[test]
fn a_woken_semaphore_future_dropped_unpolled_passes_its_wake_on() {
    let sem = Semaphore::new(0);
    a_woken_future_dropped_unpolled_passes_its_wake_on(|| sem.acquire_async(1), || sem.release(1));
    assert_eq!(
        sem.available(),
        1,
        "the permit came back with the second future's output"
    );
}

#[test]
fn a_woken_event_future_dropped_unpolled_passes_the_signal_on() {
    let event = Event::new(Reset::Auto);
    a_woken_future_dropped_unpolled_passes_its_wake_on(|| event.wait_async(), || event.set());
    assert!(!event.is_set(), "the second future consumed the signal");
}

#[test]
fn a_release_wakes_every_future_when_one_wants_several_permits() {
    let sem = Semaphore::new(0);
    let mut many = Probe::new(sem.acquire_async(2));
    let mut one = Probe::new(sem.acquire_async(1));
    assert!(many.poll().is_pending());
    assert!(one.poll().is_pending());
    sem.release(1);
    assert_eq!((many.wakes(), one.wakes()), (1, 1));
    assert!(many.poll().is_pending(), "one permit is not two");
    assert!(one.poll().is_ready());
    sem.release(2);
    assert!(many.poll().is_ready());
}

#[test]
fn auto_event_signal_wakes_one_future_and_is_consumed() {
    let event = Event::new(Reset::Auto);
    let mut first = Probe::new(event.wait_async());
    let mut second = Probe::new(event.wait_async());
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    event.set();
    assert_eq!((first.wakes(), second.wakes()), (1, 0));
    assert!(first.poll().is_ready());
    assert!(!event.is_set(), "the future consumed the signal");
    assert!(second.poll().is_pending());
    event.set();
    assert_eq!(second.wakes(), 1);
    assert!(second.poll().is_ready());
}

#[test]
fn manual_event_signal_wakes_every_future_even_if_reset_at_once() {
    let event = Event::new(Reset::Manual);
    let mut probes: Vec<_> = (0..8).map(|_| Probe::new(event.wait_async())).collect();
    for probe in &mut probes {
        assert!(probe.poll().is_pending());
    }
    event.set();
    event.reset();
    for probe in &mut probes {
        assert_eq!(probe.wakes(), 1);
        assert!(
            probe.poll().is_ready(),
            "a future released by a signal passes"
        );
    }
    assert!(Probe::new(event.wait_async()).poll().is_pending());
}

#[test]
fn gate_future_passes_an_open_gate_and_waits_at_a_closed_one() {
    let gate = Gate::new(true);
    block_on(gate.pass_async());
    gate.close();
    let mut probe = Probe::new(gate.pass_async());
    assert!(probe.poll().is_pending());
    assert!(probe.poll().is_pending(), "a second poll re-registers");
    gate.open();
    assert_eq!(
        probe.wakes(),
        1,
        "one entry per future, however often it is polled"
    );
    assert!(probe.poll().is_ready());
}

#[test]
fn many_threads_of_futures_share_a_semaphore_with_blocking_threads() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 2_000;
    const PERMITS: u32 = 2;
    let sem = Semaphore::new(PERMITS);
    let inside = AtomicU32::new(0);
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (sem, inside, done) = (&sem, &inside, &done);
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    let permit = if t % 2 == 0 {
                        block_on(sem.acquire_async(1))
                    } else {
                        sem.acquire()
                    };
                    assert!(inside.fetch_add(1, Ordering::Relaxed) < PERMITS);
                    inside.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                }
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), THREADS);
    assert_eq!(sem.available(), PERMITS);
}

#[test]
fn one_thread_polls_many_pending_futures_while_another_releases() {
    const FUTURES: u32 = 100;
    let sem = Semaphore::new(0);
    let permits = std::thread::scope(|s| {
        let mut pending: Vec<_> = (0..FUTURES)
            .map(|_| Box::pin(sem.acquire_async(1)))
            .collect();
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut permits = Vec::new();
        pending.retain_mut(|f| f.as_mut().poll(&mut cx).is_pending());
        assert_eq!(pending.len(), FUTURES as usize);
        s.spawn(|| {
            for _ in 0..FUTURES {
                sem.release(1);
            }
        });
        while !pending.is_empty() {
            pending.retain_mut(|f| match f.as_mut().poll(&mut cx) {
                Poll::Ready(permit) => {
                    permits.push(permit);
                    false
                }
                Poll::Pending => true,
            });
            if !pending.is_empty() {
                std::thread::park();
            }
        }
        permits.len()
    });
    assert_eq!(permits, FUTURES as usize);
    assert_eq!(sem.available(), FUTURES);
}

#[test]
fn futures_cancelled_at_random_leave_the_event_working() {
    const ROUNDS: u32 = 300;
    let event = Event::new(Reset::Auto);
    let received = AtomicU32::new(0);
    std::thread::scope(|s| {
        for t in 0..3_u32 {
            let (event, received) = (&event, &received);
            s.spawn(move || {
                let mut n = t;
                while received.load(Ordering::Relaxed) < ROUNDS {
                    n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let mut probe = Probe::new(event.wait_async());
                    if probe.poll().is_ready() {
                        received.fetch_add(1, Ordering::Relaxed);
                    } else if n % 3 == 0 {
                        // Cancelled while pending, possibly after being woken.
                        drop(probe);
                    } else if event.wait_timeout(std::time::Duration::from_millis(1)) {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while received.load(Ordering::Relaxed) < ROUNDS {
            event.set();
            std::thread::yield_now();
        }
    });
    // Every cancelled future left the waker list: a new one waits, and one signal reaches it.
    event.reset();
    let mut probe = Probe::new(event.wait_async());
    assert!(probe.poll().is_pending());
    event.set();
    assert_eq!(probe.wakes(), 1);
    assert!(probe.poll().is_ready());
}

/// A waker that, when woken, polls a future of the same semaphore at once, as an executor
/// running tasks inline might: the future has to wait, so it takes the waker list's lock to
/// register, and again to leave when dropped.
struct PollsInline(Arc<Semaphore>, Arc<Counter>);

impl Wake for PollsInline {
    fn wake(self: Arc<Self>) {
        let mut inner = pin!(self.0.acquire_async(2));
        let pending = inner
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending();
        assert!(pending, "one released permit is not two");
        self.1.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_waker_may_poll_the_same_semaphore_while_it_runs() {
    let sem = Arc::new(Semaphore::new(0));
    let wakes = Arc::new(Counter::default());
    let waker = Waker::from(Arc::new(PollsInline(Arc::clone(&sem), Arc::clone(&wakes))));
    let mut outer = pin!(sem.acquire_async(1));
    assert!(
        outer
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    sem.release(1);
    assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
    assert!(
        outer
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
    );
}

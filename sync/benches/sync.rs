//! rsm-sync side by side with `std::sync`, `parking_lot` and `tokio::sync::Semaphore`.
//!
//! Run: `cargo bench -p rsm-sync --bench sync -- --warm-up-time 1 --measurement-time 2`.
//! Contended rows time one lock/unlock per iteration, summed over all threads, so lower is
//! better everywhere.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A mutex over a `u64`, as each implementation spells it.
trait BenchLock: Send + Sync + 'static {
    const NAME: &'static str;
    fn new() -> Self;
    fn with(&self, f: impl FnOnce(&mut u64));
}

impl BenchLock for rsm_sync::Lock<u64> {
    const NAME: &'static str = "rsm";
    fn new() -> Self {
        rsm_sync::Lock::new(0)
    }
    fn with(&self, f: impl FnOnce(&mut u64)) {
        f(&mut self.lock());
    }
}

impl BenchLock for std::sync::Mutex<u64> {
    const NAME: &'static str = "std";
    fn new() -> Self {
        std::sync::Mutex::new(0)
    }
    fn with(&self, f: impl FnOnce(&mut u64)) {
        f(&mut self.lock().unwrap());
    }
}

impl BenchLock for parking_lot::Mutex<u64> {
    const NAME: &'static str = "parking_lot";
    fn new() -> Self {
        parking_lot::Mutex::new(0)
    }
    fn with(&self, f: impl FnOnce(&mut u64)) {
        f(&mut self.lock());
    }
}

/// A reader-writer lock over a `u64`.
trait BenchRwLock: Send + Sync + 'static {
    const NAME: &'static str;
    fn new() -> Self;
    fn read(&self) -> u64;
}

impl BenchRwLock for rsm_sync::RwLock<u64> {
    const NAME: &'static str = "rsm";
    fn new() -> Self {
        rsm_sync::RwLock::new(1)
    }
    fn read(&self) -> u64 {
        *self.read()
    }
}

impl BenchRwLock for std::sync::RwLock<u64> {
    const NAME: &'static str = "std";
    fn new() -> Self {
        std::sync::RwLock::new(1)
    }
    fn read(&self) -> u64 {
        *self.read().unwrap()
    }
}

impl BenchRwLock for parking_lot::RwLock<u64> {
    const NAME: &'static str = "parking_lot";
    fn new() -> Self {
        parking_lot::RwLock::new(1)
    }
    fn read(&self) -> u64 {
        *self.read()
    }
}

/// Work done inside a "long" critical section: a short dependent arithmetic chain.
fn long_section(value: &mut u64) {
    let mut x = *value;
    for _ in 0..64 {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    *value = x;
}

fn lock_uncontended<L: BenchLock>(c: &mut Criterion) {
    let lock = L::new();
    c.bench_function(&format!("lock_uncontended/{}", L::NAME), |b| {
        b.iter(|| lock.with(|v| *v += 1))
    });
}

fn rwlock_read_uncontended<L: BenchRwLock>(c: &mut Criterion) {
    let lock = L::new();
    c.bench_function(&format!("rwlock_read_uncontended/{}", L::NAME), |b| {
        b.iter(|| black_box(lock.read()))
    });
}

/// `threads` threads share `iters` lock/unlock pairs; returns the wall time of the whole run.
fn contended_run<L: BenchLock>(threads: u64, iters: u64, long: bool) -> Duration {
    let lock = Arc::new(L::new());
    let start_line = Arc::new(std::sync::Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (lock, start_line) = (Arc::clone(&lock), Arc::clone(&start_line));
            std::thread::spawn(move || {
                start_line.wait();
                for _ in 0..iters / threads {
                    if long {
                        lock.with(long_section);
                    } else {
                        lock.with(|v| *v += 1);
                    }
                }
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    for handle in handles {
        handle.join().unwrap();
    }
    start.elapsed()
}

fn lock_contended<L: BenchLock>(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_contended");
    for threads in [2_u64, 4] {
        for (section, long) in [("short", false), ("long", true)] {
            let id = BenchmarkId::new(L::NAME, format!("{threads}threads_{section}"));
            group.bench_function(id, |b| {
                b.iter_custom(|iters| contended_run::<L>(threads, iters.max(threads), long))
            });
        }
    }
    group.finish();
}

/// Polls a future that is expected to be ready at once.
fn poll_once<F: std::future::Future>(future: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("an uncontended acquisition must not wait"),
    }
}

fn semaphore(c: &mut Criterion) {
    let mut group = c.benchmark_group("semaphore_acquire_release");
    let rsm = rsm_sync::Semaphore::new(4);
    group.bench_function("rsm", |b| b.iter(|| drop(black_box(rsm.acquire()))));
    let tokio = tokio::sync::Semaphore::new(4);
    group.bench_function("tokio", |b| {
        b.iter(|| drop(black_box(tokio.try_acquire().unwrap())))
    });
    group.finish();

    // The async acquisitions, uncontended: each future resolves on its first poll.
    let mut group = c.benchmark_group("semaphore_async_acquire_release");
    group.bench_function("rsm", |b| {
        b.iter(|| drop(black_box(poll_once(rsm.acquire_async(1)))))
    });
    group.bench_function("tokio", |b| {
        b.iter(|| drop(black_box(poll_once(tokio.acquire()).unwrap())))
    });
    group.finish();

    let mut group = c.benchmark_group("semaphore_contended");
    group.bench_function("rsm/4threads_2permits", |b| {
        b.iter_custom(|iters| {
            let sem = Arc::new(rsm_sync::Semaphore::new(2));
            let start = Instant::now();
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let sem = Arc::clone(&sem);
                    std::thread::spawn(move || {
                        for _ in 0..iters.max(4) / 4 {
                            drop(black_box(sem.acquire()));
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap();
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// Two threads bounce a signal back and forth; one iteration is one round trip.
trait PingPong: Send + Sync + 'static {
    const NAME: &'static str;
    fn new() -> Self;
    fn signal(&self);
    fn wait(&self);
}

impl PingPong for rsm_sync::Event {
    const NAME: &'static str = "rsm";
    fn new() -> Self {
        rsm_sync::Event::new(rsm_sync::Reset::Auto)
    }
    fn signal(&self) {
        self.set();
    }
    fn wait(&self) {
        rsm_sync::Event::wait(self);
    }
}

/// The usual auto-reset event over a mutex and a condition variable.
struct StdEvent(std::sync::Mutex<bool>, std::sync::Condvar);

impl PingPong for StdEvent {
    const NAME: &'static str = "std";
    fn new() -> Self {
        StdEvent(std::sync::Mutex::new(false), std::sync::Condvar::new())
    }
    fn signal(&self) {
        *self.0.lock().unwrap() = true;
        self.1.notify_one();
    }
    fn wait(&self) {
        let mut set = self.0.lock().unwrap();
        while !*set {
            set = self.1.wait(set).unwrap();
        }
        *set = false;
    }
}

struct ParkingLotEvent(parking_lot::Mutex<bool>, parking_lot::Condvar);

impl PingPong for ParkingLotEvent {
    const NAME: &'static str = "parking_lot";
    fn new() -> Self {
        ParkingLotEvent(parking_lot::Mutex::new(false), parking_lot::Condvar::new())
    }
    fn signal(&self) {
        *self.0.lock() = true;
        self.1.notify_one();
    }
    fn wait(&self) {
        let mut set = self.0.lock();
        while !*set {
            self.1.wait(&mut set);
        }
        *set = false;
    }
}

fn event_round_trip<E: PingPong>(c: &mut Criterion) {
    c.bench_function(&format!("event_round_trip/{}", E::NAME), |b| {
        b.iter_custom(|iters| {
            let ping = Arc::new(E::new());
            let pong = Arc::new(E::new());
            let echo = {
                let (ping, pong) = (Arc::clone(&ping), Arc::clone(&pong));
                std::thread::spawn(move || {
                    for _ in 0..iters {
                        ping.wait();
                        pong.signal();
                    }
                })
            };
            let start = Instant::now();
            for _ in 0..iters {
                ping.signal();
                pong.wait();
            }
            let elapsed = start.elapsed();
            echo.join().unwrap();
            elapsed
        })
    });
}

fn benches(c: &mut Criterion) {
    lock_uncontended::<rsm_sync::Lock<u64>>(c);
    lock_uncontended::<std::sync::Mutex<u64>>(c);
    lock_uncontended::<parking_lot::Mutex<u64>>(c);
    rwlock_read_uncontended::<rsm_sync::RwLock<u64>>(c);
    rwlock_read_uncontended::<std::sync::RwLock<u64>>(c);
    rwlock_read_uncontended::<parking_lot::RwLock<u64>>(c);
    lock_contended::<rsm_sync::Lock<u64>>(c);
    lock_contended::<std::sync::Mutex<u64>>(c);
    lock_contended::<parking_lot::Mutex<u64>>(c);
    semaphore(c);
    event_round_trip::<rsm_sync::Event>(c);
    event_round_trip::<StdEvent>(c);
    event_round_trip::<ParkingLotEvent>(c);
}

criterion_group!(sync_benches, benches);
criterion_main!(sync_benches);

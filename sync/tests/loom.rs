//! Model checking of every primitive with loom: every interleaving (up to the preemption
//! bound set by `make loom`) of small scenarios. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p rsm-sync --release --target-dir target/loom --test loom`.
//!
//! Shared data that a primitive is supposed to protect lives in a `loom::cell::UnsafeCell`, so
//! loom reports any access that the primitive failed to order. A lost wake-up shows up as a
//! deadlock, which loom also reports. Timed waits use the adversarial timeout model of the
//! crate's loom build: a timed sleep consumes a wake meant for another thread and then times
//! out.

#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::thread;
use rsm_sync::{
    Barrier, Drain, Event, Gate, Latch, Lock, Once, OnceCell, Reset, RwLock, Semaphore,
};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// A counter whose unsynchronized increments loom checks for races.
struct Racy(UnsafeCell<u32>);

// SAFETY: only used to let loom detect unsynchronized access; every access goes through
// loom's tracked cell, which reports a race instead of allowing one.
unsafe impl Sync for Racy {}

impl Racy {
    fn new() -> Racy {
        Racy(UnsafeCell::new(0))
    }

    fn bump(&self) {
        // SAFETY: the caller holds the primitive under test, which must exclude every other
        // access; if it does not, loom reports the race.
        self.0.with_mut(|n| unsafe { *n += 1 });
    }

    fn get(&self) -> u32 {
        // SAFETY: as in `bump`.
        self.0.with(|n| unsafe { *n })
    }
}

#[test]
fn lock_mutual_exclusion() {
    loom::model(|| {
        let lock = Arc::new(Lock::new(()));
        let data = Arc::new(Racy::new());
        let other = {
            let (lock, data) = (lock.clone(), data.clone());
            thread::spawn(move || {
                let _g = lock.lock();
                data.bump();
            })
        };
        {
            let _g = lock.lock();
            data.bump();
        }
        other.join().unwrap();
        let _g = lock.lock();
        assert_eq!(data.get(), 2);
    });
}

#[test]
fn lock_no_lost_wakeup_when_a_timed_waiter_gives_up() {
    loom::model(|| {
        let lock = Arc::new(Lock::new(0_u32));
        let holder = lock.lock();
        let timed = {
            let lock = lock.clone();
            thread::spawn(move || {
                if let Some(mut g) = lock.try_lock_for(Duration::from_secs(1)) {
                    *g += 1;
                }
            })
        };
        let blocking = {
            let lock = lock.clone();
            thread::spawn(move || *lock.lock() += 1)
        };
        drop(holder);
        // Barge in again: a woken waiter may now find the lock taken.
        drop(lock.lock());
        timed.join().unwrap();
        blocking.join().unwrap();
        assert!(*lock.lock() >= 1);
    });
}

#[test]
fn rwlock_writer_excludes_readers() {
    loom::model(|| {
        let lock = Arc::new(RwLock::new(()));
        let data = Arc::new(Racy::new());
        let writer = {
            let (lock, data) = (lock.clone(), data.clone());
            thread::spawn(move || {
                let _w = lock.write();
                data.bump();
            })
        };
        let seen = {
            let _r = lock.read();
            data.get()
        };
        writer.join().unwrap();
        assert!(seen <= 1);
        assert_eq!(data.get(), 1);
    });
}

#[test]
fn rwlock_writers_exclude_each_other() {
    loom::model(|| {
        let lock = Arc::new(RwLock::new(()));
        let data = Arc::new(Racy::new());
        let other = {
            let (lock, data) = (lock.clone(), data.clone());
            thread::spawn(move || {
                let _w = lock.write();
                data.bump();
            })
        };
        {
            let _w = lock.write();
            data.bump();
        }
        other.join().unwrap();
        assert_eq!(data.get(), 2);
    });
}

#[test]
fn rwlock_waiting_writer_and_reader_are_both_woken() {
    loom::model(|| {
        let lock = Arc::new(RwLock::new(0_u32));
        let reader_guard = lock.read();
        let writer = {
            let lock = lock.clone();
            thread::spawn(move || *lock.write() += 1)
        };
        let reader = {
            let lock = lock.clone();
            thread::spawn(move || *lock.read())
        };
        drop(reader_guard);
        writer.join().unwrap();
        let seen = reader.join().unwrap();
        assert!(seen <= 1);
        assert_eq!(*lock.read(), 1);
    });
}

#[test]
fn rwlock_timed_writer_gives_up_without_stranding_others() {
    loom::model(|| {
        let lock = Arc::new(RwLock::new(0_u32));
        let reader_guard = lock.read();
        let timed = {
            let lock = lock.clone();
            thread::spawn(move || {
                if let Some(mut w) = lock.try_write_for(Duration::from_secs(1)) {
                    *w += 1;
                }
            })
        };
        let reader = {
            let lock = lock.clone();
            thread::spawn(move || {
                let _ = *lock.read();
            })
        };
        drop(reader_guard);
        // Barge in: a woken writer may now find the lock taken.
        drop(lock.read());
        timed.join().unwrap();
        reader.join().unwrap();
        *lock.write() += 1;
    });
}

#[test]
fn once_runs_exactly_once() {
    loom::model(|| {
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicU32::new(0));
        let data = Arc::new(Racy::new());
        let init = |once: &Once, runs: &AtomicU32, data: &Racy| {
            once.call_once(|| {
                runs.fetch_add(1, Ordering::Relaxed);
                data.bump();
            });
            // The initializer's write is visible to every caller that returns.
            assert_eq!(data.get(), 1);
        };
        let other = {
            let (once, runs, data) = (once.clone(), runs.clone(), data.clone());
            thread::spawn(move || init(&once, &runs, &data))
        };
        init(&once, &runs, &data);
        other.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn once_cell_all_callers_see_the_winning_value() {
    loom::model(|| {
        let cell = Arc::new(OnceCell::new());
        let other = {
            let cell = cell.clone();
            thread::spawn(move || *cell.get_or_init(|| 1_u32))
        };
        let mine = *cell.get_or_init(|| 2_u32);
        let theirs = other.join().unwrap();
        assert_eq!(mine, theirs);
        assert_eq!(cell.get(), Some(&mine));
    });
}

#[test]
fn once_cell_failed_initializer_lets_a_waiter_retry() {
    loom::model(|| {
        let cell = Arc::new(OnceCell::<u32>::new());
        let failing = {
            let cell = cell.clone();
            thread::spawn(move || cell.get_or_try_init(|| Err::<u32, ()>(())).is_ok())
        };
        let value = *cell.get_or_init(|| 7);
        let failing_won = failing.join().unwrap();
        assert!(!failing_won || value == 7);
        assert_eq!(cell.get(), Some(&7));
    });
}

#[test]
fn semaphore_single_permit_excludes_and_wakes() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let data = Arc::new(Racy::new());
        let other = {
            let (sem, data) = (sem.clone(), data.clone());
            thread::spawn(move || {
                let _p = sem.acquire();
                data.bump();
            })
        };
        {
            let _p = sem.acquire();
            data.bump();
        }
        other.join().unwrap();
        assert_eq!(data.get(), 2);
        assert_eq!(sem.available(), 1);
    });
}

#[test]
fn semaphore_release_reaches_a_blocked_waiter_past_a_timed_one() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let timed = {
            let sem = sem.clone();
            thread::spawn(move || {
                if let Some(p) = sem.acquire_timeout(Duration::from_secs(1)) {
                    p.forget();
                    sem.release(1);
                }
            })
        };
        let blocking = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire().forget())
        };
        sem.release(1);
        // Barge in: a woken waiter may now find no permit.
        drop(sem.try_acquire());
        timed.join().unwrap();
        blocking.join().unwrap();
        assert_eq!(sem.available(), 0);
    });
}

#[test]
fn semaphore_multi_permit_waiter_is_woken() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let waiter = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire_many(2).forget())
        };
        sem.release(1);
        sem.release(1);
        waiter.join().unwrap();
        assert_eq!(sem.available(), 0);
    });
}

#[test]
fn auto_event_releases_one_waiter_per_signal() {
    loom::model(|| {
        let event = Arc::new(Event::new(Reset::Auto));
        let data = Arc::new(Racy::new());
        let waiter = {
            let (event, data) = (event.clone(), data.clone());
            thread::spawn(move || {
                event.wait();
                data.get()
            })
        };
        data.bump();
        event.set();
        assert_eq!(waiter.join().unwrap(), 1);
        assert!(!event.is_set());
    });
}

#[test]
fn auto_event_signal_reaches_a_blocked_waiter_past_a_timed_one() {
    loom::model(|| {
        let event = Arc::new(Event::new(Reset::Auto));
        let timed = {
            let event = event.clone();
            thread::spawn(move || {
                if event.wait_timeout(Duration::from_secs(1)) {
                    // It took the signal; pass it on so the blocked waiter finishes.
                    event.set();
                }
            })
        };
        let blocking = {
            let event = event.clone();
            thread::spawn(move || event.wait())
        };
        event.set();
        // Barge in: a woken waiter may now find the signal consumed.
        if event.try_wait() {
            event.set();
        }
        timed.join().unwrap();
        blocking.join().unwrap();
    });
}

#[test]
fn manual_event_releases_every_waiter() {
    loom::model(|| {
        let event = Arc::new(Event::new(Reset::Manual));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let event = event.clone();
                thread::spawn(move || event.wait())
            })
            .collect();
        event.set();
        for w in waiters {
            w.join().unwrap();
        }
        assert!(event.is_set());
    });
}

#[test]
fn gate_open_close_open_releases_the_waiter() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(false));
        let data = Arc::new(Racy::new());
        let waiter = {
            let (gate, data) = (gate.clone(), data.clone());
            thread::spawn(move || {
                gate.pass();
                data.get()
            })
        };
        data.bump();
        gate.open();
        gate.close();
        gate.open();
        assert_eq!(waiter.join().unwrap(), 1);
    });
}

#[test]
fn latch_waiter_sees_every_count_down() {
    loom::model(|| {
        let latch = Arc::new(Latch::new(2));
        let a = Arc::new(Racy::new());
        let b = Arc::new(Racy::new());
        let workers: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|cell| {
                let latch = latch.clone();
                thread::spawn(move || {
                    cell.bump();
                    latch.count_down();
                })
            })
            .collect();
        latch.wait();
        assert_eq!(a.get() + b.get(), 2);
        for w in workers {
            w.join().unwrap();
        }
    });
}

#[test]
fn barrier_two_rounds_one_leader_each() {
    loom::model(|| {
        let barrier = Arc::new(Barrier::new(2));
        let data = Arc::new(Racy::new());
        let other = {
            let (barrier, data) = (barrier.clone(), data.clone());
            thread::spawn(move || {
                let first = barrier.wait().is_leader();
                // Round 2: only this thread writes, the main thread reads after round 2.
                data.bump();
                let second = barrier.wait().is_leader();
                (first, second)
            })
        };
        let first = barrier.wait().is_leader();
        let second = barrier.wait().is_leader();
        assert_eq!(data.get(), 1);
        let (their_first, their_second) = other.join().unwrap();
        assert!(first != their_first);
        assert!(second != their_second);
    });
}

#[test]
fn drain_never_returns_while_a_worker_is_inside() {
    loom::model(|| {
        let drain = Arc::new(Drain::new());
        let inside = Arc::new(AtomicU32::new(0));
        let data = Arc::new(Racy::new());
        let worker = {
            let (drain, inside, data) = (drain.clone(), inside.clone(), data.clone());
            thread::spawn(move || {
                if let Ok(token) = drain.register() {
                    inside.store(1, Ordering::Relaxed);
                    data.bump();
                    inside.store(0, Ordering::Relaxed);
                    drop(token);
                }
            })
        };
        drain.drain();
        assert_eq!(inside.load(Ordering::Relaxed), 0);
        // Whatever the worker did before leaving is visible now.
        let seen = data.get();
        assert!(drain.register().is_err());
        worker.join().unwrap();
        assert!(seen <= 1);
    });
}

/// A wake-up flag for the executor below. (Not `thread::park`: loom lets an unpark release a
/// thread blocked on a loom mutex, which real threads never do.)
struct Signal {
    woken: loom::sync::Mutex<bool>,
    cond: loom::sync::Condvar,
}

impl Wake for Signal {
    fn wake(self: std::sync::Arc<Self>) {
        *self.woken.lock().unwrap() = true;
        self.cond.notify_one();
    }
}

/// A minimal executor for one future on one loom thread: poll, sleep until woken, repeat. A
/// lost wake-up leaves the thread asleep forever, which loom reports as a deadlock.
fn block_on<F: Future>(future: F) -> F::Output {
    let signal = std::sync::Arc::new(Signal {
        woken: loom::sync::Mutex::new(false),
        cond: loom::sync::Condvar::new(),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let mut woken = signal.woken.lock().unwrap();
        while !*woken {
            woken = signal.cond.wait(woken).unwrap();
        }
        *woken = false;
    }
}

#[test]
fn semaphore_future_is_woken_by_a_release() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let waiter = {
            let sem = sem.clone();
            thread::spawn(move || block_on(sem.acquire_async(1)).forget())
        };
        sem.release(1);
        waiter.join().unwrap();
        assert_eq!(sem.available(), 0);
    });
}

#[test]
fn semaphore_future_and_blocked_thread_both_get_a_permit() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let future = {
            let sem = sem.clone();
            thread::spawn(move || block_on(sem.acquire_async(1)).forget())
        };
        let blocking = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire().forget())
        };
        sem.release(1);
        sem.release(1);
        future.join().unwrap();
        blocking.join().unwrap();
        assert_eq!(sem.available(), 0);
    });
}

#[test]
fn auto_event_wake_taken_by_a_dropped_future_passes_on() {
    loom::model(|| {
        let event = Arc::new(Event::new(Reset::Auto));
        let waiter = {
            let event = event.clone();
            thread::spawn(move || block_on(event.wait_async()))
        };
        let quitter = {
            let event = event.clone();
            thread::spawn(move || {
                // Polled once, then dropped: possibly after the signal woke it.
                let mut wait = pin!(event.wait_async());
                let _ = wait.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            })
        };
        event.set();
        quitter.join().unwrap();
        // If the quitter consumed the signal, signal again: the waiter must still get one.
        if !event.is_set() {
            event.set();
        }
        waiter.join().unwrap();
    });
}

#[test]
fn gate_open_wakes_a_future_even_if_closed_at_once() {
    loom::model(|| {
        let gate = Arc::new(Gate::new(false));
        // Made before the gate opens, so the open releases it whenever it is polled.
        let pass = gate.pass_async();
        let opener = {
            let gate = gate.clone();
            thread::spawn(move || {
                gate.open();
                gate.close();
            })
        };
        block_on(pass);
        opener.join().unwrap();
    });
}

#[test]
fn semaphore_wake_taken_by_a_dropped_future_passes_on() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let waiter = {
            let sem = sem.clone();
            thread::spawn(move || block_on(sem.acquire_async(1)).forget())
        };
        let quitter = {
            let sem = sem.clone();
            thread::spawn(move || {
                // Polled once, then dropped: possibly after the release woke it. A permit it
                // took comes back when its output is dropped.
                let mut acquire = pin!(sem.acquire_async(1));
                let _ = acquire
                    .as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()));
            })
        };
        sem.release(1);
        quitter.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(sem.available(), 0);
    });
}

#[test]
fn lock_two_blocked_lockers_both_get_in() {
    loom::model(|| {
        let lock = Arc::new(Lock::new(0_u32));
        let holder = lock.lock();
        let lockers: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                thread::spawn(move || *lock.lock() += 1)
            })
            .collect();
        drop(holder);
        for locker in lockers {
            locker.join().unwrap();
        }
        assert_eq!(*lock.lock(), 2);
    });
}

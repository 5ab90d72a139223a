//! Multi-threaded stress tests: real threads, bounded iteration counts, invariants checked on
//! every step. They complement the loom models (which cover every interleaving of tiny
//! scenarios) with many interleavings of larger ones.

use rsm_sync::{
    Barrier, Drain, Event, Gate, Latch, Lock, Once, OnceCell, Reset, RwLock, Semaphore,
};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

const THREADS: u32 = 4;

/// A short timeout for "must not succeed" checks: long enough to really sleep.
const SHORT: Duration = Duration::from_millis(20);

#[test]
fn lock_excludes_under_contention() {
    const ROUNDS: u64 = 20_000;
    let lock = Lock::new(0_u64);
    let inside = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..ROUNDS {
                    let mut guard = lock.lock();
                    assert!(!inside.swap(true, Ordering::Relaxed), "two holders at once");
                    *guard += 1;
                    inside.store(false, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(lock.into_inner(), ROUNDS * u64::from(THREADS));
}

#[test]
fn lock_timeouts_mix_with_blocking_lockers() {
    const ROUNDS: u64 = 5_000;
    let lock = Lock::new(0_u64);
    let timed_wins = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (lock, timed_wins) = (&lock, &timed_wins);
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    if t % 2 == 0 {
                        *lock.lock() += 1;
                    } else if let Some(mut g) = lock.try_lock_for(Duration::from_micros(50)) {
                        *g += 1;
                        timed_wins.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let blocking = ROUNDS * u64::from(THREADS / 2);
    assert_eq!(
        lock.into_inner(),
        blocking + timed_wins.load(Ordering::Relaxed)
    );
}

#[test]
fn lock_try_lock_for_times_out_while_held_and_succeeds_after() {
    let lock = Lock::new(());
    let guard = lock.lock();
    std::thread::scope(|s| {
        s.spawn(|| assert!(lock.try_lock_for(SHORT).is_none()));
    });
    drop(guard);
    assert!(lock.try_lock_for(SHORT).is_some());
}

#[test]
fn lock_is_released_when_a_holder_panics() {
    let lock = Lock::new(1_u32);
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            let mut guard = lock.lock();
            *guard = 2;
            panic!("holder fails");
        })
        .join()
    });
    assert!(result.is_err());
    assert_eq!(
        *lock.lock(),
        2,
        "no poisoning: the data is as the holder left it"
    );
}

#[test]
fn rwlock_readers_never_see_a_half_write() {
    const ROUNDS: u64 = 5_000;
    let lock = RwLock::new((0_u64, 0_u64));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..ROUNDS {
                    let mut w = lock.write();
                    w.0 += 1;
                    std::hint::spin_loop();
                    w.1 += 1;
                }
            });
        }
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..ROUNDS {
                    let r = lock.read();
                    assert_eq!(r.0, r.1);
                }
            });
        }
    });
    assert_eq!(lock.into_inner(), (2 * ROUNDS, 2 * ROUNDS));
}

#[test]
fn rwlock_writer_is_not_starved_by_streaming_readers() {
    const WRITES: u32 = 200;
    let lock = RwLock::new(0_u32);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                // Overlapping readers: without writer preference the lock would never be free.
                while !done.load(Ordering::Relaxed) {
                    let first = lock.read();
                    let second = lock.try_read();
                    std::hint::black_box((&first, &second));
                }
            });
        }
        s.spawn(|| {
            for _ in 0..WRITES {
                *lock.write() += 1;
            }
            done.store(true, Ordering::Relaxed);
        });
    });
    assert_eq!(lock.into_inner(), WRITES);
}

#[test]
fn rwlock_timed_acquisitions_and_downgrade() {
    let lock = RwLock::new(5_u32);
    let read = lock.read();
    std::thread::scope(|s| {
        s.spawn(|| assert!(lock.try_write_for(SHORT).is_none()));
    });
    drop(read);
    let mut write = lock.try_write_for(SHORT).expect("free now");
    *write = 6;
    std::thread::scope(|s| {
        s.spawn(|| assert!(lock.try_read_for(SHORT).is_none()));
    });
    let read = rsm_sync::WriteGuard::downgrade(write);
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(
                *lock.try_read_for(SHORT).expect("shared after downgrade"),
                6
            )
        });
        s.spawn(|| assert!(lock.try_write_for(SHORT).is_none()));
    });
    assert_eq!(*read, 6);
}

#[test]
fn semaphore_bounds_concurrency() {
    const ROUNDS: u32 = 5_000;
    const PERMITS: u32 = 2;
    let sem = Semaphore::new(PERMITS);
    let holders = AtomicU32::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (sem, holders) = (&sem, &holders);
            s.spawn(move || {
                for i in 0..ROUNDS {
                    let permit = if (t + i) % 3 == 0 {
                        match sem.acquire_timeout(Duration::from_micros(100)) {
                            Some(p) => p,
                            None => continue,
                        }
                    } else {
                        sem.acquire()
                    };
                    let now = holders.fetch_add(1, Ordering::Relaxed) + 1;
                    assert!(now <= PERMITS, "{now} holders of {PERMITS} permits");
                    holders.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                }
            });
        }
    });
    assert_eq!(sem.available(), PERMITS);
}

#[test]
fn semaphore_multi_permit_waiters_make_progress() {
    const ROUNDS: u32 = 2_000;
    const PERMITS: u32 = 3;
    let sem = Semaphore::new(PERMITS);
    let held = AtomicU32::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (sem, held) = (&sem, &held);
            s.spawn(move || {
                let want = 1 + t % PERMITS;
                for _ in 0..ROUNDS {
                    let permit = sem.acquire_many(want);
                    let now = held.fetch_add(want, Ordering::Relaxed) + want;
                    assert!(now <= PERMITS);
                    held.fetch_sub(want, Ordering::Relaxed);
                    drop(permit);
                }
            });
        }
    });
    assert_eq!(sem.available(), PERMITS);
}

#[test]
fn auto_event_ping_pong_keeps_order() {
    const ROUNDS: u64 = 10_000;
    let ping = Event::new(Reset::Auto);
    let pong = Event::new(Reset::Auto);
    let turn = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..ROUNDS {
                ping.wait();
                assert_eq!(turn.load(Ordering::Relaxed), 2 * i + 1);
                turn.store(2 * i + 2, Ordering::Relaxed);
                pong.set();
            }
        });
        for i in 0..ROUNDS {
            turn.store(2 * i + 1, Ordering::Relaxed);
            ping.set();
            pong.wait();
            assert_eq!(turn.load(Ordering::Relaxed), 2 * i + 2);
        }
    });
    assert!(!ping.is_set() && !pong.is_set());
}

#[test]
fn auto_event_signals_are_never_lost_among_many_waiters() {
    const SIGNALS: u32 = 4_000;
    let event = Event::new(Reset::Auto);
    let ack = Semaphore::new(0);
    let consumed = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    if event.wait_timeout(Duration::from_millis(5)) {
                        consumed.fetch_add(1, Ordering::Relaxed);
                        ack.release(1);
                    }
                }
            });
        }
        for _ in 0..SIGNALS {
            event.set();
            // Each signal is consumed by exactly one waiter before the next is raised.
            ack.acquire().forget();
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(consumed.load(Ordering::Relaxed), SIGNALS);
}

#[test]
fn manual_event_and_timeouts() {
    let event = Event::new(Reset::Manual);
    assert!(!event.wait_timeout(SHORT));
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| event.wait());
        }
        event.set();
    });
    assert!(
        event.try_wait() && event.try_wait(),
        "manual-reset stays up"
    );
    event.reset();
    assert!(!event.try_wait());
}

#[test]
fn gate_cycles_release_every_waiter() {
    const CYCLES: u32 = 500;
    let gate = Gate::new(false);
    let passed = AtomicU32::new(0);
    let arrived = Latch::new(THREADS * CYCLES);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..CYCLES {
                    arrived.count_down();
                    gate.pass();
                    passed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Toggle the gate while the workers arrive; end open so every pass completes.
        while !arrived.try_wait() {
            gate.open();
            std::thread::yield_now();
            gate.close();
        }
        gate.open();
    });
    assert_eq!(passed.load(Ordering::Relaxed), THREADS * CYCLES);
    gate.close();
    assert!(!gate.pass_timeout(SHORT));
}

#[test]
fn latch_releases_waiters_after_every_count_down() {
    let latch = Latch::new(THREADS);
    let written = AtomicU32::new(0);
    assert!(!latch.wait_timeout(SHORT));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                latch.wait();
                assert_eq!(written.load(Ordering::Relaxed), THREADS);
            });
        }
        for _ in 0..THREADS {
            s.spawn(|| {
                written.fetch_add(1, Ordering::Relaxed);
                latch.count_down();
            });
        }
    });
    assert!(latch.try_wait());
}

#[test]
fn barrier_rounds_have_one_leader_and_see_every_write() {
    const ROUNDS: u32 = 1_000;
    let barrier = Barrier::new(THREADS);
    let slots: Vec<AtomicU32> = (0..THREADS).map(|_| AtomicU32::new(0)).collect();
    let leaders = AtomicU32::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS as usize {
            let (barrier, slots, leaders) = (&barrier, &slots, &leaders);
            s.spawn(move || {
                for round in 1..=ROUNDS {
                    slots[t].store(round, Ordering::Relaxed);
                    if barrier.wait().is_leader() {
                        leaders.fetch_add(1, Ordering::Relaxed);
                    }
                    for slot in slots {
                        assert!(slot.load(Ordering::Relaxed) >= round);
                    }
                    // Nobody may start writing the next round until all have checked.
                    barrier.wait();
                }
            });
        }
    });
    assert_eq!(leaders.load(Ordering::Relaxed), ROUNDS);
}

#[test]
fn barrier_timeout_withdraws_the_arrival() {
    let barrier = Barrier::new(2);
    assert!(barrier.wait_timeout(SHORT).is_none());
    // The withdrawn arrival does not count: a full round still needs two threads.
    let leaders: u32 = std::thread::scope(|s| {
        let a = s.spawn(|| barrier.wait().is_leader());
        let b = s.spawn(|| {
            barrier
                .wait_timeout(Duration::from_secs(60))
                .map(|r| r.is_leader())
        });
        u32::from(a.join().unwrap()) + u32::from(b.join().unwrap().expect("round completes"))
    });
    assert_eq!(leaders, 1);
}

#[test]
fn drain_waits_for_every_worker_to_leave() {
    const CYCLES: u32 = 200;
    for _ in 0..CYCLES / 20 {
        let drain = Drain::new();
        let inside = AtomicU32::new(0);
        let work = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    // Workers come and go until the drain is requested.
                    for _ in 0..CYCLES {
                        let Ok(worker) = drain.register() else { return };
                        inside.fetch_add(1, Ordering::Relaxed);
                        while !worker.is_draining()
                            && !work.fetch_add(1, Ordering::Relaxed).is_multiple_of(64)
                        {
                        }
                        inside.fetch_sub(1, Ordering::Relaxed);
                        drop(worker);
                    }
                });
            }
            std::thread::yield_now();
            drain.drain();
            assert_eq!(
                inside.load(Ordering::Relaxed),
                0,
                "drain returned with a worker inside"
            );
            assert_eq!(drain.active(), 0);
            assert!(drain.register().is_err());
        });
    }
}

#[test]
fn drain_timeout_reports_a_worker_still_inside() {
    let drain = Drain::new();
    let worker = drain.register().unwrap();
    assert!(!drain.drain_timeout(SHORT));
    assert!(worker.is_draining());
    std::thread::scope(|s| {
        s.spawn(move || drop(worker));
        drain.drain();
    });
    drain.reopen();
    assert!(drain.register().is_ok());
}

#[test]
fn once_cell_races_run_one_initializer() {
    let cell = OnceCell::new();
    let runs = AtomicU32::new(0);
    let values: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cell, runs) = (&cell, &runs);
                s.spawn(move || {
                    *cell.get_or_init(|| {
                        runs.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(5));
                        t
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(runs.load(Ordering::Relaxed), 1);
    assert!(values.iter().all(|&v| v == values[0]));
}

#[test]
fn once_after_a_panicking_initializer_runs_again() {
    let once = Once::new();
    let result = std::thread::scope(|s| s.spawn(|| once.call_once(|| panic!("init fails"))).join());
    assert!(result.is_err());
    assert!(!once.is_completed());
    assert!(!once.wait_timeout(SHORT));
    let ran = AtomicBool::new(false);
    once.call_once(|| ran.store(true, Ordering::Relaxed));
    assert!(ran.load(Ordering::Relaxed) && once.is_completed());
    once.call_once(|| unreachable!("already complete"));
}

#[test]
fn once_cell_wait_sees_a_value_set_by_another_thread() {
    let cell = OnceCell::new();
    assert!(cell.wait_timeout(SHORT).is_none());
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(*cell.wait(), 9));
        s.spawn(|| cell.set(9).unwrap());
    });
}

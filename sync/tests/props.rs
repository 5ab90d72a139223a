//! Property tests: random single-threaded operation sequences checked against a plain model
//! of each primitive's state. (Concurrency is covered by the loom models and stress tests;
//! these pin down the sequential semantics, including the non-blocking and timed paths.)

use proptest::prelude::*;
use rsm_sync::{Barrier, Event, Latch, Lock, Reset, RwLock, Semaphore};
use std::time::Duration;

const NO_WAIT: Duration = Duration::ZERO;

#[derive(Clone, Debug)]
enum SemOp {
    TryAcquire(u32),
    AcquireTimeout(u32),
    DropPermit(usize),
    Forget(usize),
    Release(u32),
}

fn sem_op() -> impl Strategy<Value = SemOp> {
    prop_oneof![
        (1..4_u32).prop_map(SemOp::TryAcquire),
        (1..4_u32).prop_map(SemOp::AcquireTimeout),
        any::<usize>().prop_map(SemOp::DropPermit),
        any::<usize>().prop_map(SemOp::Forget),
        (0..3_u32).prop_map(SemOp::Release),
    ]
}

proptest! {
    #[test]
    fn semaphore_matches_a_counter(initial in 0..6_u32, ops in prop::collection::vec(sem_op(), 0..60)) {
        let sem = Semaphore::new(initial);
        let mut available = initial;
        let mut held = Vec::new();
        for op in ops {
            match op {
                SemOp::TryAcquire(n) | SemOp::AcquireTimeout(n) => {
                    let permit = match op {
                        SemOp::TryAcquire(_) => sem.try_acquire_many(n),
                        _ => sem.acquire_many_timeout(n, NO_WAIT),
                    };
                    prop_assert_eq!(permit.is_some(), available >= n);
                    if let Some(permit) = permit {
                        prop_assert_eq!(permit.count(), n);
                        available -= n;
                        held.push(permit);
                    }
                }
                SemOp::DropPermit(i) if !held.is_empty() => {
                    let permit = held.swap_remove(i % held.len());
                    available += permit.count();
                }
                SemOp::Forget(i) if !held.is_empty() => {
                    held.swap_remove(i % held.len()).forget();
                }
                SemOp::Release(n) => {
                    sem.release(n);
                    available += n;
                }
                _ => {}
            }
            prop_assert_eq!(sem.available(), available);
        }
    }

    #[test]
    fn latch_matches_a_counter(initial in 0..20_u32, downs in prop::collection::vec(1..4_u32, 0..20)) {
        let latch = Latch::new(initial);
        let mut count = initial;
        for n in downs {
            if n > count {
                continue;
            }
            latch.count_down_by(n);
            count -= n;
            prop_assert_eq!(latch.count(), count);
            prop_assert_eq!(latch.try_wait(), count == 0);
            prop_assert_eq!(latch.wait_timeout(NO_WAIT), count == 0);
        }
    }

    #[test]
    fn event_matches_a_flag(auto in any::<bool>(), ops in prop::collection::vec(0..4_u8, 0..60)) {
        let mode = if auto { Reset::Auto } else { Reset::Manual };
        let event = Event::new(mode);
        let mut set = false;
        for op in ops {
            match op {
                0 => { event.set(); set = true; }
                1 => { event.reset(); set = false; }
                2 => {
                    prop_assert_eq!(event.try_wait(), set);
                    if auto { set = false; }
                }
                _ => {
                    prop_assert_eq!(event.wait_timeout(NO_WAIT), set);
                    if auto { set = false; }
                }
            }
            prop_assert_eq!(event.is_set(), set);
        }
    }

    #[test]
    fn rwlock_try_operations_match_a_model(ops in prop::collection::vec(0..5_u8, 0..60)) {
        let lock = RwLock::new(0_u32);
        let mut readers = Vec::new();
        let mut writer = None;
        for op in ops {
            match op {
                0 => {
                    let guard = lock.try_read();
                    prop_assert_eq!(guard.is_some(), writer.is_none());
                    readers.extend(guard);
                }
                1 => {
                    let guard = lock.try_write_for(NO_WAIT);
                    prop_assert_eq!(guard.is_some(), writer.is_none() && readers.is_empty());
                    if guard.is_some() { writer = guard; }
                }
                2 => { readers.pop(); }
                3 => { writer = None; }
                _ => {
                    if let Some(w) = writer.take() {
                        readers.push(rsm_sync::WriteGuard::downgrade(w));
                    }
                }
            }
        }
    }

    #[test]
    fn lock_try_operations_match_a_model(ops in prop::collection::vec(any::<bool>(), 0..40)) {
        let lock = Lock::new(0_u32);
        let mut held = None;
        for take in ops {
            if take {
                let guard = lock.try_lock_for(NO_WAIT);
                prop_assert_eq!(guard.is_some(), held.is_none());
                if guard.is_some() { held = guard; }
            } else {
                held = None;
            }
            prop_assert_eq!(lock.is_locked(), held.is_some());
        }
    }

    #[test]
    fn barrier_of_one_always_leads(rounds in 1..50_u32) {
        let barrier = Barrier::new(1);
        for _ in 0..rounds {
            prop_assert!(barrier.wait().is_leader());
            prop_assert!(barrier.wait_timeout(NO_WAIT).is_some_and(|r| r.is_leader()));
        }
    }
}

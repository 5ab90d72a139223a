//! `Barrier`: a reusable rendezvous for a fixed number of threads.

use crate::wait::Deadline;
use crate::word::{Ordering, Queue, WAKE_ALL, Word, const_fn};
use std::fmt;
use std::time::Duration;

/// The low 15 bits count the threads that have arrived in the current round.
const ARRIVED: u32 = (1 << 15) - 1;
/// Set while a thread may be asleep waiting for the round to end.
const WAITERS: u32 = 1 << 15;
/// The high 16 bits number the round (modulo 2^16). A sleeper cannot miss 2^16 rounds: no
/// round ends without it.
const ROUND_SHIFT: u32 = 16;

/// A reusable barrier: each round, `parties` threads call [`wait`](Barrier::wait) and all of
/// them return once the last one arrives; then the next round begins.
///
/// The state is one `u32` (arrivals, a waiter bit, the round number). The last thread to
/// arrive is the round's leader: it starts the next round and wakes the others. Everything
/// each thread did before arriving happens before every thread of the round returns.
///
/// [`wait_timeout`](Barrier::wait_timeout) withdraws the caller's arrival if the round does
/// not end in time, so the barrier still counts only threads that are present.
///
/// ```
/// use rsm_sync::Barrier;
///
/// let barrier = Barrier::new(3);
/// let leaders: usize = std::thread::scope(|s| {
///     let handles: Vec<_> = (0..3).map(|_| s.spawn(|| barrier.wait().is_leader())).collect();
///     handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
/// });
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    state: Word,
    parties: u32,
}

/// What [`Barrier::wait`] tells one thread about the round it completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// True for exactly one thread per round: the last to arrive.
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

fn round(state: u32) -> u32 {
    state >> ROUND_SHIFT
}

impl Barrier {
    /// The largest number of parties.
    pub const MAX_PARTIES: u32 = ARRIVED;

    const_fn! {
        /// A barrier for `parties` threads. Panics if `parties` is zero or above
        /// [`Barrier::MAX_PARTIES`].
        pub fn new(parties: u32) -> Barrier {
            assert!(parties >= 1 && parties <= ARRIVED, "Barrier: parties out of range");
            Barrier { state: Word::new(0), parties }
        }
    }

    /// The number of threads per round.
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// Arrives and sleeps until all parties of this round have arrived.
    pub fn wait(&self) -> BarrierWaitResult {
        match self.arrive() {
            Ok(result) => result,
            Err(my_round) => {
                self.state
                    .wait_until(WAITERS, Queue::Primary, Deadline::NEVER, |s| {
                        round(s) != my_round
                    });
                BarrierWaitResult { leader: false }
            }
        }
    }

    /// Arrives and sleeps until all parties of this round have arrived, at most `timeout`.
    /// On timeout the arrival is withdrawn and `None` is returned.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<BarrierWaitResult> {
        let my_round = match self.arrive() {
            Ok(result) => return Some(result),
            Err(my_round) => my_round,
        };
        let released = |s| round(s) != my_round;
        if self
            .state
            .wait_until(WAITERS, Queue::Primary, Deadline::after(timeout), released)
            .is_some()
        {
            return Some(BarrierWaitResult { leader: false });
        }
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if released(state) || state & ARRIVED == self.parties {
                // The round ended (or its leader is ending it) before the withdrawal.
                self.state
                    .wait_until(WAITERS, Queue::Primary, Deadline::NEVER, released);
                return Some(BarrierWaitResult { leader: false });
            }
            match self.state.compare_exchange_weak(
                state,
                state - 1,
                Ordering::Relaxed,
                Ordering::Acquire,
            ) {
                Ok(_) => return None,
                Err(now) => state = now,
            }
        }
    }

    /// Counts the caller in. The last arrival ends the round and gets `Ok`; the others get
    /// `Err` with the round they wait for.
    fn arrive(&self) -> Result<BarrierWaitResult, u32> {
        let before = self.state.fetch_add(1, Ordering::AcqRel);
        debug_assert!(
            before & ARRIVED < self.parties,
            "more arrivals than parties"
        );
        if (before & ARRIVED) + 1 < self.parties {
            return Err(round(before));
        }
        // The leader: nobody else can change the word until the next round starts.
        let next = round(before).wrapping_add(1) << ROUND_SHIFT;
        if self.state.swap(next, Ordering::AcqRel) & WAITERS != 0 {
            self.state.wake(Queue::Primary, WAKE_ALL);
        }
        Ok(BarrierWaitResult { leader: true })
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("arrived", &(self.state.load(Ordering::Relaxed) & ARRIVED))
            .finish()
    }
}

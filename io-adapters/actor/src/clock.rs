//! Where a running system's ticks come from: real time, or a clock the caller advances.

use crate::inbox::Notify;
use crate::primitives::{AtomicU64, Ordering};
use rsm_sync::Lock;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The time source of a system run by threads or tokio. Automata only ever see ticks.
#[derive(Clone, Debug)]
pub enum Clock {
    /// Ticks of real time, counted from the start of the system.
    Real {
        /// The length of one tick.
        tick: Duration,
    },
    /// Ticks advanced by hand ([`ManualClock::advance`]): real threads, controlled time.
    Manual(ManualClock),
}

/// A clock that moves only when told to; wakes the workers of every system using it.
#[derive(Clone)]
pub struct ManualClock(Arc<ManualInner>);

struct ManualInner {
    now: AtomicU64,
    listeners: Lock<Vec<Arc<Notify>>>,
}

impl ManualClock {
    /// A clock at tick 0.
    pub fn new() -> ManualClock {
        ManualClock(Arc::new(ManualInner {
            now: AtomicU64::new(0),
            listeners: Lock::new(Vec::new()),
        }))
    }

    /// The current tick.
    pub fn now(&self) -> u64 {
        self.0.now.load(Ordering::Acquire)
    }

    /// Moves the clock `ticks` ahead and wakes the workers so that due timers fire.
    pub fn advance(&self, ticks: u64) {
        self.0.now.fetch_add(ticks, Ordering::AcqRel);
        for notify in self.0.listeners.lock().iter() {
            notify.wake_always();
        }
    }

    pub(crate) fn listen(&self, notify: Arc<Notify>) {
        self.0.listeners.lock().push(notify);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

/// A [`Clock`] once its system has started (real time gets its epoch).
#[derive(Clone, Debug)]
pub(crate) enum Ticks {
    Real { epoch: Instant, tick: Duration },
    Manual(ManualClock),
}

impl Ticks {
    pub(crate) fn start(clock: &Clock) -> Ticks {
        match clock {
            Clock::Real { tick } => Ticks::Real {
                epoch: Instant::now(),
                tick: *tick,
            },
            Clock::Manual(manual) => Ticks::Manual(manual.clone()),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        match self {
            Ticks::Real { epoch, tick } => {
                (epoch.elapsed().as_nanos() / tick.as_nanos()).min(u128::from(u64::MAX)) as u64
            }
            Ticks::Manual(manual) => manual.now(),
        }
    }

    /// How long a worker whose next timer is due at `deadline` may sleep (`None`: until
    /// woken). A manual clock wakes the workers itself.
    pub(crate) fn sleep_for(&self, deadline: Option<u64>) -> Option<Duration> {
        match (self, deadline) {
            (Ticks::Real { epoch, tick }, Some(deadline)) => {
                let at = tick
                    .checked_mul(u32::try_from(deadline).unwrap_or(u32::MAX))
                    .and_then(|offset| epoch.checked_add(offset));
                at.map(|at| at.saturating_duration_since(Instant::now()))
            }
            _ => None,
        }
    }
}

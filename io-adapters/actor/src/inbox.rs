//! The bounded inbox: many threads post, one worker takes, no lock on either path.
//!
//! An inbox is a ring of slots, each with a sequence number (the scheme of Dmitry Vyukov's
//! bounded queue), plus an rsm-sync [`Semaphore`] that counts the free places. A poster first
//! takes a permit (at once or by waiting: the caller's choice), then claims a position with
//! one `fetch_add` and publishes its message by storing the slot's sequence number. The
//! consumer takes messages in position order and gives the places back in batches. The
//! permit is what bounds the queue; the sequence numbers are what keep a slot from being
//! written before it has been read, so a late store is waited for, never overwritten.
//!
//! The consumer sleeps on a [`Notify`], shared by every inbox its worker takes from.

use crate::automaton::Refused;
use crate::primitives::{AtomicBool, AtomicU8, AtomicUsize, Ordering, UnsafeCell, spin_wait};
use rsm_sync::{Event, Reset, Semaphore};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// The largest capacity an inbox may have, in messages. It leaves room in the semaphore for
/// the permit a closing inbox hands to its blocked posters.
pub const INBOX_CAPACITY_MAX: usize = 1 << 24;

const OPEN: u8 = 0;
const STOPPED: u8 = 1;
const DRAINED: u8 = 2;

/// How long a post may wait for a free place.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Not at all: a full inbox refuses.
    No,
    /// Until a place frees up or the inbox closes.
    Forever,
    /// Until the deadline at the latest.
    Until(Instant),
}

/// Keeps the producers' and the consumer's counters on different cache lines.
#[repr(align(128))]
struct Padded<T>(T);

struct Slot<T> {
    /// `position` when the slot is free for the message at `position`; `position + 1` once
    /// that message is published.
    seq: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded multi-producer, single-consumer queue (see the module comment).
pub(crate) struct Inbox<T> {
    slots: Box<[Slot<T>]>,
    mask: usize,
    tail: Padded<AtomicUsize>,
    /// Touched only by the consumer; atomic so that `pop` needs no `&mut`.
    head: Padded<AtomicUsize>,
    space: Semaphore,
    state: AtomicU8,
}

// SAFETY: messages move between threads through the slots: a producer writes a slot before
// its Release store of `seq`, and the single consumer reads it after an Acquire load of the
// same `seq`, so each value is owned by exactly one thread at a time. Hence `T: Send` suffices.
unsafe impl<T: Send> Send for Inbox<T> {}
// SAFETY: as above; shared access only ever moves whole values across the `seq` handshake.
unsafe impl<T: Send> Sync for Inbox<T> {}

impl<T> Inbox<T> {
    /// An empty, open inbox holding at most `capacity` messages
    /// (`1..=INBOX_CAPACITY_MAX`, checked by the builder).
    pub(crate) fn new(capacity: usize) -> Inbox<T> {
        debug_assert!((1..=INBOX_CAPACITY_MAX).contains(&capacity));
        let size = capacity.next_power_of_two();
        Inbox {
            slots: (0..size)
                .map(|i| Slot {
                    seq: AtomicUsize::new(i),
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                })
                .collect(),
            mask: size - 1,
            tail: Padded(AtomicUsize::new(0)),
            head: Padded(AtomicUsize::new(0)),
            space: Semaphore::new(capacity as u32),
            state: AtomicU8::new(OPEN),
        }
    }

    /// Takes a free place, waiting as `wait` allows. On success the caller must
    /// [`push`](Self::push) one message.
    pub(crate) fn reserve(&self, wait: Wait) -> Result<(), Refused> {
        let permit = match wait {
            Wait::No => self.space.try_acquire(),
            Wait::Forever => Some(self.space.acquire()),
            Wait::Until(deadline) => self.space.acquire_many_until(1, deadline),
        };
        match permit {
            Some(permit) => permit.forget(),
            None => return Err(self.refusal().unwrap_or(Refused::Full)),
        }
        self.check_open()
    }

    /// [`reserve`](Self::reserve) as a future, waiting until a place frees up.
    pub(crate) async fn reserve_async(&self) -> Result<(), Refused> {
        self.space.acquire_async(1).await.forget();
        self.check_open()
    }

    /// After a permit: a closed inbox passes the permit on, so that every poster blocked on
    /// it wakes in turn and learns it closed.
    fn check_open(&self) -> Result<(), Refused> {
        match self.refusal() {
            None => Ok(()),
            Some(refused) => {
                self.space.release(1);
                Err(refused)
            }
        }
    }

    fn refusal(&self) -> Option<Refused> {
        match self.state.load(Ordering::Acquire) {
            OPEN => None,
            STOPPED => Some(Refused::Stopped),
            _ => Some(Refused::Draining),
        }
    }

    /// Publishes a message into a place taken by `reserve`.
    pub(crate) fn push(&self, value: T) {
        let position = self.tail.0.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[position & self.mask];
        // The permit bounds the messages in the ring by the capacity, which is at most the
        // ring's size, so the slot's previous message has been taken; the consumer's store
        // saying so may not be visible here yet.
        while slot.seq.load(Ordering::Acquire) != position {
            spin_wait();
        }
        // SAFETY: `seq == position` means the consumer is done with the slot and no other
        // producer holds this position, so this thread has exclusive access until it
        // publishes below.
        slot.value.with_mut(|v| unsafe { (*v).write(value) });
        slot.seq.store(position.wrapping_add(1), Ordering::Release);
    }

    /// Takes the oldest published message, if the oldest claimed position is published. The
    /// place is not given back until [`release`](Self::release).
    ///
    /// # Safety
    /// Only one thread may call `pop` on an inbox at a time (its worker).
    pub(crate) unsafe fn pop(&self) -> Option<T> {
        let position = self.head.0.load(Ordering::Relaxed);
        let slot = &self.slots[position & self.mask];
        if slot.seq.load(Ordering::Acquire) != position.wrapping_add(1) {
            return None;
        }
        // SAFETY: the Acquire load saw the producer's publishing store, so the value is
        // initialized; the caller is the only consumer, so nobody else reads it.
        let value = slot.value.with_mut(|v| unsafe { (*v).assume_init_read() });
        slot.seq
            .store(position.wrapping_add(self.mask + 1), Ordering::Release);
        self.head
            .0
            .store(position.wrapping_add(1), Ordering::Relaxed);
        Some(value)
    }

    /// Whether the consumer would find a message now (a hint for other threads).
    pub(crate) fn has_message(&self) -> bool {
        let position = self.head.0.load(Ordering::Relaxed);
        self.slots[position & self.mask].seq.load(Ordering::Acquire) == position.wrapping_add(1)
    }

    /// Gives back `count` places the consumer has emptied.
    pub(crate) fn release(&self, count: u32) {
        self.space.release(count);
    }

    /// Closes the inbox: posts from now on are refused (`drained` picks the reason), and
    /// posters blocked on a full inbox wake and are refused too. Messages already accepted
    /// stay for the consumer.
    pub(crate) fn close(&self, drained: bool) {
        let state = if drained { DRAINED } else { STOPPED };
        if self
            .state
            .compare_exchange(OPEN, state, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            self.space.release(1);
        }
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can pop.
        while unsafe { self.pop() }.is_some() {}
    }
}

/// How a worker sleeps until one of its inboxes has a message (or something else wants its
/// attention), and how a poster wakes it.
///
/// The worker announces itself (`prepare_park`), looks for work once more, and only then
/// sleeps; a poster publishes, then takes the announcement back and, if there was one, sets
/// the event. Every write of the announcement is a read-modify-write, so all of them form one
/// chain: either the poster's swap comes after the worker's and sees it, or the worker's comes
/// after the poster's and synchronizes with it, so the worker's second look sees the message.
/// A message is never left waiting beside a sleeping worker. (A swap costs about what a
/// sequentially consistent fence would, and it needs no reasoning about fences; posts from a
/// step pay it once per step, not per message.)
#[derive(Debug)]
pub(crate) struct Notify {
    sleeping: AtomicBool,
    event: Event,
}

impl Notify {
    pub(crate) fn new() -> Notify {
        Notify {
            sleeping: AtomicBool::new(false),
            event: Event::new(Reset::Auto),
        }
    }

    /// Called by a poster after publishing: wakes the worker if it announced it sleeps.
    #[inline]
    pub(crate) fn wake(&self) {
        if self.sleeping.swap(false, Ordering::AcqRel) {
            self.event.set();
        }
    }

    /// Wakes the worker whether or not it sleeps (a drain, a clock advance): if it is awake,
    /// its next sleep returns at once and it looks around again.
    pub(crate) fn wake_always(&self) {
        self.event.set();
    }

    /// The worker is about to sleep; it must look for work once more before calling
    /// [`park`](Self::park), and call [`unpark`](Self::unpark) if it finds some.
    pub(crate) fn prepare_park(&self) {
        self.sleeping.swap(true, Ordering::AcqRel);
    }

    /// The worker found work after `prepare_park`, or woke up: it no longer sleeps.
    pub(crate) fn unpark(&self) {
        self.sleeping.swap(false, Ordering::AcqRel);
    }

    /// Sleeps until woken, or until `timeout` when one is given.
    pub(crate) fn park(&self, timeout: Option<Duration>) {
        match timeout {
            None => self.event.wait(),
            Some(timeout) => {
                self.event.wait_timeout(timeout);
            }
        }
        self.unpark();
    }

    /// [`park`](Self::park) for an async worker: the wake-up as a future.
    pub(crate) fn event(&self) -> &Event {
        &self.event
    }
}

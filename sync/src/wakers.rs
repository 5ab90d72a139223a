//! How a `Future` waits on a word: a list of wakers beside the word, guarded by the crate's
//! own [`Lock`], and one *async bit* in the word that says the list may be non-empty.
//!
//! The protocol mirrors the futex one, with the list lock in the kernel's place:
//!
//! - A future that cannot complete takes the list lock, sets the async bit with a
//!   compare-and-swap on the very state its attempt failed on (re-trying the attempt after
//!   setting it), and records its waker before unlocking. Setting the bit and recording the
//!   waker are one step as far as any waker is concerned.
//! - A release makes its change with the async bit left as it was, and if the bit was set,
//!   takes the list lock and wakes entries. Because the future holds the lock from setting the
//!   bit until its waker is recorded, a release that saw the bit finds the waker; a release
//!   that did not see the bit happened before the future's last attempt, which saw its change.
//! - Only a holder of the list lock clears the bit, and only when the list is empty, so the
//!   bit is set whenever some future is waiting.
//!
//! Wakers run, and are dropped, only after the list lock is released (a waker may poll at
//! once, or drop the last handle on a task that owns another future of the same primitive,
//! and the lock is not re-entrant). A woken entry is removed from the list. If its future is
//! dropped before it completes, for take-style primitives it may have consumed a wake meant
//! for another waiter, so its drop passes one wake on ([`Wakers::cancel`]). No wake-up is lost and no
//! permit leaks: a future that completed holds what it took in its output, and one that did
//! not complete took nothing.
//!
//! The list holds one entry per pending future, so its length is bounded by the number of
//! futures the caller keeps pending; its capacity is kept for reuse.

use crate::lock::Lock;
use crate::word::{Ordering, Word};
use std::task::Waker;

/// Wake every waiting future.
pub(crate) const WAKE_ALL: u32 = u32::MAX;

/// How many wakers are collected per hold of the list lock before they are run.
const WAKE_BATCH: usize = 16;

/// The futures waiting on one word.
pub(crate) struct Wakers {
    list: Lock<List>,
}

struct List {
    /// The identity the next registering future receives.
    next_id: u64,
    /// In registration order, so that a release of `n` wakes the `n` longest waiting.
    entries: Vec<Entry>,
}

struct Entry {
    id: u64,
    /// How much the future wants to take (permits); above one, every release wakes everyone,
    /// since only the future knows whether the release is enough.
    want: u32,
    waker: Waker,
}

/// A future's place in a [`Wakers`] list: `None` until it first registers.
pub(crate) type Slot = Option<u64>;

impl Wakers {
    crate::word::const_fn! {
        pub(crate) fn new() -> Wakers {
            Wakers {
                list: Lock::new(List { next_id: 0, entries: Vec::new() }),
            }
        }
    }

    /// One poll: `attempt()` tries to complete (take, or observe the awaited state) and
    /// returns whether it did. If it did not, registers `waker` under `slot` with the async
    /// `bit` set in `word`, and returns false.
    pub(crate) fn poll(
        &self,
        word: &Word,
        bit: u32,
        slot: &mut Slot,
        want: u32,
        waker: &Waker,
        mut attempt: impl FnMut() -> bool,
    ) -> bool {
        if attempt() {
            self.leave(word, bit, slot);
            return true;
        }
        let mut list = self.list.lock();
        loop {
            if attempt() {
                let removed = list.remove(word, bit, slot);
                drop(list);
                drop(removed);
                return true;
            }
            let state = word.load(Ordering::Relaxed);
            if state & bit != 0 {
                break;
            }
            // Whether or not this succeeds, attempt again: after success, a release that came
            // before the bit was set is visible to the attempt; after failure, the state moved.
            let _ = word.compare_exchange(state, state | bit, Ordering::Relaxed, Ordering::Relaxed);
        }
        let mut replaced = None;
        match slot.and_then(|id| list.entries.iter_mut().find(|e| e.id == id)) {
            Some(entry) => {
                if !entry.waker.will_wake(waker) {
                    replaced = Some(std::mem::replace(&mut entry.waker, waker.clone()));
                }
            }
            None => {
                let id = list.next_id;
                list.next_id += 1;
                list.entries.push(Entry {
                    id,
                    want,
                    waker: waker.clone(),
                });
                *slot = Some(id);
            }
        }
        drop(list);
        drop(replaced);
        false
    }

    /// Forgets a future that completed: removes its entry if a wake has not already.
    fn leave(&self, word: &Word, bit: u32, slot: &mut Slot) {
        if slot.is_some() {
            let removed = self.list.lock().remove(word, bit, slot);
            drop(removed);
        }
    }

    /// A future that will not complete is going away. If a wake already removed its entry
    /// and `pass_on` is set (take-style primitives, where that wake was meant for one
    /// taker), the wake goes to the next waiting future.
    pub(crate) fn cancel(&self, word: &Word, bit: u32, slot: &mut Slot, pass_on: bool) {
        if slot.is_none() {
            return;
        }
        let removed = self.list.lock().remove(word, bit, slot);
        if removed.is_none() && pass_on {
            self.wake(word, bit, 1);
        }
    }

    /// Wakes up to `count` waiting futures ([`WAKE_ALL`] for all, and all whenever one of them
    /// wants more than one). Called after a release that saw the async `bit` set.
    pub(crate) fn wake(&self, word: &Word, bit: u32, count: u32) {
        let mut left: Option<usize> = None;
        loop {
            let mut batch: [Option<Waker>; WAKE_BATCH] = Default::default();
            let mut taken = 0;
            {
                let mut list = self.list.lock();
                // Decided once, on the first hold of the lock: futures registering while the
                // wakers run are not owed this release, which keeps the loop bounded.
                let left = left.get_or_insert_with(|| {
                    let all = count == WAKE_ALL || list.entries.iter().any(|e| e.want > 1);
                    let len = list.entries.len();
                    if all { len } else { len.min(count as usize) }
                });
                while *left > 0 && taken < WAKE_BATCH && !list.entries.is_empty() {
                    batch[taken] = Some(list.entries.remove(0).waker);
                    taken += 1;
                    *left -= 1;
                }
                if list.entries.is_empty() {
                    word.fetch_and(!bit, Ordering::Relaxed);
                }
            }
            for waker in batch.into_iter().flatten() {
                waker.wake();
            }
            if taken < WAKE_BATCH || left == Some(0) {
                return;
            }
        }
    }
}

impl List {
    /// Removes the entry of `slot`; clears the async bit once the list is empty. Returns the
    /// entry if it was still listed (`None`: a wake removed it first), for the caller to drop
    /// after unlocking.
    #[must_use = "the entry's waker is dropped after the list is unlocked"]
    fn remove(&mut self, word: &Word, bit: u32, slot: &mut Slot) -> Option<Entry> {
        let id = slot.take()?;
        let removed = self
            .entries
            .iter()
            .position(|e| e.id == id)
            .map(|at| self.entries.remove(at));
        if self.entries.is_empty() {
            word.fetch_and(!bit, Ordering::Relaxed);
        }
        removed
    }
}

//! Persist tracking: numbering `Persist` effects and learning, from `Input::Persisted`,
//! through which index the in-memory log is durable.
//!
//! Every log-based protocol counts its own log (and its own vote or promise) only once the
//! write holding it is durable; this is the bookkeeping that tells it when.

use std::collections::VecDeque;

use rsm_core::{Effect, LogIndex, Persist, PersistSeq};

/// Log writes tracked individually while not yet durable; beyond this, the newest ones
/// are tracked together.
pub const UNSYNCED_LOG_WRITES_MAX: usize = 1024;

/// Which persists are durable, and through which index the log is.
///
/// Persists are numbered from 1 per incarnation. A write that changes the log records the
/// log's last index at the time it was emitted; once `persisted` covers it, the log is
/// durable through that index, unless a later change to the log lowered it.
#[derive(Clone, Debug)]
pub struct PersistTracker {
    /// Number of the next `Persist` effect.
    next: PersistSeq,
    /// Every persist numbered at or below this is durable.
    durable: PersistSeq,
    /// Log writes not yet durable: their number and the log's last index when emitted.
    log_writes: VecDeque<(PersistSeq, LogIndex)>,
    /// The in-memory log is durable through this index.
    stable_index: LogIndex,
}

impl PersistTracker {
    /// A tracker for a replica restored with its log durable through `stable_index`.
    pub fn new(stable_index: LogIndex) -> Self {
        Self {
            next: PersistSeq(1),
            durable: PersistSeq(0),
            log_writes: VecDeque::new(),
            stable_index,
        }
    }

    /// Emit `op` as the next `Persist` effect; returns its number.
    pub fn emit<M>(&mut self, op: Persist, out: &mut Vec<Effect<M>>) -> PersistSeq {
        let seq = self.next;
        self.next = seq.next();
        out.push(Effect::Persist { seq, op });
        seq
    }

    /// Emit a write that changes the log, whose last index is now `last_index`: once this
    /// write is durable, so is the log through `last_index`.
    pub fn emit_log<M>(
        &mut self,
        op: Persist,
        last_index: LogIndex,
        out: &mut Vec<Effect<M>>,
    ) -> PersistSeq {
        let seq = self.emit(op, out);
        let record = (seq, last_index);
        let full = self.log_writes.len() >= UNSYNCED_LOG_WRITES_MAX;
        match self.log_writes.back_mut() {
            // Merging with the previous record only delays when its entries count as
            // durable, never the reverse: safe, and it bounds the queue.
            Some(back) if full => *back = record,
            _ => self.log_writes.push_back(record),
        }
        seq
    }

    /// The in-memory log changed above `index`: nothing there is durable until a later
    /// write says so.
    pub fn forget_after(&mut self, index: LogIndex) {
        self.stable_index = self.stable_index.min(index);
        for w in &mut self.log_writes {
            w.1 = w.1.min(index);
        }
    }

    /// Every persist numbered `<= through` is durable. Returns whether that is news. A
    /// report of a persist never emitted is bad input: only what was emitted is believed.
    pub fn persisted(&mut self, through: PersistSeq) -> bool {
        let through = through.min(self.next.prev());
        if through <= self.durable {
            return false;
        }
        self.durable = through;
        while let Some(&(seq, last)) = self.log_writes.front() {
            if seq > through {
                break;
            }
            self.stable_index = last;
            self.log_writes.pop_front();
        }
        debug_assert!(self.log_writes.front().is_none_or(|w| w.0 > self.durable));
        true
    }

    /// The log is durable through this index.
    pub fn stable_index(&self) -> LogIndex {
        self.stable_index
    }

    /// Whether the persist numbered `seq` is durable.
    pub fn is_durable(&self, seq: PersistSeq) -> bool {
        seq <= self.durable
    }

    /// The number the next persist will get.
    pub fn next_seq(&self) -> PersistSeq {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_core::{Entry, Epoch};

    fn append(i: u64) -> Persist {
        Persist::Append {
            entries: vec![Entry::noop(LogIndex(i), Epoch(1))],
        }
    }

    #[test]
    fn the_log_is_stable_only_through_durable_writes_and_an_overwrite_lowers_it() {
        let mut t = PersistTracker::new(LogIndex(0));
        let mut out: Vec<Effect<()>> = Vec::new();
        let a = t.emit_log(append(1), LogIndex(1), &mut out);
        let b = t.emit_log(append(2), LogIndex(2), &mut out);
        assert_eq!((a, b), (PersistSeq(1), PersistSeq(2)));
        assert!(t.persisted(a));
        assert_eq!(t.stable_index(), LogIndex(1));
        // Index 2 is overwritten before its first write is durable.
        t.forget_after(LogIndex(1));
        assert!(t.persisted(b));
        assert_eq!(
            t.stable_index(),
            LogIndex(1),
            "the old write covers nothing now"
        );
        assert!(!t.persisted(PersistSeq(9)), "never emitted: nothing new");
        assert!(t.is_durable(b) && !t.is_durable(PersistSeq(3)));
    }
}

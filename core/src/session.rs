//! Exactly-once client sessions: a client id and a sequence number per command, so a
//! retried command is applied once and its first response is returned again.
//!
//! Every protocol's state machine uses this one table; it lives beside the state machine,
//! so it is replicated, snapshotted and restored with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::LogIndex;

/// A client's session identity.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ClientId(pub u64);

/// The session part of a command: who sent it and its position in that client's sequence.
/// A client numbers its commands 1, 2, 3, ... and retries a command with the same number.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionHeader {
    /// The client.
    pub client: ClientId,
    /// The command's sequence number within the client's session (from 1).
    pub seq: u64,
}

/// What the session table says about a command about to be applied.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionCheck<'a, R> {
    /// First time this command is seen: apply it, then `record` the response.
    New,
    /// Already applied: return this response instead of applying again.
    Duplicate(&'a R),
    /// Older than the last command of this session, whose response is gone; the client
    /// has already moved on, so nothing is applied.
    Stale,
    /// The session was evicted to respect `sessions_max`; the command is not applied and
    /// the client must treat its outcome as unknown.
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SessionSlot<R> {
    seq: u64,
    response: R,
    last_index: LogIndex,
}

/// The replicated table of client sessions, bounded by `sessions_max`.
///
/// Eviction picks the session least recently applied (by log index), which every replica
/// computes identically because they apply the same sequence. The table remembers the
/// last sequence number of each evicted session, so that a late retry is answered
/// `Expired` instead of being applied twice; that record is bounded too, by
/// `evicted_clients_max`, forgetting the longest-evicted client first. A retry that comes
/// after that many later evictions is no longer recognised: size the bound to cover the
/// longest a client keeps retrying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTable<R> {
    sessions: BTreeMap<ClientId, SessionSlot<R>>,
    /// Evicted clients: the last sequence number their session held, and the eviction's
    /// number in `evicted_order`.
    evicted: BTreeMap<ClientId, (u64, u64)>,
    /// Evicted clients by eviction number, oldest first: who is forgotten next.
    evicted_order: BTreeMap<u64, ClientId>,
    /// Evictions so far; numbers the next one.
    evictions: u64,
    sessions_max: usize,
    evicted_clients_max: usize,
}

/// The default bound on open sessions.
pub const SESSIONS_MAX_DEFAULT: usize = 4096;

/// The default bound on remembered evicted clients.
pub const EVICTED_CLIENTS_MAX_DEFAULT: usize = 4 * SESSIONS_MAX_DEFAULT;

impl<R> Default for SessionTable<R> {
    fn default() -> Self {
        Self::with_limits(SESSIONS_MAX_DEFAULT, EVICTED_CLIENTS_MAX_DEFAULT)
    }
}

impl<R> SessionTable<R> {
    /// A table holding at most `sessions_max` sessions (at least 1), remembering up to
    /// four times as many evicted clients.
    pub fn new(sessions_max: usize) -> Self {
        Self::with_limits(sessions_max, sessions_max.saturating_mul(4))
    }

    /// A table holding at most `sessions_max` sessions and remembering at most
    /// `evicted_clients_max` evicted clients (each at least 1).
    pub fn with_limits(sessions_max: usize, evicted_clients_max: usize) -> Self {
        Self {
            sessions: BTreeMap::new(),
            evicted: BTreeMap::new(),
            evicted_order: BTreeMap::new(),
            evictions: 0,
            sessions_max: sessions_max.max(1),
            evicted_clients_max: evicted_clients_max.max(1),
        }
    }

    /// Evicted clients remembered.
    pub fn evicted_len(&self) -> usize {
        self.evicted.len()
    }

    /// Open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Classify `header` before applying its command.
    pub fn check(&self, header: SessionHeader) -> SessionCheck<'_, R> {
        match self.sessions.get(&header.client) {
            Some(slot) if header.seq == slot.seq => SessionCheck::Duplicate(&slot.response),
            Some(slot) if header.seq < slot.seq => SessionCheck::Stale,
            Some(_) => SessionCheck::New,
            None => match self.evicted.get(&header.client) {
                Some(&(seq, _)) if header.seq <= seq => SessionCheck::Expired,
                _ => SessionCheck::New,
            },
        }
    }

    /// Record the response of a `New` command applied at `index`.
    pub fn record(&mut self, header: SessionHeader, index: LogIndex, response: R) {
        // A client back after eviction: its open session now refuses the old numbers.
        if let Some((_, order)) = self.evicted.remove(&header.client) {
            self.evicted_order.remove(&order);
        }
        self.sessions.insert(
            header.client,
            SessionSlot {
                seq: header.seq,
                response,
                last_index: index,
            },
        );
        if self.sessions.len() > self.sessions_max {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_index)
                .map(|(c, s)| (*c, s.seq));
            if let Some((client, seq)) = oldest {
                self.sessions.remove(&client);
                // Commands of the evicted session up to `seq` may have been applied: later
                // retries of them must not apply again.
                self.evictions += 1;
                self.evicted.insert(client, (seq, self.evictions));
                self.evicted_order.insert(self.evictions, client);
                if self.evicted.len() > self.evicted_clients_max
                    && let Some((_, oldest)) = self.evicted_order.pop_first()
                {
                    self.evicted.remove(&oldest);
                }
            }
        }
        debug_assert!(self.sessions.len() <= self.sessions_max);
        debug_assert!(self.evicted.len() <= self.evicted_clients_max);
        debug_assert_eq!(self.evicted.len(), self.evicted_order.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: u64, s: u64) -> SessionHeader {
        SessionHeader {
            client: ClientId(c),
            seq: s,
        }
    }

    #[test]
    fn duplicate_returns_first_response_and_stale_is_refused() {
        let mut t = SessionTable::new(8);
        assert_eq!(t.check(h(1, 1)), SessionCheck::New);
        t.record(h(1, 1), LogIndex(1), "a");
        assert_eq!(t.check(h(1, 1)), SessionCheck::Duplicate(&"a"));
        assert_eq!(t.check(h(1, 2)), SessionCheck::New);
        t.record(h(1, 2), LogIndex(2), "b");
        assert_eq!(t.check(h(1, 1)), SessionCheck::Stale);
    }

    #[test]
    fn eviction_is_bounded_and_expires_old_retries() {
        let mut t = SessionTable::new(2);
        t.record(h(1, 1), LogIndex(1), 10);
        t.record(h(2, 1), LogIndex(2), 20);
        t.record(h(3, 1), LogIndex(3), 30);
        assert_eq!(t.len(), 2);
        assert_eq!(t.check(h(1, 1)), SessionCheck::Expired);
        assert_eq!(t.check(h(1, 2)), SessionCheck::New);
        assert_eq!(t.check(h(3, 1)), SessionCheck::Duplicate(&30));
    }

    #[test]
    fn the_record_of_evicted_clients_is_bounded_oldest_first() {
        let mut t = SessionTable::with_limits(1, 2);
        for c in 1..=4 {
            t.record(h(c, 5), LogIndex(c), c);
        }
        // Clients 1, 2, 3 were evicted in that order; only the last two are remembered.
        assert_eq!(t.evicted_len(), 2);
        assert_eq!(t.check(h(1, 5)), SessionCheck::New, "forgotten");
        assert_eq!(t.check(h(2, 5)), SessionCheck::Expired);
        assert_eq!(t.check(h(3, 4)), SessionCheck::Expired);
        // A remembered client that comes back is no longer on the evicted record.
        t.record(h(2, 6), LogIndex(5), 2);
        assert_eq!(t.check(h(2, 5)), SessionCheck::Stale);
        assert!(t.evicted_len() <= 2);
    }
}

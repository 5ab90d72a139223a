//! The bounded table of client requests the replica has not answered yet, indexed the
//! three ways effects find them: by request, by log index (appended proposals) and by
//! read index (reads waiting for the state machine to catch up).

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{Epoch, LogIndex, RequestId};

/// What a pending request asked for.
#[derive(Debug)]
pub(crate) enum RequestKind<Q> {
    /// A command for the state machine.
    Command,
    /// A membership change.
    Reconfigure,
    /// A linearizable read, with its query.
    Read(Q),
}

/// Where a pending request stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Handed to the replica, no answer yet.
    Submitted,
    /// Appended at `index` in `epoch`: it takes effect if and only if that entry commits.
    Appended { index: LogIndex, epoch: Epoch },
    /// A read the replica cleared, to serve once the state machine reaches `index`.
    ReadReady { index: LogIndex },
}

#[derive(Debug)]
pub(crate) struct Pending<Q> {
    pub kind: RequestKind<Q>,
    pub stage: Stage,
    /// The tick count at which it times out.
    pub deadline_tick: u64,
}

#[derive(Debug)]
pub(crate) struct PendingTable<Q> {
    requests: BTreeMap<RequestId, Pending<Q>>,
    appended: BTreeSet<(LogIndex, RequestId)>,
    reads: BTreeSet<(LogIndex, RequestId)>,
    pending_requests_max: usize,
}

impl<Q> PendingTable<Q> {
    pub fn new(pending_requests_max: usize) -> Self {
        Self {
            requests: BTreeMap::new(),
            appended: BTreeSet::new(),
            reads: BTreeSet::new(),
            pending_requests_max,
        }
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_full(&self) -> bool {
        self.requests.len() >= self.pending_requests_max
    }

    /// Track a new request. The caller checked `is_full` and numbers requests in
    /// increasing order, so the table's order is submission order.
    pub fn insert(&mut self, req: RequestId, kind: RequestKind<Q>, deadline_tick: u64) {
        debug_assert!(!self.is_full());
        debug_assert!(
            self.requests
                .keys()
                .next_back()
                .is_none_or(|last| *last < req)
        );
        self.requests.insert(
            req,
            Pending {
                kind,
                stage: Stage::Submitted,
                deadline_tick,
            },
        );
    }

    /// The replica appended `req` at `index` in `epoch`. Returns false when `req` is not a
    /// pending proposal (answered already, timed out, or not ours).
    pub fn mark_appended(&mut self, req: RequestId, index: LogIndex, epoch: Epoch) -> bool {
        let Some(p) = self.requests.get_mut(&req) else {
            return false;
        };
        if matches!(p.kind, RequestKind::Read(_)) {
            return false;
        }
        if let Stage::Appended { index: old, .. } = p.stage {
            self.appended.remove(&(old, req));
        }
        p.stage = Stage::Appended { index, epoch };
        self.appended.insert((index, req));
        true
    }

    /// The replica cleared read `req` at `index`. Returns false when `req` is not a
    /// pending read.
    pub fn mark_read_ready(&mut self, req: RequestId, index: LogIndex) -> bool {
        let Some(p) = self.requests.get_mut(&req) else {
            return false;
        };
        if !matches!(p.kind, RequestKind::Read(_)) {
            return false;
        }
        if let Stage::ReadReady { index: old } = p.stage {
            self.reads.remove(&(old, req));
        }
        p.stage = Stage::ReadReady { index };
        self.reads.insert((index, req));
        true
    }

    /// Stop tracking `req`.
    pub fn remove(&mut self, req: RequestId) -> Option<Pending<Q>> {
        let p = self.requests.remove(&req)?;
        match p.stage {
            Stage::Submitted => {}
            Stage::Appended { index, .. } => {
                self.appended.remove(&(index, req));
            }
            Stage::ReadReady { index } => {
                self.reads.remove(&(index, req));
            }
        }
        Some(p)
    }

    /// Remove and return the proposals appended at `index`.
    pub fn take_appended_at(&mut self, index: LogIndex, out: &mut Vec<(RequestId, Pending<Q>)>) {
        while let Some(&(at, req)) = self.appended.range((index, RequestId::ZERO)..).next() {
            if at != index {
                break;
            }
            self.take(req, out);
        }
    }

    /// Remove and return the proposals appended at or below `index`.
    pub fn take_appended_through(
        &mut self,
        index: LogIndex,
        out: &mut Vec<(RequestId, Pending<Q>)>,
    ) {
        while let Some(&(at, req)) = self.appended.first() {
            if at > index {
                break;
            }
            self.take(req, out);
        }
    }

    /// Remove and return the reads cleared at or below `index`.
    pub fn take_reads_through(&mut self, index: LogIndex, out: &mut Vec<(RequestId, Pending<Q>)>) {
        while let Some(&(at, req)) = self.reads.first() {
            if at > index {
                break;
            }
            self.take(req, out);
        }
    }

    /// Remove and return the requests whose deadline is at or before `tick`. Deadlines
    /// grow with request numbers (one timeout for all), so they are found at the front.
    pub fn take_expired(&mut self, tick: u64, out: &mut Vec<(RequestId, Pending<Q>)>) {
        while let Some((&req, p)) = self.requests.first_key_value() {
            if p.deadline_tick > tick {
                break;
            }
            self.take(req, out);
        }
    }

    /// Remove and return every request.
    pub fn take_everything(&mut self, out: &mut Vec<(RequestId, Pending<Q>)>) {
        self.appended.clear();
        self.reads.clear();
        out.extend(std::mem::take(&mut self.requests));
    }

    fn take(&mut self, req: RequestId, out: &mut Vec<(RequestId, Pending<Q>)>) {
        if let Some(p) = self.remove(req) {
            out.push((req, p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_stage_changes() {
        let mut t = PendingTable::<u8>::new(3);
        t.insert(RequestId(1), RequestKind::Command, 10);
        t.insert(RequestId(2), RequestKind::Read(7), 11);
        t.insert(RequestId(3), RequestKind::Command, 12);
        assert!(t.is_full());
        assert!(t.mark_appended(RequestId(1), LogIndex(4), Epoch(1)));
        assert!(
            !t.mark_appended(RequestId(2), LogIndex(4), Epoch(1)),
            "a read"
        );
        assert!(t.mark_read_ready(RequestId(2), LogIndex(3)));
        // Re-appended after a leader change: only the newer position counts.
        assert!(t.mark_appended(RequestId(1), LogIndex(5), Epoch(2)));
        let mut out = Vec::new();
        t.take_appended_at(LogIndex(4), &mut out);
        assert!(out.is_empty());
        t.take_reads_through(LogIndex(3), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, RequestId(2));
        out.clear();
        t.take_expired(12, &mut out);
        let got: Vec<_> = out.iter().map(|(r, _)| *r).collect();
        assert_eq!(got, vec![RequestId(1), RequestId(3)]);
        assert_eq!(t.len(), 0);
        assert!(t.appended.is_empty() && t.reads.is_empty());
    }
}

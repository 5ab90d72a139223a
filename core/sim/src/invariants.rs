//! Safety invariants checked on every step, generic over any [`Replica`](rsm_core::Replica):
//! they look only at `status()` and at the effects a replica emits.

use std::collections::BTreeMap;
use std::fmt;

use rsm_core::session::ClientId;
use rsm_core::{Entry, EntryKind, Epoch, LogIndex, NodeId, PersistSeq, Role, Status};

/// The properties the simulator checks.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// Two nodes led the same epoch.
    OneLeaderPerEpoch,
    /// An index was applied with different contents at two places or times (log matching;
    /// committed entries never change; every replica applies the same sequence).
    LogMatching,
    /// A replica's `Apply` stream skipped or repeated an index.
    ApplyOrder,
    /// A replica's epoch went backwards, within an incarnation or below its durable epoch
    /// after a restart.
    EpochMonotonic,
    /// A replica's commit or applied index went backwards within an incarnation.
    CommitMonotonic,
    /// A retried command was executed a second time.
    AppliedTwice,
    /// An operation reported as a definite failure took effect.
    FailedButApplied,
    /// An acknowledged write is missing from the converged replicas' applied log.
    LostWrite,
    /// A persist was refused by the reference semantics, numbered out of order, or the
    /// durable state could not be restored.
    Durability,
    /// After faults stopped, pending operations did not complete or replicas did not
    /// converge within the tick budget.
    Liveness,
    /// Converged replicas hold different state.
    Convergence,
    /// The client history is not linearizable.
    Linearizability,
    /// The automaton broke a host-facing bound (unbounded queues, an event storm).
    Bounds,
}

impl Invariant {
    /// A stable, short name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::OneLeaderPerEpoch => "one-leader-per-epoch",
            Invariant::LogMatching => "log-matching",
            Invariant::ApplyOrder => "apply-order",
            Invariant::EpochMonotonic => "epoch-monotonic",
            Invariant::CommitMonotonic => "commit-monotonic",
            Invariant::AppliedTwice => "applied-twice",
            Invariant::FailedButApplied => "failed-but-applied",
            Invariant::LostWrite => "lost-write",
            Invariant::Durability => "durability",
            Invariant::Liveness => "liveness",
            Invariant::Convergence => "convergence",
            Invariant::Linearizability => "linearizability",
            Invariant::Bounds => "bounds",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed invariant: which, where and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant.
    pub invariant: Invariant,
    /// The node it was seen at, if one.
    pub node: Option<NodeId>,
    /// What was seen, for a person.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node {
            Some(n) => write!(f, "{} at {n}: {}", self.invariant, self.detail),
            None => write!(f, "{}: {}", self.invariant, self.detail),
        }
    }
}

pub(crate) fn violation(invariant: Invariant, node: Option<NodeId>, detail: String) -> Violation {
    Violation {
        invariant,
        node,
        detail,
    }
}

/// What the checker remembers about one incarnation of one node.
#[derive(Clone, Debug, Default)]
pub(crate) struct Watch {
    pub epoch: Epoch,
    pub commit: LogIndex,
    pub applied: LogIndex,
    pub persist_seq: PersistSeq,
    pub hard_state_epoch: Epoch,
    pub role: Role,
}

/// Cluster-wide state the invariants compare against.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// Who led each epoch.
    leaders: BTreeMap<Epoch, NodeId>,
    /// The first entry applied at each index anywhere (index 1 at position 0).
    log: Vec<Option<Entry>>,
    /// For each command session `(client, seq)`, the index where it first appears.
    first_seen: BTreeMap<(ClientId, u64), LogIndex>,
    /// Invariant checks performed.
    pub checks: u64,
    /// Leaders elected (distinct epochs with a leader).
    pub elections: u64,
}

impl Checker {
    /// Check a status just reported by `node`'s current incarnation.
    pub fn status(&mut self, w: &mut Watch, s: &Status) -> Result<(), Violation> {
        let node = Some(s.id);
        self.checks += 3;
        if s.epoch < w.epoch {
            return Err(violation(
                Invariant::EpochMonotonic,
                node,
                format!("epoch went from {} back to {}", w.epoch, s.epoch),
            ));
        }
        if s.commit < w.commit {
            return Err(violation(
                Invariant::CommitMonotonic,
                node,
                format!("commit went from {} back to {}", w.commit, s.commit),
            ));
        }
        if s.role == Role::Leader {
            match self.leaders.get(&s.epoch) {
                Some(&other) if other != s.id => {
                    return Err(violation(
                        Invariant::OneLeaderPerEpoch,
                        node,
                        format!("{} and {other} both lead epoch {}", s.id, s.epoch),
                    ));
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(s.epoch, s.id);
                    self.elections += 1;
                }
            }
        }
        w.epoch = s.epoch;
        w.commit = s.commit;
        w.role = s.role;
        Ok(())
    }

    /// Check that a restarted incarnation did not forget its durable epoch.
    pub fn restored(
        &mut self,
        w: &Watch,
        s: &Status,
        durable_epoch: Epoch,
    ) -> Result<(), Violation> {
        self.checks += 1;
        debug_assert_eq!(w.epoch, Epoch(0), "a fresh watch per incarnation");
        if s.epoch < durable_epoch {
            return Err(violation(
                Invariant::EpochMonotonic,
                Some(s.id),
                format!(
                    "restarted at epoch {} below its durable epoch {durable_epoch}",
                    s.epoch
                ),
            ));
        }
        Ok(())
    }

    /// Check one persist effect's numbering and hard-state epoch.
    pub fn persist(
        &mut self,
        node: NodeId,
        w: &mut Watch,
        seq: PersistSeq,
        hard_state_epoch: Option<Epoch>,
    ) -> Result<(), Violation> {
        self.checks += 1;
        if seq != w.persist_seq.next() {
            return Err(violation(
                Invariant::Durability,
                Some(node),
                format!("persist numbered {seq} after {}", w.persist_seq),
            ));
        }
        w.persist_seq = seq;
        if let Some(e) = hard_state_epoch {
            self.checks += 1;
            if e < w.hard_state_epoch {
                return Err(violation(
                    Invariant::EpochMonotonic,
                    Some(node),
                    format!(
                        "persisted epoch {e} below an earlier {}",
                        w.hard_state_epoch
                    ),
                ));
            }
            w.hard_state_epoch = e;
        }
        Ok(())
    }

    /// Check one applied entry against the apply stream so far and against every other
    /// replica's. Returns whether a command at this index is a retry of one already
    /// executed at an earlier index (the state machine must leave state unchanged).
    pub fn apply(
        &mut self,
        node: NodeId,
        w: &mut Watch,
        entry: &Entry,
        session: Option<(ClientId, u64)>,
    ) -> Result<bool, Violation> {
        self.checks += 2;
        if entry.index != w.applied.next() {
            return Err(violation(
                Invariant::ApplyOrder,
                Some(node),
                format!("applied {} right after {}", entry.index, w.applied),
            ));
        }
        w.applied = entry.index;
        let pos = (entry.index.0 - 1) as usize;
        if self.log.len() <= pos {
            // Indices below this one were applied here first (in order), or arrived in a
            // snapshot taken from someone's apply stream.
            self.log.resize(pos + 1, None);
        }
        match &self.log[pos] {
            Some(first) => {
                if first.epoch != entry.epoch
                    || first.kind != entry.kind
                    || first.payload != entry.payload
                {
                    return Err(violation(
                        Invariant::LogMatching,
                        Some(node),
                        format!(
                            "applied {} as {:?} {} ({} bytes), but it was applied before as \
                             {:?} {} ({} bytes)",
                            entry.index,
                            entry.kind,
                            entry.epoch,
                            entry.payload.len(),
                            first.kind,
                            first.epoch,
                            first.payload.len()
                        ),
                    ));
                }
            }
            None => self.log[pos] = Some(entry.clone()),
        }
        let Some(key) = session.filter(|_| entry.kind == EntryKind::Command) else {
            return Ok(false);
        };
        let first = *self.first_seen.entry(key).or_insert(entry.index);
        Ok(first < entry.index)
    }

    /// Forget the apply position for a replica that installed a snapshot at `index`.
    pub fn installed(&mut self, w: &mut Watch, index: LogIndex) {
        self.checks += 1;
        w.applied = index;
    }

    /// The entry applied at `index`, if any replica applied it.
    pub fn applied_entry(&self, index: LogIndex) -> Option<&Entry> {
        self.log.get(index.0.checked_sub(1)? as usize)?.as_ref()
    }

    /// Where the command of `(client, seq)` was first applied, if anywhere.
    pub fn executed_at(&self, client: ClientId, seq: u64) -> Option<LogIndex> {
        self.first_seen.get(&(client, seq)).copied()
    }

    /// The highest index applied anywhere.
    pub fn applied_max(&self) -> LogIndex {
        LogIndex(self.log.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsm_core::Bytes;

    fn status(id: u64, role: Role, epoch: u64, commit: u64) -> Status {
        Status {
            id: NodeId(id),
            role,
            epoch: Epoch(epoch),
            commit: LogIndex(commit),
            ..Status::default()
        }
    }

    #[test]
    fn two_leaders_in_one_epoch_are_caught() {
        let mut c = Checker::default();
        let (mut a, mut b) = (Watch::default(), Watch::default());
        c.status(&mut a, &status(1, Role::Leader, 2, 0)).unwrap();
        c.status(&mut b, &status(2, Role::Leader, 3, 0)).unwrap();
        let v = c.status(&mut b, &status(2, Role::Leader, 2, 0));
        // Epoch went back first: that is checked before leadership.
        assert_eq!(v.unwrap_err().invariant, Invariant::EpochMonotonic);
        let mut fresh = Watch::default();
        let v = c
            .status(&mut fresh, &status(3, Role::Leader, 2, 0))
            .unwrap_err();
        assert_eq!(v.invariant, Invariant::OneLeaderPerEpoch);
        assert_eq!(c.elections, 2);
    }

    #[test]
    fn commit_going_back_is_caught() {
        let mut c = Checker::default();
        let mut w = Watch::default();
        c.status(&mut w, &status(1, Role::Follower, 1, 5)).unwrap();
        let v = c
            .status(&mut w, &status(1, Role::Follower, 1, 4))
            .unwrap_err();
        assert_eq!(v.invariant, Invariant::CommitMonotonic);
    }

    #[test]
    fn divergent_apply_and_gaps_are_caught() {
        let mut c = Checker::default();
        let e1 = Entry::command(LogIndex(1), Epoch(1), Bytes::from_static(b"a"));
        let e1b = Entry::command(LogIndex(1), Epoch(2), Bytes::from_static(b"b"));
        let (mut a, mut b) = (Watch::default(), Watch::default());
        c.apply(NodeId(1), &mut a, &e1, None).unwrap();
        let v = c.apply(NodeId(2), &mut b, &e1b, None).unwrap_err();
        assert_eq!(v.invariant, Invariant::LogMatching);
        let e3 = Entry::command(LogIndex(3), Epoch(1), Bytes::new());
        let v = c.apply(NodeId(1), &mut a, &e3, None).unwrap_err();
        assert_eq!(v.invariant, Invariant::ApplyOrder);
    }

    #[test]
    fn a_repeated_session_is_reported_as_a_retry() {
        let mut c = Checker::default();
        let mut w = Watch::default();
        let s = Some((ClientId(1), 1));
        let e = |i| Entry::command(LogIndex(i), Epoch(1), Bytes::from_static(b"x"));
        assert!(!c.apply(NodeId(1), &mut w, &e(1), s).unwrap());
        assert!(c.apply(NodeId(1), &mut w, &e(2), s).unwrap());
        assert_eq!(c.executed_at(ClientId(1), 1), Some(LogIndex(1)));
    }

    #[test]
    fn persist_numbering_and_epochs_are_checked() {
        let mut c = Checker::default();
        let mut w = Watch::default();
        c.persist(NodeId(1), &mut w, PersistSeq(1), Some(Epoch(3)))
            .unwrap();
        let v = c
            .persist(NodeId(1), &mut w, PersistSeq(3), None)
            .unwrap_err();
        assert_eq!(v.invariant, Invariant::Durability);
        let v = c
            .persist(NodeId(1), &mut w, PersistSeq(2), Some(Epoch(2)))
            .unwrap_err();
        assert_eq!(v.invariant, Invariant::EpochMonotonic);
    }
}

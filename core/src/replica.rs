//! The automaton contract: inputs, effects, durable state and the [`Replica`] trait.

use std::fmt::Debug;

use bytes::Bytes;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::entry::{Entry, SnapshotMeta};
use crate::error::{PersistError, RestoreError};
use crate::ids::{Epoch, LogIndex, NodeId, PersistSeq, RequestId};
use crate::membership::Membership;
use crate::reject::RejectReason;

/// Everything that can happen to an automaton. All nondeterminism enters here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<M> {
    /// One logical clock tick. Every timeout is counted in ticks.
    Tick,
    /// A message from a peer.
    ///
    /// The automaton does not refuse a sender for being outside the membership it knows:
    /// that view may be stale (a replica learns of a new member only from the log, and a
    /// removed one may not yet know it is out), and refusing would stall the very messages
    /// that bring it up to date. Protocols judge a message by its epoch and log position
    /// instead, and count only members' votes and acknowledgements toward a quorum.
    Receive {
        /// The sender, as authenticated by the transport.
        from: NodeId,
        /// The message.
        msg: M,
    },
    /// A client command to replicate.
    Propose {
        /// Echoed back in `Proposed`, or in `Reject`.
        req: RequestId,
        /// Opaque to the protocol.
        command: Bytes,
    },
    /// A linearizable read barrier: answered with `ReadReady` once the host may serve the
    /// read from its state machine after applying through the given index.
    Read {
        /// Echoed back in `ReadReady` or `Reject`.
        req: RequestId,
    },
    /// Every `Persist` numbered `<= through` is durable.
    Persisted {
        /// The highest durable persist number.
        through: PersistSeq,
    },
    /// The host's state machine has applied every entry through this index.
    Applied {
        /// The highest applied index.
        through: LogIndex,
    },
    /// The host took the snapshot asked for by `TakeSnapshot`.
    Snapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// The state machine's serialized state at `meta.index`.
        data: Bytes,
    },
    /// Change the membership to `membership` (voters and learners of the target
    /// configuration). Protocols that use joint consensus pass through a joint stage.
    Reconfigure {
        /// Echoed back in `Proposed` or `Reject`.
        req: RequestId,
        /// The target configuration.
        membership: Membership,
    },
    /// Hand leadership to `to`. A replica that cannot start the transfer (not the leader,
    /// `to` is no voter, a transfer to another node is under way, or the protocol has no
    /// transfer) answers with `Reject { req, .. }`; an accepted transfer is not otherwise
    /// acknowledged: the host watches `RoleChanged`.
    TransferLeadership {
        /// Echoed back in `Reject`.
        req: RequestId,
        /// The node that should become leader.
        to: NodeId,
    },
    /// Start an election now, as if the election timeout had fired (etcd's `MsgHup`), for
    /// operators and tests. Ignored by a leader and by a replica that may not stand; a
    /// protocol without elections ignores it.
    Campaign,
}

/// One write to durable storage, applied in emission order.
///
/// Log-shaped protocols (Raft, VSR) write with `Append`, which discards the suffix it
/// replaces; slot-shaped ones (Paxos acceptors) write with `Accept`, which leaves holes
/// and never discards a slot it does not name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Persist {
    /// Write `entries` (consecutive, non-empty) starting at `entries[0].index`, first
    /// discarding every durable entry at that index or above.
    Append {
        /// The entries to write.
        entries: Vec<Entry>,
    },
    /// Write each of `entries` (strictly ascending indexes, each above the snapshot) into
    /// the slot at its index, replacing whatever that slot held. Slots between them may
    /// stay empty, and nothing else is discarded, above or below.
    Accept {
        /// The slots to write.
        entries: Vec<Entry>,
    },
    /// Discard every durable entry at index `from` or above.
    Truncate {
        /// First index to discard.
        from: LogIndex,
    },
    /// Replace the hard state.
    HardState(HardState),
    /// Store a snapshot, replacing the previous one (whose index must not be higher), and
    /// discard every entry at or below `meta.index`. Entries above it are kept whatever the log holds at `meta.index`:
    /// a Paxos acceptor must never forget a slot it accepted above a snapshot it received.
    /// A log-shaped protocol whose entries above the snapshot may disagree with it (a Raft
    /// follower installing a leader's snapshot over a conflicting log) discards them
    /// itself with `Truncate { from: meta.index + 1 }`, written before the snapshot so that
    /// a crash between the two leaves a log the protocol could have had.
    Snapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// The state machine bytes.
        data: Bytes,
    },
    /// Discard entries at or below `through` (already covered by a durable snapshot).
    Compact {
        /// Last index to discard.
        through: LogIndex,
    },
}

impl Persist {
    /// Whether this operation may be applied to a durable image whose log ends at
    /// `last_index` after a snapshot through `snapshot_index`: the checks of
    /// [`Durable::apply`], for storage that keeps its own image of the log.
    pub fn validate(
        &self,
        last_index: LogIndex,
        snapshot_index: LogIndex,
    ) -> Result<(), PersistError> {
        match self {
            Persist::Append { entries } => {
                let Some(first) = entries.first() else {
                    return Ok(());
                };
                if first.index <= snapshot_index {
                    return Err(PersistError::BelowSnapshot {
                        index: first.index.0,
                        snapshot: snapshot_index.0,
                    });
                }
                if first.index > last_index.next() {
                    return Err(PersistError::Gap {
                        first: first.index.0,
                        last: last_index.0,
                    });
                }
                match entries.windows(2).find(|w| w[1].index != w[0].index.next()) {
                    Some(w) => Err(PersistError::NotConsecutive(w[1].index.0)),
                    None => Ok(()),
                }
            }
            Persist::Accept { entries } => {
                if let Some(first) = entries.first()
                    && first.index <= snapshot_index
                {
                    return Err(PersistError::BelowSnapshot {
                        index: first.index.0,
                        snapshot: snapshot_index.0,
                    });
                }
                match entries.windows(2).find(|w| w[1].index <= w[0].index) {
                    Some(w) => Err(PersistError::NotAscending(w[1].index.0)),
                    None => Ok(()),
                }
            }
            Persist::Truncate { from } if *from <= snapshot_index => {
                Err(PersistError::BelowSnapshot {
                    index: from.0,
                    snapshot: snapshot_index.0,
                })
            }
            Persist::Snapshot { meta, .. } if meta.index < snapshot_index => {
                Err(PersistError::SnapshotBehind {
                    index: meta.index.0,
                    snapshot: snapshot_index.0,
                })
            }
            Persist::Truncate { .. }
            | Persist::HardState(_)
            | Persist::Snapshot { .. }
            | Persist::Compact { .. } => Ok(()),
        }
    }
}

/// The small piece of state a protocol must keep durable besides its log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HardState {
    /// The highest epoch this replica has seen or promised.
    pub epoch: Epoch,
    /// Whom this replica voted for in `epoch`, if anyone.
    pub vote: Option<NodeId>,
    /// A commit index known at the time of writing (a hint that saves work on restart;
    /// never required for safety).
    pub commit: LogIndex,
    /// Protocol-specific extra state, encoded by the protocol.
    pub extra: Bytes,
}

/// Everything a replica made durable: what `Replica::restore` rebuilds from.
///
/// Invariant: `entries` are in strictly ascending index order, all above the snapshot's
/// index. They are consecutive for a protocol that writes only with `Append`; `Accept`
/// may leave holes. Lookups are a direct offset when the log has no holes and a binary
/// search otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durable {
    /// The last hard state written.
    pub hard_state: HardState,
    /// The last snapshot written, with its data.
    pub snapshot: Option<(SnapshotMeta, Bytes)>,
    /// The log after the snapshot, ascending by index (see the invariant above).
    pub entries: Vec<Entry>,
}

impl Durable {
    /// The index of the last entry (or of the snapshot if the log after it is empty).
    pub fn last_index(&self) -> LogIndex {
        match self.entries.last() {
            Some(e) => e.index,
            None => self.snapshot_index(),
        }
    }

    /// The snapshot's last index, or 0.
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(LogIndex(0), |(m, _)| m.index)
    }

    /// Whether the log after the snapshot has no holes between its first and last entry.
    pub fn is_consecutive(&self) -> bool {
        match (self.entries.first(), self.entries.last()) {
            (Some(a), Some(b)) => b.index.0 - a.index.0 + 1 == self.entries.len() as u64,
            _ => true,
        }
    }

    /// The entry at `index`, if it is in the log.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.position(index).ok().map(|k| &self.entries[k])
    }

    /// Where the entry at `index` is (`Ok`), or where it would go (`Err`).
    fn position(&self, index: LogIndex) -> Result<usize, usize> {
        let Some(first) = self.entries.first().map(|e| e.index) else {
            return Err(0);
        };
        if index < first {
            return Err(0);
        }
        // Without holes the offset is exact; with holes it is only a guess to confirm.
        let guess = (index.0 - first.0) as usize;
        match self.entries.get(guess) {
            Some(e) if e.index == index => Ok(guess),
            _ => self.entries.binary_search_by_key(&index, |e| e.index),
        }
    }

    /// Apply one persist operation with the contract's semantics. Every storage
    /// implementation (the simulator's disk, the write-ahead log, test fakes) must agree
    /// with this function; it is the reference.
    pub fn apply(&mut self, op: &Persist) -> Result<(), PersistError> {
        match op {
            Persist::Append { entries } => {
                op.validate(self.last_index(), self.snapshot_index())?;
                if let Some(first) = entries.first() {
                    self.truncate_from(first.index);
                    self.entries.extend(entries.iter().cloned());
                }
            }
            Persist::Accept { entries } => {
                op.validate(self.last_index(), self.snapshot_index())?;
                // The slots are ascending, so those past the log's end (the common case
                // for an acceptor following its leader) are a suffix that goes on the end
                // without a search.
                let end = self.entries.last().map_or(LogIndex(0), |e| e.index);
                let (within, past_end) =
                    entries.split_at(entries.partition_point(|e| e.index <= end));
                for e in within {
                    match self.position(e.index) {
                        Ok(k) => self.entries[k] = e.clone(),
                        Err(k) => self.entries.insert(k, e.clone()),
                    }
                }
                self.entries.extend_from_slice(past_end);
            }
            Persist::Truncate { from } => {
                op.validate(self.last_index(), self.snapshot_index())?;
                self.truncate_from(*from);
            }
            Persist::HardState(hs) => self.hard_state = hs.clone(),
            Persist::Snapshot { meta, data } => {
                op.validate(self.last_index(), self.snapshot_index())?;
                self.compact_through(meta.index);
                self.snapshot = Some((meta.clone(), data.clone()));
            }
            Persist::Compact { through } => {
                let through = (*through).min(self.snapshot_index());
                self.compact_through(through);
            }
        }
        Ok(())
    }

    fn truncate_from(&mut self, from: LogIndex) {
        let keep = self.position(from).unwrap_or_else(|k| k);
        self.entries.truncate(keep);
    }

    fn compact_through(&mut self, through: LogIndex) {
        let drop = self.position(through).map_or_else(|k| k, |k| k + 1);
        self.entries.drain(..drop);
    }
}

/// Everything an automaton asks of the world, in the order it must happen.
///
/// The host rule: execute effects in order; a `Send` that follows a `Persist` leaves only
/// after that `Persist` is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<M> {
    /// Send `msg` to `to`.
    Send {
        /// The recipient.
        to: NodeId,
        /// The message.
        msg: M,
    },
    /// Make `op` durable; report it with `Input::Persisted { through: seq }` (or higher).
    Persist {
        /// This persist's number (consecutive from 1 per incarnation).
        seq: PersistSeq,
        /// The write.
        op: Persist,
    },
    /// Apply these committed entries, in order, to the state machine, then report
    /// `Input::Applied`. Each index is delivered exactly once per incarnation, after any
    /// snapshot the replica was restored from or installed.
    Apply {
        /// Committed entries, consecutive.
        entries: Vec<Entry>,
    },
    /// The proposal (or reconfiguration) `req` was appended at `index` in `epoch`. It took
    /// effect if and only if an `Apply` later delivers `index` with the same `epoch`.
    Proposed {
        /// The request.
        req: RequestId,
        /// Where it was appended.
        index: LogIndex,
        /// The epoch of the appended entry.
        epoch: Epoch,
    },
    /// The read `req` may be served once the state machine has applied through `index`.
    ReadReady {
        /// The read.
        req: RequestId,
        /// The index to apply through first.
        index: LogIndex,
    },
    /// The request `req` was refused.
    Reject {
        /// The request.
        req: RequestId,
        /// Why; says whether the refusal is definite.
        reason: RejectReason,
    },
    /// Take a snapshot of the state machine at `through` (already applied) and hand it
    /// back with `Input::Snapshot`.
    TakeSnapshot {
        /// The index the snapshot must cover.
        through: LogIndex,
    },
    /// Replace the state machine's state with this snapshot (received from a peer). Later
    /// `Apply` effects continue from `meta.index + 1`.
    InstallSnapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
        /// The state machine bytes.
        data: Bytes,
    },
    /// The replica's role, epoch or known leader changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The current epoch.
        epoch: Epoch,
        /// The known leader, if any.
        leader: Option<NodeId>,
    },
}

/// A replica's role, in protocol-neutral terms.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (Raft follower, Paxos acceptor, VSR backup).
    #[default]
    Follower,
    /// Probing whether an election could succeed (Raft pre-vote).
    PreCandidate,
    /// Running an election or view change.
    Candidate,
    /// Leads the epoch (Raft leader, Paxos distinguished proposer, VSR primary).
    Leader,
    /// Receives the log but does not vote.
    Learner,
    /// Rebuilding state after a restart (VSR recovery).
    Recovering,
    /// No longer a member of the cluster.
    Removed,
}

/// A replica's externally visible state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The replica's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current epoch.
    pub epoch: Epoch,
    /// The leader it believes in.
    pub leader: Option<NodeId>,
    /// The highest index it knows to be committed.
    pub commit: LogIndex,
    /// The highest index it has emitted in `Apply` (or restored from a snapshot).
    pub applied: LogIndex,
    /// The last index in its log.
    pub last_index: LogIndex,
    /// The membership it acts on.
    pub membership: Membership,
}

/// A deterministic, I/O-free consensus automaton.
///
/// It consumes [`Input`]s and emits [`Effect`]s; it never touches a socket, file, clock or
/// random source. The same configuration (including its PRNG seed), durable state and
/// inputs always produce the same effects.
pub trait Replica {
    /// The protocol's peer-to-peer message.
    type Message: Clone + Serialize + DeserializeOwned + Debug;
    /// Static configuration: id, initial membership, timeouts in ticks, limits, seed.
    type Config: Clone + Debug;

    /// Rebuild a replica from what it made durable. A new replica restores from
    /// `Durable::default()` and takes its initial membership from `config`.
    fn restore(config: Self::Config, durable: Durable) -> Result<Self, RestoreError>
    where
        Self: Sized;

    /// Consume one input, appending the effects it causes to `out` in order.
    fn step(&mut self, input: Input<Self::Message>, out: &mut Vec<Effect<Self::Message>>);

    /// The replica's current status.
    fn status(&self) -> Status;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;

    fn e(i: u64, t: u64) -> Entry {
        Entry::command(LogIndex(i), Epoch(t), Bytes::from(vec![i as u8]))
    }

    #[test]
    fn append_overwrites_suffix() {
        let mut d = Durable::default();
        d.apply(&Persist::Append {
            entries: vec![e(1, 1), e(2, 1), e(3, 1)],
        })
        .unwrap();
        d.apply(&Persist::Append {
            entries: vec![e(2, 2)],
        })
        .unwrap();
        assert_eq!(d.entries, vec![e(1, 1), e(2, 2)]);
        assert_eq!(d.last_index(), LogIndex(2));
    }

    #[test]
    fn append_rejects_gaps_and_non_consecutive() {
        let mut d = Durable::default();
        assert!(matches!(
            d.apply(&Persist::Append {
                entries: vec![e(2, 1)]
            }),
            Err(PersistError::Gap { .. })
        ));
        assert!(matches!(
            d.apply(&Persist::Append {
                entries: vec![e(1, 1), e(3, 1)]
            }),
            Err(PersistError::NotConsecutive(3))
        ));
        assert!(d.entries.is_empty(), "a refused append changes nothing");
    }

    fn snapshot(index: u64, epoch: u64) -> Persist {
        Persist::Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(index),
                epoch: Epoch(epoch),
                ..Default::default()
            },
            data: Bytes::new(),
        }
    }

    #[test]
    fn snapshot_discards_through_its_index_and_keeps_everything_above() {
        let mut d = Durable::default();
        d.apply(&Persist::Append {
            entries: vec![e(1, 1), e(2, 1), e(3, 1)],
        })
        .unwrap();
        d.apply(&snapshot(2, 1)).unwrap();
        assert_eq!(d.entries, vec![e(3, 1)]);
        assert_eq!(d.entry(LogIndex(3)), Some(&e(3, 1)));
        assert_eq!(d.entry(LogIndex(2)), None);
        // A snapshot whose epoch the log does not hold at its index still keeps the
        // entries above it: discarding them is the protocol's call (a `Truncate`).
        d.apply(&Persist::Append {
            entries: vec![e(4, 1), e(5, 1), e(6, 1)],
        })
        .unwrap();
        d.apply(&snapshot(4, 2)).unwrap();
        assert_eq!(d.entries, vec![e(5, 1), e(6, 1)]);
        d.apply(&snapshot(9, 2)).unwrap();
        assert!(d.entries.is_empty());
        assert_eq!(d.last_index(), LogIndex(9));
        assert_eq!(
            d.apply(&snapshot(8, 2)),
            Err(PersistError::SnapshotBehind {
                index: 8,
                snapshot: 9
            })
        );
        assert_eq!(d.snapshot_index(), LogIndex(9));
        assert!(matches!(
            d.apply(&Persist::Truncate { from: LogIndex(3) }),
            Err(PersistError::BelowSnapshot { .. })
        ));
    }

    #[test]
    fn accept_writes_slots_with_holes_and_discards_nothing() {
        let mut d = Durable::default();
        d.apply(&Persist::Accept {
            entries: vec![e(2, 1), e(5, 1)],
        })
        .unwrap();
        assert!(!d.is_consecutive());
        assert_eq!(d.last_index(), LogIndex(5));
        assert_eq!(d.entry(LogIndex(3)), None);
        // A lower slot is filled and a held one replaced; the higher slot stays.
        d.apply(&Persist::Accept {
            entries: vec![e(3, 2), e(5, 3)],
        })
        .unwrap();
        assert_eq!(d.entries, vec![e(2, 1), e(3, 2), e(5, 3)]);
        assert_eq!(d.entry(LogIndex(5)), Some(&e(5, 3)));
        assert!(matches!(
            d.apply(&Persist::Accept {
                entries: vec![e(7, 1), e(7, 1)]
            }),
            Err(PersistError::NotAscending(7))
        ));
        // Truncation and compaction find their place in a log with holes.
        d.apply(&Persist::Truncate { from: LogIndex(4) }).unwrap();
        assert_eq!(d.last_index(), LogIndex(3));
        d.apply(&snapshot(2, 1)).unwrap();
        assert_eq!(d.entries, vec![e(3, 2)]);
        assert!(matches!(
            d.apply(&Persist::Accept {
                entries: vec![e(2, 4)]
            }),
            Err(PersistError::BelowSnapshot { .. })
        ));
    }

    /// Durable's log against the plainest model of the contract: a map from index to
    /// entry, with every operation (appends, slot writes with holes, truncation,
    /// snapshots, compaction) in random order.
    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        #[derive(Clone, Debug)]
        enum Op {
            Append(u64, u64),
            Accept(Vec<u64>),
            Truncate(u64),
            Snapshot(u64, bool),
            Compact(u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (1u64..40, 1u64..5).prop_map(|(i, n)| Op::Append(i, n)),
                proptest::collection::btree_set(1u64..40, 1..5)
                    .prop_map(|s| Op::Accept(s.into_iter().collect())),
                (1u64..40).prop_map(Op::Truncate),
                (1u64..40, any::<bool>()).prop_map(|(i, m)| Op::Snapshot(i, m)),
                (1u64..40).prop_map(Op::Compact),
            ]
        }

        proptest! {
            #[test]
            fn durable_agrees_with_a_map_of_slots(ops in proptest::collection::vec(op(), 1..40)) {
                let mut d = Durable::default();
                let mut slots: BTreeMap<u64, Entry> = BTreeMap::new();
                let mut snap = 0u64;
                for (k, op) in ops.into_iter().enumerate() {
                    let epoch = k as u64 + 1;
                    let p = match &op {
                        Op::Append(i, n) => Persist::Append {
                            entries: (*i..i + n).map(|j| e(j, epoch)).collect(),
                        },
                        Op::Accept(idx) => Persist::Accept {
                            entries: idx.iter().map(|&j| e(j, epoch)).collect(),
                        },
                        Op::Truncate(i) => Persist::Truncate { from: LogIndex(*i) },
                        Op::Snapshot(i, matching) => {
                            let held = slots.get(i).map(|x| x.epoch);
                            let epoch = if *matching { held.unwrap_or(Epoch(0)) } else { Epoch(999) };
                            Persist::Snapshot {
                                meta: SnapshotMeta { index: LogIndex(*i), epoch, ..Default::default() },
                                data: Bytes::new(),
                            }
                        }
                        Op::Compact(i) => Persist::Compact { through: LogIndex(*i) },
                    };
                    let last = slots.keys().next_back().copied().unwrap_or(snap);
                    let ok = d.apply(&p).is_ok();
                    // The model: what each operation does to a map of slots.
                    let model_ok = match &op {
                        Op::Append(i, n) => {
                            let fits = *i > snap && *i <= last + 1;
                            if fits {
                                slots.retain(|&j, _| j < *i);
                                for j in *i..i + n {
                                    slots.insert(j, e(j, epoch));
                                }
                            }
                            fits
                        }
                        Op::Accept(idx) => {
                            let fits = idx[0] > snap;
                            if fits {
                                for &j in idx {
                                    slots.insert(j, e(j, epoch));
                                }
                            }
                            fits
                        }
                        Op::Truncate(i) => {
                            let fits = *i > snap;
                            if fits {
                                slots.retain(|&j, _| j < *i);
                            }
                            fits
                        }
                        Op::Snapshot(i, _) => {
                            // Whatever the log holds at `i`, every slot above it stays; an
                            // older snapshot never replaces a newer one.
                            let fits = *i >= snap;
                            if fits {
                                slots.retain(|&j, _| j > *i);
                                snap = *i;
                            }
                            fits
                        }
                        Op::Compact(i) => {
                            let through = (*i).min(snap);
                            slots.retain(|&j, _| j > through);
                            true
                        }
                    };
                    prop_assert_eq!(ok, model_ok, "{:?}", op);
                    let want: Vec<Entry> = slots.values().cloned().collect();
                    prop_assert_eq!(&d.entries, &want);
                    prop_assert_eq!(d.snapshot_index(), LogIndex(snap));
                    for j in 0..45 {
                        prop_assert_eq!(d.entry(LogIndex(j)), slots.get(&j));
                    }
                }
            }
        }
    }
}

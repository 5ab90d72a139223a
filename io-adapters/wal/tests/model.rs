//! The log agrees with the reference: random sequences of persist operations, written
//! through a `Wal` with syncs, clean reopens and crashes, recover to what `Durable::apply`
//! makes of the same operations.

mod support;

use proptest::prelude::*;
use rsm_core::{
    Bytes, Durable, Entry, Epoch, HardState, LogIndex, Membership, NodeId, Persist, SnapshotMeta,
};
use rsm_wal::{Wal, WalError};
use support::*;

/// An operation in terms of the current state; turned into a concrete `Persist` when run.
#[derive(Clone, Debug)]
enum Action {
    /// Append `count` entries starting `back` positions before the end (an overwrite when
    /// `back > 0`), in a new epoch if `bump`.
    Append {
        back: u8,
        count: u8,
        bump: bool,
        len: u8,
    },
    /// Write slots at these offsets above the snapshot (holes allowed, possibly past the
    /// end or over held entries), in a new epoch if `bump`.
    Accept {
        offsets: Vec<u8>,
        bump: bool,
        len: u8,
    },
    Truncate {
        back: u8,
    },
    HardState {
        epoch: u8,
        vote: Option<u8>,
        extra: u8,
    },
    /// A snapshot of an entry in the log (`matching`) or of an arbitrary index and epoch,
    /// as one received from a leader may be.
    Snapshot {
        back: u8,
        matching: bool,
        epoch: u8,
        len: u8,
    },
    Compact {
        back: u8,
    },
    /// An operation the reference refuses.
    Invalid {
        kind: u8,
    },
    Sync,
    /// Sync, close and reopen: exactly the reference comes back.
    Reopen,
    /// Drop without syncing: some prefix since the last sync comes back.
    Crash,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (0u8..4, 1u8..5, any::<bool>(), 0u8..48)
            .prop_map(|(back, count, bump, len)| Action::Append { back, count, bump, len }),
        3 => (proptest::collection::btree_set(0u8..16, 1..6), any::<bool>(), 0u8..48)
            .prop_map(|(offsets, bump, len)| Action::Accept {
                offsets: offsets.into_iter().collect(),
                bump,
                len,
            }),
        1 => (0u8..6).prop_map(|back| Action::Truncate { back }),
        2 => (0u8..8, proptest::option::of(1u8..4), 0u8..24)
            .prop_map(|(epoch, vote, extra)| Action::HardState { epoch, vote, extra }),
        1 => (0u8..8, any::<bool>(), 0u8..8, 0u8..64)
            .prop_map(|(back, matching, epoch, len)| Action::Snapshot { back, matching, epoch, len }),
        1 => (0u8..8).prop_map(|back| Action::Compact { back }),
        1 => (0u8..6).prop_map(|kind| Action::Invalid { kind }),
        3 => Just(Action::Sync),
        1 => Just(Action::Reopen),
        1 => Just(Action::Crash),
    ]
}

/// An index `back` positions before `last + 1`, not at or below the snapshot.
fn index_back(model: &Durable, back: u8) -> LogIndex {
    let span = model.last_index().0 - model.snapshot_index().0 + 1;
    LogIndex(model.last_index().0 + 1 - u64::from(back) % span)
}

fn concrete(model: &Durable, epoch: &mut u64, a: &Action) -> Option<Persist> {
    Some(match *a {
        Action::Append {
            back,
            count,
            bump,
            len,
        } => {
            *epoch += u64::from(bump);
            let first = index_back(model, back).0;
            Persist::Append {
                entries: (first..first + u64::from(count))
                    .map(|i| entry(i, *epoch, usize::from(len)))
                    .collect(),
            }
        }
        Action::Accept {
            ref offsets,
            bump,
            len,
        } => {
            *epoch += u64::from(bump);
            let base = model.snapshot_index().0 + 1;
            Persist::Accept {
                entries: offsets
                    .iter()
                    .map(|&o| entry(base + u64::from(o), *epoch, usize::from(len)))
                    .collect(),
            }
        }
        Action::Truncate { back } => Persist::Truncate {
            from: index_back(model, back),
        },
        Action::HardState { epoch, vote, extra } => Persist::HardState(HardState {
            epoch: Epoch(u64::from(epoch)),
            vote: vote.map(|v| NodeId(u64::from(v))),
            // A commit index the log holds, as a host that follows the contract writes.
            commit: LogIndex(model.last_index().0.saturating_sub(u64::from(extra) % 5)),
            extra: Bytes::from(vec![extra; usize::from(extra)]),
        }),
        Action::Snapshot {
            back,
            matching,
            epoch,
            len,
        } => {
            let (index, epoch) = match model.entries.len() {
                n if matching && n > 0 => {
                    let e: &Entry = &model.entries[n - 1 - usize::from(back) % n];
                    (e.index, e.epoch)
                }
                // Anywhere from below the snapshot to past the end of the log.
                _ => (
                    LogIndex((model.last_index().0 + 2).saturating_sub(u64::from(back))),
                    Epoch(u64::from(epoch)),
                ),
            };
            Persist::Snapshot {
                meta: SnapshotMeta {
                    index,
                    epoch,
                    membership: Membership::new([NodeId(1), NodeId(2), NodeId(3)]),
                },
                data: Bytes::from(vec![len; usize::from(len)]),
            }
        }
        Action::Compact { back } => Persist::Compact {
            through: LogIndex(model.last_index().0.saturating_sub(u64::from(back))),
        },
        Action::Invalid { kind } => {
            let snap = model.snapshot_index().0;
            let last = model.last_index().0;
            match kind {
                0 => append(last + 2, 1, *epoch),
                1 if snap > 0 => append(snap, 1, *epoch),
                2 => Persist::Truncate {
                    from: LogIndex(snap),
                },
                3 => Persist::Accept {
                    entries: vec![entry(last + 3, *epoch, 8), entry(last + 1, *epoch, 8)],
                },
                4 if snap > 0 => Persist::Accept {
                    entries: vec![entry(snap, *epoch, 8), entry(last + 1, *epoch, 8)],
                },
                _ => {
                    let mut op = append(last + 1, 2, *epoch);
                    if let Persist::Append { entries } = &mut op {
                        entries[1].index = LogIndex(last + 3);
                    }
                    op
                }
            }
        }
        Action::Sync | Action::Reopen | Action::Crash => return None,
    })
}

fn run(actions: &[Action]) -> Result<(), TestCaseError> {
    let dir = scratch();
    let config = small_config();
    let (wal, durable) = Wal::open(dir.path(), config.clone()).unwrap();
    let mut wal = Some(wal);
    prop_assert_eq!(&durable, &Durable::default());
    let mut model = Durable::default();
    // The reference after each write since the last sync, starting with the synced state:
    // after a crash the log must come back as one of them.
    let mut since_sync = vec![model.clone()];
    let mut epoch = 1;
    for a in actions {
        let w = wal.as_mut().unwrap();
        match a {
            Action::Sync => {
                w.sync().unwrap();
                since_sync = vec![model.clone()];
            }
            Action::Reopen => {
                w.sync().unwrap();
                drop(wal.take());
                let (w, durable) = Wal::open(dir.path(), config.clone()).unwrap();
                prop_assert_eq!(&durable, &model, "after a clean reopen");
                wal = Some(w);
                since_sync = vec![model.clone()];
            }
            Action::Crash => {
                drop(wal.take());
                let (w, durable) = Wal::open(dir.path(), config.clone()).unwrap();
                prop_assert!(
                    since_sync.contains(&durable),
                    "after a crash: {durable:?} is no state since the last sync"
                );
                model = durable;
                wal = Some(w);
                since_sync = vec![model.clone()];
            }
            _ => {
                let op = concrete(&model, &mut epoch, a).unwrap();
                let mut after = model.clone();
                match after.apply(&op) {
                    // Committed entries are never discarded: the log refuses a write that
                    // would leave the commit index beyond its end, and changes nothing.
                    Ok(()) if after.hard_state.commit > after.last_index() => {
                        prop_assert!(
                            matches!(w.write(&op), Err(WalError::CommitBeyondLog { .. })),
                            "{op:?} discards committed entries"
                        );
                    }
                    Ok(()) => {
                        w.write(&op).unwrap();
                        // An append or slot write too large for one record is split, so a
                        // crash may keep any prefix of its entries.
                        let prefixes: Vec<Persist> = match &op {
                            Persist::Append { entries } => (1..entries.len())
                                .map(|k| Persist::Append {
                                    entries: entries[..k].to_vec(),
                                })
                                .collect(),
                            Persist::Accept { entries } => (1..entries.len())
                                .map(|k| Persist::Accept {
                                    entries: entries[..k].to_vec(),
                                })
                                .collect(),
                            _ => Vec::new(),
                        };
                        for prefix in prefixes {
                            let mut partial = model.clone();
                            partial.apply(&prefix).unwrap();
                            since_sync.push(partial);
                        }
                        model.apply(&op).unwrap();
                        since_sync.push(model.clone());
                        prop_assert_eq!(w.last_index(), model.last_index());
                        prop_assert_eq!(w.snapshot_index(), model.snapshot_index());
                    }
                    Err(expected) => match w.write(&op) {
                        Err(WalError::Persist(e)) => prop_assert_eq!(e, expected),
                        other => prop_assert!(false, "{op:?}: got {other:?}"),
                    },
                }
            }
        }
    }
    let w = wal.as_mut().unwrap();
    w.sync().unwrap();
    drop(wal);
    let (_, durable) = Wal::open(dir.path(), config).unwrap();
    prop_assert_eq!(durable, model);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn recovery_equals_the_reference(actions in proptest::collection::vec(action(), 1..120)) {
        run(&actions)?;
    }
}
